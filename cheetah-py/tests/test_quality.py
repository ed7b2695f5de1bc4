"""The data-quality report over a generated SQLite source: a clean copy flags nothing, and a copy
with each kind of problem planted flags exactly those, through `Cache.quality`, `cheetah quality
--json`, and an HTML page rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cheetah

DAYS = pd.bdate_range("2021-01-04", periods=120)
SYMBOLS = [f"S{i:02d}" for i in range(60)]
DROPPED_FROM = 60  # 12 of the 60 symbols vanish from `bar` from this date on
STALE = range(80, 90)  # `close` repeats the previous date's value on these dates
# Planted outliers: (date, symbol) → what close is multiplied by: ×1000, ×100 and a sign flip.
OUTLIERS = {(100, "S07"): 1000, (104, "S13"): 100, (96, "S21"): -1}
MISSING_ON = 110  # half the volumes are NULL on this date
FUNDA_STOPS = 50  # the fundamentals feed delivers nothing after this date
MAX_AGE_DAYS = 80
CADENCE = 40  # each symbol reports every 40 trading days (56 calendar days)


def build(tmp: Path, planted: bool) -> Path:
    rng = np.random.default_rng(3)
    db = sqlite3.connect(tmp / "source.db")
    db.execute("CREATE TABLE bar (trade_date DATE, symbol TEXT, close REAL, volume BIGINT, name TEXT)")
    db.execute("CREATE TABLE funda (ann_date DATE, symbol TEXT, revenue REAL)")
    price = {s: rng.uniform(20, 40) for s in SYMBOLS}
    rows, events = [], []
    for i, d in enumerate(DAYS):
        date = d.date().isoformat()
        for n, s in enumerate(SYMBOLS):
            price[s] *= 1 + rng.normal(0, 0.005)
            if planted and i >= DROPPED_FROM and n % 5 == 0:
                continue
            close = price[s]
            if planted and i in STALE:
                close = stale[s]
            if planted and (i, s) in OUTLIERS:
                close *= OUTLIERS[(i, s)]
            volume = int(rng.integers(1_000_000, 2_000_000))
            if rng.random() < 0.01 or (planted and i == MISSING_ON and n % 2 == 0):
                volume = None
            rows.append((date, s, close, volume, f"name of {s}"))
            if (i - n) % CADENCE == 0 and not (planted and i > FUNDA_STOPS):
                events.append((date, s, rng.lognormal(20, 0.2)))
        if i + 1 == STALE.start:
            stale = dict(price)
    db.executemany("INSERT INTO bar VALUES (?, ?, ?, ?, ?)", rows)
    db.executemany("INSERT INTO funda VALUES (?, ?, ?)", events)
    db.commit()
    db.close()
    config = tmp / "cheetah.toml"
    config.write_text(
        f'[store]\npath = "store"\n\n[source]\nodbc = "Driver={{SQLite3}};Database={tmp / "source.db"};BigInt=1;NoCreat=1;"\n\n'
        f"[quality]\nmax_age_days = {MAX_AGE_DAYS}\n\n"
        '[[table]]\nname = "bar"\ndate = "trade_date"\nsymbol = "symbol"\nfields = ["*"]\nstart = "2021-01-01"\n\n'
        '[[table]]\nname = "funda"\nkind = "asof"\ndate = "ann_date"\nsymbol = "symbol"\nfields = ["revenue"]\nstart = "2021-01-01"\n'
    )
    writer = cheetah.open(config, writer=True)
    writer.update()
    del writer
    return config


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("clean"), planted=False)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("planted"), planted=True)


def binary() -> str:
    path = os.environ.get("CHEETAH_BIN") or str(Path(__file__).resolve().parents[2] / "target" / "debug" / "cheetah")
    assert Path(path).is_file(), f"{path} is missing: `make test-python` builds it"
    return path


def day(i: int) -> pd.Timestamp:
    return DAYS[i]


def test_a_clean_source_flags_nothing(clean: Path) -> None:
    report = cheetah.open(clean).quality()
    assert not report.empty
    assert set(report["check"].unique()) == {"coverage", "missing", "stale", "outliers", "late"}
    assert report.loc[report.flagged, ["table", "field", "date", "check", "why"]].empty
    coverage = report[report.check == "coverage"]
    assert (coverage.value == 60).all() and len(coverage) == len(DAYS)
    # `name` never changes: always stale, and never flagged for it.
    names = report[(report.field == "name") & (report.check == "stale")]
    assert (names.value == 1.0).all()


def test_each_planted_problem_is_flagged_and_nothing_else(planted: Path) -> None:
    report = cheetah.open(planted).quality()
    assert list(report.columns) == ["table", "field", "date", "check", "value", "typical", "flagged", "why"]
    assert report["date"].dtype == "datetime64[ns]" and isinstance(report["check"].dtype, pd.CategoricalDtype)
    assert report.attrs["cheetah"]["settings"]["max_age_days"] == MAX_AGE_DAYS
    flags = report[report.flagged]
    by = {check: frame for check, frame in flags.groupby("check", observed=True)}
    assert set(by) == {"coverage", "stale", "outliers", "missing", "late"}, flags

    coverage = by["coverage"]
    assert coverage.date.min() == day(DROPPED_FROM), coverage
    assert (coverage.date <= day(DROPPED_FROM + 20)).all() and (coverage.table == "bar").all()
    first = coverage[coverage.date == day(DROPPED_FROM)].iloc[0]
    assert first.value == 48 and "20% fewer than the previous date's 60" in first.why, first.why

    stale = by["stale"]
    assert set(stale.field) == {"close"} and stale.date.min() == day(STALE.start), stale
    assert (stale.date < day(STALE.stop)).all()
    assert "48 of 48 symbols unchanged" in stale.iloc[0].why, stale.iloc[0].why

    outliers = by["outliers"].sort_values("date")
    planted_days = sorted(OUTLIERS, key=lambda key: key[0])
    assert list(outliers.date) == [day(i) for i, _ in planted_days], outliers
    assert set(outliers.field) == {"close"}, outliers
    for why, (_, symbol) in zip(outliers.why, planted_days):
        assert why.startswith(f"1 new outlier: {symbol} = "), why

    missing = by["missing"]
    assert list(missing.date) == [day(MISSING_ON)] and list(missing.field) == ["volume"], missing

    late = by["late"]
    assert (late.table == "funda").all() and late.field.isna().all()
    # The symbol whose latest event is oldest reported on date 11 (its next, on 51, never came).
    assert late.date.min() == min(d for d in DAYS if (d - day(11)).days > MAX_AGE_DAYS), late.head()
    assert late.date.max() == DAYS[-1] and late.iloc[-1].value == 48, late.iloc[-1]
    assert "of 48 trading symbols have no event in 80 days" in late.iloc[-1].why

    # A range and a table narrow it; bad input is a clear error.
    month = cheetah.open(planted).quality("2021-04-01", "2021-04-30", table="bar")
    assert set(month.table) == {"bar"} and month.date.min() >= pd.Timestamp("2021-04-01")
    assert month.date.max() <= pd.Timestamp("2021-04-30")
    with pytest.raises(cheetah.ConfigError, match="no table `nope`"):
        cheetah.open(planted).quality(table="nope")
    with pytest.raises(cheetah.QueryError, match="after end"):
        cheetah.open(planted).quality("2021-05-01", "2021-04-01")


def test_the_command_line_report_matches_and_its_page_renders_in_chromium(planted: Path, tmp_path: Path) -> None:
    page = tmp_path / "quality.html"
    out = subprocess.run(
        [binary(), "--config", str(planted), "quality", "--json", "--html", str(page)],
        capture_output=True, text=True, check=True,
    )
    report = json.loads(out.stdout)
    expected = cheetah.open(planted).quality()
    assert len(report["flags"]) == int(expected.flagged.sum())
    bar = next(t for t in report["tables"] if t["name"] == "bar")
    assert bar["flags"]["outliers"] == len(OUTLIERS) and bar["flags"]["missing"] == 1
    text = subprocess.run([binary(), "--config", str(planted), "quality", "--table", "bar"],
                          capture_output=True, text=True, check=True).stdout
    assert "bar (Daily, 3 fields): coverage" in text and "funda" not in text, text

    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is missing: `make deps` installs Debian's chromium"
    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = Page()
    parsed.feed(dom)
    assert parsed.title.startswith("Cheetah data quality"), parsed.title
    # Each heatmap cell that holds flagged dates links to a listed row of them.
    assert parsed.flag_links, "the heatmaps mark flagged months"
    missing_targets = [link for link in parsed.flag_links if link not in parsed.ids]
    assert not missing_targets, missing_targets
    months = {link[-7:] for link in parsed.flag_links}
    assert {"2021-03", "2021-04", "2021-05"} <= months, months
    assert parsed.cells >= 2 * 6, "fields × months and tables × months"
    shot = tmp_path / "quality.png"
    subprocess.run([*browser, "--window-size=1400,1800", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


class Page(HTMLParser):
    """What the test reads of the rendered DOM: the title, element ids, heatmap cells and the
    links of flagged cells."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.ids: set[str] = set()
        self.flag_links: list[str] = []
        self.cells = 0
        self._in_title = False
        self._in_flag = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "title":
            self._in_title = True
        if tag == "td" and "background" in (a.get("style") or ""):
            self.cells += 1
            self._in_flag = a.get("class") == "flag"
        if tag == "a" and self._in_flag and (a.get("href") or "").startswith("#"):
            self.flag_links.append((a.get("href") or "")[1:])
            self._in_flag = False

    def handle_endtag(self, tag: str) -> None:
        self._in_title = self._in_title and tag != "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
