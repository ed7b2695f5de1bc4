"""A seeded synthetic stock market, by default 5,000 symbols over 10 years of trading days.

Symbols list, delist and get suspended; `daily_bar` has a row for every listed (date, symbol),
with an adjustment factor that steps up on dividends and splits; on a suspended day the row
keeps the last price and its `volume`, `amount` and `turnover` are NULL, so the integer
`volume` has nulls, as vendors that keep suspended rows deliver it; `valuation` covers about
97% of the trading keys; `factors` starts in the 8th year; `fundamentals` holds
quarterly reports keyed by announcement date; `index_member` holds the membership intervals of
two indexes rebalanced twice a year by market value: `000300.SH` (the largest 300, or 30% of
the symbols in a smaller market) and `000905.SH` (the next 500, or 50%).

    python benches/market.py sqlite demo/market.db --symbols 800 --years 3
    python benches/market.py postgres "host=127.0.0.1 user=postgres dbname=test" --years 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import time
from dataclasses import dataclass, field

import numpy as np

START = dt.date(2015, 1, 5)
BAR_FIELDS = ["open", "high", "low", "close", "volume", "amount", "adj_factor", "turnover"]
VALUATION_FIELDS = ["pe", "pb", "ps", "total_mv", "circ_mv", "dv_ratio"]
FACTOR_FIELDS = [f"f{i:02d}" for i in range(40)]
FUNDAMENTAL_FIELDS = ["revenue", "net_profit"]


@dataclass
class Table:
    name: str
    dates: np.ndarray  # datetime64[D]
    symbols: np.ndarray  # str
    columns: dict[str, np.ndarray]  # float64, int64, str or datetime64; NaN and NaT for null
    date_col: str = "trade_date"
    symbol_col: str = "symbol"
    #: Where an integer column is null: a mask per column that has any.
    nulls: dict[str, np.ndarray] = field(default_factory=dict)

    def nullable(self, name: str) -> object:
        """Column `name` with its nulls: a pandas nullable integer array for an integer column
        with a mask, else the numpy array."""
        values = self.columns[name]
        if name not in self.nulls:
            return values
        import pandas as pd

        return pd.arrays.IntegerArray(values, self.nulls[name].copy())

    def __len__(self) -> int:
        return len(self.dates)


def trading_days(years: int) -> np.ndarray:
    days = np.arange(np.datetime64(START), np.datetime64(START) + np.timedelta64(365 * years, "D"))
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    return days[weekday < 5]


def symbol_names(n: int) -> np.ndarray:
    return np.array([f"{i:06d}.{'SH' if i % 2 else 'SZ'}" for i in range(1, n + 1)])


def generate(symbols: int = 5000, years: int = 10, seed: int = 7) -> dict[str, Table]:
    rng = np.random.default_rng(seed)
    days = trading_days(years)
    n_days, n_sym = len(days), symbols
    names = symbol_names(n_sym)

    # Listings: 70% before the first day, the rest during the period; 10% delist later.
    listed_at = np.where(rng.random(n_sym) < 0.7, 0, rng.integers(0, n_days, n_sym))
    delisted_at = np.where(rng.random(n_sym) < 0.1, rng.integers(0, n_days, n_sym), n_days)
    delisted_at = np.maximum(delisted_at, listed_at + 20)
    t = np.arange(n_days)[:, None]
    listed = (t >= listed_at[None, :]) & (t < delisted_at[None, :])
    suspended = rng.random((n_days, n_sym)) < 0.01
    present = listed & ~suspended

    # Prices: a geometric random walk per symbol.
    returns = rng.normal(0.0003, 0.02, (n_days, n_sym))
    close = 10.0 * np.exp(np.cumsum(returns, axis=0)) * rng.uniform(0.5, 20, n_sym)[None, :]
    open_ = close * np.exp(rng.normal(0, 0.005, close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, close.shape)))
    volume = rng.integers(1_000, 50_000_000, close.shape, dtype=np.int64)
    amount = volume * close
    adj_factor = np.cumprod(np.where(rng.random(close.shape) < 0.002, 1.1, 1.0), axis=0)
    shares = rng.uniform(1e8, 1e10, n_sym)[None, :]
    turnover = volume / shares * 100

    # A suspended day keeps its row: the prices of the last trading day, no volume.
    last_traded = np.maximum.accumulate(np.where(present, t, 0), axis=0)
    sym = np.arange(n_sym)[None, :]
    open_, high, low, close = (np.where(suspended, close[last_traded, sym], p) for p in (open_, high, low, close))
    bi, bs = np.nonzero(listed)  # row-major: ordered by date, then symbol
    halted = suspended[bi, bs]
    bar = Table("daily_bar", days[bi], names[bs], {
        "open": open_[bi, bs].round(2), "high": high[bi, bs].round(2), "low": low[bi, bs].round(2),
        "close": close[bi, bs].round(2), "volume": np.where(halted, 0, volume[bi, bs]),
        "amount": np.where(halted, np.nan, amount[bi, bs]), "adj_factor": adj_factor[bi, bs],
        "turnover": np.where(halted, np.nan, turnover[bi, bs]),
    }, nulls={"volume": halted})

    ti, si = np.nonzero(present)

    keep = rng.random(len(ti)) < 0.97
    vi, vs = ti[keep], si[keep]
    total_mv = (close * shares)[vi, vs]
    earnings = rng.normal(0.5, 0.3, n_sym)[vs]
    valuation = Table("valuation", days[vi], names[vs], {
        "pe": close[vi, vs] / earnings,
        "pb": rng.lognormal(0.5, 0.5, len(vi)),
        "ps": rng.lognormal(1.0, 0.7, len(vi)),
        "total_mv": total_mv,
        "circ_mv": total_mv * rng.uniform(0.3, 1.0, len(vi)),
        "dv_ratio": np.where(rng.random(len(vi)) < 0.2, np.nan, rng.uniform(0, 5, len(vi))),
    })

    first_factor_day = np.searchsorted(days, days[0] + np.timedelta64(365 * 7, "D"))
    fk = ti >= first_factor_day
    fi, fs = ti[fk], si[fk]
    factors = Table("factors", days[fi], names[fs],
                    {f: rng.normal(0, 1, len(fi)) for f in FACTOR_FIELDS})

    fundamentals = quarterly_reports(rng, names, days)
    members = index_members(names, days, close * shares, listed)
    return {t.name: t for t in (bar, valuation, factors, fundamentals, members)}


#: The indexes of `index_member`: code, and the ranks by market value they hold.
INDEXES = {"000300.SH": (0, 300), "000905.SH": (300, 800)}
REBALANCE_DAYS = 126


def index_members(names: np.ndarray, days: np.ndarray, market_value: np.ndarray, listed: np.ndarray) -> Table:
    """Membership intervals `[in_date, out_date)` of each index: at each rebalance (every half
    year) the listed symbols ranked by market value fill the index's ranks; a symbol leaves at
    a rebalance or on delisting. `out_date` is NaT while still a member."""
    n_days, n_sym = listed.shape
    scale = min(1.0, n_sym / 1000)
    rows: list[tuple[str, str, np.datetime64, np.datetime64]] = []
    for code, (first, last) in INDEXES.items():
        lo, hi = int(first * scale), int(last * scale)
        entered: dict[int, int] = {}
        for t in range(0, n_days, REBALANCE_DAYS):
            value = np.where(listed[t], market_value[t], -np.inf)
            ranked = np.argsort(-value, kind="stable")[lo:hi]
            chosen = {int(s) for s in ranked if listed[t, s]}
            for s in [s for s in entered if s not in chosen]:
                rows.append((code, names[s], days[entered.pop(s)], days[t]))
            for s in chosen:
                entered.setdefault(s, t)
        for s, t in entered.items():
            gone = np.nonzero(~listed[t:, s])[0]
            out = days[t + gone[0]] if len(gone) else np.datetime64("NaT")
            rows.append((code, names[s], days[t], out))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    codes, symbols, starts, ends = (np.array(column) for column in zip(*rows))
    return Table("index_member", starts.astype("datetime64[D]"), symbols,
                 {"out_date": ends.astype("datetime64[D]"), "index_code": codes},
                 date_col="in_date", symbol_col="con_code")


def quarterly_reports(rng: np.random.Generator, names: np.ndarray, days: np.ndarray) -> Table:
    """One report per symbol and quarter, announced 20-110 days after the quarter ends. About 3%
    are filed late, on the day the next quarter's report is announced, so some announcement
    dates carry two reports that `report_period` orders."""
    first, last = days[0] - np.timedelta64(200, "D"), days[-1]
    years = range(int(str(first)[:4]), int(str(last)[:4]) + 1)
    quarters = np.array([np.datetime64(f"{y}-{md}") for y in years for md in ("03-31", "06-30", "09-30", "12-31")])
    quarters = quarters[(quarters >= first) & (quarters <= last)]
    n_sym, n_q = len(names), len(quarters)
    announced = quarters[None, :] + rng.integers(20, 110, (n_sym, n_q)).astype("timedelta64[D]")
    late = rng.random((n_sym, n_q)) < 0.03
    announced[:, :-1] = np.where(late[:, :-1], announced[:, 1:], announced[:, :-1])
    sym = np.repeat(names, n_q)
    period = np.tile(quarters, n_sym)
    announced = announced.ravel()
    order = np.lexsort((period, sym, announced))
    n = n_sym * n_q
    return Table("fundamentals", announced[order], sym[order], {
        "report_period": period[order],
        "revenue": rng.lognormal(20, 1.5, n)[order],
        "net_profit": rng.normal(1e8, 5e8, n)[order],
    })


def sql_type(values: np.ndarray) -> str:
    if values.dtype.kind == "M":
        return "DATE"
    if values.dtype.kind == "U":
        return "TEXT"
    return "BIGINT" if values.dtype.kind == "i" else "DOUBLE PRECISION"


def date_col(table: Table) -> str:
    return "ann_date" if table.name == "fundamentals" else table.date_col


def write_sqlite(tables: dict[str, Table], path: str) -> None:
    db = sqlite3.connect(path)
    for table in tables.values():
        cols = list(table.columns)
        db.execute(f'DROP TABLE IF EXISTS "{table.name}"')
        decl = ", ".join(f'"{c}" {sql_type(table.columns[c])}' for c in cols)
        db.execute(f'CREATE TABLE "{table.name}" ({date_col(table)} DATE NOT NULL, {table.symbol_col} TEXT NOT NULL, {decl})')
        date_text = table.dates.astype(str)
        converted = [table.columns[c].astype(str).astype(object) if table.columns[c].dtype.kind == "M"
                     else table.columns[c].astype(object) for c in cols]
        for c, values in zip(cols, converted):
            values[[(isinstance(v, float) and v != v) or v == "NaT" for v in values]] = None
            if c in table.nulls:
                values[table.nulls[c]] = None
        rows = zip(date_text.tolist(), table.symbols.tolist(), *[v.tolist() for v in converted])
        marks = ", ".join("?" * (len(cols) + 2))
        db.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', rows)
        db.execute(f'CREATE INDEX "{table.name}_date" ON "{table.name}" ({date_col(table)})')
    db.commit()
    db.close()


MARKER = "cheetah_bench_market"


def postgres_marker(dsn: str) -> str | None:
    """What `write_postgres` recorded as loaded into `dsn`, or None when nothing complete is there."""
    import subprocess

    probe = subprocess.run(["psql", dsn, "-Atqc", f"SELECT description FROM {MARKER}"],
                           capture_output=True, text=True)
    return probe.stdout.strip() or None if probe.returncode == 0 else None


def write_postgres(tables: dict[str, Table], dsn: str, description: str = "") -> None:
    """Loads the tables through `psql ... COPY FROM STDIN`, which needs no Python driver, and
    records `description` in a marker table last, so an interrupted load is never reused."""
    import subprocess

    import pandas as pd

    subprocess.run(["psql", dsn, "-qc", f"DROP TABLE IF EXISTS {MARKER}"], check=True)
    for table in tables.values():
        dates, symbol = date_col(table), table.symbol_col
        cols = list(table.columns)
        decl = ", ".join(f'"{c}" {sql_type(table.columns[c])}' for c in cols)
        ddl = (f'DROP TABLE IF EXISTS "{table.name}"; '
               f'CREATE TABLE "{table.name}" ({dates} DATE NOT NULL, {symbol} TEXT NOT NULL, {decl});')
        subprocess.run(["psql", dsn, "-qc", ddl], check=True)
        frame = pd.DataFrame({dates: table.dates, symbol: table.symbols, **{c: table.nullable(c) for c in cols}})
        copy = f'COPY "{table.name}" FROM STDIN WITH (FORMAT csv)'
        with subprocess.Popen(["psql", dsn, "-qc", copy], stdin=subprocess.PIPE) as psql:
            for start in range(0, len(frame), 500_000):
                psql.stdin.write(frame.iloc[start:start + 500_000].to_csv(index=False, header=False).encode())
            psql.stdin.close()
            if psql.wait() != 0:
                raise SystemExit(f"loading {table.name} into PostgreSQL failed")
        key = f"({dates}, {symbol})"
        index = "UNIQUE INDEX" if table.name in ("daily_bar", "valuation", "factors") else "INDEX"
        subprocess.run(["psql", dsn, "-qc", f'CREATE {index} ON "{table.name}" {key}; ANALYZE "{table.name}";'],
                       check=True)
    escaped = description.replace("'", "''")
    subprocess.run(["psql", dsn, "-qc", f"CREATE TABLE {MARKER} AS SELECT '{escaped}'::text AS description"],
                   check=True)


def describe(symbols: int, years: int, seed: int) -> str:
    return f"symbols={symbols} years={years} seed={seed} suspended-rows"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["sqlite", "postgres"])
    parser.add_argument("path", help="the SQLite file, or a libpq connection string for PostgreSQL")
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tables = generate(args.symbols, args.years, args.seed)
    if args.target == "sqlite":
        write_sqlite(tables, args.path)
    else:
        write_postgres(tables, args.path, describe(args.symbols, args.years, args.seed))
    sizes = ", ".join(f"{t.name} {len(t):,} rows" for t in tables.values())
    print(f"generated {args.symbols} symbols x {args.years} years into {args.path}: {sizes} "
          f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
