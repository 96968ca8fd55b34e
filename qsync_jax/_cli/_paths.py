"""Output paths checked before any work: a run never ends in an unwritable file."""

import os
import pathlib


def writable_folder(path) -> pathlib.Path:
    """``path`` as a folder that exists (created if needed) and can be written to."""
    folder = pathlib.Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output folder {str(folder)!r} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {str(folder)!r} is not writable")
    return folder


def writable_file(path) -> pathlib.Path:
    """``path`` as a file that can be (over)written, its folder created if needed."""
    target = pathlib.Path(path)
    if target.is_dir() or not target.name:
        raise ValueError(f"output {str(target)!r} is a folder; give a file name")
    writable_folder(target.parent)
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"output file {str(target)!r} is not writable")
    return target
