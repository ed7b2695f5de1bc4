"""The shared layer's rows of `make bench`: publishing Q1's and Q3's ranges with `cheetah warm`,
new processes reading through it, a pass over every column against the peers doing the same, and
the memory of eight processes each holding Q1's frame."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from measure import HOT, fmt_bytes, fmt_seconds, timed_child

LAYER = Path("/dev/shm/cheetah-bench")

# pandas is imported before the clock starts, as a notebook has it: its import is its own row.
COLD_SUM = r"""
import json, sys, time
import cheetah
import pandas
config, start, end, cols = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
t0 = time.perf_counter()
cache = cheetah.open(config)
df = cache.get_data(start, end, cols)
t1 = time.perf_counter()
total = df.sum()
t2 = time.perf_counter()
print(json.dumps({"read": t1 - t0, "sum": t2 - t1, "shared": df.attrs["cheetah"]["shared"],
                  "store_opened": cache._inner.store_is_open()}))
"""

HOLDER = r"""
import sys
import cheetah
config, start, end, cols = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
cache = cheetah.open(config)
print("opened", flush=True)
sys.stdin.readline()
df = cache.get_data(start, end, cols)
# The frame's own buffers: its columns and index codes. (memory_usage() would build the
# MultiIndex's hash engine, 8 bytes a row of private memory, which holding a frame does not.)
frame = sum(df[c].to_numpy().nbytes for c in df.columns) + sum(c.nbytes for c in df.index.codes)
print("read", frame, flush=True)
sys.stdin.readline()
"""


IMPORT = r"""
import json, sys, time
t0 = time.perf_counter()
import cheetah
t1 = time.perf_counter()
import pandas
t2 = time.perf_counter()
print(json.dumps({"cheetah": t1 - t0, "pandas": t2 - t1}))
"""


def import_cost(python: str, runs: int) -> str:
    """`import cheetah` in new processes, and pandas after it (what the first frame imports)."""
    times = [json.loads(subprocess.run([python, "-c", IMPORT], check=True, capture_output=True, text=True).stdout)
             for _ in range(runs)]
    ours = statistics.median(t["cheetah"] for t in times)
    pandas = statistics.median(t["pandas"] for t in times)
    return (f"| `import cheetah` in a new process | {fmt_seconds(ours)}; the first frame then imports pandas, "
            f"{fmt_seconds(pandas)} (a `get_arrow` or `get_polars` caller never does) |")


def share_section() -> str:
    return f'\n[share]\npath = "{LAYER}"\nbudget = "8GiB"\n'


def publish(binary: Path, config: Path, queries: dict) -> list[str]:
    """Publishes Q1's and Q3's ranges and fields afresh; returns the report lines."""
    shutil.rmtree(LAYER, ignore_errors=True)
    lines = []
    for q in ("Q1", "Q3"):
        _, start, end, cols = queries[q]
        seconds, peak, out = timed_child([str(binary), "--config", str(config), "warm", "--start", start,
                                          "--end", end, "--cols", ",".join(cols), "--no-update"])
        written = next(line for line in out.splitlines() if line.startswith("shared layer"))
        size = written.split("wrote ")[1].split(" in ")[0]
        lines.append(f"| `cheetah warm` publishing {q}'s range and fields | {fmt_seconds(seconds)} for {size}, "
                     f"peak RSS {fmt_bytes(peak)} |")
    return lines


def cold(python: str, config: Path, start: str, end: str, cols: list[str], runs: int) -> tuple[list[float], list[float], str]:
    """New processes reading through the layer: read seconds, then `df.sum()` seconds, and
    what the reads' columns were: views or copies, and whether any process opened the store."""
    reads, sums, views, opened = [], [], True, False
    for _ in range(runs):
        out = subprocess.run([python, "-c", COLD_SUM, str(config), start, end, ",".join(cols)],
                             check=True, capture_output=True, text=True).stdout
        result = json.loads(out)
        reads.append(result["read"])
        sums.append(result["sum"])
        views &= bool(result["shared"] and result["shared"]["views"])
        opened |= result["store_opened"]
    return reads, sums, ("views" if views else "copies") + ("; the store opened" if opened else "; the store not opened")


def peers_with_sum(peers: dict[str, Callable], start: str, end: str, cols: list[str], runs: int) -> dict[str, list[float]]:
    """Each peer building the frame and then summing every column, as one timing."""
    timings = {}
    for name, runner in peers.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            frame = runner(start, end, cols)
            frame.sum()
            times.append(time.perf_counter() - started)
            del frame
        timings[name] = times
    return timings


def pss(python: str, config: Path, start: str, end: str, cols: list[str], processes: int = 8) -> str:
    """Total PSS of `processes` readers each holding the same frame, against one frame."""
    def total_pss(children: list[subprocess.Popen]) -> int:
        total = 0
        for child in children:
            for line in Path(f"/proc/{child.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        return total

    children = [subprocess.Popen([python, "-c", HOLDER, str(config), start, end, ",".join(cols)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    try:
        for child in children:
            assert child.stdout.readline().startswith("opened")
        before = total_pss(children)
        frame_bytes = 0
        for child in children:
            child.stdin.write("\n")
            child.stdin.flush()
        for child in children:
            frame_bytes = int(child.stdout.readline().split()[1])
        after = total_pss(children)
    finally:
        for child in children:
            child.kill()
            child.wait()
    return (f"| {processes} processes each holding Q1's frame ({fmt_bytes(frame_bytes)}) | total PSS "
            f"{fmt_bytes(after)}: {after / frame_bytes:.2f}x one frame; the frames added {fmt_bytes(after - before)}, "
            f"{(after - before) / frame_bytes:.2f}x (target <= 1.5x) |")


def report(python: str, share_config: Path, plain_config: Path, queries: dict, peers: dict[str, Callable],
           best_peer: dict[str, float], runs: int, binary: Path, log: Callable[[str], None]) -> list[str]:
    """Every row of the layer's table."""
    log("the shared layer: publishing Q1 and Q3 with cheetah warm")
    lines = publish(binary, share_config, queries)
    read_lines = []
    for q, (what, start, end, cols) in queries.items():
        log(f"{q}: new processes through the shared layer")
        reads, sums, views = cold(python, share_config, start, end, cols, runs)
        median = statistics.median(reads)
        read_lines.append(f"| {q} | new process, layer published | {fmt_seconds(median)} | {fmt_seconds(min(reads))} | "
                          f"{best_peer[q] / median:,.0f}x | {views} |")
        log(f"{q}: repeated in one process through the shared layer")
        out = subprocess.run([python, "-c", HOT, str(share_config), start, end, ",".join(cols), "1", str(max(runs, 15))],
                             check=True, capture_output=True, text=True).stdout
        repeated = json.loads(out)
        hot = statistics.median(repeated["seconds"])
        views = bool(repeated["shared"] and repeated["shared"]["views"])
        read_lines.append(f"| {q} | repeated in the process, layer published | {fmt_seconds(hot)} | "
                          f"{fmt_seconds(min(repeated['seconds']))} | {best_peer[q] / hot:,.0f}x; a new process takes "
                          f"{median / hot:.1f}x this | {'views' if views else 'copies'} |")
        if q == "Q1":
            plain, _, _ = cold(python, plain_config, start, end, cols, runs)
            read_lines.append(f"| Q1 | new process, no layer (the store) | {fmt_seconds(statistics.median(plain))} | "
                              f"{fmt_seconds(min(plain))} | {best_peer[q] / statistics.median(plain):,.1f}x | decoded |")
            ours = [r + s for r, s in zip(reads, sums)]
            log("Q1 and df.sum(): the peers")
            theirs = peers_with_sum(peers, start, end, cols, runs)
            best = min(statistics.median(t) for t in theirs.values())
            read_lines.append(f"| Q1 + `df.sum()` | new process, layer published | {fmt_seconds(statistics.median(ours))} | "
                              f"{fmt_seconds(min(ours))} | {best / statistics.median(ours):,.0f}x | views |")
            for name, times in theirs.items():
                read_lines.append(f"| Q1 + `df.sum()` | {name} | {fmt_seconds(statistics.median(times))} | "
                                  f"{fmt_seconds(min(times))} | {best / statistics.median(times):.2f}x | |")
    log("Q1's frame held by 8 processes: PSS")
    _, start, end, cols = queries["Q1"]
    lines.append(pss(python, share_config, start, end, cols))
    lines.append(import_cost(python, runs))
    return [
        "| query | runner | median | min | against the best peer | columns |",
        "|---|---|---|---|---|---|",
        *read_lines,
        "",
        "| shared layer | figure |",
        "|---|---|",
        *lines,
    ]
