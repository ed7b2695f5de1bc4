"""A researcher's frame as the Arrow table a local write takes: keyed by a `date` and a
`symbol` column, every other column a field in its own type."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from ._cheetah import WriteError

DATE = "date"
SYMBOL = "symbol"


def to_arrow(frame: Any, date: str = DATE, symbol: str = SYMBOL) -> tuple[pa.Table, str, str]:
    """`frame` (pandas indexed by (date, symbol) or with those columns, polars, or pyarrow) as
    a pyarrow table, with the names of its key columns."""
    if isinstance(frame, pa.Table):
        return frame, date, symbol
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame]), date, symbol
    if hasattr(frame, "to_arrow") and not isinstance(frame, pd.DataFrame):  # polars
        return frame.to_arrow(), date, symbol
    if not isinstance(frame, pd.DataFrame):
        raise WriteError(f"write takes a pandas, polars or pyarrow frame, not {type(frame).__name__}")
    keys, from_columns = _keys(frame, date, symbol)
    columns = {date: keys[0], symbol: keys[1]}
    for name in frame.columns:
        if not isinstance(name, str):
            raise WriteError(f"column {name!r} is not named by text: name it before writing")
        if name in columns:
            if from_columns:
                continue
            raise WriteError(f"column {name!r} is both an index level and a column: drop or rename one")
        columns[name] = _field(frame[name], name)
    return pa.table(columns), date, symbol


def _keys(frame: pd.DataFrame, date: str, symbol: str) -> tuple[tuple[pa.Array, pa.Array], bool]:
    """The key columns, and whether they are columns of the frame: from a two-level index (by
    name, or in the order date, symbol), built from its levels and codes so that no per-row
    Python object is touched; or from columns."""
    index = frame.index
    if isinstance(index, pd.MultiIndex) and index.nlevels == 2:
        names = list(index.names)
        if date in names and symbol in names:
            at = (names.index(date), names.index(symbol))
        elif names == [None, None]:
            at = (0, 1)
        else:
            at = None
        if at is not None:
            return (_level(index, at[0]), _level(index, at[1], dictionary=True)), False
    if date in frame.columns and symbol in frame.columns:
        return (_field(frame[date], date), _field(frame[symbol], symbol)), True
    raise WriteError(
        f"the frame has no `{date}` and `{symbol}`: index it by (date, symbol), give it those columns, "
        f"or name them with date= and symbol= (its index is {list(index.names)}, its columns {list(frame.columns)[:10]})"
    )


def _level(index: pd.MultiIndex, i: int, dictionary: bool = False) -> pa.Array:
    codes = pa.array(index.codes[i], type=pa.int32())
    if (index.codes[i] < 0).any():
        row = int((index.codes[i] < 0).argmax())
        raise WriteError(f"the index level `{index.names[i]}` is missing at row {row}: every row needs a date and a symbol")
    level = index.levels[i]
    values = pa.array(level.astype(str) if dictionary and level.dtype == object else level)
    if dictionary:
        return pa.DictionaryArray.from_arrays(codes, values)
    return values.take(codes)


def _field(column: pd.Series, name: str) -> pa.Array:
    try:
        return pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise WriteError(
            f"column `{name}` ({column.dtype}) cannot be a field: {e}; cast it to numbers, booleans, text, dates or timestamps"
        ) from None
