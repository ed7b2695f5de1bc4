"""Cheetah side by side with what a researcher would use instead, in one run on one machine.

    python benches/compare.py [--runs 5] [--work bench] [--pg "host=127.0.0.1 user=postgres dbname=cheetah_bench"]

1. Data: the seeded market of `market.py` (5,000 symbols, 10 years) in PostgreSQL (the source), as zstd
   Parquet, and in ArcticDB (LMDB). Each is built once and reused while the market's
   parameters match.
2. Update (`updates.py`): Cheetah's full backfill from PostgreSQL against bare arrow-odbc reads of the same
   rows (`odbc-read`), the store's size against Parquet's, and one new date: for the market's
   fields, and for a 1,000-field table that PostgreSQL fills with random doubles.
3. Reads: Q1, Q2 and Q3 through Cheetah (cold: a new process, with its peak memory; hot:
   repeated in-process after two untimed calls), on the bench venv's pandas (ArcticDB holds it
   below 3) and, with `--newest-python`, on a venv with the newest pandas a user would get,
   reading the same store; and through PostgreSQL into pandas
   (connectorx), Parquet with pyarrow and pandas, Polars, DuckDB and ArcticDB. Every runner
   returns the same frame, the outer join indexed by a sorted (date, symbol) MultiIndex, and
   the frames are checked equal before any time is shown.
4. Then panels (`panels.py`), the quality report (`quality.py`), the shared layer (`layer.py`),
   Arrow Flight (`flight.py`), new dates, and versions (`versions.py`): a copy of the store
   right after the backfill through 20 rounds of corrections, beside ArcticDB's versions; and
   local tables (`local.py`): a factor frame written and read back, beside ArcticDB and Parquet.

Prints a Markdown report (median and min of `--runs` runs), headed by the versions it ran on,
and writes it to `WORK/report.md`. Every peak memory figure is one process's own peak.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import flight
import layer
import local as local_bench
import upkeep as upkeep_bench
import market
import panels
import quality
import updates
import versions as versions_bench
from configs import write_config
from measure import HOT, ROOT, WARMUP, cheetah_bin, cold_runs, fmt_bytes, fmt_seconds, versions
from peers import (check_equal, dsn_parts, run_arctic, run_duckdb, run_parquet, run_polars,
                   run_postgres)
from queries import QUERIES, TABLES

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Data


class Market:
    """Where the market lives in each form, built on first use."""

    def __init__(self, work: Path, dsn: str, symbols: int, years: int, seed: int) -> None:
        self.work, self.dsn = work, dsn
        self.description = market.describe(symbols, years, seed)
        self.params = (symbols, years, seed)
        self.parquet = work / "parquet"
        self.arctic = work / "arctic"
        self._tables: dict[str, market.Table] | None = None

    def tables(self) -> dict[str, market.Table]:
        if self._tables is None:
            log(f"generating the market ({self.description})")
            self._tables = market.generate(*self.params)
        return self._tables

    def _stamp(self, path: Path) -> Path:
        return path / "market.txt"

    def _fresh(self, path: Path) -> bool:
        stamp = self._stamp(path)
        return stamp.is_file() and stamp.read_text() == self.description

    def ensure(self, arctic: bool = True) -> None:
        create_database(self.dsn)
        if market.postgres_marker(self.dsn) == self.description:
            log("PostgreSQL already holds the market: reusing it")
        else:
            log("loading the market into PostgreSQL")
            market.write_postgres(self.tables(), self.dsn, self.description)
        if not self._fresh(self.parquet):
            shutil.rmtree(self.parquet, ignore_errors=True)
            self.parquet.mkdir(parents=True)
            for name in TABLES:
                table = self.tables()[name]
                log(f"writing {name} as zstd Parquet")
                frame = pa.Table.from_pandas(frame_of(table).reset_index(), preserve_index=False)
                pq.write_table(frame, self.parquet / f"{name}.parquet", compression="zstd")
            self._stamp(self.parquet).write_text(self.description)
        if arctic and not self._fresh(self.arctic):
            import arcticdb

            shutil.rmtree(self.arctic, ignore_errors=True)
            self.arctic.mkdir(parents=True)
            library = arcticdb.Arctic(f"lmdb://{self.arctic}?map_size=20GB").get_library("market", create_if_missing=True)
            for name in TABLES:
                log(f"writing {name} into ArcticDB")
                # ArcticDB keeps no nullable integers: it gets what a numpy-backed frame holds.
                library.write(name, frame_of(self.tables()[name], nullable=False))
            self._stamp(self.arctic).write_text(self.description)

    def parquet_bytes(self, fields: list[str]) -> int:
        """Bytes of `fields` in the Parquet files: their column chunks, as compressed on disk."""
        total = 0
        for name in TABLES:
            meta = pq.ParquetFile(self.parquet / f"{name}.parquet").metadata
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                for c in range(group.num_columns):
                    column = group.column(c)
                    if column.path_in_schema in fields:
                        total += column.total_compressed_size
        return total


def create_database(dsn: str) -> None:
    """Creates the database `dsn` names, if the server does not have it yet."""
    if subprocess.run(["psql", dsn, "-Atqc", "SELECT 1"], capture_output=True).returncode == 0:
        return
    parts = dsn_parts(dsn)
    admin = " ".join(f"{k}={v}" for k, v in {**parts, "dbname": "postgres"}.items())
    log(f"creating database {parts['dbname']}")
    subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{parts["dbname"]}"'], check=True)


def frame_of(table: market.Table, nullable: bool = True) -> pd.DataFrame:
    """The table as a frame; its integer columns with nulls as pandas' nullable integers, or with
    `nullable=False` as the float64 with NaN that a numpy-backed frame holds."""
    index = pd.MultiIndex.from_arrays(
        [table.dates.astype("datetime64[ns]"), table.symbols.astype(object)], names=["date", "symbol"])
    columns = {c: table.nullable(c) if nullable else table.columns[c] for c in table.columns}
    if not nullable:
        for c, mask in table.nulls.items():
            columns[c] = np.where(mask, np.nan, table.columns[c])
    return pd.DataFrame(columns, index=index)


def upkeep_binary() -> Path:
    return ROOT / "target" / "release" / "layer-upkeep"


# ---------------------------------------------------------------------------------------------
# Report


PANEL_HEAD = "\n".join([
    "Wide panels: one field as a date x symbol DataFrame, checked equal to Cheetah's `get_panel` (which scatters the",
    "chunks straight into one 2-D array) before any time is reported; each peer pivots its long read its fastest way.",
    "",
    "| query | runner | median | min | against the best peer |",
    "|---|---|---|---|---|",
])


VERSIONS_HEAD = "\n".join([
    "Versions (`benches/versions.py`): a copy of the backfilled store through 20 update rounds, each correcting 1% of",
    "one date's cells in PostgreSQL; ArcticDB's copy of the market given the same corrections with `update()`.",
    "",
    "| versions | figure |",
    "|---|---|",
])


LOCAL_HEAD = "\n".join([
    "Local tables (`benches/local.py`): a researcher's factor written from pandas and read back with the source's",
    "fields, beside ArcticDB's `write` and pandas' `to_parquet` of the same frame.",
    "",
    "| local tables | figure |",
    "|---|---|",
])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(ROOT / "bench"), help="where the Parquet, ArcticDB and Cheetah data go")
    parser.add_argument("--pg", default="host=127.0.0.1 user=postgres dbname=cheetah_bench",
                        help="libpq connection string of the PostgreSQL source database")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-store", action="store_true",
                        help="reuse the Cheetah store of a previous run instead of timing a new backfill")
    parser.add_argument("--peers", default="", help="only the peers whose names contain one of these, comma-separated")
    parser.add_argument("--panels-only", action="store_true",
                        help="only the wide-panel bench, on the store of a previous run")
    parser.add_argument("--quality-only", action="store_true",
                        help="only the quality-report bench, building the store if no run left one")
    parser.add_argument("--versions-only", action="store_true",
                        help="only the versions bench, backfilling its base store if no run left one")
    parser.add_argument("--upkeep-only", action="store_true",
                        help="only the shared-layer upkeep bench (its own synthetic store; no PostgreSQL needed)")
    parser.add_argument("--local-only", action="store_true",
                        help="only the local-tables bench, on the store of a previous run")
    parser.add_argument("--newest-python", default=None,
                        help="a Python whose venv has the newest pandas and cheetah: Cheetah's rows are measured on it too")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)

    if args.upkeep_only:
        lines = upkeep_bench.report(upkeep_binary(), work, log)
        text = "\n".join([f"Measured {dt.date.today()}", "", upkeep_bench.HEAD, *lines])
        (work / "report-upkeep.md").write_text(text + "\n")
        print(text)
        return

    data = Market(work, args.pg, args.symbols, args.years, args.seed)
    data.ensure(arctic=not args.quality_only)
    config = write_config(work, args.pg)
    report: list[str] = []

    wanted = [w.strip().lower() for w in args.peers.split(",") if w.strip()]
    if args.panels_only:
        import cheetah

        lines = panels.report(sys.executable, config, cheetah.open(config), args.pg, data.parquet, data.arctic,
                              wanted, args.runs, log)
        text = "\n".join([f"Measured {dt.date.today()} on {versions(args.pg, None)}", "", PANEL_HEAD, *lines])
        (work / "report-panels.md").write_text(text + "\n")
        print(text)
        return

    store = work / "cheetah-store"
    version_configs = (write_config(work, args.pg, "versions-base", store="versions-base"),
                       write_config(work, args.pg, "versions", store="versions-store", lookback=versions_bench.LOOKBACK))
    if args.versions_only:
        lines = versions_bench.report(sys.executable, work, args.pg, version_configs, data.description, data.arctic,
                                      args.runs, cheetah_bin(), log)
        text = "\n".join([f"Measured {dt.date.today()} on {versions(args.pg, None)}", "", VERSIONS_HEAD, *lines])
        (work / "report-versions.md").write_text(text + "\n")
        print(text)
        return
    if args.local_only:
        lines = local_bench.report(sys.executable, work, config, args.runs, cheetah_bin(), log)
        text = "\n".join([f"Measured {dt.date.today()} on {versions(args.pg, None)}", "", LOCAL_HEAD, *lines])
        (work / "report-local.md").write_text(text + "\n")
        print(text)
        return
    if args.quality_only:
        if not store.is_dir():
            log("Cheetah: full backfill from PostgreSQL")
            subprocess.run([str(cheetah_bin()), "--config", str(config), "update", "--no-progress"], check=True)
        lines = quality.report(cheetah_bin(), config, data.parquet, args.runs, log)
        text = "\n".join([f"Measured {dt.date.today()} on {versions(args.pg, None)}", "", quality.HEAD, *lines])
        (work / "report-quality.md").write_text(text + "\n")
        print(text)
        return

    # --- Update figures
    update_lines = []
    if not (args.keep_store and store.is_dir()):
        keep = lambda s: versions_bench.keep_base(s, work / "versions-base", data.description)  # noqa: E731
        update_lines += updates.backfill_rows(work, args.pg, config, store, keep, log)
    update_lines += updates.size_rows(config, data.parquet_bytes)

    # --- Reads
    import cheetah

    cache = cheetah.open(config)
    peers: dict[str, Callable] = {
        "PostgreSQL -> pandas (connectorx)": run_postgres(args.pg),
        "Parquet + pyarrow + pandas": run_parquet(data.parquet),
        "Polars (Parquet)": run_polars(data.parquet),
        "DuckDB (Parquet)": run_duckdb(data.parquet),
        "ArcticDB (LMDB)": run_arctic(data.arctic),
    }
    peers = {n: r for n, r in peers.items() if not wanted or any(w in n.lower() for w in wanted)}
    read_lines = []
    memory_lines = []
    best_peers: dict[str, float] = {}
    bench_pandas = f"pandas {pd.__version__}"
    for q, (what, start, end, cols) in QUERIES.items():
        log(f"{q}: Cheetah on {bench_pandas}")
        reference = cache.get_data(start, end, cols)
        rows = len(reference)
        colds = {bench_pandas: cold_runs(sys.executable, config, start, end, cols, args.runs)}
        for _ in range(WARMUP):
            frame = cache.get_data(start, end, cols)
        hot = []
        for _ in range(args.runs):
            started = time.perf_counter()
            frame = cache.get_data(start, end, cols)
            hot.append(time.perf_counter() - started)
        del frame
        timings = {f"Cheetah cold ({bench_pandas})": [c["seconds"] for c in colds[bench_pandas]],
                   f"Cheetah hot ({bench_pandas})": hot}
        if args.newest_python:
            out = subprocess.run([args.newest_python, "-c", HOT, str(config), start, end, ",".join(cols), str(WARMUP),
                                  str(args.runs)], check=True, capture_output=True, text=True).stdout
            newest = json.loads(out)
            label = f"pandas {newest['pandas']}"
            log(f"{q}: Cheetah on {label}")
            colds[label] = cold_runs(args.newest_python, config, start, end, cols, args.runs)
            timings[f"Cheetah cold ({label})"] = [c["seconds"] for c in colds[label]]
            timings[f"Cheetah hot ({label})"] = newest["seconds"]
        for label, runs in colds.items():
            ratio = max(c["peak_bytes"] / c["result_bytes"] for c in runs)
            memory_lines.append(f"| {q} | {label} | {rows:,} | {fmt_bytes(runs[0]['result_bytes'])} | "
                                f"{fmt_bytes(max(c['peak_bytes'] for c in runs))} | {ratio:.2f}x |")
        for name, runner in peers.items():
            log(f"{q}: {name}")
            times = []
            for i in range(args.runs):
                started = time.perf_counter()
                frame = runner(start, end, cols)
                times.append(time.perf_counter() - started)
                if i == 0:
                    check_equal(name, q, frame, reference)
                del frame
            timings[name] = times
            log(f"{q}: {name}: median {fmt_seconds(statistics.median(times))}")
        best_peer = min(statistics.median(t) for n, t in timings.items() if not n.startswith("Cheetah"))
        best_peers[q] = best_peer
        read_lines.append(f"| **{q}** | {what}, {rows:,} rows | | | |")
        for name, times in timings.items():
            median = statistics.median(times)
            speedup = best_peer / median
            if not name.startswith("Cheetah"):
                versus = "best peer" if median == best_peer else f"{median / best_peer:.1f}x slower"
            elif speedup >= 1:
                versus = f"{speedup:.1f}x faster" if speedup < 10 else f"{speedup:,.0f}x faster"
            else:
                versus = f"{1 / speedup:.1f}x slower"
            read_lines.append(f"| | {name} | {fmt_seconds(median)} | {fmt_seconds(min(times))} | {versus} |")
        del reference

    panel_lines = panels.report(sys.executable, config, cache, args.pg, data.parquet, data.arctic, wanted, args.runs, log)
    quality_lines = quality.report(cheetah_bin(), config, data.parquet, args.runs, log)

    shared = write_config(work, args.pg, "cheetah-share", store="cheetah-store", extra=layer.share_section())
    layer_lines = layer.report(sys.executable, shared, config, QUERIES, peers, best_peers, args.runs, cheetah_bin(), log)
    served = write_config(work, args.pg, "cheetah-flight", store="cheetah-store",
                          extra=layer.share_section() + flight.flight_section())
    flight_lines = flight.report(sys.executable, served, QUERIES, best_peers, args.runs, cheetah_bin(), log)

    update_lines += updates.new_date_rows(work, args.pg, args.runs, log)
    log("versions")
    version_lines = versions_bench.report(sys.executable, work, args.pg, version_configs, data.description,
                                          data.arctic, args.runs, cheetah_bin(), log)
    log("local tables")
    local_lines = local_bench.report(sys.executable, work, config, args.runs, cheetah_bin(), log)
    upkeep_lines = upkeep_bench.report(upkeep_binary(), work, log)
    report += [
        f"Measured {dt.date.today()} on {versions(args.pg, args.newest_python)}",
        "",
        f"Market: {data.description}; {args.runs} runs each. Every frame was checked equal to Cheetah's.",
        "",
        "| query | runner | median | min | against the best peer |",
        "|---|---|---|---|---|",
        *read_lines,
        "",
        PANEL_HEAD,
        *panel_lines,
        "",
        quality.HEAD,
        *quality_lines,
        "",
        "The shared layer (`[share]` on /dev/shm): Q1's and Q3's ranges and fields published with `cheetah warm`;",
        "a new process is timed from `cheetah.open` to the DataFrame. 'views' means every column and the MultiIndex",
        "codes are views of the mapped files.",
        "",
        *layer_lines,
        "",
        upkeep_bench.HEAD,
        *upkeep_lines,
        "",
        "Arrow Flight: `cheetah serve --no-update` reading through the same layer; clients in other processes over",
        "loopback, on the same 2 cores as the server.",
        "",
        *flight_lines,
        "",
        "| update | figure |",
        "|---|---|",
        *update_lines,
        "",
        VERSIONS_HEAD,
        *version_lines,
        "",
        LOCAL_HEAD,
        *local_lines,
        "",
        "Peak memory of a cold Cheetah read (a new process's own VmHWM growth; the hot layer fills as it reads):",
        "",
        "| query | venv | rows | pandas result | peak RSS growth | peak / result (target <= 2x) |",
        "|---|---|---|---|---|---|",
        *memory_lines,
    ]
    text = "\n".join(report)
    (work / "report.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
