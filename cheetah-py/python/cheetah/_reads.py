"""The read API every cache has, local or remote: `get_data`, `get_arrow`, `get_polars` and
`fields`, built on one `_get` that returns an Arrow table with dictionary `date` and `symbol`."""

from __future__ import annotations

import datetime as _dt
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from ._cheetah import QueryError
from ._frames import to_pandas

if TYPE_CHECKING:
    import polars

DateLike = Union[_dt.date, _dt.datetime, pd.Timestamp, np.datetime64, str]
"""Anything naming a calendar day: a date, a datetime or Timestamp (its day), or "YYYY-MM-DD"."""


def day(value: DateLike, name: str) -> str:
    """`value` as "YYYY-MM-DD"; `name` names the argument in the error."""
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            raise QueryError(f"{name}={value!r} is not a date; use 'YYYY-MM-DD'") from None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, _dt.datetime):  # pd.Timestamp is a datetime
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    raise TypeError(f"{name} must be a date, datetime, pandas.Timestamp or 'YYYY-MM-DD' string, not {type(value).__name__}")


def names(cols: str | Sequence[str], what: str) -> list[str]:
    """One name or several as a list; `what` names the argument in the error."""
    if isinstance(cols, str):
        return [cols]
    listed = list(cols)
    if not all(isinstance(c, str) for c in listed):
        raise TypeError(f"{what} must be strings")
    return listed


class Reads(ABC):
    """Reads of a cache; subclasses say where the table comes from."""

    @abstractmethod
    def _get(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        symbols: Sequence[str] | None,
        base: str | None,
        dictionary_dates: bool = False,
    ) -> tuple[pa.Table, dict[str, Any]]:
        """The table of one read and what `df.attrs["cheetah"]` reports of it."""

    def _get_frame(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        symbols: Sequence[str] | None,
        base: str | None,
        backend: str,
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The frame of one read and its `attrs`; a cache that can build it better overrides it."""
        table, info = self._get(start, end, cols, symbols, base, dictionary_dates=True)
        return to_pandas(table, backend), info

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """Per table and field: dates, rows, bytes, watermark and last update."""

    def get_arrow(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        *,
        symbols: Sequence[str] | None = None,
        base: str | None = None,
    ) -> pa.Table:
        """`date` (date32), `symbol` (dictionary), then `cols` in order, sorted by date, symbol.

        Rows are the (date, symbol) keys of every table holding a requested field (the outer
        union), or of table `base`. Dates are inclusive; `symbols` keeps only those symbols.
        The schema metadata `cheetah.covered` says which dates were covered.
        """
        table, info = self._get(start, end, cols, symbols, base)
        meta = {b"cheetah.covered": json.dumps(info["covered"]).encode()}
        return table.replace_schema_metadata(meta)

    def get_data(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        *,
        symbols: Sequence[str] | None = None,
        base: str | None = None,
        dtype_backend: Literal["numpy", "pyarrow"] = "numpy",
    ) -> pd.DataFrame:
        """A DataFrame indexed by (`date`, `symbol`), with `cols` as columns in order.

        A field's value is missing (NaN with the numpy backend) where its table has no row.
        ``df.attrs["cheetah"]`` holds the dates actually covered, and under ``"shared"`` what the
        shared layer served: its generation, the rows, and whether the columns are views of it.
        """
        if dtype_backend not in ("numpy", "pyarrow"):
            raise ValueError(f"dtype_backend must be 'numpy' or 'pyarrow', not {dtype_backend!r}")
        frame, info = self._get_frame(start, end, cols, symbols, base, dtype_backend)
        frame.attrs["cheetah"] = info
        return frame

    def get_polars(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        *,
        symbols: Sequence[str] | None = None,
        base: str | None = None,
    ) -> polars.DataFrame:
        """A polars DataFrame with `date`, `symbol` (categorical), then `cols`."""
        import polars

        return polars.from_arrow(self.get_arrow(start, end, cols, symbols=symbols, base=base))

    def fields(self) -> pd.DataFrame:
        """The cached fields with their tables, types and date ranges."""
        rows = [
            {
                "field": f["name"],
                "table": t["name"],
                "type": f["type"],
                "first": f["first"],
                "last": f["last"],
                "dates": f["dates"],
                "rows": f["rows"],
                "bytes": f["bytes"],
            }
            for t in self.status()["tables"]
            for f in t["fields"]
        ]
        frame = pd.DataFrame(rows, columns=["field", "table", "type", "first", "last", "dates", "rows", "bytes"])
        for column in ("first", "last"):
            frame[column] = pd.to_datetime(frame[column])
        return frame

