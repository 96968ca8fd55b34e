"""Every notebook in notebooks/ is stored without outputs and runs without error at reduced size.

The notebooks run in a separate Jupyter kernel started from this interpreter (jupyter_client
replaces the kernel spec's ``python`` by ``sys.executable``; the test checks ``sys.prefix``), with
``QSYNC_NOTEBOOK_QUICK=1`` (shorter runs, coarser grids, same code) and the Agg backend. Their
cells assert the physics they show, so a wrong result fails here as well as an exception.

Running them is marked ``slow``: ``make docs`` (run by CI after ``make test``) executes every
notebook the same way to render it into the site, and fails the build when a cell fails.
"""

import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 900  # seconds per cell: compile times dominate on a loaded machine
IDS = [path.stem for path in NOTEBOOKS]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_valid_and_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    dirty = [k for k, cell in enumerate(code) if cell.outputs or cell.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; clear them before committing"


@pytest.mark.slow  # executed by `make docs` in CI as well
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    # A last cell reports the kernel's environment: it must be this one.
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    env = {**os.environ, "QSYNC_NOTEBOOK_QUICK": "1", "MPLBACKEND": "Agg"}
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # working directory of the kernel
    )
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}", pytrace=False)
    prefix = "".join(output.get("text", "") for output in nb.cells[-1].outputs).strip()
    assert prefix == sys.prefix, f"the kernel ran in {prefix!r}, the tests in {sys.prefix!r}"
