"""``qsync reproduce``: the papers' figures (PNG) and the data behind them."""

import time

from ._paths import writable_folder


def run(args):
    """Write the requested figures and print where they are."""
    from .._reproduce import PAPERS

    papers = list(PAPERS) if args.paper == "all" else [args.paper]
    jobs = []
    for paper in papers:
        figures = PAPERS[paper]
        if args.figure == "all":
            jobs += [(paper, f) for f in figures]
        elif args.figure in figures:
            jobs.append((paper, args.figure))
        else:
            raise ValueError(
                f"--figure {args.figure!r} is not a figure of {paper}; choose from "
                f"{', '.join(figures)} or all"
            )
    out = writable_folder(args.out)
    written = []
    for paper, figure in jobs:
        started = time.perf_counter()
        paths = PAPERS[paper][figure](out, args.quick, not args.no_progress)
        print(f"{paper} {figure}: {time.perf_counter() - started:6.1f} s  "
              + "  ".join(str(p) for p in paths), flush=True)
        written += paths
    print(f"{len(written)} files written to {out.resolve()}")
    return None
