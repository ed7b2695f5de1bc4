"""Adjusted prices, universes and panels, each checked against the same arithmetic in pandas on
the raw frame, over query shapes hypothesis draws."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cheetah

DAYS = pd.bdate_range("2021-01-04", periods=30)
SYMBOLS = [f"S{i:02d}" for i in range(24)]
# Membership intervals [start, end) of "big", by day index; None: still a member.
INTERVALS = [("S00", 0, 10), ("S00", 15, None), ("S01", 0, None), ("S02", 5, 20), ("S05", 12, 13),
             ("S07", 0, 29), ("S09", 3, None), ("S30", 0, None)]


def _day(i: int | None) -> str | None:
    return None if i is None else DAYS[i].date().isoformat()


def build(tmp: Path) -> Path:
    rng = np.random.default_rng(5)
    db = sqlite3.connect(tmp / "research.db")
    db.execute("CREATE TABLE bar (trade_date DATE, symbol TEXT, close REAL, high REAL, volume BIGINT, adj REAL)")
    db.execute("CREATE TABLE val (trade_date DATE, symbol TEXT, pe REAL)")
    db.execute("CREATE TABLE members (idx TEXT, code TEXT, in_date DATE, out_date DATE)")
    factor = {s: 1.0 for s in SYMBOLS}
    for d in DAYS:
        for s in SYMBOLS:
            if rng.random() < 0.03:
                factor[s] *= 1.25
            if rng.random() < 0.85:
                adj = None if rng.random() < 0.05 else factor[s]
                close = None if rng.random() < 0.05 else round(float(rng.uniform(5, 50)), 2)
                db.execute("INSERT INTO bar VALUES (?, ?, ?, ?, ?, ?)",
                           (d.date().isoformat(), s, close, (close or 10) * 1.01, int(rng.integers(1, 10**6)), adj))
            if rng.random() < 0.8:
                db.execute("INSERT INTO val VALUES (?, ?, ?)", (d.date().isoformat(), s, float(rng.normal(15, 3))))
    db.executemany("INSERT INTO members VALUES ('big', ?, ?, ?)", [(s, _day(a), _day(b)) for s, a, b in INTERVALS])
    db.execute("INSERT INTO members VALUES ('other', 'S03', '2021-01-04', NULL)")
    db.commit()
    db.close()
    config = tmp / "cheetah.toml"
    config.write_text(f"""
[store]
path = "store"

[source]
odbc = "Driver={{SQLite3}};Database={tmp / 'research.db'};BigInt=1;NoCreat=1;"

[[table]]
name = "bar"
date = "trade_date"
symbol = "symbol"
fields = ["close", "high", "volume", "adj"]
start = "2021-01-01"

[table.adjust]
factor = "adj"
fields = ["close", "high"]

[[table]]
name = "val"
date = "trade_date"
symbol = "symbol"
fields = ["pe"]
start = "2021-01-01"

[[universe]]
name = "big"
table = "members"
symbol = "code"
start = "in_date"
end = "out_date"
where = "idx = 'big'"
""")
    writer = cheetah.open(config, writer=True)
    reports = writer.update()
    assert {"universe": "big", "intervals": len(INTERVALS), "symbols": 7}.items() <= reports[-1].items()
    del writer
    return config


@pytest.fixture(scope="module")
def research(tmp_path_factory: pytest.TempPathFactory) -> cheetah.Cache:
    return cheetah.open(build(tmp_path_factory.mktemp("research")))


def member(symbol: str, date: pd.Timestamp) -> bool:
    i = DAYS.get_loc(date)
    return any(s == symbol and a <= i and (b is None or i < b) for s, a, b in INTERVALS)


dates = st.tuples(st.integers(0, 29), st.integers(0, 29)).map(sorted)
some_symbols = st.none() | st.lists(st.sampled_from(SYMBOLS + ["NOPE"]), min_size=1, max_size=8, unique=True)
shapes = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@shapes
@given(span=dates, symbols=some_symbols, adjust=st.sampled_from(["backward", "forward"]), universe=st.sampled_from([None, "big"]))
def test_adjusted_prices_equal_the_arithmetic_on_the_raw_frame(research, span, symbols, adjust, universe):
    start, end = DAYS[span[0]], DAYS[span[1]]
    cols = ["close", "high", "volume", "pe"]
    raw = research.get_data(start, end, cols + ["adj"], symbols=symbols, universe=universe)
    got = research.get_data(start, end, cols, symbols=symbols, universe=universe, adjust=adjust)
    factor = raw["adj"]
    if adjust == "forward":
        # Each symbol's latest factor on the read's dates, whatever symbols= and universe= keep.
        latest = research.get_data(start, end, ["adj"])["adj"].groupby(level="symbol").last()
        factor = factor / latest.reindex(raw.index.get_level_values("symbol")).to_numpy()
    expected = raw[cols].copy()
    for price in ("close", "high"):
        expected[price] = raw[price] * factor
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    assert got["close"].dtype == np.float64 and got["volume"].dtype == raw["volume"].dtype


def test_a_missing_factor_is_a_missing_price_and_other_fields_are_untouched(research):
    raw = research.get_data(DAYS[0], DAYS[-1], ["close", "adj", "pe"])
    got = research.get_data(DAYS[0], DAYS[-1], ["close", "adj", "pe"], adjust="backward")
    no_factor = raw["adj"].isna() & raw["close"].notna()
    assert no_factor.any()
    assert got.loc[no_factor, "close"].isna().all()
    pd.testing.assert_series_equal(got["adj"], raw["adj"])
    pd.testing.assert_series_equal(got["pe"], raw["pe"])
    arrow = research.get_arrow(DAYS[0], DAYS[-1], ["close"], adjust="forward")
    assert arrow.schema.field("close").type == "double"
    polars = research.get_polars(DAYS[0], DAYS[-1], ["close"], adjust="forward")
    np.testing.assert_allclose(polars["close"].to_numpy(), research.get_data(DAYS[0], DAYS[-1], ["close"], adjust="forward")["close"].to_numpy())


def test_asking_to_adjust_without_a_declared_factor_says_what_to_add(cache):
    with pytest.raises(cheetah.QueryError, match=r"\[table\.adjust\]"):
        cache.get_data("2020-01-01", "2020-02-01", ["close"], adjust="backward")
    with pytest.raises(cheetah.QueryError, match="'backward', 'forward'"):
        cache.get_data("2020-01-01", "2020-02-01", ["close"], adjust="sideways")


@shapes
@given(span=dates, symbols=some_symbols, base=st.sampled_from([None, "bar", "val"]))
def test_a_universe_keeps_exactly_the_members_rows(research, span, symbols, base):
    start, end = DAYS[span[0]], DAYS[span[1]]
    everyone = research.get_data(start, end, ["close", "pe"], symbols=symbols, base=base)
    got = research.get_data(start, end, ["close", "pe"], symbols=symbols, base=base, universe="big")
    keep = np.array([member(s, d) for d, s in everyone.index], dtype=bool)
    pd.testing.assert_frame_equal(got, everyone.loc[keep])


def test_universes_and_members_answer_who_was_in(research):
    listed = research.universes()
    assert listed["universe"].tolist() == ["big"]
    assert (listed.loc[0, "intervals"], listed.loc[0, "symbols"]) == (len(INTERVALS), 7)
    assert listed.loc[0, "first"] == DAYS[0] and pd.isna(listed.loc[0, "last"])
    assert research.members("big", DAYS[12]) == ["S01", "S02", "S05", "S07", "S09", "S30"]
    assert research.members("big", DAYS[10]) == ["S01", "S02", "S07", "S09", "S30"], "S00 left on day 10"
    with pytest.raises(cheetah.QueryError, match="configured universes: `big`"):
        research.members("small", DAYS[0])
    with pytest.raises(cheetah.QueryError, match="not configured"):
        research.get_data(DAYS[0], DAYS[5], ["close"], universe="other")


def unstacked(long: pd.DataFrame, field: str) -> pd.DataFrame:
    """`long[field].unstack("symbol")` as float64, its symbols sorted: pandas' unstack orders
    them by first appearance (its remove_unused_levels reorders a level, in 2.3 and 3.1), where
    a panel keeps the level's sorted order."""
    return long[field].unstack("symbol").astype("float64").sort_index(axis=1)


panel_cols = st.lists(st.sampled_from(["close", "high", "volume", "pe", "adj"]), min_size=1, max_size=3, unique=True)


@shapes
@given(span=dates, cols=panel_cols, symbols=some_symbols, universe=st.sampled_from([None, "big"]),
       adjust=st.sampled_from([None, "backward", "forward"]), base=st.sampled_from([None, "val"]))
def test_panels_equal_the_long_frame_unstacked(research, span, cols, symbols, universe, adjust, base):
    start, end = DAYS[span[0]], DAYS[span[1]]
    options = dict(symbols=symbols, universe=universe, adjust=adjust, base=base)
    long = research.get_data(start, end, cols, **options)
    panels = research.get_panels(start, end, cols, **options)
    assert list(panels) == cols
    for field in cols:
        pd.testing.assert_frame_equal(panels[field], unstacked(long, field), check_freq=False)
    single = research.get_panel(start, end, cols[0], **options)
    alone = unstacked(research.get_data(start, end, cols[0], **options), cols[0])
    pd.testing.assert_frame_equal(single, alone, check_freq=False)


def test_panels_of_many_tables_match_and_are_writable(market, cache):
    cols = ["close", "pe", "f1", "volume"]
    long = cache.get_data("2020-01-01", "2020-03-31", cols)
    panels = cache.get_panels("2020-01-01", "2020-03-31", cols)
    for field in cols:
        pd.testing.assert_frame_equal(panels[field], unstacked(long, field), check_freq=False)
    close = panels["close"]
    assert isinstance(close.index, pd.DatetimeIndex) and close.index.name == "date"
    assert close.columns.name == "symbol" and list(close.columns) == sorted(close.columns)
    close.iloc[0, 0] = -1.0
    assert close.iloc[0, 0] == -1.0
    with pytest.raises(cheetah.QueryError, match="a panel holds numbers"):
        cache.get_panel("2020-01-01", "2020-03-31", "rating")
    with pytest.raises(TypeError, match="get_panels"):
        cache.get_panel("2020-01-01", "2020-03-31", ["close", "pe"])
    empty = cache.get_panel("1990-01-01", "1990-02-01", "close")
    assert empty.shape == (0, 0)


def test_xarray_has_date_and_symbol_dimensions(research):
    xarray = pytest.importorskip("xarray")
    ds = research.get_xarray(DAYS[0], DAYS[-1], ["close", "pe"], adjust="backward")
    assert isinstance(ds, xarray.Dataset) and ds["close"].dims == ("date", "symbol")
    panel = research.get_panel(DAYS[0], DAYS[-1], "close", adjust="backward")
    np.testing.assert_array_equal(ds["close"].values, panel.to_numpy())
    assert list(ds["symbol"].values) == list(panel.columns)


def test_overlapping_intervals_fail_the_update_and_keep_the_cached_universe(tmp_path):
    config = build(tmp_path)
    db = sqlite3.connect(tmp_path / "research.db")
    db.execute("INSERT INTO members VALUES ('big', 'S01', ?, ?)", (_day(3), _day(8)))
    db.commit()
    db.close()
    writer = cheetah.open(config, writer=True)
    with pytest.raises(cheetah.UpdateError, match=r"symbol `S01` has overlapping intervals \[2021-01-04, still a member\) and \[2021-01-07, 2021-01-14\)"):
        writer.update()
    assert writer.members("big", DAYS[5]) == ["S00", "S01", "S02", "S07", "S09", "S30"]


def test_remote_reads_adjust_filter_and_pivot_as_local_ones(research):
    from test_flight import Server

    config = Path(research.config_path)
    served = config.with_name("served.toml")
    served.write_text(config.read_text() + '\n[flight]\nlisten = "127.0.0.1:0"\n')
    server = Server(served)
    try:
        remote = cheetah.connect(server.url)
        options = dict(adjust="forward", universe="big", symbols=["S00", "S02", "S09", "S11"])
        local = research.get_data(DAYS[0], DAYS[-1], ["close", "pe"], **options)
        pd.testing.assert_frame_equal(remote.get_data(DAYS[0], DAYS[-1], ["close", "pe"], **options), local)
        # Forward adjustment divides by factors of the read's last dates: the read is one part.
        assert len(remote.plan(DAYS[0], DAYS[-1], ["close"], adjust="forward").endpoints) == 1
        for field in ("close", "pe"):
            pd.testing.assert_frame_equal(
                remote.get_panel(DAYS[0], DAYS[-1], field, adjust="backward"),
                research.get_panel(DAYS[0], DAYS[-1], field, adjust="backward"),
            )
        assert remote.members("big", DAYS[12]) == research.members("big", DAYS[12])
        pd.testing.assert_frame_equal(remote.universes(), research.universes())
        with pytest.raises(cheetah.QueryError, match="not configured"):
            remote.members("small", DAYS[0])
    finally:
        server.stop()
