"""Versions on the bench market: what keeping every correction costs, and what reading the past
costs, beside ArcticDB's versions of the same data.

On a copy of the store as the backfill left it (`versions-base`: no chunk replaced yet):

1. **Storage.** 20 rounds of `cheetah update` with lookback 5. Before each, 1% of the cells of
   one of the source's last 5 dates are corrected in PostgreSQL (every field, its own 1% of the
   symbols); the other 4 dates re-fetch unchanged. The chunks a round replaces are weighed
   (`chunk-bytes`) before it runs; the store's growth is its chunks plus its history, from
   `cheetah status`. Then 3 rounds with nothing corrected, which must commit no version and
   write no history. A snapshot is taken before the first round and after each.
2. **Latest reads.** Q1, Q2 and Q3 cold and hot, interleaved (`ab.py`): the base store against
   the store with 20 rounds of history, the same build.
3. **Old reads.** Q1 at the snapshot of 20 rounds ago, cold, against a latest cold read; and
   ArcticDB, its market copied and given the same corrections with `update()` (a version per
   round), reading Q1 `as_of` its first version. Both are checked equal to the Q1 read before
   the rounds.
4. **Diff.** `Cache.diff` of the snapshots one round apart, over every date and field, checked
   to list exactly the cells that round corrected.
5. **Snapshots.** 1,000 created one after another in one process, then listed; ArcticDB's
   `snapshot` and `list_snapshots` the same.

The source's corrected dates are backed up first and put back at the end, and at the start
after a run that died.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import pandas as pd

import ab
from measure import ROOT, cold_runs, fmt_bytes, fmt_seconds, timed_child
from peers import check_equal, dsn_to_uri, run_arctic
from queries import QUERIES, TABLES

ROUNDS = 20
UNCHANGED = 3
LOOKBACK = 5
SHARE = 0.01
SNAPSHOTS = 1000
AB_RUNS = 9
BACKUP = "versions_bench_"
"""The prefix of the source's backup tables of the dates the rounds correct."""


def keep_base(store: Path, base: Path, description: str) -> None:
    """Copies a store the backfill just wrote: the baseline with no replaced chunks."""
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(store, base)
    base.with_suffix(".txt").write_text(description)


def report(python: str, work: Path, dsn: str, configs: tuple[Path, Path], description: str, arctic: Path,
           runs: int, cheetah: Path, log: Callable[[str], None]) -> list[str]:
    """The versions figures as Markdown table rows. `configs` are the base store's config and the
    corrected copy's, with lookback 5; `arctic` holds the market in ArcticDB."""
    base_config, config = configs
    base, store = store_of(base_config), store_of(config)
    if not (base.is_dir() and base.with_suffix(".txt").is_file() and base.with_suffix(".txt").read_text() == description):
        log("versions: backfilling the base store")
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run([str(cheetah), "--config", str(base_config), "update", "--no-progress"], check=True)
        base.with_suffix(".txt").write_text(description)
    log("versions: copying the base store and ArcticDB's market")
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(base, store)
    arctic_copy = work / "arctic-versions"
    shutil.rmtree(arctic_copy, ignore_errors=True)
    subprocess.run(["cp", "-a", "--sparse=always", str(arctic), str(arctic_copy)], check=True)

    import arcticdb
    import cheetah as cheetah_py

    library = arcticdb.Arctic(f"lmdb://{arctic_copy}?map_size=20GB").get_library("market")
    dates = [r for r in psql(dsn, f"SELECT DISTINCT trade_date FROM daily_bar ORDER BY 1 DESC LIMIT {LOOKBACK}").split()]
    _, q1_start, q1_end, q1_cols = QUERIES["Q1"]
    before = cheetah_py.open(config, share=False).get_data(q1_start, q1_end, q1_cols)

    def cli(*argv: str) -> str:
        return subprocess.run([str(cheetah), "--config", str(config), *argv], check=True, capture_output=True,
                              text=True).stdout

    lines: list[str] = []
    backup(dsn, dates)
    try:
        cli("snapshot", "create", "round-0")
        start = measured(cli)
        replaced = cells = 0
        update_times = []
        round_cells: dict[int, int] = {}
        for r in range(1, ROUNDS + 1):
            date = dates[(r - 1) % LOOKBACK]
            round_cells[r] = correct(dsn, date, r)
            cells += round_cells[r]
            weighed = json.loads(subprocess.run([str(ROOT / "target" / "release" / "chunk-bytes"), str(store), date],
                                                check=True, capture_output=True, text=True).stdout)
            replaced += weighed["values"]
            seconds, _, _ = timed_child([str(cheetah), "--config", str(config), "update", "--no-progress"])
            update_times.append(seconds)
            cli("snapshot", "create", f"round-{r}")
            arctic_apply(library, dsn, date)
            log(f"versions: round {r}: {round_cells[r]:,} cells of {date}, update {fmt_seconds(seconds)}")
        end = measured(cli)
        if end["latest"] - start["latest"] != ROUNDS * len(TABLES):
            raise SystemExit(f"versions: {ROUNDS} rounds each changing one date of {len(TABLES)} tables committed "
                             f"{end['latest'] - start['latest']} versions, not {ROUNDS * len(TABLES)}")
        quiet_times = []
        for _ in range(UNCHANGED):
            seconds, _, _ = timed_child([str(cheetah), "--config", str(config), "update", "--no-progress"])
            quiet_times.append(seconds)
        quiet = measured(cli)
        if (quiet["latest"], quiet["history"]) != (end["latest"], end["history"]):
            raise SystemExit(f"versions: {UNCHANGED} unchanged rounds moved the store from version {end['latest']} "
                             f"with {end['history']:,} history bytes to {quiet['latest']} with {quiet['history']:,}")
        growth = (end["chunks"] + end["history"]) - (start["chunks"] + start["history"])
        lines += [
            f"| storage: {ROUNDS} rounds, lookback {LOOKBACK}, each correcting 1% of one date's cells "
            f"({cells:,} cells in all) | versions {start['latest']} to {end['latest']}, one per table a round changed; the replaced chunks weighed "
            f"{fmt_bytes(replaced)}; the store grew {fmt_bytes(growth)} (chunks {fmt_bytes(end['chunks'] - start['chunks'])}, "
            f"history {fmt_bytes(end['history'] - start['history'])}): {growth / replaced:.2f}x (target <= 1.5x); "
            f"on disk before compaction {fmt_bytes(end['disk'] - start['disk'])} |",
            f"| ... an update round re-fetching 5 dates, one of them corrected | median "
            f"{fmt_seconds(statistics.median(update_times))}, min {fmt_seconds(min(update_times))} |",
            f"| ... {UNCHANGED} rounds with nothing corrected | no version, 0 bytes of history (target 0); median "
            f"{fmt_seconds(statistics.median(quiet_times))} |",
        ]

        log("versions: latest reads, the base store against the store with history")
        for path in (base, store):
            read_files(path)  # both stores in the page cache, as for every other cold read
        builds = {"no history": (python, base_config), f"{ROUNDS} rounds of history": (python, config)}
        # A cold read's pandas step is bimodal on this machine (its page faults), so more runs.
        for q, timings in ab.interleaved(builds, max(runs, AB_RUNS)).items():
            plain, kept = timings.values()
            def versus(a: list[float], b: list[float]) -> str:
                return (f"{fmt_seconds(statistics.median(a))} against {fmt_seconds(statistics.median(b))} median "
                        f"({statistics.median(a) / statistics.median(b):.2f}x), {fmt_seconds(min(a))} against "
                        f"{fmt_seconds(min(b))} min ({min(a) / min(b):.2f}x)")
            lines.append(f"| latest {q}, a store with {ROUNDS} rounds of history against none (same build; "
                         f"target <= 1.05x) | cold {versus(kept.cold, plain.cold)}; hot {versus(kept.hot, plain.hot)} |")

        log("versions: Q1 twenty rounds ago")
        pinned = cheetah_py.open(config, share=False).get_data(q1_start, q1_end, q1_cols, snapshot="round-0")
        pd.testing.assert_frame_equal(pinned, before, check_exact=True)
        del pinned
        latest = cold_runs(python, config, q1_start, q1_end, q1_cols, runs)
        old = cold_runs(python, config, q1_start, q1_end, q1_cols, runs, {"snapshot": "round-0"})
        latest_s = statistics.median(r["seconds"] for r in latest)
        old_s = statistics.median(r["seconds"] for r in old)
        arctic_old = run_arctic(arctic_copy, as_of=0)
        check_equal("ArcticDB as_of=0", "Q1", arctic_old(q1_start, q1_end, q1_cols), before)
        del before
        arctic_latest = run_arctic(arctic_copy)
        check_equal("ArcticDB after its updates", "Q1", arctic_latest(q1_start, q1_end, q1_cols),
                    cheetah_py.open(config, share=False).get_data(q1_start, q1_end, q1_cols))
        arctic_times = {"latest": [], "as_of": []}
        for _ in range(runs):
            for label, runner in (("latest", arctic_latest), ("as_of", arctic_old)):
                started = time.perf_counter()
                runner(q1_start, q1_end, q1_cols)
                arctic_times[label].append(time.perf_counter() - started)
        a_latest, a_old = (statistics.median(arctic_times[k]) for k in ("latest", "as_of"))
        lines += [
            f"| Q1 at the snapshot of {ROUNDS} rounds ago, new process | {fmt_seconds(old_s)} median, "
            f"{fmt_seconds(min(r['seconds'] for r in old))} min; latest {fmt_seconds(latest_s)}: "
            f"{old_s / latest_s:.2f}x a latest cold read (target <= 1.5x) |",
            f"| ... ArcticDB `read(as_of=)` of its first version, after {ROUNDS} `update()`s | {fmt_seconds(a_old)} "
            f"median; latest {fmt_seconds(a_latest)}: {a_old / a_latest:.2f}x its latest; Cheetah's old read "
            f"{a_old / old_s:.1f}x faster |",
        ]

        log("versions: diff of two snapshots one round apart")
        cache = cheetah_py.open(config, share=False)
        diff = cache.diff(f"round-{ROUNDS - 1}", f"round-{ROUNDS}")
        changed = diff["new"].astype("float64") - diff["old"].astype("float64").fillna(0.0)
        if len(diff) != round_cells[ROUNDS] or not ((changed - 1.0).abs() < 1e-6).all():
            raise SystemExit(f"versions: the diff of round {ROUNDS} lists {len(diff):,} cells, "
                             f"not the {round_cells[ROUNDS]:,} corrected by +1")
        diff_times = []
        for _ in range(runs):
            started = time.perf_counter()
            cache.diff(f"round-{ROUNDS - 1}", f"round-{ROUNDS}")
            diff_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        across = cache.diff("round-0", f"round-{ROUNDS}")
        across_s = time.perf_counter() - started
        lines += [
            f"| `Cache.diff` of two snapshots one round apart, 10 years x {sum(map(len, TABLES.values()))} fields "
            f"| {fmt_seconds(statistics.median(diff_times))} median, {fmt_seconds(min(diff_times))} min "
            f"for {len(diff):,} cells (target <= 1 s) |",
            f"| ... across all {ROUNDS} rounds | {fmt_seconds(across_s)} for {len(across):,} cells |",
        ]

        log(f"versions: {SNAPSHOTS:,} snapshots")
        created = []
        for i in range(SNAPSHOTS):
            started = time.perf_counter()
            cache.snapshot(f"bench-{i:04d}")
            created.append(time.perf_counter() - started)
        listed = []
        for _ in range(runs):
            started = time.perf_counter()
            count = len(cache.snapshots())
            listed.append(time.perf_counter() - started)
        command, _, _ = timed_child([str(cheetah), "--config", str(config), "snapshot", "list", "--json"])
        a_created = []
        for i in range(SNAPSHOTS):
            started = time.perf_counter()
            library.snapshot(f"bench-{i:04d}")
            a_created.append(time.perf_counter() - started)
        a_listed = []
        for _ in range(runs):
            started = time.perf_counter()
            library.list_snapshots()
            a_listed.append(time.perf_counter() - started)
        lines += [
            f"| create a snapshot, {SNAPSHOTS:,} one after another in one process | {fmt_seconds(statistics.median(created))} "
            f"median, {fmt_seconds(max(created))} max (target <= 50 ms); ArcticDB `snapshot` "
            f"{fmt_seconds(statistics.median(a_created))} median |",
            f"| list {count:,} snapshots, `Cache.snapshots()` | {fmt_seconds(statistics.median(listed))} median "
            f"(target <= 100 ms); `cheetah snapshot list --json`, a new process, {fmt_seconds(command)}; "
            f"ArcticDB `list_snapshots` {fmt_seconds(statistics.median(a_listed))} |",
        ]
    finally:
        restore(dsn)
    return lines


def store_of(config: Path) -> Path:
    """The store directory of a config written by `configs.write_config`."""
    for line in config.read_text().splitlines():
        if line.startswith("path = "):
            return config.parent / json.loads(line.split("=", 1)[1].strip())
    raise ValueError(f"{config} names no store path")


def read_files(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with path.open("rb") as f:
                while f.read(1 << 24):
                    pass


def psql(dsn: str, sql: str) -> str:
    return subprocess.run(["psql", dsn, "-Atqc", sql], check=True, capture_output=True, text=True).stdout


def backup(dsn: str, dates: list[str]) -> None:
    """Copies the source's rows on `dates`, after putting back a backup a dead run left."""
    restore(dsn)
    listed = ", ".join(f"'{d}'" for d in dates)
    psql(dsn, "".join(f"CREATE TABLE {BACKUP}{t} AS SELECT * FROM {t} WHERE trade_date IN ({listed});" for t in TABLES))


def restore(dsn: str) -> None:
    """Puts the backed-up dates back into the source, and drops the backup."""
    for t in TABLES:
        if psql(dsn, f"SELECT to_regclass('{BACKUP}{t}')").strip():
            psql(dsn, f"BEGIN; DELETE FROM {t} WHERE trade_date IN (SELECT DISTINCT trade_date FROM {BACKUP}{t});"
                      f"INSERT INTO {t} SELECT * FROM {BACKUP}{t}; DROP TABLE {BACKUP}{t}; COMMIT;")


def correct(dsn: str, date: str, round_: int) -> int:
    """Adds 1 to 1% of the cells of `date` in every table: each field its own symbols, chosen
    by a hash of the round. Returns the cells corrected."""
    statements, cells = [], 0
    for t, fields in TABLES.items():
        rows = int(psql(dsn, f"SELECT count(*) FROM {t} WHERE trade_date = '{date}'"))
        n = max(1, math.ceil(rows * SHARE))
        for f in fields:
            statements.append(
                f'UPDATE {t} SET "{f}" = COALESCE("{f}", 0) + 1 WHERE trade_date = \'{date}\' AND symbol IN '
                f"(SELECT symbol FROM {t} WHERE trade_date = '{date}' ORDER BY md5(symbol || '{f}/{round_}') LIMIT {n});")
            cells += n
    psql(dsn, "BEGIN;" + "".join(statements) + "COMMIT;")
    return cells


def measured(cli: Callable[..., str]) -> dict[str, int]:
    """The store's latest version, the bytes of its latest chunks and of its history, and its
    files on disk, from `cheetah status --json`."""
    status = json.loads(cli("status", "--json"))
    chunks = sum(t["key_bytes"] + sum(f["bytes"] for f in t["fields"]) for t in status["tables"])
    versions = status["versions"]
    return {"latest": versions["latest"], "chunks": chunks, "history": versions["history_bytes"],
            "disk": status["disk_bytes"]}


def arctic_apply(library, dsn: str, date: str) -> None:
    """Writes `date`'s rows of every table, as the source now holds them, into ArcticDB with
    `update()`: a new version of each table."""
    import connectorx as cx

    day = pd.Timestamp(date)
    for t, fields in TABLES.items():
        stored = library.read(t, date_range=(day, day)).data
        columns = ", ".join(f'"{f}"' for f in fields)
        fresh = cx.read_sql("postgresql://" + dsn_to_uri(dsn), f"SELECT symbol, {columns} FROM {t} WHERE trade_date = '{date}'",
                            return_type="pandas").set_index("symbol")
        patch = stored.copy()
        symbols = patch.index.get_level_values("symbol")
        for f in fields:
            patch[f] = fresh[f].reindex(symbols).to_numpy().astype(stored[f].dtype)
        library.update(t, patch)
