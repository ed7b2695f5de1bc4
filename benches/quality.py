"""The data-quality bench: `cheetah quality` over the whole store (every cached field, every date)
in a new process, against the same checks in pandas over the Parquet copy: rows per date against
the previous and the typical date, missing share, stale share, and new outliers beyond 8 robust
deviations. Both count their flags, and the counts are shown side by side. The pandas outliers
are the linear, one-spread rule: Cheetah also judges a skewed positive field on the log scale,
each side of the median by its own spread, and flags tenfold moves, which quiets the ratios a
linear rule flags by the thousand; the counts differ by that."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from measure import fmt_seconds
from queries import TABLES

HEAD = """The quality report (`cheetah quality --json`, a new process each run, over every date of the store's
54 fields), against the same checks in pandas over the Parquet files:

| runner | median | min | flags | against pandas |
|---|---|---|---|---|"""

K, WINDOW, DROP, MISSING_JUMP, STALE_JUMP = 8.0, 20, 0.1, 0.1, 0.3


def pandas_report(parquet: Path) -> int:
    """The report's checks, vectorised in pandas; returns how many metrics are flagged. A
    symbol's previous value is its previous row, as Cheetah's is its previous date's row."""
    flags = 0
    for table, fields in TABLES.items():
        frame = pd.read_parquet(parquet / f"{table}.parquet", columns=["date", "symbol", *fields])
        frame = frame.sort_values(["symbol", "date"], kind="stable")
        date, symbol = frame["date"], frame["symbol"]
        rows = frame.groupby("date").size()
        previous = rows.shift(1)
        typical = previous.rolling(WINDOW, min_periods=1).median()
        flags += int(((rows < (1 - DROP) * previous) | (rows < (1 - DROP) * typical)).sum())
        for field in fields:
            values = frame[field]
            missing = values.isna().groupby(date).mean()
            flags += int((missing - missing.shift(1).rolling(WINDOW, min_periods=1).median() >= MISSING_JUMP).sum())
            before = values.groupby(symbol).shift()
            compared = (values.notna() & before.notna()).groupby(date).sum()
            stale = (values == before).groupby(date).sum() / compared
            stale = stale[compared >= 10]
            flags += int((stale - stale.shift(1).rolling(WINDOW, min_periods=1).median() >= STALE_JUMP).sum())
            median = values.groupby(date).transform("median")
            spread = 1.4826 * (values - median).abs().groupby(date).transform("median")
            deviations = (values - median).abs() / spread.where(spread > 0)
            flags += int((new_outliers(frame, deviations).groupby(date).sum() > 0).sum())
    return flags


def new_outliers(frame: pd.DataFrame, deviations: pd.Series) -> pd.Series:
    """Outliers whose symbol was within K/2 on each of the field's previous WINDOW dates with a
    spread (dates are numbered per field; a symbol absent on a date is not far on it)."""
    measured = deviations.notna()
    dates = frame.loc[measured, "date"].drop_duplicates().sort_values()
    number = pd.Series(range(len(dates)), index=dates.to_numpy())
    ordinal = frame["date"].map(number)
    far_on = ordinal.where(deviations > K / 2)
    # The last date before this one on which the symbol was far out.
    last_far = far_on.groupby(frame["symbol"]).transform(lambda s: s.shift().ffill())
    seen = measured.groupby(frame["symbol"]).cumsum().gt(measured.astype(int))
    recent = (ordinal - last_far) <= WINDOW
    return (deviations > K) & seen & ~recent.fillna(False)


def timed(run: Callable[[], int], runs: int) -> tuple[list[float], int]:
    times, flags = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        flags = run()
        times.append(time.perf_counter() - started)
    return times, flags


def report(cheetah: Path, config: Path, parquet: Path, runs: int, log: Callable[[str], None]) -> list[str]:
    def run_cheetah() -> int:
        out = subprocess.run([str(cheetah), "--config", str(config), "quality", "--json"],
                             check=True, capture_output=True, text=True).stdout
        return len(json.loads(out)["flags"])

    log("quality: cheetah quality --json")
    ours, our_flags = timed(run_cheetah, runs)
    log(f"quality: Cheetah median {fmt_seconds(statistics.median(ours))}")
    log("quality: the same checks in pandas")
    theirs, their_flags = timed(lambda: pandas_report(parquet), max(1, runs // 3))
    log(f"quality: pandas median {fmt_seconds(statistics.median(theirs))}")
    speedup = statistics.median(theirs) / statistics.median(ours)
    return [
        f"| Cheetah, `cheetah quality --json` (target <= 10 s) | {fmt_seconds(statistics.median(ours))} | "
        f"{fmt_seconds(min(ours))} | {our_flags:,} | {speedup:.1f}x faster |",
        f"| pandas over Parquet, the same checks (linear outliers) | {fmt_seconds(statistics.median(theirs))} | "
        f"{fmt_seconds(min(theirs))} | {their_flags:,} | |",
    ]
