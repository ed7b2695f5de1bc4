"""get_data against a pandas reference built from the source database."""

from __future__ import annotations

import contextlib
import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cheetah
from cheetah import _frames
from conftest import DAYS, SYMBOLS, Market

FIELDS = {"close": "bar", "volume": "bar", "pe": "val", "total_mv": "val", "rating": "val", "f0": "fac", "f1": "fac", "flag": "fac"}
TEXT_DTYPE = str(pd.Series(["text"]).dtype)  # `object` in pandas 2, `str` in pandas 3


def numpy_dtype(frame: pd.DataFrame, col: str) -> str:
    """pandas' conventions: ints and booleans with missing values widen to float64 and object."""
    name = col.split(".")[-1]
    missing = frame[col].isna().any()
    if name == "volume":
        return "float64" if missing else "int64"
    if name == "flag":
        return "object" if missing else "bool"
    return TEXT_DTYPE if name == "rating" else "float64"


def reference(market: Market, start, end, cols, symbols=None, base=None) -> pd.DataFrame:
    """The outer join of the fields' tables on (date, symbol), sorted: or `base`'s keys."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    row_tables = [base] if base else list(dict.fromkeys(FIELDS[c.split(".")[-1]] for c in cols))
    keys = pd.MultiIndex.from_tuples([], names=["date", "symbol"])
    for table in row_tables:
        keys = keys.union(market.source(table).index)
    keys = keys[(keys.get_level_values(0) >= start) & (keys.get_level_values(0) <= end)]
    if symbols is not None:
        keys = keys[keys.get_level_values(1).isin(symbols)]
    keys = keys.sort_values()
    out = pd.DataFrame(index=keys)
    for col in cols:
        name = col.split(".")[-1]
        out[col] = market.source(FIELDS[name])[name].reindex(keys)
    return out


def normalized(frame: pd.DataFrame) -> list[list[object]]:
    """Cells as plain Python values, with every kind of missing value as None."""
    return [[None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row] for row in frame.itertuples(index=False)]


def assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got.index.names == ["date", "symbol"]
    assert got.index.get_level_values("date").dtype == "datetime64[ns]"
    assert list(got.index) == list(want.index)
    assert normalized(got) == normalized(want)


dates = st.integers(min_value=-5, max_value=len(DAYS) + 5).map(lambda i: (DAYS[0] + pd.offsets.BDay(i)).date())
date_like = st.sampled_from([lambda d: d, lambda d: dt.datetime(d.year, d.month, d.day, 15, 30),
                             pd.Timestamp, lambda d: d.isoformat()])


@settings(max_examples=80, deadline=None)
@given(
    first=dates,
    length=st.integers(min_value=0, max_value=30),
    wrap=date_like,
    cols=st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=5, unique=True),
    symbols=st.none() | st.lists(st.sampled_from(SYMBOLS + ["NOPE"]), max_size=8),
    base=st.none() | st.sampled_from(["bar", "val", "fac"]),
    backend=st.sampled_from(["numpy", "pyarrow"]),
)
def test_get_data_equals_the_source_join(cache, market, first, length, wrap, cols, symbols, base, backend):
    last = first + dt.timedelta(days=length)
    got = cache.get_data(wrap(first), wrap(last), cols, symbols=symbols, base=base, dtype_backend=backend)
    assert_matches(got, reference(market, first, last, cols, symbols, base))
    if backend == "numpy":
        assert {c: str(t) for c, t in got.dtypes.items()} == {c: numpy_dtype(got, c) for c in cols}
    else:
        assert all(isinstance(t, pd.ArrowDtype) for t in got.dtypes)


def test_the_seed_example_verbatim(market, monkeypatch):
    monkeypatch.setenv("CHEETAH_CONFIG", str(market.config))
    monkeypatch.setattr(cheetah, "_default", None)
    from datetime import datetime

    df = cheetah.get_data(datetime(2010, 1, 1), datetime(2020, 1, 1), cols=["close", "volume", "pe", "total_mv"])
    assert_matches(df, reference(market, "2010-01-01", "2020-01-01", ["close", "volume", "pe", "total_mv"]))
    df = cheetah.get_data(datetime(2010, 1, 1), datetime(2030, 1, 1), cols=["close", "volume", "pe", "total_mv"])
    assert len(df) > 1000
    assert df.attrs["cheetah"]["covered"] == ("2010-01-01", DAYS[-1].date().isoformat())


def test_ints_with_nulls_under_both_backends(cache):
    numpy = cache.get_data(DAYS[0], DAYS[-1], ["volume"])
    assert numpy["volume"].dtype == "float64" and numpy["volume"].isna().any()
    arrow = cache.get_data(DAYS[0], DAYS[-1], ["volume"], dtype_backend="pyarrow")
    assert str(arrow["volume"].dtype) == "int64[pyarrow]" and arrow["volume"].isna().any()
    full = cache.get_data(DAYS[0], DAYS[-1], ["volume"], base="bar").dropna()
    assert (full["volume"] > 2**31).any(), "64-bit values survive"


def test_column_order_is_as_asked(cache):
    df = cache.get_data(DAYS[0], DAYS[5], ["pe", "close", "f1"])
    assert list(df.columns) == ["pe", "close", "f1"]


PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


# pandas 3 always infers its `str` for text, and deprecates the option that chose it before.
@pytest.mark.parametrize("infer_string", [True] if PANDAS_3 else [False, True])
def test_text_labels_have_the_dtype_pandas_infers(cache, infer_string):
    # Built from Arrow text, not inferred: under pandas 3 (or the 2.x option) both are its `str`.
    option = contextlib.nullcontext() if PANDAS_3 else pd.option_context("future.infer_string", infer_string)
    with option:
        df = cache.get_data(DAYS[0], DAYS[5], ["pe", "close"])
        symbols = df.index.levels[1]
        assert df.columns.dtype == pd.Index(["pe", "close"]).dtype
        assert symbols.dtype == pd.Index(list(symbols)).dtype
        assert df.columns.equals(pd.Index(["pe", "close"])) and list(df) == ["pe", "close"]
        assert df["close"].equals(df.iloc[:, 1]) and len(symbols) > 0


def test_text_from_arrow_buffers_keeps_slices_and_nulls():
    # Under pandas 3 the index is made from the array's buffers: an offset into them and a
    # validity bitmap must come through as pandas makes them from the same strings.
    text = pa.array(["a", "bb", None, "", "ccc", "dddd"]).slice(1, 4)
    index = _frames.text_index(text, "symbol")
    expected = pd.Index(pd.array(text.to_pylist(), dtype=_frames._text_dtype()), name="symbol")
    assert index.equals(expected) and index.dtype == expected.dtype and index.name == "symbol"
    assert index.isna().tolist() == [False, True, False, False]
    wide = _frames.text_index(text.cast(pa.large_string()), "symbol")
    assert wide.equals(expected) and wide.dtype == expected.dtype


def test_reads_of_the_same_symbols_share_one_level_and_other_text_gets_its_own(cache):
    first = cache.get_data(DAYS[0], DAYS[5], ["pe", "close"])
    second = cache.get_data(DAYS[2], DAYS[9], ["close"])
    # `levels` hands out a fresh view of each level: the values under it are what is shared.
    assert second.index.levels[1]._values is first.index.levels[1]._values
    dictionary = cache.get_arrow(DAYS[0], DAYS[5], ["pe"]).column("symbol").chunk(0).dictionary
    assert first.index.levels[1].equals(_frames.text_index(dictionary, "symbol"))

    text = pa.array(["a", "bb", "ccc"])
    level = _frames._symbol_level(text)
    assert _frames._symbol_level(text) is level
    for other in (pa.array(["a", "bb", "ccd"]), text.slice(1), text.cast(pa.large_string())):
        made = _frames._symbol_level(other)
        assert made is not level and made.equals(_frames.text_index(other, "symbol")) and made.name == "symbol"
    assert cache.get_data(DAYS[0], DAYS[5], ["pe"]).index.levels[1].equals(first.index.levels[1])


def test_date_levels_read_from_buffers_match_pyarrow():
    days = pa.array(np.array(["2019-12-31", "2020-01-02", "2020-01-03", "2024-02-29"], dtype="datetime64[D]")).slice(1)
    assert days.type == pa.date32()
    read = _frames._day_values(days)
    assert read.dtype == np.dtype("datetime64[D]") and (read == days.to_numpy(zero_copy_only=False)).all()


def test_an_empty_range_has_the_right_shape(cache):
    df = cache.get_data("1999-01-01", "1999-12-31", ["close", "pe"])
    assert len(df) == 0 and list(df.columns) == ["close", "pe"]
    assert df.index.names == ["date", "symbol"]
    assert df.attrs["cheetah"]["covered"] == ("1999-01-01", "1999-12-31")


def test_start_after_end_is_an_error(cache):
    with pytest.raises(cheetah.QueryError, match="is after end"):
        cache.get_data("2020-02-01", "2020-01-01", ["close"])


def test_unknown_and_ambiguous_names(cache):
    with pytest.raises(cheetah.QueryError, match=r"field `clsoe` is not cached; cached fields like it: `bar.close`"):
        cache.get_data(DAYS[0], DAYS[1], ["clsoe"])
    with pytest.raises(cheetah.QueryError, match=r"ambiguous.*`val.shared`, `fac.shared`|ambiguous.*`fac.shared`, `val.shared`"):
        cache.get_data(DAYS[0], DAYS[1], ["shared"])
    df = cache.get_data(DAYS[0], DAYS[-1], ["val.shared", "fac.shared"])
    assert list(df.columns) == ["val.shared", "fac.shared"]


def test_errors_mirror_the_rust_families(cache, tmp_path):
    assert issubclass(cheetah.QueryError, cheetah.CheetahError)
    with pytest.raises(cheetah.ConfigError, match="no config found"):
        cheetah.open(tmp_path / "missing.toml")
    with pytest.raises(TypeError, match="start must be a date"):
        cache.get_data(20200101, "2020-01-02", ["close"])
    with pytest.raises(ValueError, match="dtype_backend"):
        cache.get_data(DAYS[0], DAYS[1], ["close"], dtype_backend="polars")


@pytest.mark.parametrize("levels", [100, 5000, 40000])
def test_pandas_keeps_codes_of_the_type_cheetah_builds(levels):
    codes = np.arange(levels, dtype=_frames._code_type(levels))
    index = pd.MultiIndex(levels=[pd.Index(range(levels))], codes=[codes], verify_integrity=False)
    assert np.shares_memory(index.codes[0], codes), "pandas would have converted them: a copy per read"


def test_a_frame_takes_the_date_codes_cheetah_built(cache):
    # 40 dates: pandas keeps their codes as int8, which Cheetah builds them as. (Symbol codes are
    # 16 bits at least, as the shared layer's, so this market's 45 symbols' are narrowed.)
    read = cheetah._reads.Read.of(DAYS[0], DAYS[-1], ["close", "pe"])
    table, _ = cache._get(read, dictionary_dates=True, nan_integers=True)
    frame = _frames.to_pandas(table, "numpy")
    codes = _frames._values(table.column("date").chunk(0).indices)
    assert codes.dtype == np.int8 and np.shares_memory(frame.index.codes[0], codes), "a copy per read"


def test_arrow_and_polars(cache):
    table = cache.get_arrow(DAYS[0], DAYS[3], ["close", "pe"])
    assert table.column_names == ["date", "symbol", "close", "pe"]
    assert str(table.schema.field("symbol").type) == "dictionary<values=string, indices=int16, ordered=0>"
    polars = pytest.importorskip("polars")
    frame = cache.get_polars(DAYS[0], DAYS[3], ["close", "pe"])
    assert isinstance(frame, polars.DataFrame) and frame.height == table.num_rows


def test_fields_and_status(cache):
    fields = cache.fields()
    assert set(fields["field"]) >= set(FIELDS)
    row = fields[fields["field"] == "close"].iloc[0]
    assert row["table"] == "bar" and row["type"] == "float64" and row["dates"] == len(DAYS)
    status = cache.status()
    assert {t["name"] for t in status["tables"]} == {"bar", "val", "fac"}


def test_float_columns_arrive_without_a_copy(cache):
    read = cheetah._reads.Read.of(DAYS[0], DAYS[-1], ["close", "pe"])
    table, *_ = cache._inner.get(read, dictionary_dates=True)
    addresses = {name: table.column(name).chunk(0).buffers()[1].address for name in ("close", "pe")}
    df = _frames.to_pandas(table, "numpy")
    for name in ("close", "pe"):
        column = df[name].to_numpy()
        assert not column.flags.owndata, "a view, not a copy"
        assert column.__array_interface__["data"][0] == addresses[name], "the very Arrow buffer"
