"""A reader process keeps working while `cheetah update` runs in another process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import cheetah

from conftest import DAYS, build

READER = r"""
import json, sys, time
import cheetah
cache = cheetah.open(sys.argv[1])
deadline = time.time() + float(sys.argv[2])
target = sys.argv[3]
seen = []
while time.time() < deadline:
    df = cache.get_data("2019-01-01", "2030-01-01", ["close", "pe"])
    dates = df.index.get_level_values("date")
    last = str(dates.max().date()) if len(df) else None
    covered = df.attrs["cheetah"]["covered"]
    # Internally consistent: no row past the covered cut, and each date whole.
    assert last is None or last <= covered[1], (last, covered)
    per_day = df.groupby(level="date").size()
    if not seen or seen[-1][0] != last:
        seen.append((last, int(per_day.iloc[-1]) if len(per_day) else 0))
        if len(seen) == 1:
            print("read", file=sys.stderr, flush=True)  # the test's cue to start updating
    if last == target:
        break
    time.sleep(0.02)
print(json.dumps(seen))
print(json.dumps([(t["name"], t["watermark"], t["last"]) for t in cache.status()["tables"]]), file=sys.stderr)
"""


def cheetah_binary() -> str:
    binary = os.environ.get("CHEETAH_BIN") or str(Path(__file__).resolve().parents[2] / "target" / "debug" / "cheetah")
    assert Path(binary).is_file(), f"{binary} is missing: `cargo build -p cheetah-cli` first (`make test` does)"
    return binary


def test_a_reader_sees_new_dates_while_another_process_updates(tmp_path):
    market = build(tmp_path)
    new_days = pd.bdate_range(DAYS[-1] + pd.offsets.BDay(1), periods=6)
    target = new_days[-1].date().isoformat()
    reader = subprocess.Popen([sys.executable, "-c", READER, str(market.config), "60", target],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Updates start once the reader has read the dates cached before them: on a busy machine
    # its import alone may take longer than any fixed wait.
    assert reader.stderr.readline().strip() == "read", reader.stderr.read()
    db = sqlite3.connect(market.path)
    for i, day in enumerate(new_days):
        rows = [(day.date().isoformat(), f"S{j:02d}", 10.0 + i + j / 100) for j in range(30)]
        db.executemany("INSERT INTO bar (trade_date, symbol, close) VALUES (?, ?, ?)", rows)
        db.executemany("INSERT INTO val (trade_date, symbol, pe) VALUES (?, ?, ?)", [(d, s, 2 * c) for d, s, c in rows])
        db.commit()
        update = subprocess.run([cheetah_binary(), "--config", str(market.config), "update"], capture_output=True, text=True)
        assert update.returncode == 0, update.stderr
    out, err = reader.communicate(timeout=90)
    assert reader.returncode == 0, err
    seen = json.loads(out)
    assert seen[0][0] == DAYS[-1].date().isoformat(), seen
    assert seen[-1] == [target, 30], f"the reader saw the last new date, whole, without reopening: {seen} {err}"
    assert len(seen) >= 2


def test_a_reader_opened_before_the_first_update_says_empty_cache_then_serves_data(tmp_path):
    (tmp_path / "source").mkdir()
    market = build(tmp_path / "source")
    config = tmp_path / "fresh.toml"
    text = market.config.read_text().replace('path = "store"', f'path = "{tmp_path / "fresh-store"}"')
    config.write_text(text)
    reader = cheetah.open(config)
    with pytest.raises(cheetah.StoreError, match="empty cache"):
        reader.get_data("2019-01-01", "2030-01-01", ["close"])
    update = subprocess.run([cheetah_binary(), "--config", str(config), "update"], capture_output=True, text=True)
    assert update.returncode == 0, update.stderr
    df = reader.get_data("2019-01-01", "2030-01-01", ["close"])
    assert len(df) == len(market.tables["bar"]), "the same Cache serves the data once the store exists"


LAYER_READER = r"""
import json, sys
import cheetah
cache = cheetah.open(sys.argv[1])
for line in sys.stdin:
    df = cache.get_data("2019-01-01", "2030-01-01", ["close", "pe"])
    last = str(df.index.get_level_values("date").max().date())
    print(json.dumps({"last": last, "rows": len(df), "shared": df.attrs["cheetah"]["shared"] is not None,
                      "store_open": cache._inner.store_is_open()}), flush=True)
"""


def test_a_reader_served_by_the_layer_alone_sees_the_next_update_of_another_process(tmp_path):
    """A reader that has not opened the store trusts the layer only while the store's head names
    the version the layer saved: the writer's next commit, in another process, reaches it."""
    market = build(tmp_path)
    config = tmp_path / "layered.toml"
    config.write_text(f'{market.config.read_text()}\n[share]\npath = "{tmp_path / "layer"}"\nbudget = "64MiB"\n')
    # The fields the reader reads: a segment of every field would end at `fac`'s last date,
    # which the new date below does not reach.
    warm = [cheetah_binary(), "--config", str(config), "warm", "--start", "2019-01-01", "--end", "2030-01-01",
            "--cols", "close,pe", "--no-update"]
    done = subprocess.run(warm, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    def ask(reader: subprocess.Popen) -> dict:
        reader.stdin.write("read\n")
        reader.stdin.flush()
        line = reader.stdout.readline()
        assert line, reader.stderr.read()
        return json.loads(line)

    reader = subprocess.Popen([sys.executable, "-c", LAYER_READER, str(config)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = ask(reader)
    assert first == {"last": DAYS[-1].date().isoformat(), "rows": first["rows"], "shared": True,
                     "store_open": False}, first

    day = (DAYS[-1] + pd.offsets.BDay(1)).date().isoformat()
    db = sqlite3.connect(market.path)
    rows = [(day, f"S{j:02d}", 10.0 + j / 100) for j in range(30)]
    db.executemany("INSERT INTO bar (trade_date, symbol, close) VALUES (?, ?, ?)", rows)
    db.executemany("INSERT INTO val (trade_date, symbol, pe) VALUES (?, ?, ?)", [(d, s, 2 * c) for d, s, c in rows])
    db.commit()
    update = subprocess.run([cheetah_binary(), "--config", str(config), "update"], capture_output=True, text=True)
    assert update.returncode == 0, update.stderr

    second = ask(reader)
    assert second["last"] == day and second["rows"] == first["rows"] + 30, second
    assert second["store_open"], "the store's head moved past the layer's view: the store serves"
    reader.stdin.close()
    assert reader.wait(timeout=30) == 0, reader.stderr.read()

    # Published again, the layer saves the new view: a new process reads the new day from it alone.
    done = subprocess.run(warm, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    reader = subprocess.Popen([sys.executable, "-c", LAYER_READER, str(config)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert ask(reader) == {**second, "store_open": False}
    reader.stdin.close()
    assert reader.wait(timeout=30) == 0, reader.stderr.read()
