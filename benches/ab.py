"""Two builds of Cheetah reading one store, interleaved run by run, so a change is measured
against its baseline on the same data, machine and moment.

    python benches/ab.py --config bench/cheetah.toml \\
        --build before=bench/venv-before/bin/python --build after=.venv/bin/python [--runs 7]

Each `--build` is a Python whose venv has that build of `cheetah` installed (for example with
`maturin develop --release` from a worktree of the baseline commit). For Q1, Q2 and Q3 of
`queries.py` it times cold reads (a new process each) and hot reads (repeated in one process
after untimed warm-up calls), alternating the builds, and prints medians and minima.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from measure import COLD, HOT, WARMUP, fmt_seconds
from queries import QUERIES


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the config of the store both builds read")
    parser.add_argument("--build", action="append", required=True, help="LABEL=PYTHON, twice or more")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    builds = dict(b.split("=", 1) for b in args.build)

    def child(python: str, script: str, *extra: str) -> dict:
        return json.loads(subprocess.run([python, "-c", script, args.config, *extra], check=True,
                                         capture_output=True, text=True).stdout)

    print(f"{args.runs} runs each, builds alternating; {', '.join(f'{k}: {v}' for k, v in builds.items())}\n")
    print("| query | build | cold median | cold min | hot median | hot min |")
    print("|---|---|---|---|---|---|")
    for q, (_, start, end, cols) in QUERIES.items():
        cold: dict[str, list[float]] = {label: [] for label in builds}
        hot: dict[str, list[float]] = {label: [] for label in builds}
        for _ in range(args.runs):
            for label, python in builds.items():
                cold[label].append(child(python, COLD, start, end, ",".join(cols))["seconds"])
        for _ in range(args.runs):
            for label, python in builds.items():
                hot[label] += child(python, HOT, start, end, ",".join(cols), str(WARMUP), "1")["seconds"]
        for label in builds:
            print(f"| {q} | {label} | {fmt_seconds(statistics.median(cold[label]))} | {fmt_seconds(min(cold[label]))} "
                  f"| {fmt_seconds(statistics.median(hot[label]))} | {fmt_seconds(min(hot[label]))} |")


if __name__ == "__main__":
    main(sys.argv[1:])
