"""A read fetched in parts (Flight endpoints, in date order) as one pandas frame, each batch copied
once into its place in the frame's columns as it arrives.

Each part holds dates the others do not, under a `date` dictionary of its own; all share one
`symbol` dictionary. Joining the parts with pyarrow would unify the dictionaries (a pass over every
code), combine the chunks (a copy of every column) and narrow the codes (another copy). And
holding every part until the last arrives makes the bytes cross fresh memory twice: once
received, once copied. Filled as they arrive, each batch's memory is freed for the next, and
only the frame's own columns are new.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from ._frames import _code_type, _column, _values, date_symbol_index, frame_of, to_pandas


class Unfillable(Exception):
    """Batches a `Fill` cannot place (their symbol dictionaries differ, or a part's dates
    changed dictionary mid-stream): the caller joins the parts instead."""


def fillable(schema: pa.Schema, backend: str) -> bool:
    """Whether a read of `schema` into `backend` can be filled batch by batch."""
    return (backend == "numpy" and len(schema) >= 2
            and pa.types.is_dictionary(schema.types[0]) and pa.types.is_dictionary(schema.types[1]))


@dataclass
class _Part:
    """One part's place in the columns, and what it has delivered."""

    start: int
    #: Rows it was expected to hold; rows past them go to `spills`.
    capacity: int
    filled: int = 0
    #: Its date dictionary, from its first batch.
    dates: pa.Array | None = None
    #: Its rows beyond `capacity`, batch by batch, each as the columns' own arrays.
    spills: list[dict[str, np.ndarray]] = field(default_factory=list)
    #: Per column that is not copied into place, its arrays in order.
    kept: dict[str, list[pa.Array]] = field(default_factory=dict)


class Fill:
    """The frame of a read in parts, filled batch by batch; `add` may be called from one thread
    per part at once.

    `rows` are the parts' expected rows: the columns are allocated for their sum, and a part
    that delivers more or fewer costs one more copy at the end, not a wrong frame. `widen` says,
    per integer field, whether it holds a null anywhere (pandas then keeps it as float64 with NaN
    at the nulls); `None` guesses that it does, and a field that turns out to hold none is
    narrowed back to its integers at the end. A 64-bit integer is only guessed so while its values
    fit a float64 exactly; a batch beyond that makes the fill `Unfillable`.
    """

    def __init__(self, schema: pa.Schema, rows: list[int], widen: dict[str, bool] | None = None) -> None:
        self.schema = schema
        self.names = schema.names[2:]
        starts = np.cumsum([0, *rows[:-1]]).tolist() if rows else []
        self.parts = [_Part(int(s), int(n)) for s, n in zip(starts, rows)]
        self.rows = int(sum(rows))
        self._lock = threading.Lock()
        self._symbols: pa.Array | None = None
        self._columns: dict[str, np.ndarray] | None = None
        #: Integer fields held as float64 because they may hold nulls, and whether one was seen.
        self._widened: dict[str, bool] = {}
        self._widen = widen
        self._date_type: type = np.int32
        #: Entries of the parts' date dictionaries seen so far.
        self._dates = 0

    def bound_dates(self, days: int) -> None:
        """The parts' dates together are at most `days`: the date codes take the narrowest type."""
        self._date_type = _code_type(days)

    def _allocate(self, symbols: pa.Array, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        columns = {"date": np.empty(self.rows, dtype=self._date_type),
                   "symbol": np.empty(self.rows, dtype=_code_type(len(symbols)))}
        for name, kind in zip(self.names, self.schema.types[2:]):
            if pa.types.is_floating(kind):
                columns[name] = np.empty(self.rows, dtype=kind.to_pandas_dtype())
            elif pa.types.is_integer(kind):
                nulls = True if self._widen is None else self._widen.get(name, True)
                if nulls:
                    self._widened[name] = False
                columns[name] = np.empty(self.rows, dtype=np.float64 if nulls else kind.to_pandas_dtype())
        return columns

    def add(self, part: int, batch: pa.RecordBatch) -> None:
        """Copies `batch`, the next of part `part`, into its place."""
        if not batch.num_rows:
            return
        symbols = batch.column(1).dictionary
        if self._columns is None:
            with self._lock:
                if self._columns is None:
                    self._symbols = symbols
                    self._columns = self._allocate(symbols, batch)
        if not (symbols is self._symbols or symbols.equals(self._symbols)):
            raise Unfillable("the parts' symbol dictionaries differ")
        place = self.parts[part]
        dates = batch.column(0).dictionary
        if place.dates is None:
            with self._lock:
                self._dates += len(dates)
                if self._dates >= np.iinfo(self._date_type).max:
                    raise Unfillable("the parts hold more dates than their bound")
            place.dates = dates
        elif not (dates is place.dates or dates.equals(place.dates)):
            raise Unfillable("a part's date dictionary changed mid-stream")
        fits = min(batch.num_rows, max(place.capacity - place.filled, 0))
        if fits:
            at = place.start + place.filled
            self._copy(batch.slice(0, fits), {k: v[at:at + fits] for k, v in self._columns.items()}, place)
            place.filled += fits
        if fits < batch.num_rows:
            rest = batch.slice(fits)
            spill = {k: np.empty(rest.num_rows, dtype=v.dtype) for k, v in self._columns.items()}
            self._copy(rest, spill, place)
            place.spills.append(spill)

    def _copy(self, batch: pa.RecordBatch, into: dict[str, np.ndarray], place: _Part) -> None:
        into["date"][:] = _values(batch.column(0).indices)
        into["symbol"][:] = _values(batch.column(1).indices)
        for j, name in enumerate(self.names):
            column = batch.column(j + 2)
            target = into.get(name)
            if target is None:
                place.kept.setdefault(name, []).append(column)
                continue
            values = _values(column)
            target[:] = values
            if self._widen is None and name in self._widened and values.dtype.itemsize == 8 and len(values) and (
                    values.max() > _EXACT or values.min() < -_EXACT):
                raise Unfillable(f"`{name}` holds integers a float64 cannot hold exactly")
            # Cheetah writes NaN into a float's null slots, and the wire keeps them.
            if column.null_count and not pa.types.is_floating(column.type):
                if name not in self._widened:
                    raise Unfillable(f"`{name}` holds nulls where none were expected")
                self._widened[name] = True
                target[column.is_null().to_numpy(zero_copy_only=False)] = np.nan

    def frame(self) -> pd.DataFrame:
        """The frame, once every part has been added."""
        if self._columns is None:
            return to_pandas(self.schema.empty_table(), "numpy")
        delivered = [p.filled + sum(len(s["date"]) for s in p.spills) for p in self.parts]
        if all(p.filled == p.capacity and not p.spills for p in self.parts):
            columns, starts = self._columns, [p.start for p in self.parts]
        else:
            columns = {k: np.concatenate(self._pieces(k, v)) for k, v in self._columns.items()}
            starts = np.cumsum([0, *delivered[:-1]]).tolist()
        # Each part's date codes count from its own dictionary: shift them past the parts' before.
        dates, offset = [], 0
        for part, at, rows in zip(self.parts, starts, delivered):
            if part.dates is None:
                continue
            if offset:
                codes = columns["date"][at:at + rows]
                np.add(codes, offset, out=codes, casting="unsafe")
            dates.append(part.dates)
            offset += len(part.dates)
        for name, seen in self._widened.items():
            if not seen:
                columns[name] = columns[name].astype(self.schema.field(name).type.to_pandas_dtype())
        values = {}
        for name, kind in zip(self.names, self.schema.types[2:]):
            if name in columns:
                values[name] = columns[name]
            else:
                arrays = [a for p in self.parts for a in p.kept.get(name, [])]
                values[name] = _column(pa.chunked_array(arrays, type=kind), "numpy")
        days = np.concatenate([d.to_numpy(zero_copy_only=False) for d in dates])
        date_codes = columns["date"].astype(_code_type(len(days)), copy=False)
        return frame_of(values, date_symbol_index(days, self._symbols, date_codes, columns["symbol"]))

    def _pieces(self, key: str, column: np.ndarray) -> list[np.ndarray]:
        """Per part, its rows of `column` in place, then its spills."""
        return [piece for p in self.parts
                for piece in (column[p.start:p.start + p.filled], *(s[key] for s in p.spills))]


def parts_to_pandas(parts: list[pa.Table], schema: pa.Schema, backend: str) -> pd.DataFrame:
    """The frame of a read whose parts have all arrived, as `to_pandas` would build it from their
    concatenation, with one copy of each column into its place."""
    batches = [[b for b in part.to_batches() if b.num_rows] for part in parts]
    if not fillable(schema, backend) or not any(batches):
        return to_pandas(join(parts, schema), backend)
    widen = {name: any(b.column(j + 2).null_count for bs in batches for b in bs)
             for j, (name, kind) in enumerate(zip(schema.names[2:], schema.types[2:])) if pa.types.is_integer(kind)}
    fill = Fill(schema, [sum(b.num_rows for b in bs) for bs in batches], widen)
    fill.bound_dates(sum(len(bs[0].column(0).dictionary) for bs in batches if bs))
    try:
        run(fill, [lambda part=bs: iter(part) for bs in batches])
    except Unfillable:
        return to_pandas(join(parts, schema), backend)
    return fill.frame()


def run(fill: Fill, parts: list[Callable[[], Iterable[pa.RecordBatch]]], pool: Any = None) -> None:
    """Adds every part's batches to `fill`: in this thread for a small read, else on `pool` (or
    two threads of its own), one part per task."""
    def drain(i: int) -> None:
        for batch in parts[i]():
            fill.add(i, batch)

    if len(parts) < 2 or (pool is None and fill.rows < PARALLEL_ROWS):
        for i in range(len(parts)):
            drain(i)
        return
    if pool is not None:
        list(pool.map(drain, range(len(parts))))
        return
    # Imported here: a local read never needs it, and its import is a millisecond of a new
    # process's first read.
    from concurrent.futures import ThreadPoolExecutor

    # Numpy copies without the GIL, and the first touch of fresh memory is most of their cost:
    # two threads fill about twice as fast.
    with ThreadPoolExecutor(2) as threads:
        list(threads.map(drain, range(len(parts))))


#: The largest magnitude below which every integer is exactly a float64.
_EXACT = 2**53

#: Below this many rows a frame is filled in the calling thread: starting threads costs more.
PARALLEL_ROWS = 1_000_000


def join(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """Parts of a read (endpoints) as one table of one chunk per column, as a local read returns
    it, date dictionaries unified."""
    if not parts:
        return schema.empty_table()
    table = pa.concat_tables(parts)
    if table.column("date").num_chunks > 1 and pa.types.is_dictionary(table.schema.field("date").type):
        table = table.unify_dictionaries()
    return table.combine_chunks()
