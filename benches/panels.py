"""The wide-panel bench: one field as a date x symbol frame over the whole market, from Cheetah's
`get_panel` against `get_data(...).unstack()` and against each peer's fastest pivot. Every frame
is checked equal to Cheetah's panel before any time is reported."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow.parquet as pq

from measure import fmt_seconds
from peers import dsn_to_uri

FIELD = "close"
TABLE = "daily_bar"
START, END = "2015-01-01", "2025-12-31"
WHAT = f"`{FIELD}` over all 10 years, a date x symbol frame"

COLD = r"""
import json, sys, time
import cheetah, pandas  # pandas before the clock, as in measure.COLD
t0 = time.perf_counter()
cache = cheetah.open(sys.argv[1])
panel = cache.get_panel(sys.argv[2], sys.argv[3], sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - t0, "shape": panel.shape}))
"""


def pivot_postgres(dsn: str) -> Callable[[], pd.DataFrame]:
    import connectorx as cx

    uri = "postgresql://" + dsn_to_uri(dsn)
    sql = f"SELECT trade_date AS date, symbol, {FIELD} FROM {TABLE} WHERE trade_date BETWEEN '{START}' AND '{END}'"

    def run() -> pd.DataFrame:
        frame = cx.read_sql(uri, sql, return_type="arrow").to_pandas(date_as_object=False)
        return frame.pivot(index="date", columns="symbol", values=FIELD)

    return run


def pivot_parquet(directory: Path) -> Callable[[], pd.DataFrame]:
    def run() -> pd.DataFrame:
        table = pq.read_table(directory / f"{TABLE}.parquet", columns=["date", "symbol", FIELD],
                              filters=[("date", ">=", pd.Timestamp(START)), ("date", "<=", pd.Timestamp(END))])
        return table.to_pandas().pivot(index="date", columns="symbol", values=FIELD)

    return run


def pivot_polars(directory: Path) -> Callable[[], pd.DataFrame]:
    import polars as pl

    lo, hi = dt.datetime.fromisoformat(START), dt.datetime.fromisoformat(END)

    def run() -> pd.DataFrame:
        long = pl.scan_parquet(directory / f"{TABLE}.parquet").select(["date", "symbol", FIELD]).filter(
            pl.col("date").is_between(lo, hi)).collect()
        wide = long.pivot(on="symbol", index="date", values=FIELD, sort_columns=True).sort("date")
        return wide.to_pandas().set_index("date")

    return run


def pivot_duckdb(directory: Path) -> Callable[[], pd.DataFrame]:
    import duckdb

    connection = duckdb.connect()
    sql = (f"PIVOT (SELECT date, symbol, {FIELD} FROM read_parquet('{directory / (TABLE + '.parquet')}') "
           f"WHERE date BETWEEN TIMESTAMP '{START}' AND TIMESTAMP '{END}') ON symbol USING first({FIELD}) "
           f"GROUP BY date ORDER BY date")

    def run() -> pd.DataFrame:
        return connection.sql(sql).df().set_index("date")

    return run


def pivot_arctic(directory: Path) -> Callable[[], pd.DataFrame]:
    import arcticdb

    library = arcticdb.Arctic(f"lmdb://{directory}?map_size=20GB").get_library("market")

    def run() -> pd.DataFrame:
        frame = library.read(TABLE, date_range=(pd.Timestamp(START), pd.Timestamp(END)), columns=[FIELD]).data
        return frame[FIELD].unstack("symbol")

    return run


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain float64 cells under a datetime64[ns] `date` index and sorted text columns."""
    out = frame.astype("float64")
    out.index = pd.DatetimeIndex(out.index).astype("datetime64[ns]").rename("date")
    out.columns = pd.Index([str(c) for c in out.columns], dtype=object, name="symbol")
    return out.sort_index(axis=1)


def report(python: str, config: Path, cache, dsn: str, parquet: Path, arctic: Path, wanted: list[str],
           runs: int, log: Callable[[str], None]) -> list[str]:
    """The table rows of the panel bench, Cheetah's first, each against the best peer."""
    runners: dict[str, Callable[[], pd.DataFrame]] = {
        "PostgreSQL -> pandas pivot (connectorx)": pivot_postgres(dsn),
        "Parquet + pyarrow + pandas pivot": pivot_parquet(parquet),
        "Polars pivot (Parquet)": pivot_polars(parquet),
        "DuckDB PIVOT (Parquet)": pivot_duckdb(parquet),
        "ArcticDB (LMDB) + unstack": pivot_arctic(arctic),
    }
    runners = {n: r for n, r in runners.items() if not wanted or any(w in n.lower() for w in wanted)}
    log(f"panel of {FIELD}: Cheetah")
    reference = cache.get_panel(START, END, FIELD)
    expected = canonical(reference)
    timings: dict[str, list[float]] = {}
    timings["Cheetah get_panel, new process (open, read, frame)"] = [
        json.loads(subprocess.run([python, "-c", COLD, str(config), START, END, FIELD], check=True,
                                  capture_output=True, text=True).stdout)["seconds"] for _ in range(runs)]

    def hot(read: Callable[[], pd.DataFrame]) -> list[float]:
        read()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            read()
            times.append(time.perf_counter() - started)
        return times

    timings["Cheetah get_panel, hot"] = hot(lambda: cache.get_panel(START, END, FIELD))
    unstack = lambda: cache.get_data(START, END, [FIELD])[FIELD].unstack("symbol")  # noqa: E731
    pd.testing.assert_frame_equal(canonical(unstack()), expected, check_exact=True)
    timings["Cheetah get_data(...).unstack(\"symbol\"), hot"] = hot(unstack)
    for name, run in runners.items():
        log(f"panel of {FIELD}: {name}")
        times = []
        for i in range(runs):
            started = time.perf_counter()
            frame = run()
            times.append(time.perf_counter() - started)
            if i == 0:
                pd.testing.assert_frame_equal(canonical(frame), expected, check_exact=True, obj=name)
            del frame
        timings[name] = times
        log(f"panel of {FIELD}: {name}: median {fmt_seconds(statistics.median(times))}")
    peers = [statistics.median(t) for n, t in timings.items() if not n.startswith("Cheetah")]
    best = min(peers) if peers else None
    rows, cols = reference.shape
    lines = [f"| **P1** | {WHAT}, {rows:,} dates x {cols:,} symbols | | | |"]
    for name, times in timings.items():
        median = statistics.median(times)
        if best is None:
            versus = ""
        elif not name.startswith("Cheetah"):
            versus = "best peer" if median == best else f"{median / best:.1f}x slower"
        elif median <= best:
            versus = f"{best / median:.1f}x faster" + (" (target >= 10x)" if "get_panel, hot" in name else "")
        else:
            versus = f"{median / best:.1f}x slower"
        lines.append(f"| | {name} | {fmt_seconds(median)} | {fmt_seconds(min(times))} | {versus} |")
    return lines
