"""Point-in-time (`asof`) fields against a pandas `merge_asof` reference."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cheetah
from test_get_data import assert_matches

DAYS = pd.bdate_range("2021-03-01", periods=30)
SYMBOLS = [f"S{i:02d}" for i in range(12)]
# Announcement dates run from well before the first trading day to well after the last.
ANN_DAYS = pd.date_range(DAYS[0] - pd.Timedelta(days=40), DAYS[-1] + pd.Timedelta(days=20))


def write_market(root: Path, events: pd.DataFrame) -> Path:
    """A SQLite source with a daily `bar` and the `fund` events, and a config caching both."""
    path = root / "source.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE bar (trade_date DATE, symbol TEXT, close REAL)")
    rng = np.random.default_rng(5)
    bar = [(d.date().isoformat(), s, float(rng.uniform(1, 50))) for d in DAYS for s in SYMBOLS if rng.random() < 0.9]
    db.executemany("INSERT INTO bar VALUES (?, ?, ?)", bar)
    db.execute("CREATE TABLE fund (ann_date DATE, symbol TEXT, report_period DATE, revenue REAL, eps REAL)")
    db.executemany(
        "INSERT INTO fund VALUES (?, ?, ?, ?, ?)",
        [(a.date().isoformat(), s, p.date().isoformat(), r, e) for a, s, p, r, e in events.itertuples(index=False)],
    )
    db.commit()
    db.close()
    config = root / "cheetah.toml"
    config.write_text(
        f'[store]\npath = "store"\n\n[source]\nodbc = "Driver={{SQLite3}};Database={path};NoCreat=1;"\n\n'
        '[[table]]\nname = "bar"\ndate = "trade_date"\nsymbol = "symbol"\nfields = ["close"]\nstart = "2020-01-01"\n\n'
        '[[table]]\nname = "fund"\nkind = "asof"\ndate = "ann_date"\nsymbol = "symbol"\norder_by = "report_period"\n'
        'fields = ["revenue", "eps"]\nstart = "2020-01-01"\n'
    )
    writer = cheetah.open(config, writer=True)
    writer.update()
    del writer
    return config


def reference(config: Path, events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The expected frame: bar rows in the range, each with its symbol's latest event by
    announcement date (ties on a date resolved by the latest report period)."""
    db = sqlite3.connect(Path(str(config)).parent / "source.db")
    bar = pd.read_sql("SELECT trade_date, symbol, close FROM bar", db, parse_dates=["trade_date"])
    db.close()
    bar = bar.rename(columns={"trade_date": "date"})
    bar = bar.astype({"date": "datetime64[ns]", "symbol": object})
    bar = bar[(bar.date >= start) & (bar.date <= end)].sort_values("date")
    latest = events.sort_values(["ann_date", "report_period"]).drop_duplicates(["ann_date", "symbol"], keep="last")
    latest = latest.astype({"ann_date": "datetime64[ns]", "symbol": object, "revenue": float, "eps": float})
    merged = pd.merge_asof(
        bar, latest[["ann_date", "symbol", "revenue", "eps"]].sort_values("ann_date"),
        left_on="date", right_on="ann_date", by="symbol", direction="backward", allow_exact_matches=True,
    )
    return merged.set_index(["date", "symbol"]).sort_index()[["close", "revenue", "eps"]]


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(list(ANN_DAYS)),
        # The last symbols never report: they must come back NaN.
        st.sampled_from(SYMBOLS[:9]),
        st.sampled_from(list(pd.date_range("2020-03-31", periods=6, freq="QE"))),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.one_of(st.none(), st.floats(-10, 10, allow_nan=False)),
    ),
    min_size=0,
    max_size=60,
).map(lambda rows: pd.DataFrame(rows, columns=["ann_date", "symbol", "report_period", "revenue", "eps"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy, bounds=st.tuples(st.integers(0, len(DAYS) - 1), st.integers(0, len(DAYS) - 1)))
def test_asof_fields_equal_merge_asof(tmp_path_factory, events, bounds):
    # Several reports of one (date, symbol) differ in report period: the latest one wins.
    events = events.drop_duplicates(["ann_date", "symbol", "report_period"])
    config = write_market(tmp_path_factory.mktemp("asof"), events)
    start, end = DAYS[min(bounds)], DAYS[max(bounds)]
    got = cheetah.open(config).get_data(start, end, ["close", "revenue", "eps"])
    want = reference(config, events, start, end)
    assert_matches(got, want)


def test_a_value_announced_on_day_d_is_invisible_on_the_day_before(tmp_path):
    d = DAYS[10]
    events = pd.DataFrame(
        [(d, "S01", pd.Timestamp("2021-03-31"), 42.0, 1.0)],
        columns=["ann_date", "symbol", "report_period", "revenue", "eps"],
    )
    cache = cheetah.open(write_market(tmp_path, events))
    df = cache.get_data(DAYS[0], DAYS[-1], ["revenue"], symbols=["S01"], base="bar")
    before = df.loc[df.index.get_level_values("date") < d, "revenue"]
    after = df.loc[df.index.get_level_values("date") >= d, "revenue"]
    assert before.isna().all(), "no look-ahead: the day before the announcement has no value"
    assert (after == 42.0).all() and len(after) > 0
    # A report announced before the range is visible on its first day.
    late_start = cache.get_data(DAYS[12], DAYS[14], ["revenue"], symbols=["S01"], base="bar")
    assert (late_start["revenue"] == 42.0).all() and len(late_start) > 0


def test_only_asof_fields_need_a_base(tmp_path):
    cache = cheetah.open(write_market(tmp_path, pd.DataFrame(columns=["ann_date", "symbol", "report_period", "revenue", "eps"])))
    with pytest.raises(cheetah.QueryError, match="pass base="):
        cache.get_data(DAYS[0], DAYS[-1], ["revenue"])
    with pytest.raises(cheetah.QueryError, match="asof"):
        cache.get_data(DAYS[0], DAYS[-1], ["close"], base="fund")
    assert len(cache.get_data(DAYS[0], DAYS[-1], ["revenue"], base="bar")) > 0
