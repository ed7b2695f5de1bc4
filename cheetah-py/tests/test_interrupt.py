"""Ctrl-C in a real Python process: SIGINT stops a long `Cache.update()` between dates, or a long
read, within a second, and the store stays as an interrupted `cheetah update` leaves it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cheetah

DAYS = pd.bdate_range("2012-01-02", periods=1500)
SYMBOLS = [f"S{i:04d}" for i in range(400)]
# Wide enough that a cold read of everything takes about a second even on a fast machine, so
# that an interrupt returning well before a read could end is told apart from one waiting.
FLOATS = ["close", "pe", "mv", *(f"f{i:02d}" for i in range(13))]
FIELDS = ["volume", *FLOATS]

UPDATE = r"""
import sys, cheetah
cache = cheetah.open(sys.argv[1], writer=True)
print("ready", flush=True)
try:
    cache.update()  # with its progress bars, on stderr
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""

READ = r"""
import sys, time, cheetah
cache = cheetah.open(sys.argv[1])
cols = sys.argv[2].split(",")
began = time.monotonic()
rows = len(cache.get_data("2010-01-01", "2030-01-01", cols))
print(f"read {time.monotonic() - began:.3f} {rows}", flush=True)
try:
    while True:
        print("reading", flush=True)
        cache.get_data("2010-01-01", "2030-01-01", cols)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite market big enough that its first update, and a cold read of it, take seconds."""
    tmp = tmp_path_factory.mktemp("interrupt")
    rng = np.random.default_rng(3)
    db = sqlite3.connect(tmp / "source.db")
    columns = ", ".join(["volume BIGINT", *(f"{f} REAL" for f in FLOATS)])
    db.execute(f"CREATE TABLE bar (trade_date DATE, symbol TEXT, {columns})")
    insert = f"INSERT INTO bar VALUES ({', '.join('?' * (2 + len(FIELDS)))})"
    n = len(SYMBOLS)
    for day in DAYS:
        volumes, floats = rng.integers(0, 10**9, n).tolist(), rng.random((n, len(FLOATS))).tolist()
        date = day.date().isoformat()
        db.executemany(insert, [(date, s, v, *f) for s, v, f in zip(SYMBOLS, volumes, floats)])
    db.commit()
    db.close()
    table = '[[table]]\nname = "bar"\ndate = "trade_date"\nsymbol = "symbol"\nfields = ["*"]\nstart = "2012-01-01"\n'
    source = f'[source]\nodbc = "Driver={{SQLite3}};Database={tmp / "source.db"};BigInt=1;NoCreat=1;"\n'
    (tmp / "cheetah.toml").write_text(f'[store]\npath = "store"\n\n{source}\n{table}')
    # The same store read with a hot layer too small to keep anything: every read decodes.
    (tmp / "cold.toml").write_text(f'[store]\npath = "store"\nhot_cache = "1MiB"\n\n{source}\n{table}')
    return tmp


def line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    return child.stdout.readline().strip()


def cached_dates(config: Path) -> int:
    try:
        return cheetah.open(config).status()["tables"][0]["dates"]
    except (cheetah.EmptyCache, IndexError):
        return 0


def test_sigint_stops_an_update_between_dates_within_a_second(source):
    config = source / "cheetah.toml"
    child = subprocess.Popen(
        [sys.executable, "-c", UPDATE, str(config)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert line(child) == "ready"
    deadline = time.monotonic() + 60
    while cached_dates(config) < 20 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    said = line(child)
    latency = time.monotonic() - sent
    assert child.wait(timeout=30) == 0
    assert said == "interrupted", "the update finished before the signal: grow the market"
    assert latency < 1.0, f"KeyboardInterrupt came {latency:.2f} s after SIGINT"

    # What it committed is whole dates, readable; the rest is for the next update.
    done = cached_dates(config)
    assert 20 <= done < len(DAYS)
    df = cheetah.open(config).get_data("2010-01-01", "2030-01-01", FIELDS)
    assert df.groupby(level="date").size().eq(len(SYMBOLS)).all()
    assert df.index.get_level_values("date").nunique() == done
    writer = cheetah.open(config, writer=True)
    report = writer.update(progress=False)
    del writer
    assert report[0]["dates"] >= len(DAYS) - done  # and the lookback dates again
    assert cached_dates(config) == len(DAYS)


def test_sigint_stops_a_long_read_within_a_second(source):
    if cached_dates(source / "cheetah.toml") < len(DAYS):
        writer = cheetah.open(source / "cheetah.toml", writer=True)
        writer.update(progress=False)
        del writer
    child = subprocess.Popen(
        [sys.executable, "-c", READ, str(source / "cold.toml"), ",".join(FIELDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = line(child).split()
    assert first[0] == "read", first
    seconds, rows = float(first[1]), int(first[2])
    assert rows == len(DAYS) * len(SYMBOLS)
    assert seconds > 0.3, f"a whole read takes {seconds:.2f} s, too short to interrupt: grow the market"
    assert line(child) == "reading"
    time.sleep(0.05)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    while (said := line(child)) == "reading":
        pass
    latency = time.monotonic() - sent
    assert child.wait(timeout=30) == 0, child.stderr.read() if child.stderr else ""
    assert said == "interrupted"
    # Returned well before the read it interrupted could have finished.
    assert latency < min(1.0, seconds / 2), f"KeyboardInterrupt came {latency:.2f} s after SIGINT; a read takes {seconds:.2f} s"
