"""Panels: fields as date × symbol frames, over Cheetah's matrices or scattered from a long
table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._frames import _single, _text_dtype, _writable_values


def matrix_frames(days: list[int], symbols: list[str], table: pa.Table) -> dict[str, pd.DataFrame]:
    """Frames over the matrices of `table` (one float64 column per field, row-major dates ×
    symbols), each a writable view of its column's buffer."""
    index = pd.DatetimeIndex(np.asarray(days, dtype="datetime64[D]").astype("datetime64[ns]"), name="date")
    columns = pd.Index(np.array(symbols, dtype=object), name="symbol", dtype=_text_dtype())
    shape = (len(days), len(symbols))
    frames = {}
    for name in table.column_names:
        array = _single(table.column(name))
        values = _writable_values(array) if len(array) else np.empty(0, dtype=np.float64)
        frames[name] = pd.DataFrame(values.reshape(shape), index=index, columns=columns, copy=False)
    return frames


def panel_frames(table: pa.Table) -> dict[str, pd.DataFrame]:
    """Each field of a long table (dictionary `date` and `symbol`) as a date × symbol frame,
    scattered with numpy: the panels of a cache that cannot scatter them from its chunks."""
    from ._cheetah import QueryError

    date = _single(table.column("date"))
    symbol = _single(table.column("symbol"))
    date_codes = date.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    symbol_codes = symbol.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    dates = date.dictionary.to_numpy(zero_copy_only=False).astype("datetime64[ns]")
    # Dictionary order is date order and symbol-text order: sorted codes keep it.
    used_dates, rows = np.unique(date_codes, return_inverse=True)
    used_symbols, cols = np.unique(symbol_codes, return_inverse=True)
    index = pd.DatetimeIndex(dates[used_dates], name="date")
    columns = pd.Index(symbol.dictionary.to_numpy(zero_copy_only=False)[used_symbols], name="symbol")
    frames = {}
    for name, kind in zip(table.column_names[2:], table.schema.types[2:]):
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            raise QueryError(f"a panel holds numbers, and `{name}` holds {kind}; read it with get_data(...)[\"{name}\"].unstack(\"symbol\")")
        values = pc.fill_null(pc.cast(_single(table.column(name)), pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        matrix = np.full((len(index), len(columns)), np.nan)
        matrix[rows, cols] = values
        frames[name] = pd.DataFrame(matrix, index=index, columns=columns, copy=False)
    return frames
