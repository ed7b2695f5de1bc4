"""Local tables on the bench market: writing a researcher's factor frame, reading it back with the
source's fields, and appending one date of many fields.

1. **Write.** A 2-column float factor over every (date, symbol) of `daily_bar` (10 years x 5,000
   symbols, about 10 M rows, 10% NaN), indexed by (date, symbol), written with `Cache.write` in a
   new process each run, against ArcticDB's `write` of the same frame into a new symbol and
   pandas' `to_parquet` (zstd). Each run replaces the table whole, as a rewrite of every date.
2. **Read.** Q1's range read with `close` and the factor's two fields, cold in a new process,
   against Q1 (4 source fields), per field; checked equal to the frame written joined to close.
3. **Append.** One new date of a 100-field table of 5,000 symbols, written with `Cache.write`
   by a process that holds the writer role (as `cheetah serve` does), each run a new date.

The tables are dropped at the end, so the store is as the backfill left it.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from measure import cold_runs, fmt_seconds
from queries import QUERIES

FACTOR = "bench_factor"
WIDE = "bench_wide"
WIDE_FIELDS = 100

WRITE = r"""
import json, sys, time
import pandas as pd
t0 = time.perf_counter()
import cheetah
config, path, table = sys.argv[1], sys.argv[2], sys.argv[3]
frame = pd.read_pickle(path)
cache = cheetah.open(config)
t1 = time.perf_counter()
report = cache.write(table, frame)
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "rows": report["rows"]}))
"""

ARCTIC = r"""
import json, shutil, sys, time
import pandas as pd
import arcticdb
path, where = sys.argv[1], sys.argv[2]
frame = pd.read_pickle(path)
library = arcticdb.Arctic(f"lmdb://{where}?map_size=8GB").get_library("local", create_if_missing=True)
t1 = time.perf_counter()
library.write("factor", frame)
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1}))
"""

PARQUET = r"""
import json, sys, time
import pandas as pd
path, out = sys.argv[1], sys.argv[2]
frame = pd.read_pickle(path)
t1 = time.perf_counter()
frame.to_parquet(out, compression="zstd")
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1}))
"""


def factor_frame(cache) -> pd.DataFrame:
    """Two float fields over every key of `daily_bar`, about 10% NaN, indexed by (date, symbol)."""
    _, start, end, _ = QUERIES["Q1"]
    keys = cache.get_data(start, end, ["close"]).index
    rng = np.random.default_rng(3)
    n = len(keys)
    momentum = rng.normal(0, 1, n)
    momentum[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"f_mom": momentum, "f_value": rng.lognormal(0, 1, n)}, index=keys)


def child(python: str, script: str, *args: str) -> dict:
    return json.loads(subprocess.run([python, "-c", script, *args], check=True, capture_output=True, text=True).stdout)


def report(python: str, work: Path, config: Path, runs: int, cheetah_bin: Path, log: Callable[[str], None]) -> list[str]:
    import cheetah

    cache = cheetah.open(config)
    for table in (FACTOR, WIDE):
        if table in [t["name"] for t in cache.status()["tables"]]:
            cache.drop(table)
    frame = factor_frame(cache)
    pickled = work / "factor.pkl"
    frame.to_pickle(pickled)
    rows = len(frame)
    lines = []
    try:
        log(f"local: writing a {rows:,}-row factor")
        ours = [child(python, WRITE, str(config), str(pickled), FACTOR)["seconds"] for _ in range(runs)]
        arctic_dir = work / "arctic-local"
        theirs = []
        for _ in range(runs):
            shutil.rmtree(arctic_dir, ignore_errors=True)
            theirs.append(child(python, ARCTIC, str(pickled), str(arctic_dir))["seconds"])
        shutil.rmtree(arctic_dir, ignore_errors=True)
        parquet = [child(python, PARQUET, str(pickled), str(work / "factor.parquet"))["seconds"] for _ in range(runs)]
        ours_s, theirs_s, parquet_s = (statistics.median(t) for t in (ours, theirs, parquet))
        versus = f"{theirs_s / ours_s:.1f}x faster than" if ours_s <= theirs_s else f"{ours_s / theirs_s:.1f}x slower than"
        lines += [
            f"| write a factor, {rows:,} rows x 2 float fields, from pandas: `Cache.write` | {fmt_seconds(ours_s)} median, "
            f"{fmt_seconds(min(ours))} min (target <= 1.5 s); {versus} ArcticDB (target: 2x faster) |",
            f"| ... ArcticDB `write` of the same frame (LMDB) | {fmt_seconds(theirs_s)} median, {fmt_seconds(min(theirs))} min |",
            f"| ... pandas `to_parquet` (zstd) | {fmt_seconds(parquet_s)} median, {fmt_seconds(min(parquet))} min |",
        ]

        log("local: reading it back with close")
        _, start, end, q1_cols = QUERIES["Q1"]
        both = ["close", "f_mom", "f_value"]
        got = cache.get_data(start, end, both)
        expected = cache.get_data(start, end, ["close"]).join(frame, how="outer")
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        del got, expected
        mixed = statistics.median(r["seconds"] for r in cold_runs(python, config, start, end, both, runs))
        q1 = statistics.median(r["seconds"] for r in cold_runs(python, config, start, end, q1_cols, runs))
        per_mixed, per_q1 = mixed / len(both), q1 / len(q1_cols)
        lines.append(
            f"| read it with `close` over Q1's range, new process | {fmt_seconds(mixed)} for {len(both)} fields, "
            f"{fmt_seconds(per_mixed)} per field; Q1 {fmt_seconds(q1)} for {len(q1_cols)}, {fmt_seconds(per_q1)} per field: "
            f"{per_mixed / per_q1:.2f}x (target ~1x) |")

        log("local: appending one date of 100 fields")
        symbols = frame.index.get_level_values("symbol").unique()[:5000]
        last = frame.index.get_level_values("date").max()
        rng = np.random.default_rng(4)
        # The writer role held, as `cheetah serve` holds it: the write itself, without taking the role.
        writer = cache = cheetah.open(config, writer=True)
        appends = []
        for k in range(runs + 1):
            day = last + pd.offsets.BDay(k + 1)
            index = pd.MultiIndex.from_product([[day], symbols], names=["date", "symbol"])
            one = pd.DataFrame(rng.normal(0, 1, (len(index), WIDE_FIELDS)), index=index,
                               columns=[f"w_{i:03d}" for i in range(WIDE_FIELDS)])
            started = time.perf_counter()
            writer.write(WIDE, one)
            if k > 0:  # the first creates the table
                appends.append(time.perf_counter() - started)
        lines.append(
            f"| append one date of {WIDE_FIELDS} fields x {len(symbols):,} symbols, `Cache.write` | "
            f"{fmt_seconds(statistics.median(appends))} median, {fmt_seconds(min(appends))} min (target <= 100 ms) |")
    finally:
        # `cache` is the writer once the appends began, and the drops must not wait for it.
        for table in (FACTOR, WIDE):
            if table in [t["name"] for t in cache.status()["tables"]]:
                cache.drop(table)
        pickled.unlink(missing_ok=True)
        (work / "factor.parquet").unlink(missing_ok=True)
    return lines
