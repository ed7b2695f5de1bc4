"""The read API every cache has, local or remote: `get_data`, `get_arrow`, `get_polars`, the
panels and `fields`, built on one `_get` that returns an Arrow table with dictionary `date` and
`symbol`, and `_panels`, which a cache that can scatter panels itself overrides."""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, TypedDict, TypeVar, Union

from ._cheetah import QueryError, VersionError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import polars
    import pyarrow as pa
    import xarray
    from typing_extensions import Unpack

F = TypeVar("F", bound=Callable[..., Any])

DateLike = Union[_dt.date, _dt.datetime, "pd.Timestamp", "np.datetime64", str]
"""Anything naming a calendar day: a date, a datetime or Timestamp (its day), or "YYYY-MM-DD"."""

KnownAt = Union[int, _dt.datetime, _dt.date, "pd.Timestamp", str]
"""A store version: its number, or a moment (naive datetimes and ISO text without a zone are UTC)."""

Adjust = Literal["backward", "forward"]
"""How prices are adjusted: ``"backward"`` (price × factor) or ``"forward"`` (÷ each symbol's
latest factor on the read's dates)."""


def _numpy_scalar(value: Any) -> Any:
    """A numpy datetime64 as a pandas Timestamp, and a numpy integer as an int; anything else
    as it is. Neither library is imported for it: a numpy value means numpy is loaded."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return value
    if isinstance(value, numpy.datetime64):
        import pandas as pd

        return pd.Timestamp(value)
    if isinstance(value, numpy.integer):
        return int(value)
    return value


def day(value: DateLike, name: str) -> _dt.date:
    """`value` as a date; `name` names the argument in the error."""
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise QueryError(f"{name}={value!r} is not a date; use 'YYYY-MM-DD'") from None
    value = _numpy_scalar(value)
    if isinstance(value, _dt.datetime):  # pd.Timestamp is a datetime
        return value.date()
    if isinstance(value, _dt.date):
        return value
    raise TypeError(f"{name} must be a date, datetime, pandas.Timestamp or 'YYYY-MM-DD' string, not {type(value).__name__}")


def known(value: KnownAt | None) -> int | str | None:
    """`known_at` as Rust takes it: a version number, or a moment as ISO text in UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("known_at must be a version number, a datetime or ISO text, not a bool")
    value = _numpy_scalar(value)
    if isinstance(value, int):
        if value < 1:
            raise VersionError(f"known_at={value}: versions are numbered from 1")
        return int(value)
    if isinstance(value, str):
        return value
    if isinstance(value, _dt.datetime):  # pd.Timestamp is a datetime
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    raise TypeError(f"known_at must be a version number, a datetime or ISO text, not {type(value).__name__}")


def names(cols: str | Sequence[str], what: str) -> list[str]:
    """One name or several as a list; `what` names the argument in the error."""
    if isinstance(cols, str):
        return [cols]
    listed = list(cols)
    if not all(isinstance(c, str) for c in listed):
        raise TypeError(f"{what} must be strings")
    return listed


class ReadOptions(TypedDict, total=False):
    """The keywords every read takes, after `start`, `end` and the fields. This is their one
    definition: each read method, local, remote and module-level, takes them as ``**options``
    and shows them in its signature."""

    symbols: Sequence[str] | None
    """Keep only these symbols; an unknown one is simply absent."""
    base: str | None
    """Take the rows from this table's (date, symbol) keys instead of the fields' tables'."""
    adjust: Adjust | None
    """Adjust the price fields of tables with ``[table.adjust]``."""
    universe: str | None
    """Keep only the rows whose symbol was a member of this universe on the row's date."""
    known_at: KnownAt | None
    """Read the store as it was: a store version (an int, such as ``df.attrs["cheetah"]["version"]``)
    or a moment (a datetime, naive meaning UTC, or ISO text): the version that was the newest then."""
    snapshot: str | None
    """Read the version the snapshot of this name pins."""


_OPTIONS = tuple(ReadOptions.__annotations__)


def read_keywords(method: F) -> F:
    """Shows `method`'s ``**options`` as the read keywords of `ReadOptions`, for `help()` and
    editors; the call itself passes them on as they are."""
    signature = inspect.signature(method)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    keywords = [
        # Annotations are text here (postponed evaluation); a TypedDict may hold them as ForwardRefs.
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=getattr(annotation, "__forward_arg__", annotation)
        )
        for name, annotation in ReadOptions.__annotations__.items()
    ]
    method.__signature__ = signature.replace(parameters=kept + keywords)  # type: ignore[attr-defined]
    return method


@dataclass(frozen=True)
class Read:
    """One read, its arguments checked: what every read method names the same way. The Rust
    extension takes it whole, by attribute."""

    start: _dt.date
    end: _dt.date
    cols: list[str]
    symbols: list[str] | None = None
    base: str | None = None
    adjust: Adjust | None = None
    universe: str | None = None
    known_at: int | str | None = None
    snapshot: str | None = None

    @classmethod
    def of(cls, start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Any) -> Read:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise TypeError(
                f"unexpected keyword argument {unknown[0]!r}; a read takes {', '.join(_OPTIONS)} after start, end and the fields"
            )
        adjust, universe, base = options.get("adjust"), options.get("universe"), options.get("base")
        symbols, snapshot = options.get("symbols"), options.get("snapshot")
        known_at = known(options.get("known_at"))
        if known_at is not None and snapshot is not None:
            raise VersionError("pass either known_at or snapshot, not both: a snapshot names its version")
        if adjust is not None and adjust not in ("backward", "forward"):
            raise QueryError(f"adjust={adjust!r} is not a way to adjust; pass 'backward', 'forward' or None")
        for name, value in (("universe", universe), ("base", base), ("snapshot", snapshot)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a name, not {type(value).__name__}")
        return cls(
            day(start, "start"),
            day(end, "end"),
            names(cols, "cols"),
            None if symbols is None else names(symbols, "symbols"),
            base,
            adjust,
            universe,
            known_at,
            snapshot,
        )

    def ticket(self) -> dict[str, Any]:
        """The read as a Flight ticket names it."""
        ticket: dict[str, Any] = {"fields": self.cols, "start": self.start.isoformat(), "end": self.end.isoformat()}
        for key in _OPTIONS:
            if getattr(self, key) is not None:
                ticket[key] = getattr(self, key)
        return ticket

    def info(self, covered: tuple[Any, Any] | None, lineage: tuple[int, str, str | None] | None) -> dict[str, Any]:
        """What `df.attrs["cheetah"]` reports of the read: dates as "YYYY-MM-DD"; the store
        version read and its commit time (ISO, UTC), and the snapshot named, if one was."""
        info: dict[str, Any] = {
            "requested": (self.start.isoformat(), self.end.isoformat()),
            "covered": None if covered is None else tuple(str(d) for d in covered),
            "shared": None,
        }
        if lineage is not None:
            version, committed, snapshot = lineage
            info["version"] = version
            info["known_at"] = committed
            if snapshot is not None:
                info["snapshot"] = snapshot
        return info


class Reads(ABC):
    """Reads of a cache; subclasses say where the table comes from."""

    @abstractmethod
    def _get(self, read: Read, dictionary_dates: bool = False) -> tuple[pa.Table, dict[str, Any]]:
        """The table of one read and what `df.attrs["cheetah"]` reports of it."""

    def _get_frame(self, read: Read, backend: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The frame of one read and its `attrs`; a cache that can build it better overrides it."""
        from ._frames import to_pandas

        table, info = self._get(read, dictionary_dates=True)
        return to_pandas(table, backend), info

    def _panels(self, read: Read) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        """Each field's date × symbol frame and the reads' `attrs`: here scattered from the long
        table with numpy; a cache that scatters them from its chunks overrides it."""
        from ._panels import panel_frames

        table, info = self._get(read, dictionary_dates=True)
        return panel_frames(table), info

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """Per table and field: dates, rows, bytes, watermark and last update."""

    @read_keywords
    def get_arrow(
        self, start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]
    ) -> pa.Table:
        """`date` (date32), `symbol` (dictionary), then `cols` in order, sorted by date, symbol.

        Rows are the (date, symbol) keys of every table holding a requested field (the outer
        union), or of table `base`. Dates are inclusive; `symbols` keeps only those symbols, and
        `universe` only the rows whose symbol was a member of that universe on the row's date.
        `adjust` adjusts the price fields of tables with ``[table.adjust]`` (a float64 each).
        `known_at` reads the store as it was at a version or moment, `snapshot` at a snapshot.
        The schema metadata `cheetah.covered` says which dates were covered, and
        `cheetah.version` which store version was read.
        """
        read = Read.of(start, end, cols, **options)
        table, info = self._get(read)
        meta = {b"cheetah.covered": json.dumps(info["covered"]).encode()}
        for key in ("version", "known_at", "snapshot"):
            if key in info:
                meta[f"cheetah.{key}".encode()] = json.dumps(info[key]).encode()
        return table.replace_schema_metadata(meta)

    @read_keywords
    def get_data(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        *,
        dtype_backend: Literal["numpy", "pyarrow"] = "numpy",
        **options: Unpack[ReadOptions],
    ) -> pd.DataFrame:
        """A DataFrame indexed by (`date`, `symbol`), with `cols` as columns in order.

        A field's value is missing (NaN with the numpy backend) where its table has no row.
        The keywords are as for `get_arrow`.
        ``df.attrs["cheetah"]`` holds the dates actually covered; the store ``"version"`` read
        and its commit time ``"known_at"`` (pass ``known_at=df.attrs["cheetah"]["version"]`` to
        read exactly this frame again), and ``"snapshot"`` when one was named; and under
        ``"shared"`` what the shared layer served: its generation, the rows, and whether the
        columns are views of it.
        """
        if dtype_backend not in ("numpy", "pyarrow"):
            raise ValueError(f"dtype_backend must be 'numpy' or 'pyarrow', not {dtype_backend!r}")
        read = Read.of(start, end, cols, **options)
        frame, info = self._get_frame(read, dtype_backend)
        frame.attrs["cheetah"] = info
        return frame

    @read_keywords
    def get_polars(
        self, start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]
    ) -> polars.DataFrame:
        """A polars DataFrame with `date`, `symbol` (categorical), then `cols`."""
        import polars

        return polars.from_arrow(self.get_arrow(start, end, cols, **options))

    @read_keywords
    def get_panels(
        self, start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]
    ) -> dict[str, pd.DataFrame]:
        """Each of `cols` as a DataFrame indexed by date (a ``DatetimeIndex``) with one column per
        symbol, NaN where there is no row: ``get_data(start, end, cols)[col].unstack("symbol")``
        for each, all of one shape, without building the long frame. The keywords are those of
        `get_data`; the fields must be numeric."""
        read = Read.of(start, end, cols, **options)
        panels, info = self._panels(read)
        for panel in panels.values():
            panel.attrs["cheetah"] = info
        return panels

    @read_keywords
    def get_panel(self, start: DateLike, end: DateLike, field: str, **options: Unpack[ReadOptions]) -> pd.DataFrame:
        """One field as a date × symbol DataFrame: ``get_data(start, end, field)[field].unstack("symbol")``,
        scattered straight into one 2-D array (see `get_panels`)."""
        if not isinstance(field, str):
            raise TypeError(f"field must be one field's name; for several use get_panels, not {type(field).__name__}")
        return self.get_panels(start, end, [field], **options)[field]

    @read_keywords
    def get_xarray(
        self, start: DateLike, end: DateLike, cols: str | Sequence[str], **options: Unpack[ReadOptions]
    ) -> xarray.Dataset:
        """`get_panels` as an xarray ``Dataset`` with dimensions (``date``, ``symbol``): one
        variable per field, sharing the panels' memory. Needs xarray installed."""
        try:
            import xarray
        except ImportError:
            raise ImportError("get_xarray needs xarray: pip install xarray") from None
        panels = self.get_panels(start, end, cols, **options)
        first = next(iter(panels.values()))
        coords = {"date": first.index.values, "symbol": first.columns.to_numpy()}
        variables = {name: (("date", "symbol"), panel.to_numpy(copy=False)) for name, panel in panels.items()}
        dataset = xarray.Dataset(variables, coords=coords)
        dataset.attrs["cheetah"] = json.dumps(first.attrs.get("cheetah"))
        return dataset

    def universes(self) -> pd.DataFrame:
        """The configured universes: their intervals, symbols, first start, last member date
        (NaT while a member is still in) and when an update last changed them."""
        import pandas as pd

        rows = []
        for u in self._universes():
            read = u["read"] or {}
            updated = read.get("updated")
            rows.append(
                {
                    "universe": u["name"],
                    "intervals": read.get("intervals", 0),
                    "symbols": read.get("symbols", 0),
                    "first": read.get("first"),
                    "last": read.get("last"),
                    "updated": None if updated is None else pd.Timestamp(updated, unit="s", tz="UTC"),
                }
            )
        frame = pd.DataFrame(rows, columns=["universe", "intervals", "symbols", "first", "last", "updated"])
        for column in ("first", "last"):
            frame[column] = pd.to_datetime(frame[column])
        return frame

    def members(self, universe: str, date: DateLike) -> list[str]:
        """The symbols that were members of `universe` on `date`, sorted."""
        return self._members(universe, day(date, "date"))

    def _universes(self) -> list[dict[str, Any]]:
        raise QueryError("this cache does not list universes")

    def _members(self, universe: str, date: _dt.date) -> list[str]:
        raise QueryError("this cache does not list a universe's members")

    def fields(self) -> pd.DataFrame:
        """The cached fields with their tables (`local` for one researchers wrote), types and
        date ranges."""
        import pandas as pd

        rows = [
            {
                "field": f["name"],
                "table": t["name"],
                "local": t.get("local", False),
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
        frame = pd.DataFrame(rows, columns=["field", "table", "local", "type", "first", "last", "dates", "rows", "bytes"])
        for column in ("first", "last"):
            frame[column] = pd.to_datetime(frame[column])
        return frame

