"""Cheetah: an embedded cache of (date, symbol) research tables from SQL databases.

    import cheetah
    from datetime import datetime
    df = cheetah.get_data(datetime(2010, 1, 1), datetime(2020, 1, 1), cols=["close", "volume", "pe", "total_mv"])

`cheetah.get_data` and friends read the default config: ``$CHEETAH_CONFIG``, else
``~/.config/cheetah/cheetah.toml``. ``cheetah.open(path)`` opens another one.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import json
import os
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from . import _cheetah
from ._cheetah import (
    CheetahError,
    ConfigError,
    CorruptChunk,
    EmptyCache,
    QueryError,
    ShareError,
    SourceError,
    StoreError,
    StoreLocked,
    UpdateError,
)

if TYPE_CHECKING:
    import polars

__all__ = [
    "Cache",
    "CheetahError",
    "ConfigError",
    "CorruptChunk",
    "DateLike",
    "EmptyCache",
    "QueryError",
    "ShareError",
    "ShareWarning",
    "SourceError",
    "StoreError",
    "StoreLocked",
    "UpdateError",
    "get_arrow",
    "get_data",
    "get_polars",
    "open",
]

DateLike = Union[_dt.date, _dt.datetime, pd.Timestamp, np.datetime64, str]
"""Anything naming a calendar day: a date, a datetime or Timestamp (its day), or "YYYY-MM-DD"."""


class ShareWarning(UserWarning):
    """The shared layer was missing, foreign or damaged; the read came from the store."""


def _day(value: DateLike, name: str) -> str:
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


def _names(cols: str | Sequence[str], what: str) -> list[str]:
    if isinstance(cols, str):
        return [cols]
    names = list(cols)
    if not all(isinstance(c, str) for c in names):
        raise TypeError(f"{what} must be strings")
    return names


class Cache:
    """An open cache. Readers see every date the writer has committed, on each call."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, writer: bool = False, share: bool = True
    ) -> None:
        self._inner = _cheetah.Cache(os.fspath(path) if path is not None else None, writer, share)

    @property
    def config_path(self) -> str:
        """The config file this cache was opened from."""
        return os.fspath(self._inner.config_path)

    def _get(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        symbols: Sequence[str] | None,
        base: str | None,
        dictionary_dates: bool = False,
    ) -> tuple[pa.Table, dict[str, Any]]:
        table, covered, shared = self._inner.get(
            _day(start, "start"),
            _day(end, "end"),
            _names(cols, "cols"),
            None if symbols is None else _names(symbols, "symbols"),
            base,
            dictionary_dates,
        )
        for message in self._inner.take_share_warnings():
            warnings.warn(message, ShareWarning, stacklevel=3)
        info = {
            "requested": (_day(start, "start"), _day(end, "end")),
            "covered": covered,
            "shared": None if shared is None else dict(zip(("generation", "rows", "views"), shared)),
        }
        return table, info

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
        table, info = self._get(start, end, cols, symbols, base, dictionary_dates=True)
        frame = _to_pandas(table, dtype_backend)
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

    def status(self) -> dict[str, Any]:
        """Per table and field: dates, rows, bytes, watermark and last update."""
        return json.loads(self._inner.status_json())

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

    def publish(self, start: DateLike, end: DateLike, cols: str | Sequence[str] | None = None) -> dict[str, Any]:
        """Publishes `cols` (every cached field when None) over `start..end` into the shared
        layer of the config's ``[share]``, as `cheetah warm` does; returns what was written."""
        names = None if cols is None else _names(cols, "cols")
        return json.loads(self._inner.publish_json(_day(start, "start"), _day(end, "end"), names))

    def update(self) -> list[dict[str, Any]]:
        """Runs one update of every table (needs ``writer=True``); returns a report per table."""
        return json.loads(self._inner.update_json())


def _single(column: pa.ChunkedArray) -> pa.Array:
    """The column's one chunk. `combine_chunks` would copy even a single chunk."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _to_pandas(table: pa.Table, backend: str) -> pd.DataFrame:
    """The frame of a table whose `date` and `symbol` are dictionary-encoded: the dictionaries
    are the MultiIndex levels and the keys its codes, already in the integer type pandas keeps."""
    date = _single(table.column("date"))
    symbol = _single(table.column("symbol"))
    date_level = pd.DatetimeIndex(date.dictionary.to_numpy(zero_copy_only=False).astype("datetime64[ns]"), name="date")
    symbol_level = pd.Index(symbol.dictionary.to_numpy(zero_copy_only=False), name="symbol")
    date_codes = _values(date.indices).astype(_code_type(len(date.dictionary)), copy=False)
    symbol_codes = _values(symbol.indices).astype(_code_type(len(symbol.dictionary)), copy=False)
    index = pd.MultiIndex(
        levels=[date_level, symbol_level],
        codes=[date_codes, symbol_codes],
        names=["date", "symbol"],
        verify_integrity=False,
    )
    columns = {name: _column(table.column(name), backend) for name in table.column_names[2:]}
    return pd.DataFrame(columns, index=index, copy=False)


def _code_type(levels: int) -> type:
    """The integer type pandas keeps MultiIndex codes in for a level of `levels` values."""
    for kind in (np.int8, np.int16, np.int32):
        if levels < np.iinfo(kind).max:
            return kind
    return np.int64


def _values(array: pa.Array) -> np.ndarray:
    """The data buffer of a fixed-width array, as read-only numpy, without a copy."""
    width = array.type.bit_width // 8
    buffer = array.buffers()[1]
    return np.frombuffer(buffer, dtype=array.type.to_pandas_dtype(), count=len(array), offset=array.offset * width)


def _writable_values(array: pa.Array) -> np.ndarray:
    """`_values`, writable: the frame may be modified in place, as any pandas frame.

    Each result's buffers are its own: memory from Cheetah's output pool, or a private
    (copy-on-write) mapping of the shared layer made for this read, whose written pages no
    other result or process sees. pyarrow exports buffers read-only, so the view is taken by
    address; it holds the pyarrow buffer, which holds the memory.
    """
    width = array.type.bit_width // 8
    buffer = array.buffers()[1]
    raw = (ctypes.c_byte * (len(array) * width)).from_address(buffer.address + array.offset * width)
    raw._owner = buffer  # type: ignore[attr-defined]
    return np.frombuffer(raw, dtype=array.type.to_pandas_dtype(), count=len(array))


def _column(column: pa.ChunkedArray, backend: str) -> Any:
    array = _single(column)
    if backend == "pyarrow":
        return pd.arrays.ArrowExtensionArray(array)
    if pa.types.is_floating(array.type):
        # Cheetah writes NaN into the slots of missing values, so the buffer is the column.
        return _writable_values(array)
    if (pa.types.is_integer(array.type)) and array.null_count == 0:
        return _writable_values(array)
    # The array, not the Series: a Series would be aligned to the frame's index.
    return array.to_pandas(date_as_object=False).array


_default: Cache | None = None
_default_lock = threading.Lock()


def open(path: str | os.PathLike[str] | None = None, *, writer: bool = False, share: bool = True) -> Cache:  # noqa: A001
    """Opens the cache of the config at `path`, or of the default config when `path` is None.

    With ``share=False`` reads never use the shared layer of the config's ``[share]``."""
    return Cache(path, writer=writer, share=share)


def _default_cache() -> Cache:
    global _default
    with _default_lock:
        if _default is None:
            _default = Cache()
        return _default


def get_data(
    start: DateLike,
    end: DateLike,
    cols: str | Sequence[str],
    *,
    symbols: Sequence[str] | None = None,
    base: str | None = None,
    dtype_backend: Literal["numpy", "pyarrow"] = "numpy",
) -> pd.DataFrame:
    """`Cache.get_data` on the default config."""
    return _default_cache().get_data(start, end, cols, symbols=symbols, base=base, dtype_backend=dtype_backend)


def get_arrow(
    start: DateLike,
    end: DateLike,
    cols: str | Sequence[str],
    *,
    symbols: Sequence[str] | None = None,
    base: str | None = None,
) -> pa.Table:
    """`Cache.get_arrow` on the default config."""
    return _default_cache().get_arrow(start, end, cols, symbols=symbols, base=base)


def get_polars(
    start: DateLike,
    end: DateLike,
    cols: str | Sequence[str],
    *,
    symbols: Sequence[str] | None = None,
    base: str | None = None,
) -> polars.DataFrame:
    """`Cache.get_polars` on the default config."""
    return _default_cache().get_polars(start, end, cols, symbols=symbols, base=base)
