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
from typing import TYPE_CHECKING, Any, Callable, Literal

# The extension's allocator (mimalloc) would ask the kernel for transparent huge pages. A process
# faulting in fresh huge pages after the machine sat idle spends most of a large first read in
# the kernel zeroing them: Q1 took 1.7 s against 0.6 s without, while a steady repeated read is
# the same either way (docs/benchmarks.md, "The first read of a new process"). Read when the
# extension loads; a caller's own setting wins.
os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")

from . import _cheetah  # noqa: E402
from ._cheetah import (  # noqa: E402
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
    VersionError,
    WriteError,
)
from ._html import UpdateReport, status_html  # noqa: E402
from ._reads import Adjust, DateLike, KnownAt, Read, ReadOptions, Reads, day, known, names, read_keywords  # noqa: E402

if TYPE_CHECKING:
    import datetime

    import pandas as pd
    import polars
    import pyarrow as pa
    from typing_extensions import Unpack

    from .remote import RemoteCache, RemoteError, connect

# What a call needs is imported when it is made: pandas for frames, pyarrow.flight for
# `connect`, so `import cheetah` stays small for a get_arrow script or a worker.
_LAZY = {"RemoteCache": "remote", "RemoteError": "remote", "connect": "remote"}


def __getattr__(name: str) -> Any:
    """`RemoteCache`, `RemoteError` and `connect`, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cheetah' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__version__: str = _cheetah.__version__

__all__ = [
    "Adjust",
    "Cache",
    "CheetahError",
    "ConfigError",
    "CorruptChunk",
    "DateLike",
    "EmptyCache",
    "KnownAt",
    "QueryError",
    "ReadOptions",
    "RemoteCache",
    "RemoteError",
    "ShareError",
    "ShareWarning",
    "SourceError",
    "StoreError",
    "StoreLocked",
    "UpdateError",
    "UpdateReport",
    "VersionError",
    "WriteError",
    "connect",
    "get_arrow",
    "get_data",
    "get_panel",
    "get_panels",
    "get_polars",
    "get_xarray",
    "members",
    "open",
    "universes",
]


class ShareWarning(UserWarning):
    """The shared layer was missing, foreign or damaged; the read came from the store."""


class Cache(Reads):
    """An open cache. Readers see every date the writer has committed, on each call."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, writer: bool = False, share: bool = True
    ) -> None:
        self._inner = _cheetah.Cache(os.fspath(path) if path is not None else None, writer, share)

    def __repr__(self) -> str:
        return f"cheetah.Cache({self.config_path!r})"

    @property
    def config_path(self) -> str:
        """The config file this cache was opened from."""
        return os.fspath(self._inner.config_path)

    def _get(
        self,
        read: Read,
        dictionary_dates: bool = False,
        nan_integers: bool = False,
        symbols: Callable[[pa.Array], Any] | None = None,
    ) -> tuple[pa.Table, dict[str, Any]]:
        table, covered, shared, lineage = self._inner.get(read, dictionary_dates, nan_integers, symbols)
        for message in self._inner.take_share_warnings():
            warnings.warn(message, ShareWarning, stacklevel=4)
        info = read.info(covered, lineage)
        info["shared"] = None if shared is None else dict(zip(("generation", "rows", "views"), shared))
        return table, info

    def _get_frame(self, read: Read, backend: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        from ._frames import symbol_level_wanted, to_pandas

        # The numpy backend holds an integer with nulls as float64: asked for so, the shared
        # layer's published float64 copy becomes the column, not a copy per process.
        table, info = self._get(read, dictionary_dates=True, nan_integers=backend == "numpy",
                                symbols=symbol_level_wanted())
        return to_pandas(table, backend), info

    def _panels(self, read: Read) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        from ._panels import matrix_frames

        days, symbols, table, covered, lineage = self._inner.panel(read)
        return matrix_frames(days, symbols, table), read.info(covered, lineage)

    def _universes(self) -> list[dict[str, Any]]:
        return json.loads(self._inner.universes_json())

    def _members(self, universe: str, date: datetime.date) -> list[str]:
        return self._inner.members(universe, date)

    def status(self) -> dict[str, Any]:
        """Per table and field: dates, rows, bytes, watermark and last update."""
        return json.loads(self._inner.status_json())

    def quality(
        self,
        start: DateLike | None = None,
        end: DateLike | None = None,
        *,
        table: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The data-quality report, computed from the cache (never the source), as one frame
        with a row per metric: `table`, `field` (NaN for a table's checks), `date`, `check`
        (coverage, missing, stale, outliers, late), `value`, `typical` (what it was compared
        with), `flagged` and `why`. `start`/`end` default to each table's cached range and
        `table` to every table; the thresholds (``[quality]``) are in ``df.attrs["cheetah"]``.
        ``df[df.flagged]`` is what ``cheetah quality`` prints."""
        tables = [] if table is None else names(table, "table")
        first = None if start is None else day(start, "start")
        last = None if end is None else day(end, "end")
        metrics, settings = self._inner.quality(first, last, tables)
        frame = metrics.to_pandas(date_as_object=False)
        frame["date"] = frame["date"].astype("datetime64[ns]")
        frame.attrs["cheetah"] = {"settings": json.loads(settings)}
        return frame

    def publish(self, start: DateLike, end: DateLike, cols: str | Sequence[str] | None = None) -> dict[str, Any]:
        """Publishes `cols` (every cached field when None) over `start..end` into the shared
        layer of the config's ``[share]``, as `cheetah warm` does; returns what was written."""
        fields = None if cols is None else names(cols, "cols")
        return json.loads(self._inner.publish_json(day(start, "start"), day(end, "end"), fields))

    def snapshot(self, name: str, note: str | None = None) -> dict[str, Any]:
        """Names the current store version `name` (letters, digits, ``.``, ``-``, ``_``): reads
        with ``snapshot=name`` return exactly what the cache holds now, past retention and any
        later correction. A reader may make one while ``cheetah serve`` holds the writer role.
        Returns the snapshot: its name, version, creation time and note."""
        return _snapshot(json.loads(self._inner.snapshot_json(name, note)))

    def snapshots(self) -> pd.DataFrame:
        """The snapshots: `name`, `version`, `created` (UTC) and `note`, by name."""
        import pandas as pd

        rows = [_snapshot(s) for s in json.loads(self._inner.snapshots_json())]
        return pd.DataFrame(rows, columns=["name", "version", "created", "note"])

    def write(self, table: str, frame: Any, *, date: str = "date", symbol: str = "symbol") -> dict[str, Any]:
        """Writes `frame` into the local table `table`, which everyone then reads like a table
        of the source: by its fields' names, joined with any others, through the shared layer,
        Flight and versions. `frame` is indexed by (`date`, `symbol`), or has those columns
        (pandas, polars or pyarrow); every other column is a field, kept in its type. Each date
        in the frame replaces that date of the table whole; other dates stay. A later frame may
        add columns; a column it lacks is missing on its dates.

        The whole write is one store version. While ``cheetah serve`` holds the writer role it
        writes the frame, handed over through the store; otherwise this process does. Returns
        what was written: `table`, `created`, `added` (fields), `dates`, `rows`, `version`.
        Raises `WriteError`, writing nothing, for a frame without a (date, symbol) key, a
        duplicate or null key, an unsupported column, or a name or type that clashes."""
        from ._writes import to_arrow

        data, date, symbol = to_arrow(frame, date, symbol)
        if data.num_rows == 0:
            warnings.warn(f"the frame for `{table}` is empty: nothing was written", UserWarning, stacklevel=2)
        return json.loads(self._inner.write(table, data, date, symbol))

    def delete(self, table: str, start: DateLike, end: DateLike) -> dict[str, Any]:
        """Deletes the dates `start..end` of the local table `table` (one store version)."""
        return json.loads(self._inner.delete(table, day(start, "start"), day(end, "end")))

    def drop(self, table: str) -> dict[str, Any]:
        """Drops the local table `table`, with every date and field of it."""
        return json.loads(self._inner.drop_table(table))

    def delete_snapshot(self, name: str) -> None:
        """Deletes the snapshot `name`; the history only it kept goes with the next update."""
        self._inner.delete_snapshot(name)

    def diff(
        self,
        from_: KnownAt,
        to: KnownAt | None = None,
        *,
        start: DateLike | None = None,
        end: DateLike | None = None,
        cols: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Every cell that differs between two store versions: one row per cell, with `table`,
        `field`, `date`, `symbol`, `old` (its value at `from_`) and `new` (at `to`, the latest
        by default). A row that appeared has `old` missing; one that vanished has `new` missing.

        `from_` and `to` each take a version number, a snapshot's name or a moment. `start`,
        `end` and `cols` narrow it. `old` and `new` are float64 when every changed field is a
        number, else objects. ``df.attrs["cheetah"]`` holds both versions and the fields not
        compared (added to or removed from the config between them)."""
        first = None if start is None else day(start, "start")
        last = None if end is None else day(end, "end")
        fields = None if cols is None else names(cols, "cols")
        from ._diffs import diff_frame

        parts, old, new, skipped = self._inner.diff(_version(from_), None if to is None else _version(to), first, last, fields)
        return diff_frame(parts, old, new, skipped)

    def update(self, *, progress: bool = True) -> UpdateReport:
        """Runs one update of every table and universe (needs ``writer=True``); returns a report
        per table, then one per universe (a list, shown as tables in Jupyter).

        With `progress`, a bar per table shows its dates, rows/s and an ETA (a widget in a
        notebook, text on a terminal). Ctrl-C stops the update between dates within a second,
        leaving every committed date in place as an interrupted ``cheetah update`` does, and
        raises ``KeyboardInterrupt``; the next update goes on from there."""
        from ._progress import UpdateBars

        bars = UpdateBars() if progress else None
        try:
            return UpdateReport(json.loads(self._inner.update_json(bars)))
        finally:
            if bars is not None:
                bars.close()

    def _repr_html_(self) -> str:
        try:
            status = self.status()
        except EmptyCache:
            status = None
        return status_html(self.config_path, status)


def _snapshot(record: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    record["created"] = pd.Timestamp(record["created"])
    return record


def _version(value: KnownAt) -> int | str:
    """A version for a diff: a number, or text (a snapshot's name or a moment)."""
    normalised = known(value)
    assert normalised is not None
    return normalised


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


@read_keywords
def get_data(
    start: DateLike,
    end: DateLike,
    cols: str | Sequence[str],
    *,
    dtype_backend: Literal["numpy", "pyarrow"] = "numpy",
    **options: Unpack[ReadOptions],
) -> pd.DataFrame:
    """`Cache.get_data` on the default config."""
    return _default_cache().get_data(start, end, cols, dtype_backend=dtype_backend, **options)


@read_keywords
def get_arrow(start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]) -> pa.Table:
    """`Cache.get_arrow` on the default config."""
    return _default_cache().get_arrow(start, end, cols, **options)


@read_keywords
def get_polars(
    start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]
) -> polars.DataFrame:
    """`Cache.get_polars` on the default config."""
    return _default_cache().get_polars(start, end, cols, **options)


@read_keywords
def get_panel(start: DateLike, end: DateLike, field: str, **options: Unpack[ReadOptions]) -> pd.DataFrame:
    """`Cache.get_panel` on the default config."""
    return _default_cache().get_panel(start, end, field, **options)


@read_keywords
def get_panels(
    start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]
) -> dict[str, pd.DataFrame]:
    """`Cache.get_panels` on the default config."""
    return _default_cache().get_panels(start, end, cols, **options)


@read_keywords
def get_xarray(start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]) -> Any:
    """`Cache.get_xarray` on the default config."""
    return _default_cache().get_xarray(start, end, cols, **options)


def universes() -> pd.DataFrame:
    """`Cache.universes` on the default config."""
    return _default_cache().universes()


def members(universe: str, date: DateLike) -> list[str]:
    """`Cache.members` on the default config."""
    return _default_cache().members(universe, date)
