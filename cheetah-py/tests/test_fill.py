"""A read in parts filled into one frame batch by batch (`cheetah._fill`): whatever the parts'
expected rows, nulls and batch cuts, the frame equals the one built from the parts joined."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cheetah._fill import Fill, Unfillable, join, parts_to_pandas, run
from cheetah._frames import to_pandas

SYMBOLS = pa.array([f"S{i:03d}" for i in range(300)])
SCHEMA = pa.schema([
    ("date", pa.dictionary(pa.int32(), pa.date32())),
    ("symbol", pa.dictionary(pa.int16(), pa.string())),
    ("close", pa.float64()),
    ("volume", pa.int64()),
    ("shares", pa.int32()),
    ("rating", pa.string()),
])


def _part(first: int, days: int, seed: int, nulls: bool, symbols: pa.Array = SYMBOLS) -> pa.Table:
    """`days` dates from day `first` (2020-01-01 + first), a random subset of symbols each."""
    rng = np.random.default_rng(seed)
    dates = pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=first + d) for d in range(days)], pa.date32())
    date_codes, symbol_codes = [], []
    for d in range(days):
        chosen = np.sort(rng.choice(len(SYMBOLS), size=rng.integers(1, 200), replace=False))
        date_codes += [d] * len(chosen)
        symbol_codes += chosen.tolist()
    n = len(date_codes)
    volume = rng.integers(0, 10**9, n)
    mask = rng.random(n) < 0.1 if nulls else np.zeros(n, dtype=bool)
    close = rng.random(n)
    close[rng.random(n) < 0.05] = np.nan
    return pa.table([
        pa.DictionaryArray.from_arrays(pa.array(date_codes, pa.int32()), dates),
        pa.DictionaryArray.from_arrays(pa.array(symbol_codes, pa.int16()), symbols),
        pa.array(close),
        pa.array(volume, mask=mask),
        pa.array(rng.integers(0, 1000, n), pa.int32()),
        pa.array([f"r{v % 7}" for v in volume]),
    ], schema=SCHEMA)


def _filled(parts: list[pa.Table], rows: list[int], chunk: int, pool: ThreadPoolExecutor | None = None) -> pd.DataFrame:
    fill = Fill(SCHEMA, rows)
    fill.bound_dates(sum(len(p.column(0).chunk(0).dictionary) for p in parts))
    run(fill, [lambda p=p: p.to_batches(max_chunksize=chunk) for p in parts], pool)
    return fill.frame()


@pytest.mark.parametrize("error", [0, 1, -1, 50, -50])
@pytest.mark.parametrize("nulls", [False, True])
def test_any_expected_rows_give_the_joined_frame(error: int, nulls: bool) -> None:
    parts = [_part(0, 20, 1, nulls), _part(20, 1, 2, False), _part(21, 30, 3, nulls)]
    want = to_pandas(join(parts, SCHEMA), "numpy")
    rows = [max(p.num_rows + error * (i % 2 * 2 - 1), 0) for i, p in enumerate(parts)]
    with ThreadPoolExecutor(3) as pool:
        for chunk in (7, 1000, 1 << 20):
            got = _filled(parts, rows, chunk, pool)
            pd.testing.assert_frame_equal(got, want, check_exact=True)
            assert got["volume"].dtype == (np.float64 if nulls else np.int64)
            assert got.index.codes[0].dtype == want.index.codes[0].dtype


def test_parts_that_deliver_nothing_or_were_not_expected() -> None:
    parts = [_part(0, 3, 4, True), SCHEMA.empty_table(), _part(3, 4, 5, False)]
    want = to_pandas(join(parts, SCHEMA), "numpy")
    pd.testing.assert_frame_equal(_filled(parts, [0, 500, 0], 64), want, check_exact=True)
    assert len(_filled([SCHEMA.empty_table()], [10], 64)) == 0


def test_copied_columns_are_the_frames_own_and_writable() -> None:
    parts = [_part(0, 10, 6, True), _part(10, 10, 7, True)]
    df = parts_to_pandas(parts, SCHEMA, "numpy")
    pd.testing.assert_frame_equal(df, to_pandas(join(parts, SCHEMA), "numpy"), check_exact=True)
    # In place where pandas writes in place (before copy-on-write), else on its copy.
    df.iloc[0, df.columns.get_loc("close")] = 42.0
    df.iloc[1, df.columns.get_loc("volume")] = 7.0
    assert df["close"].iloc[0] == 42.0
    assert df["volume"].iloc[1] == 7.0


def test_a_symbol_dictionary_that_differs_is_refused_and_joined_instead() -> None:
    grown = pa.concat_arrays([SYMBOLS, pa.array(["ZZZ"])])
    parts = [_part(0, 5, 8, False), _part(5, 5, 9, False, grown)]
    with pytest.raises(Unfillable, match="symbol dictionaries"):
        _filled(parts, [p.num_rows for p in parts], 100)
    pd.testing.assert_frame_equal(parts_to_pandas(parts, SCHEMA, "numpy"), to_pandas(join(parts, SCHEMA), "numpy"))


def test_integers_a_float64_cannot_hold_are_refused_when_guessed() -> None:
    part = _part(0, 3, 10, False)
    big = pa.array(np.full(part.num_rows, 2**60, dtype=np.int64))
    part = part.set_column(3, "volume", big)
    with pytest.raises(Unfillable, match="exactly"):
        _filled([part], [part.num_rows], 100)
    df = parts_to_pandas([part], SCHEMA, "numpy")
    assert df["volume"].dtype == np.int64
    assert (df["volume"] == 2**60).all()


def test_more_dates_than_their_bound_are_refused() -> None:
    parts = [_part(0, 100, 11, False), _part(100, 100, 12, False)]
    fill = Fill(SCHEMA, [p.num_rows for p in parts])
    fill.bound_dates(120)
    with pytest.raises(Unfillable, match="more dates"):
        run(fill, [lambda p=p: p.to_batches() for p in parts])
