"""Cheetah: an embedded cache of (date, symbol) research tables from SQL databases.

    import cheetah
    from datetime import datetime
    df = cheetah.get_data(datetime(2010, 1, 1), datetime(2020, 1, 1), cols=["close", "volume", "pe", "total_mv"])

`cheetah.get_data` and friends read the default config: ``$CHEETAH_CONFIG``, else
``~/.config/cheetah/cheetah.toml``. ``cheetah.open(path)`` opens another one, and
``cheetah.connect("grpc://host:8815")`` a cache another machine serves over Arrow Flight.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

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
from ._reads import DateLike, Reads, day, names
from .remote import RemoteCache, RemoteError, connect

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
    "RemoteCache",
    "RemoteError",
    "ShareError",
    "ShareWarning",
    "SourceError",
    "StoreError",
    "StoreLocked",
    "UpdateError",
    "connect",
    "get_arrow",
    "get_data",
    "get_polars",
    "open",
]


class ShareWarning(UserWarning):
    """The shared layer was missing, foreign or damaged; the read came from the store."""


class Cache(Reads):
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
            day(start, "start"),
            day(end, "end"),
            names(cols, "cols"),
            None if symbols is None else names(symbols, "symbols"),
            base,
            dictionary_dates,
        )
        for message in self._inner.take_share_warnings():
            warnings.warn(message, ShareWarning, stacklevel=3)
        info = {
            "requested": (day(start, "start"), day(end, "end")),
            "covered": covered,
            "shared": None if shared is None else dict(zip(("generation", "rows", "views"), shared)),
        }
        return table, info

    def status(self) -> dict[str, Any]:
        """Per table and field: dates, rows, bytes, watermark and last update."""
        return json.loads(self._inner.status_json())

    def publish(self, start: DateLike, end: DateLike, cols: str | Sequence[str] | None = None) -> dict[str, Any]:
        """Publishes `cols` (every cached field when None) over `start..end` into the shared
        layer of the config's ``[share]``, as `cheetah warm` does; returns what was written."""
        fields = None if cols is None else names(cols, "cols")
        return json.loads(self._inner.publish_json(day(start, "start"), day(end, "end"), fields))

    def update(self) -> list[dict[str, Any]]:
        """Runs one update of every table (needs ``writer=True``); returns a report per table."""
        return json.loads(self._inner.update_json())


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
