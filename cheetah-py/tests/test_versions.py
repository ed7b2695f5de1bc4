"""Versions from Python: every frame names the store version it read, and reading that version,
the moment it was committed or a snapshot gives exactly the same frame after the source was
corrected; snapshots are listed and deleted; `diff` lists the corrected cells; a remote read and
a Dask read at a snapshot equal the local one."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import cheetah

from conftest import DAYS, Market, build
from test_flight import Server, _config

COLS = ["close", "volume", "pe", "rating", "f0"]
START, END = "2019-12-01", "2030-01-01"


@pytest.fixture(scope="module")
def corrected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Market, pd.DataFrame]:
    """A market read and snapshotted as `before`, then corrected in the source (a changed value,
    a vanished row) and updated again. Returns the market and the frame read before."""
    market = build(tmp_path_factory.mktemp("versions"))
    cache = cheetah.open(market.config)
    before = cache.get_data(START, END, COLS)
    cache.snapshot("before", note="the first load")
    last = DAYS[-1].date().isoformat()
    db = sqlite3.connect(market.path)
    changed = db.execute("SELECT symbol FROM bar WHERE trade_date = ? AND close IS NOT NULL LIMIT 1", (last,)).fetchone()[0]
    db.execute("UPDATE bar SET close = close + 1000 WHERE trade_date = ? AND symbol = ?", (last, changed))
    gone = db.execute("SELECT symbol FROM val WHERE trade_date = ? LIMIT 1", (last,)).fetchone()[0]
    db.execute("DELETE FROM val WHERE trade_date = ? AND symbol = ?", (last, gone))
    db.commit()
    db.close()
    cheetah.open(market.config, writer=True).update(progress=False)
    return market, before


def test_a_frame_names_its_version_and_reading_it_again_gives_the_same_frame(corrected) -> None:
    market, before = corrected
    cache = cheetah.open(market.config)
    lineage = before.attrs["cheetah"]
    assert isinstance(lineage["version"], int) and lineage["known_at"].endswith("Z")
    now = cache.get_data(START, END, COLS)
    assert now.attrs["cheetah"]["version"] > lineage["version"]
    assert not now.equals(before), "the source was corrected"
    committed = pd.Timestamp(lineage["known_at"])
    for known_at in (lineage["version"], lineage["known_at"], committed.tz_convert(None).to_pydatetime(),
                     committed.to_pydatetime(), committed.tz_convert("Asia/Shanghai")):
        again = cache.get_data(START, END, COLS, known_at=known_at)
        pd.testing.assert_frame_equal(again, before, check_exact=True)
        assert again.attrs["cheetah"]["version"] == lineage["version"], known_at
    at_snapshot = cache.get_data(START, END, COLS, snapshot="before")
    pd.testing.assert_frame_equal(at_snapshot, before, check_exact=True)
    assert at_snapshot.attrs["cheetah"]["snapshot"] == "before"
    table = cache.get_arrow(START, END, COLS, snapshot="before")
    assert int(table.schema.metadata[b"cheetah.version"]) == lineage["version"]
    panel = cache.get_panel(START, END, "close", known_at=lineage["version"])
    long = cache.get_data(START, END, "close", snapshot="before")["close"].unstack("symbol").sort_index(axis=1)
    pd.testing.assert_frame_equal(panel, long, check_exact=True, check_names=False)
    assert not panel.equals(cache.get_panel(START, END, "close")), "the latest panel has the correction"
    # A moment after the newest version reads the newest.
    assert cache.get_data(START, END, COLS, known_at=dt.datetime(2999, 1, 1)).attrs["cheetah"]["version"] == now.attrs["cheetah"]["version"]


def test_bad_versions_are_clear_errors(corrected) -> None:
    market, before = corrected
    cache = cheetah.open(market.config)
    with pytest.raises(cheetah.VersionError, match="no snapshot `nope`; the snapshots are: `before`"):
        cache.get_data(START, END, COLS, snapshot="nope")
    with pytest.raises(cheetah.VersionError, match="not both"):
        cache.get_data(START, END, COLS, snapshot="before", known_at=1)
    with pytest.raises(cheetah.VersionError, match="does not exist yet"):
        cache.get_data(START, END, COLS, known_at=10**9)
    with pytest.raises(cheetah.VersionError, match="before the store's first version"):
        cache.get_data(START, END, COLS, known_at="1999-01-01")
    with pytest.raises(cheetah.VersionError, match="not a moment"):
        cache.get_data(START, END, COLS, known_at="yesterday-ish")
    with pytest.raises(cheetah.QueryError):  # VersionError is a QueryError
        cache.get_data(START, END, COLS, known_at=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'known'"):
        cache.get_data(START, END, COLS, known=1)


def test_snapshots_are_listed_and_deleted(corrected) -> None:
    market, _ = corrected
    cache = cheetah.open(market.config)
    made = cache.snapshot("later", note="after the correction")
    assert made["name"] == "later" and made["version"] == cache.get_data(START, END, "close").attrs["cheetah"]["version"]
    listed = cache.snapshots()
    assert list(listed.columns) == ["name", "version", "created", "note"]
    assert list(listed.name) == ["before", "later"] and listed.note.tolist() == ["the first load", "after the correction"]
    assert str(listed.created.dtype).startswith("datetime64") and listed.created.dt.tz is not None
    with pytest.raises(cheetah.VersionError, match="exists already"):
        cache.snapshot("later")
    with pytest.raises(cheetah.VersionError, match="not a snapshot name"):
        cache.snapshot("no/slashes")
    cache.delete_snapshot("later")
    assert list(cache.snapshots().name) == ["before"]
    with pytest.raises(cheetah.VersionError, match="no snapshot `later`"):
        cache.delete_snapshot("later")


def test_diff_lists_the_corrected_cells(corrected) -> None:
    market, before = corrected
    cache = cheetah.open(market.config)
    diff = cache.diff("before")
    assert list(diff.columns) == ["table", "field", "date", "symbol", "old", "new"]
    now = cache.get_data(START, END, COLS)
    # Whole frames tell the same cells apart (the fac table is untouched).
    joined = before.add_suffix("_old").join(now.add_suffix("_new"), how="outer")
    expected = set()
    for col in ("close", "volume", "pe", "rating"):
        old, new = joined[f"{col}_old"], joined[f"{col}_new"]
        differs = ~((old == new) | (old.isna() & new.isna()))
        expected |= {(col, d, s) for d, s in joined.index[differs]}
    got = {(f, d, s) for f, d, s in zip(diff.field, diff.date, diff.symbol)}
    # A vanished `val` row lists each of its fields, `shared` too, though `before` read only some.
    assert expected <= got and {f for f, _, _ in got - expected} <= {"shared", "total_mv"}, (expected ^ got)
    row = diff[diff.field == "close"].iloc[0]
    assert row.new == row.old + 1000
    assert diff.attrs["cheetah"]["from"]["version"] == before.attrs["cheetah"]["version"]
    # Text fields make the value columns objects.
    assert diff.old.dtype == object
    numeric = cache.diff(before.attrs["cheetah"]["version"], cols=["close"])
    assert numeric.old.dtype == "float64" and set(numeric.field) == {"close"}
    assert cache.diff("before", "before").empty


def test_remote_and_dask_reads_at_a_snapshot_equal_the_local_one(corrected) -> None:
    import cheetah.dask
    distributed = pytest.importorskip("distributed")
    market, before = corrected
    cache = cheetah.open(market.config)
    server = Server(_config(market, "flight-versions", 'listen = "127.0.0.1:0"\npart_bytes = "8KB"'))
    try:
        remote = cheetah.connect(server.url)
        got = remote.get_data(START, END, COLS, snapshot="before")
        pd.testing.assert_frame_equal(got, before, check_exact=True)
        assert got.attrs["cheetah"]["version"] == before.attrs["cheetah"]["version"]
        assert list(remote.snapshots().name) == ["before"]
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster):
            ddf = cheetah.dask.read_data(server.url, START, END, ["close", "pe"], snapshot="before")
            assert ddf.npartitions > 2
            frame = ddf.compute()
            want = cache.get_data(START, END, ["close", "pe"], snapshot="before").reset_index(level="symbol")
            want["symbol"] = pd.Categorical(want["symbol"], categories=frame["symbol"].cat.categories)
            pd.testing.assert_frame_equal(frame, want, check_exact=True, check_freq=False)
    finally:
        server.stop()
