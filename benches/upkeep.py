"""The shared layer's upkeep: what one `serve` round writes to keep a published layer current.

`target/release/layer-upkeep` (benches/src/bin/layer-upkeep.rs) writes 48 fields of 1,000 symbols
over 10 years of weekdays (listings, delistings, suspended days with null integers), publishes
6, 12 and 48 of them, and times the refresh a `serve` round runs after one new date, after a
lookback that recommits the last five dates unchanged, and after a correction of 1% of one date
three years back. It runs again over 3 years, to show that a round's cost does not grow with the
dates the layer holds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Callable

HEAD = "\n".join([
    "Shared-layer upkeep (`benches/upkeep.py`): a layer of 6, 12 or 48 fields x 1,000 symbols on /dev/shm, in blocks of",
    "65,536 rows; a round is the refresh `cheetah serve` runs after its update. There is no peer: none keeps a",
    "decoded layer that every process maps.",
    "",
    "| layer | figure |",
    "|---|---|",
])


def run(binary: Path, work: Path, tmpfs: Path, years: int) -> list[dict]:
    out = subprocess.run([str(binary), str(work), str(tmpfs), str(years)], check=True, stdout=subprocess.PIPE, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(binary: Path, work: Path, log: Callable[[str], None]) -> list[str]:
    tmpfs = Path("/dev/shm/cheetah-bench-upkeep")
    lines = []
    try:
        log("shared-layer upkeep: 10 years")
        ten = run(binary, work / "upkeep", tmpfs, 10)
        log("shared-layer upkeep: 3 years")
        three = run(binary, work / "upkeep", tmpfs, 3)
    finally:
        subprocess.run(["rm", "-rf", str(tmpfs), str(work / "upkeep")], check=False)
    for r in ten:
        share = r["append_bytes"] / r["layer_bytes"]
        lines += [
            f"| {r['fields']} fields, {r['dates']:,} dates, {r['rows']:,} rows | layer {mb(r['layer_bytes'])}, "
            f"whole publish {ms(r['whole_seconds'])} |",
            f"| ... round after one new date | {r['append_blocks']} block, {mb(r['append_bytes'])} written: "
            f"{share:.1%} of the layer (target <= 5%); {ms(r['append_seconds'])}, "
            f"{r['append_seconds'] / r['whole_seconds']:.1%} of the whole publish (target <= 10%); "
            f"tmpfs peak {r['append_peak']:.3f}x the layer (target <= 1.1x) |",
            f"| ... round after an unchanged lookback of 5 dates | {mb(r['lookback_bytes'])} written, "
            f"{ms(r['lookback_seconds'])} |",
            f"| ... round after 1% of one date 3 years back corrected | {r['correct_blocks']} block, "
            f"{mb(r['correct_bytes'])} written, {ms(r['correct_seconds'])} |",
        ]
    for short, long in zip(three, ten):
        lines.append(
            f"| {long['fields']} fields: round after one new date, 3 years against 10 | "
            f"{ms(short['append_seconds'])} ({mb(short['append_bytes'])}) against {ms(long['append_seconds'])} "
            f"({mb(long['append_bytes'])}); layer {mb(short['layer_bytes'])} against {mb(long['layer_bytes'])} |")
    return lines
