"""Run every benchmark script in this folder, one process each (``make bench``).

Each script prints its numbers and writes JSON with host/device metadata to
``benchmarks/results/``; ``readme_table.py`` runs last (the scripts run in name order) and
rewrites the README's performance table from them. Extra arguments are not passed: run a script
directly for its options.
"""

import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).parent
SCRIPTS = sorted(p for p in HERE.glob("*.py") if p.name != "run_all.py" and p.name[0] != "_")


def main() -> int:
    failed = []
    for script in SCRIPTS:
        print(f"=== {script.name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.name}: exit {code}, {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
