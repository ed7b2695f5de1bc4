"""Local tables from Python: a frame written with `Cache.write` reads back equal, alone and
joined with the source's fields, through the shared layer and over Flight; rewrites replace
exactly their dates, deletes remove them, each write is a store version; bad frames and names
are refused with nothing written; `cheetah import` loads Parquet and CSV, 5 million rows too."""

from __future__ import annotations

import itertools
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cheetah

from conftest import DAYS, SYMBOLS, Market, build
from test_concurrency import cheetah_binary
from test_flight import Server, _config

START, END = "2019-01-01", "2030-12-31"
WRITE_TOKEN = "py-write-token-77a1"
READ_TOKEN = "py-read-token-19c3"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Market:
    return build(tmp_path_factory.mktemp("local"))


@pytest.fixture(scope="module")
def cache(market: Market) -> cheetah.Cache:
    return cheetah.open(market.config)


def factor(days, symbols, seed: int, **columns) -> pd.DataFrame:
    """A float factor over every (day, symbol), with NaN here and there."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product([pd.DatetimeIndex(days), symbols], names=["date", "symbol"])
    values = rng.normal(0, 1, len(index))
    values[rng.random(len(index)) < 0.1] = np.nan
    frame = pd.DataFrame({"value": values}, index=index)
    for name, fill in columns.items():
        frame[name] = fill
    return frame


def read(cache: cheetah.Cache, cols: list[str], **kwargs) -> pd.DataFrame:
    return cache.get_data(START, END, cols, **kwargs)


_names = itertools.count()

column_types = st.sampled_from(["float", "int", "bool", "text", "date", "timestamp"])


@st.composite
def frames(draw) -> pd.DataFrame:
    days = draw(st.lists(st.sampled_from(list(DAYS[:12])), min_size=1, max_size=6, unique=True))
    symbols = draw(st.lists(st.sampled_from(SYMBOLS[:8] + ["NEW1", "NEW2", "ZZ.9"]), min_size=1, max_size=6, unique=True))
    keys = [(d, s) for d in sorted(days) for s in sorted(symbols) if draw(st.booleans()) or (d, s) == (days[0], symbols[0])]
    n = len(keys)
    index = pd.MultiIndex.from_tuples(keys, names=["date", "symbol"])
    kinds = draw(st.lists(column_types, min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frame = pd.DataFrame(index=index)
    for i, kind in enumerate(kinds):
        if kind == "float":
            values = rng.normal(0, 100, n)
            values[rng.random(n) < 0.3] = np.nan
            frame[f"c{i}"] = values
        elif kind == "int":
            frame[f"c{i}"] = rng.integers(-(2**40), 2**40, n)
        elif kind == "bool":
            frame[f"c{i}"] = rng.random(n) < 0.5
        elif kind == "text":
            text = [None if r < 0.2 else f"s{int(r * 1000)}" for r in rng.random(n)]
            text[0] = "first"  # a column of text needs a value to say so
            frame[f"c{i}"] = pd.Series(text, index=index, dtype=object)
        elif kind == "date":
            frame[f"c{i}"] = pd.to_datetime("2000-01-01") + pd.to_timedelta(rng.integers(0, 9000, n), unit="D")
        else:
            frame[f"c{i}"] = pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**15, n), unit="us")
    return frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames())
def test_a_written_frame_reads_back_equal(market: Market, frame: pd.DataFrame) -> None:
    table = f"hyp{next(_names)}"
    frame = frame.rename(columns=lambda c: f"{table}_{c}")
    cache = cheetah.open(market.config)
    report = cache.write(table, frame)
    assert (report["created"], report["rows"], report["dates"]) == (True, len(frame), frame.index.get_level_values(0).nunique())
    back = read(cache, list(frame.columns))
    expected = frame.sort_index()
    for column in expected.columns:
        if expected[column].dtype.kind == "M":
            back[column] = back[column].astype(expected[column].dtype)
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_index_type=False, check_dtype=False)
    assert list(back.dtypes.map(lambda d: d.kind)) == [
        "f" if d.kind == "f" else d.kind for d in expected.dtypes
    ], (back.dtypes, expected.dtypes)


def test_a_factor_joined_with_source_fields_equals_pandas_outer_join(market: Market, cache: cheetah.Cache) -> None:
    written = factor(DAYS[5:30], SYMBOLS[:30] + ["ONLYMINE"], 1).rename(columns={"value": "mom"})
    cache.write("joinfac", written)
    got = read(cache, ["close", "mom"])
    source = market.source("bar")[["close"]]
    expected = source.join(written, how="outer").sort_index()
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_index_type=False, check_dtype=False)
    assert "ONLYMINE" in got.index.get_level_values("symbol")
    fields = cache.fields()
    assert fields.set_index("field").loc["mom", "local"]
    assert not fields.set_index("field").loc["close", "local"]


def test_a_symbol_written_after_a_read_is_in_the_next_frames_level(cache: cheetah.Cache) -> None:
    # Frames share the symbol level while the dictionary is the same; a new symbol is a new one.
    before = read(cache, ["close"])
    written = factor(DAYS[3:5], ["ZZNEWSYM"], 2).rename(columns={"value": "fresh"})
    cache.write("newsym", written)
    after = read(cache, ["close", "fresh"])
    assert "ZZNEWSYM" not in before.index.levels[1] and "ZZNEWSYM" in after.index.levels[1]
    mine = after.xs("ZZNEWSYM", level="symbol", drop_level=False)[["fresh"]]
    pd.testing.assert_frame_equal(mine, written, check_index_type=False, check_freq=False)
    assert list(after.index.levels[1]) == sorted(after.index.levels[1])
    assert set(before.index.levels[1]) < set(after.index.levels[1])


def test_rewrites_replace_exactly_their_dates_and_deletes_remove_them(cache: cheetah.Cache) -> None:
    first = factor(DAYS[:10], SYMBOLS[:5], 2).rename(columns={"value": "rw"})
    v1 = cache.write("rewrites", first)["version"]
    again = factor(DAYS[3:5], SYMBOLS[:3], 3).rename(columns={"value": "rw"})
    v2 = cache.write("rewrites", again)["version"]
    expected = pd.concat([first.drop(index=list(DAYS[3:5]), level="date"), again]).sort_index()
    pd.testing.assert_frame_equal(read(cache, ["rw"]), expected, check_exact=True, check_index_type=False)

    # A later frame adds a column: missing on every other date. A column it lacks is missing on its dates.
    extra = factor(DAYS[8:10], SYMBOLS[:5], 4).rename(columns={"value": "rw2"})
    cache.write("rewrites", extra)
    both = read(cache, ["rw", "rw2"])
    assert both.loc[list(DAYS[8:10]), "rw"].isna().all(), "rw was absent from the frame of those dates"
    assert both.drop(index=list(DAYS[8:10]), level="date")["rw2"].isna().all()
    pd.testing.assert_series_equal(both.loc[list(DAYS[8:10]), "rw2"], extra["rw2"].sort_index(), check_index_type=False)

    deleted = cache.delete("rewrites", DAYS[0], DAYS[1])
    assert deleted["dates"] == 2
    left = read(cache, ["rw"])
    assert set(left.index.get_level_values("date")) == set(DAYS[2:10])

    # Every write is a version: the first one reads back as written.
    pd.testing.assert_frame_equal(read(cache, ["rw"], known_at=v1), first.sort_index(), check_exact=True, check_index_type=False)
    changed = cache.diff(v1, v2)
    assert set(changed["table"]) == {"rewrites"} and len(changed) > 0
    assert set(changed["date"]) <= set(DAYS[3:5])


def _refused(cache: cheetah.Cache, match: str, error: type[Exception] = cheetah.WriteError):
    class Check:
        def __enter__(self):
            self.before = cache.status()["versions"]["latest"]
            self.raises = pytest.raises(error, match=match)
            return self.raises.__enter__()

        def __exit__(self, *exc):
            handled = self.raises.__exit__(*exc)
            assert cache.status()["versions"]["latest"] == self.before, "nothing was written"
            return handled

    return Check()


def test_bad_frames_and_names_are_refused_with_nothing_written(market: Market, cache: cheetah.Cache) -> None:
    good = factor(DAYS[:3], SYMBOLS[:3], 5).rename(columns={"value": "okf"})
    cache.write("badin", good)
    with _refused(cache, "no `date` and `symbol`"):
        cache.write("badin", good.reset_index(drop=True))
    with _refused(cache, r"has 2 rows"):
        cache.write("badin", pd.concat([good, good.iloc[:1]]))
    nulls = good.reset_index()
    nulls.loc[1, "symbol"] = None
    with _refused(cache, "null at row 1|missing at row 1"):
        cache.write("badin", nulls)
    mixed = good.copy()
    mixed["okf"] = pd.Series([1, "a", 2.5] * 3, index=good.index, dtype=object)
    with _refused(cache, "cannot be a field"):
        cache.write("badin", mixed)
    with _refused(cache, "cannot name a local table"):
        cache.write("bad-name", good)
    with _refused(cache, "is a table in"):
        cache.write("bar", good.rename(columns={"okf": "x_bar"}))
    with _refused(cache, "already cached in table `bar`"):
        cache.write("badin", good.rename(columns={"okf": "close"}))
    with _refused(cache, "int64 in this frame but float64"):
        cache.write("badin", good.assign(okf=1))
    with _refused(cache, "no local table `nope`"):
        cache.delete("nope", DAYS[0], DAYS[1])
    with _refused(cache, "cached from a source"):
        cache.drop("bar")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = cache.write("badin", good.iloc[:0])
    assert report["rows"] == 0 and report["version"] is None
    assert any("empty" in str(w.message) for w in caught)
    pd.testing.assert_frame_equal(read(cache, ["okf"]), good.sort_index(), check_exact=True, check_index_type=False)


def test_polars_and_pyarrow_frames_with_key_columns_write_too(cache: cheetah.Cache) -> None:
    import polars as pl

    flat = factor(DAYS[:4], SYMBOLS[:4], 6).rename(columns={"value": "plf"}).reset_index()
    cache.write("frompolars", pl.from_pandas(flat))
    arrow = pa.Table.from_pandas(flat.rename(columns={"plf": "paf", "date": "d", "symbol": "s"}), preserve_index=False)
    cache.write("frompyarrow", arrow, date="d", symbol="s")
    got = read(cache, ["plf", "paf"])
    np.testing.assert_array_equal(got["plf"].to_numpy(), got["paf"].to_numpy())
    assert len(got) == len(flat)


def test_a_dropped_table_is_gone_and_its_name_free(cache: cheetah.Cache) -> None:
    frame = factor(DAYS[:2], SYMBOLS[:2], 7).rename(columns={"value": "dropme"})
    cache.write("todrop", frame)
    assert cache.drop("todrop")["dates"] == 2
    with pytest.raises(cheetah.QueryError, match="dropme"):
        read(cache, ["dropme"])
    cache.write("todrop", frame)
    assert len(read(cache, ["dropme"])) == len(frame)


def test_the_shared_layer_and_flight_serve_local_fields_equal_to_the_store(tmp_path: Path) -> None:
    market = build(tmp_path)
    written = factor(DAYS, SYMBOLS[:20], 8).rename(columns={"value": "layerf"})
    store_cache = cheetah.open(market.config)
    store_cache.write("layered", written)
    share = tmp_path / "shm"
    config = _config(
        market, "shared", f'listen = "127.0.0.1:0"\ntoken = "{READ_TOKEN}"\nwrite_token = "{WRITE_TOKEN}"'
    )
    config.write_text(config.read_text() + f'\n[share]\npath = "{share}"\nbudget = "64MiB"\n')
    layered = cheetah.open(config)
    layered.publish(START, END, ["layerf", "close"])
    via_layer = layered.get_data(START, END, ["layerf", "close"])
    assert via_layer.attrs["cheetah"]["shared"] is not None, "the layer served it"
    plain = cheetah.open(config, share=False).get_data(START, END, ["layerf", "close"])
    pd.testing.assert_frame_equal(via_layer, plain, check_exact=True)

    server = Server(config)
    try:
        remote = cheetah.connect(server.url, token=READ_TOKEN)
        pd.testing.assert_frame_equal(remote.get_data(START, END, ["layerf", "close"]), plain, check_exact=True)

        # Writes over Flight: with the write token only.
        more = factor(DAYS[:3], ["REMOTE1", "REMOTE2"], 9).rename(columns={"value": "remotef"})
        for token in (READ_TOKEN, None):
            with pytest.raises(cheetah.RemoteError, match="write token"):
                cheetah.connect(server.url, token=token or "").write("remote", more)
        with pytest.raises(cheetah.RemoteError, match="token"):
            cheetah.connect(server.url, token="wrong").write("remote", more)
        report = cheetah.connect(server.url, token=WRITE_TOKEN).write("remote", more)
        assert report["rows"] == len(more) and report["created"]
        got = cheetah.open(config, share=False).get_data(START, END, ["remotef"])
        pd.testing.assert_frame_equal(got, more.sort_index(), check_exact=True, check_index_type=False)
        with pytest.raises(cheetah.WriteError, match="has 2 rows"):
            cheetah.connect(server.url, token=WRITE_TOKEN).write("remote", pd.concat([more, more.iloc[:1]]))
    finally:
        server.stop()


def test_cheetah_import_loads_parquet_and_csv(market: Market, cache: cheetah.Cache, tmp_path: Path) -> None:
    frame = factor(DAYS[:6], SYMBOLS[:7], 10).rename(columns={"value": "imp"}).reset_index()
    frame["label"] = [f"L{i % 3}" for i in range(len(frame))]
    parquet, csv = tmp_path / "f.parquet", tmp_path / "f.csv"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet)
    frame.rename(columns={"imp": "impcsv", "label": "labelcsv", "date": "day", "symbol": "code"}).assign(
        day=lambda f: f["day"].dt.strftime("%Y-%m-%d")
    ).to_csv(csv, index=False)
    binary = cheetah_binary()
    done = subprocess.run([binary, "--config", str(market.config), "import", "fromparquet", str(parquet)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{len(frame)} rows over 6 dates" in done.stdout
    done = subprocess.run([binary, "--config", str(market.config), "import", "fromcsv", str(csv),
                           "--date-col", "day", "--symbol-col", "code"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = read(cache, ["imp", "label", "impcsv", "labelcsv"])
    np.testing.assert_allclose(got["imp"].to_numpy(), got["impcsv"].to_numpy(), rtol=1e-15, equal_nan=True)
    assert (got["label"] == got["labelcsv"]).all()

    bad = csv.with_name("bad.csv")
    lines = csv.read_text().splitlines()
    lines[4] = lines[4].replace(lines[4].split(",")[0], "2020-02-31", 1)
    bad.write_text("\n".join(lines) + "\n")
    done = subprocess.run([binary, "--config", str(market.config), "import", "badcsv", str(bad),
                           "--date-col", "day", "--symbol-col", "code"], capture_output=True, text=True)
    assert done.returncode != 0 and "line 5" in done.stderr and "2020-02-31" in done.stderr, done.stderr
    status = cheetah.open(market.config).status()
    assert "badcsv" not in [t["name"] for t in status["tables"]], "nothing of it was written"
    assert [t["local"] for t in status["tables"] if t["name"] == "fromcsv"] == [True]


def test_cheetah_import_streams_five_million_rows_unsorted(tmp_path: Path) -> None:
    market = build(tmp_path)
    days = pd.bdate_range("2000-01-03", periods=1000)
    symbols = [f"S{i:04d}" for i in range(5000)]
    rng = np.random.default_rng(12)
    n = len(days) * len(symbols)
    # By symbol, then date: every batch of the import holds every date, so each merges into the last.
    table = pa.table({
        "symbol": pa.DictionaryArray.from_arrays(np.repeat(np.arange(len(symbols), dtype=np.int32), len(days)), symbols),
        "date": pa.array(np.tile(days.values.astype("datetime64[D]"), len(symbols))),
        "big": rng.normal(0, 1, n),
    })
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=1_000_000)
    done = subprocess.run([cheetah_binary(), "--config", str(market.config), "import", "big", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{n} rows over {len(days)} dates" in done.stdout, done.stdout
    got = cheetah.open(market.config).get_data("2000-01-01", "2004-12-31", ["big"])
    assert len(got) == n
    expected = table.to_pandas().set_index(["date", "symbol"]).sort_index()
    np.testing.assert_array_equal(got["big"].to_numpy(), expected["big"].to_numpy())
