"""The peers Cheetah is compared with. Each runner returns the outer join of the fields' tables,
indexed by a sorted (date, symbol) MultiIndex, and `check_equal` holds every frame to Cheetah's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow.parquet as pq

from queries import FIELD_TABLE


def dsn_parts(dsn: str) -> dict[str, str]:
    """The `key=value` pairs of a libpq connection string, with this machine's defaults."""
    return {"host": "127.0.0.1", "port": "5432", "user": "postgres", **dict(p.split("=", 1) for p in dsn.split())}


def tables_of(cols: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for c in cols:
        grouped.setdefault(FIELD_TABLE[c], []).append(c)
    return grouped


def outer_join(frames: list[pd.DataFrame], cols: list[str]) -> pd.DataFrame:
    joined = frames[0]
    for other in frames[1:]:
        joined = joined.join(other, how="outer")
    return joined[cols].sort_index()


def run_postgres(dsn: str) -> Callable:
    import connectorx as cx

    uri = "postgresql://" + dsn_to_uri(dsn)

    def run(start: str, end: str, cols: list[str]) -> pd.DataFrame:
        grouped = list(tables_of(cols).items())
        first = grouped[0][0]
        sql = ["SELECT * FROM (SELECT COALESCE(" + ", ".join(f"{t}.trade_date" for t, _ in grouped) + ") AS date, "
               "COALESCE(" + ", ".join(f"{t}.symbol" for t, _ in grouped) + ") AS symbol, "
               + ", ".join(f'{t}."{c}"' for t, fields in grouped for c in fields)
               + f" FROM (SELECT * FROM {first} WHERE trade_date BETWEEN '{start}' AND '{end}') {first}"]
        for t, _ in grouped[1:]:
            sql.append(f" FULL OUTER JOIN (SELECT * FROM {t} WHERE trade_date BETWEEN '{start}' AND '{end}') {t}"
                       f" ON {t}.trade_date = {first}.trade_date AND {t}.symbol = {first}.symbol")
        sql.append(') joined ORDER BY date, symbol COLLATE "C"')
        table = cx.read_sql(uri, "".join(sql), return_type="arrow")
        frame = table.to_pandas(date_as_object=False)
        frame["date"] = frame["date"].astype("datetime64[ns]")
        return frame.set_index(["date", "symbol"])[cols]

    return run


def dsn_to_uri(dsn: str) -> str:
    parts = dsn_parts(dsn)
    return f"{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


def run_parquet(directory: Path) -> Callable:
    def run(start: str, end: str, cols: list[str]) -> pd.DataFrame:
        frames = []
        for t, fields in tables_of(cols).items():
            table = pq.read_table(directory / f"{t}.parquet", columns=["date", "symbol", *fields],
                                  filters=[("date", ">=", pd.Timestamp(start)), ("date", "<=", pd.Timestamp(end))])
            frames.append(table.to_pandas().set_index(["date", "symbol"]))
        return outer_join(frames, cols)

    return run


def run_polars(directory: Path) -> Callable:
    import polars as pl

    def run(start: str, end: str, cols: list[str]) -> pd.DataFrame:
        lo, hi = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
        joined = None
        for t, fields in tables_of(cols).items():
            scan = pl.scan_parquet(directory / f"{t}.parquet").select(["date", "symbol", *fields]).filter(
                pl.col("date").is_between(lo, hi))
            joined = scan if joined is None else joined.join(scan, on=["date", "symbol"], how="full", coalesce=True)
        frame = joined.sort(["date", "symbol"]).collect().to_pandas()
        return frame.set_index(["date", "symbol"])[cols]

    return run


def run_duckdb(directory: Path) -> Callable:
    import duckdb

    connection = duckdb.connect()

    def run(start: str, end: str, cols: list[str]) -> pd.DataFrame:
        grouped = list(tables_of(cols).items())
        first = grouped[0][0]
        subquery = lambda t, fields: (  # noqa: E731
            f"(SELECT date, symbol, {', '.join(fields)} FROM read_parquet('{directory / (t + '.parquet')}') "
            f"WHERE date BETWEEN TIMESTAMP '{start}' AND TIMESTAMP '{end}') {t}")
        sql = [f"SELECT * FROM {subquery(first, grouped[0][1])}"]
        for t, fields in grouped[1:]:
            sql.append(f" FULL OUTER JOIN {subquery(t, fields)} USING (date, symbol)")
        sql.append(" ORDER BY date, symbol")
        frame = connection.sql("".join(sql)).df()
        return frame.set_index(["date", "symbol"])[cols]

    return run


def run_arctic(directory: Path, as_of: int | None = None) -> Callable:
    """Reads each table's date range; at its version `as_of` when given."""
    import arcticdb

    library = arcticdb.Arctic(f"lmdb://{directory}?map_size=20GB").get_library("market")

    def run(start: str, end: str, cols: list[str]) -> pd.DataFrame:
        frames = [library.read(t, date_range=(pd.Timestamp(start), pd.Timestamp(end)), columns=fields, as_of=as_of).data
                  for t, fields in tables_of(cols).items()]
        return outer_join(frames, cols)

    return run


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with plain index types, so runners that differ only in dtype spelling compare."""
    dates = pd.DatetimeIndex(frame.index.get_level_values(0)).astype("datetime64[ns]")
    symbols = pd.Index(frame.index.get_level_values(1).astype(str), dtype=object)
    out = frame.copy()
    out.index = pd.MultiIndex.from_arrays([dates, symbols], names=["date", "symbol"])
    for c in out.columns:
        if out[c].dtype.kind in "iu":
            out[c] = out[c].astype("float64")  # a join that found a gap would have widened it
    return out


def check_equal(name: str, query: str, frame: pd.DataFrame, reference: pd.DataFrame) -> None:
    try:
        pd.testing.assert_frame_equal(canonical(frame), canonical(reference), check_exact=True)
    except AssertionError as e:
        raise SystemExit(f"{name} returned a different frame for {query} than Cheetah: {e}") from None
