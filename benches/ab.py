"""Two builds of Cheetah, or two stores, read interleaved run by run, so a change is measured
against its baseline on the same data, machine and moment.

    python benches/ab.py --config bench/cheetah.toml \\
        --build before=bench/venv-before/bin/python --build after=.venv/bin/python [--runs 7]
    python benches/ab.py --build plain=.venv/bin/python:bench/versions-base.toml \\
        --build history=.venv/bin/python:bench/versions.toml

Each `--build` is LABEL=PYTHON, or LABEL=PYTHON:CONFIG to read its own store: a Python whose
venv has that build of `cheetah` installed (for example with `maturin develop --release` from a
worktree of the baseline commit). For Q1, Q2 and Q3 of `queries.py` it times cold reads (a new
process each) and hot reads (repeated in one process after untimed warm-up calls), alternating
the builds, and prints medians and minima.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from measure import COLD, HOT, WARMUP, fmt_seconds
from queries import QUERIES


@dataclass
class Timings:
    """One build's reads of one query."""
    cold: list[float] = field(default_factory=list)
    hot: list[float] = field(default_factory=list)


def interleaved(builds: dict[str, tuple[str, Path]], runs: int) -> dict[str, dict[str, Timings]]:
    """Per query, per label: `runs` cold and hot reads by that label's Python of its config,
    the labels alternating within each run."""
    def child(python: str, config: Path, script: str, *extra: str) -> dict:
        return json.loads(subprocess.run([python, "-c", script, str(config), *extra], check=True,
                                         capture_output=True, text=True).stdout)

    found: dict[str, dict[str, Timings]] = {}
    for q, (_, start, end, cols) in QUERIES.items():
        timings = found[q] = {label: Timings() for label in builds}
        for _ in range(runs):
            for label, (python, config) in builds.items():
                timings[label].cold.append(child(python, config, COLD, start, end, ",".join(cols))["seconds"])
        for _ in range(runs):
            for label, (python, config) in builds.items():
                timings[label].hot += child(python, config, HOT, start, end, ",".join(cols), str(WARMUP), "1")["seconds"]
    return found


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the config of the store every build without its own reads")
    parser.add_argument("--build", action="append", required=True, help="LABEL=PYTHON or LABEL=PYTHON:CONFIG, twice or more")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    builds: dict[str, tuple[str, Path]] = {}
    for b in args.build:
        label, _, target = b.partition("=")
        python, _, config = target.partition(":")
        if not (config or args.config):
            parser.error(f"--build {b} names no config, and there is no --config")
        builds[label] = (python, Path(config or args.config))

    print(f"{args.runs} runs each, builds alternating; "
          f"{', '.join(f'{k}: {p} reading {c}' for k, (p, c) in builds.items())}\n")
    print("| query | build | cold median | cold min | hot median | hot min |")
    print("|---|---|---|---|---|---|")
    for q, timings in interleaved(builds, args.runs).items():
        for label, t in timings.items():
            print(f"| {q} | {label} | {fmt_seconds(statistics.median(t.cold))} | {fmt_seconds(min(t.cold))} "
                  f"| {fmt_seconds(statistics.median(t.hot))} | {fmt_seconds(min(t.hot))} |")


if __name__ == "__main__":
    main(sys.argv[1:])
