"""Arrow tables as pandas frames: `date` and `symbol` become the MultiIndex without a copy,
and fixed-width columns become writable numpy views of the table's buffers."""

from __future__ import annotations

import ctypes
from typing import Any, Callable

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
    index = date_symbol_index(
        _day_values(date.dictionary),
        symbol.dictionary,
        _values(date.indices).astype(_code_type(len(date.dictionary)), copy=False),
        _values(symbol.indices).astype(_code_type(len(symbol.dictionary)), copy=False),
    )
    columns = {name: _column(table.column(name), backend) for name in table.column_names[2:]}
    return frame_of(columns, index)


def date_symbol_index(days: np.ndarray, symbols: pa.Array, date_codes: np.ndarray,
                      symbol_codes: np.ndarray) -> pd.MultiIndex:
    """The (date, symbol) MultiIndex over levels `days` and `symbols`, with codes already in the
    integer types pandas keeps (`_code_type`), taken without a copy or a check."""
    return pd.MultiIndex(
        levels=[pd.DatetimeIndex(days.astype("datetime64[ns]"), name="date"), _symbol_level(symbols)],
        codes=[date_codes, symbol_codes],
        names=["date", "symbol"],
        verify_integrity=False,
    )


_last_symbols: tuple[tuple[Any, ...], pa.Array, pd.Index] | None = None


def _symbol_level(symbols: pa.Array) -> pd.Index:
    """The `symbol` level of `symbols`: the last one made, when `symbols` is the same Arrow text.

    A cache hands every read the same dictionary until a symbol is added, and making its Index
    (5,000 Python strings under pandas 2) was a third of a repeated one-month read. The cache
    holds the array it was made from, so no other array can have its buffers' addresses
    while it is cached, and Arrow buffers are immutable: equal addresses are equal text.
    """
    global _last_symbols
    key = (symbols.type, symbols.offset, len(symbols), _text_dtype(),
           *(0 if b is None else b.address for b in symbols.buffers()))
    last = _last_symbols
    if last is not None and last[0] == key:
        return last[2]
    level = text_index(symbols, "symbol")
    _last_symbols = (key, symbols, level)
    return level


def symbol_level_wanted() -> Callable[[pa.Array], Any] | None:
    """What makes the `symbol` level ahead of a read, for the read to call while it runs, when
    none is made yet: a process's first frame from the store then makes the level's strings
    (5,000 Python strings for 5,000 symbols under pandas 2) while the read's thread decodes the
    columns, instead of after. A read the shared layer serves whole does not call it."""
    return _symbol_level if _last_symbols is None else None


def frame_of(columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """The frame of `columns` without copying them, its column labels typed as pandas would."""
    names = list(columns)
    labels = pa.StringArray.from_buffers(
        len(names),
        pa.py_buffer(np.cumsum([0, *(len(n.encode()) for n in names)], dtype=np.int32)),
        pa.py_buffer("".join(names).encode()),
    )
    # Keyed by place, then labelled: keyed by name, pandas would infer the labels from strings.
    frame = pd.DataFrame(dict(enumerate(columns.values())), index=index, copy=False)
    frame.columns = text_index(labels, None)
    return frame


def text_index(values: pa.Array, name: str | None) -> pd.Index:
    """An Index of Arrow text with the dtype pandas infers for text. Where that is Arrow-backed
    (pandas 3), it is made from the Arrow array: inferring it from Python strings makes pandas
    import pyarrow's pandas layer, 3.4 ms of a new process's first frame, and `pa.array` on a
    list does the same, hence the labels' buffers and the keys by place in `frame_of`."""
    dtype = _text_dtype()
    if isinstance(dtype, pd.StringDtype):
        return pd.Index(_arrow_text(values, dtype), name=name, copy=False)
    return pd.Index(values.to_numpy(zero_copy_only=False), name=name, dtype=object)


_PANDAS_3 = int(pd.__version__.split(".", 1)[0]) >= 3


def _arrow_text(values: pa.Array, dtype: pd.StringDtype) -> Any:
    """pandas' Arrow-backed text of `values`. Its arrays hold `large_string`; `pd.array` gets
    there with pyarrow's cast, whose first call in a process builds Arrow's cast table (0.7–1.1
    ms of a new process's first frame), so under pandas 3 the offsets are widened here and the
    array made from the buffers."""
    if not _PANDAS_3 or values.type != pa.string():
        return pd.array(values, dtype=dtype)
    validity, offsets, data = values.buffers()
    wide = np.frombuffer(offsets, dtype=np.int32, count=values.offset + len(values) + 1).astype(np.int64)
    large = pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(wide), data, validity, values.null_count,
                                             values.offset)
    return dtype.construct_array_type()(large, dtype=dtype)


def _code_type(levels: int) -> type:
    """The integer type pandas keeps MultiIndex codes in for a level of `levels` values."""
    for kind in (np.int8, np.int16, np.int32):
        if levels < np.iinfo(kind).max:
            return kind
    return np.int64


def _day_values(days: pa.Array) -> np.ndarray:
    """Dates without nulls as numpy `datetime64[D]`, read from their buffer: pyarrow's own
    conversion costs 0.2–0.3 ms the first time in a process, for a few thousand dates."""
    if days.type != pa.date32() or days.null_count:
        return days.to_numpy(zero_copy_only=False)
    ordinals = np.frombuffer(days.buffers()[1], dtype=np.int32, count=len(days), offset=days.offset * 4)
    return ordinals.astype("datetime64[D]")


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


def _text_dtype() -> Any:
    """The dtype pandas infers for text: its Arrow-backed `str` (pandas 3, or 2.x with
    `future.infer_string`), else object. Asked per frame, so a frame follows the option as it is
    when read: whether pandas infers `str` is its own flag, read in under a microsecond, where
    `pandas_dtype("str")` tries every registered dtype (80 µs the first time in a process)."""
    if not _infers_str():
        return np.dtype(object)
    dtype = pd.api.types.pandas_dtype("str")
    return dtype if isinstance(dtype, pd.StringDtype) else np.dtype(object)


try:
    from pandas._config import using_string_dtype as _infers_str
except ImportError:  # an older pandas: the option itself
    def _infers_str() -> bool:
        return bool(pd.get_option("future.infer_string"))
