"""Arrow tables as pandas frames: `date` and `symbol` become the MultiIndex without a copy,
and fixed-width columns become writable numpy views of the table's buffers."""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def _single(column: pa.ChunkedArray) -> pa.Array:
    """The column's one chunk. `combine_chunks` would copy even a single chunk."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def to_pandas(table: pa.Table, backend: str) -> pd.DataFrame:
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
