"""A small SQLite market with three daily tables, cached once for the whole session."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cheetah

DAYS = pd.bdate_range("2020-01-01", periods=40)
SYMBOLS = [f"{c}{i:02d}" for i, c in enumerate("QWERTYUIOPASDFGHJKLZXCVBNM" * 2)][:45]


@dataclass
class Market:
    path: Path
    config: Path
    tables: dict[str, pd.DataFrame]  # each indexed by (date, symbol), as SQLite holds it

    def source(self, table: str) -> pd.DataFrame:
        return self.tables[table]


def _keys(rng: np.random.Generator, days, symbols, keep: float) -> pd.MultiIndex:
    pairs = [(d, s) for d in days for s in symbols if rng.random() < keep]
    return pd.MultiIndex.from_tuples(pairs, names=["date", "symbol"])


def build(tmp: Path) -> Market:
    rng = np.random.default_rng(11)
    bar_keys = _keys(rng, DAYS, SYMBOLS[:40], 0.9)
    n = len(bar_keys)
    bar = pd.DataFrame(
        {
            "close": np.round(rng.uniform(1, 100, n), 2) + 1e-9 * rng.integers(0, 1000, n),
            "volume": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 3_000_000_000_000, n)), dtype="Int64"),
        },
        index=bar_keys,
    )
    # valuation covers most bar keys plus symbols bar never has: the outer union matters.
    val_keys = _keys(rng, DAYS, SYMBOLS[5:45], 0.85)
    m = len(val_keys)
    val = pd.DataFrame(
        {
            "pe": np.where(rng.random(m) < 0.15, np.nan, rng.normal(15, 5, m)),
            "total_mv": rng.lognormal(20, 2, m),
            "rating": np.where(rng.random(m) < 0.2, None, rng.choice(["A", "BB", "CCC"], m)).astype(object),
            "shared": rng.normal(0, 1, m),
        },
        index=val_keys,
    )
    fac_keys = _keys(rng, DAYS[25:], SYMBOLS[:45], 0.7)
    k = len(fac_keys)
    fac = pd.DataFrame(
        {
            "f0": rng.normal(0, 1, k),
            "f1": np.where(rng.random(k) < 0.3, np.nan, rng.normal(0, 1, k)),
            "flag": pd.array(np.where(rng.random(k) < 0.2, None, rng.random(k) < 0.5), dtype="boolean"),
            "shared": rng.normal(0, 1, k),
        },
        index=fac_keys,
    )
    tables = {"bar": bar, "val": val, "fac": fac}
    path = tmp / "source.db"
    db = sqlite3.connect(path)
    types = {"close": "REAL", "volume": "BIGINT", "pe": "REAL", "total_mv": "REAL", "rating": "TEXT",
             "shared": "REAL", "f0": "REAL", "f1": "REAL", "flag": "BOOLEAN"}
    for name, frame in tables.items():
        columns = ", ".join(f"{c} {types[c]}" for c in frame.columns)
        db.execute(f"CREATE TABLE {name} (trade_date DATE, symbol TEXT, {columns})")
        rows = [
            (d.date().isoformat(), s, *[None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in values])
            for (d, s), values in zip(frame.index, frame.itertuples(index=False))
        ]
        db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * (len(frame.columns) + 2))})", rows)
    db.commit()
    db.close()
    config = tmp / "cheetah.toml"
    blocks = "\n".join(
        f'[[table]]\nname = "{name}"\ndate = "trade_date"\nsymbol = "symbol"\nfields = ["*"]\nstart = "2019-12-01"\n'
        for name in tables
    )
    config.write_text(
        f'[store]\npath = "store"\nhot_cache = "64MiB"\n\n[source]\n'
        f'odbc = "Driver={{SQLite3}};Database={path};BigInt=1;NoCreat=1;"\n\n{blocks}'
    )
    writer = cheetah.open(config, writer=True)
    writer.update()
    del writer  # releases the write lock
    return Market(path, config, tables)


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory) -> Market:
    return build(tmp_path_factory.mktemp("market"))


@pytest.fixture(scope="session")
def cache(market: Market) -> cheetah.Cache:
    return cheetah.open(market.config)
