"""Cheetah with 10,000 cached fields: open, status, one new date, and reads of 4 and 50 fields.

PostgreSQL holds the source: ten 1,000-column tables of doubles (a row of more than about 1,000
doubles does not fit PostgreSQL's 8 kB page), filled by the server itself. `scale_0` covers a
year of weekdays; the other nine its last 20 dates. `make bench-scale` runs this; the report
goes to `bench/scale.md`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare import create_database, log
from configs import write_config
from measure import ROOT, cheetah_bin

TABLES = 10
FIELDS_PER_TABLE = 1000
SYMBOLS = 200
SHORT_DATES = 20
FIRST = "2024-01-01"
LAST = "2024-12-31"
MARKER = "scale_marker"


def psql(dsn: str, sql: str) -> str:
    return subprocess.run(["psql", dsn, "-Atqc", sql], check=True, capture_output=True, text=True).stdout.strip()


def fields(t: int) -> list[str]:
    return [f"s{t}_{i:04d}" for i in range(FIELDS_PER_TABLE)]


def ensure_source(dsn: str) -> None:
    description = f"{TABLES}x{FIELDS_PER_TABLE} fields, {SYMBOLS} symbols, {FIRST}..{LAST}"
    if subprocess.run(["psql", dsn, "-Atqc", f"SELECT description FROM {MARKER}"],
                      capture_output=True, text=True).stdout.strip() == description:
        return
    psql(dsn, f"DROP TABLE IF EXISTS {MARKER}")
    for t in range(TABLES):
        log(f"creating scale_{t}: {FIELDS_PER_TABLE} fields")
        columns = ", ".join(f"{f} DOUBLE PRECISION" for f in fields(t))
        values = ", ".join("random()" for _ in fields(t))
        days = (f"SELECT d::date AS d FROM generate_series('{FIRST}'::date, '{LAST}'::date, '1 day') d "
                f"WHERE extract(isodow FROM d) < 6")
        if t > 0:
            days = f"SELECT d FROM ({days}) w ORDER BY d DESC LIMIT {SHORT_DATES}"
        psql(dsn, f"DROP TABLE IF EXISTS scale_{t}; CREATE TABLE scale_{t} (trade_date DATE NOT NULL, "
                  f"symbol TEXT NOT NULL, {columns}); "
                  f"INSERT INTO scale_{t} SELECT days.d, 'X' || lpad(s::text, 4, '0'), {values} "
                  f"FROM ({days}) days CROSS JOIN generate_series(0, {SYMBOLS - 1}) s; "
                  # Research tables are indexed by their key, which the date-span queries use.
                  f"CREATE UNIQUE INDEX ON scale_{t} (trade_date, symbol); ANALYZE scale_{t};")
    psql(dsn, f"CREATE TABLE {MARKER} (description TEXT); INSERT INTO {MARKER} VALUES ('{description}')")


def add_date(dsn: str, day: str) -> None:
    """One new date for every table, as the day's load would bring it."""
    for t in range(TABLES):
        values = ", ".join("random()" for _ in fields(t))
        psql(dsn, f"DELETE FROM scale_{t} WHERE trade_date >= '{day}'; "
                  f"INSERT INTO scale_{t} SELECT '{day}', 'X' || lpad(s::text, 4, '0'), {values} "
                  f"FROM generate_series(0, {SYMBOLS - 1}) s")


def remove_dates_after(dsn: str, day: str) -> None:
    for t in range(TABLES):
        psql(dsn, f"DELETE FROM scale_{t} WHERE trade_date > '{day}'")


def scale_config(work: Path, dsn: str) -> Path:
    # Windows of 20,000 rows bound the update's memory at 1,000 doubles a row.
    return write_config(work, dsn, name="scale", tables={f"scale_{t}": ["*"] for t in range(TABLES)}, lookback=0,
                        start=FIRST, source_extra="query_rows = 20000", hot_cache="2GiB")


def seconds_of(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


PROBE = r"""
import json, statistics, sys, time
t = time.perf_counter()
import cheetah
imported = time.perf_counter() - t
# `import cheetah` leaves pyarrow and pandas to the first call that needs them; a researcher's
# process has them loaded, and measure.py's COLD loads them before its clock too.
import pandas, pyarrow
t = time.perf_counter()
cache = cheetah.open(sys.argv[1])
opened = time.perf_counter() - t
result = {"import": imported, "open": opened}
cols4, cols50 = json.loads(sys.argv[2]), json.loads(sys.argv[3])
for name, cols in (("4", cols4), ("50", cols50)):
    t = time.perf_counter()
    df = cache.get_data("2024-01-01", "2024-12-31", cols)
    result[f"cold{name}"] = time.perf_counter() - t
    times = []
    for _ in range(7):
        del df
        t = time.perf_counter()
        df = cache.get_data("2024-01-01", "2024-12-31", cols)
        times.append(time.perf_counter() - t)
    result[f"hot{name}"] = statistics.median(times[2:])
    result[f"rows{name}"] = len(df)
print(json.dumps(result))
"""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(ROOT / "bench"))
    parser.add_argument("--pg", default="host=127.0.0.1 user=postgres dbname=cheetah_scale")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    create_database(args.pg)
    ensure_source(args.pg)
    remove_dates_after(args.pg, LAST)
    config = scale_config(work, args.pg)
    shutil.rmtree(work / "scale-store", ignore_errors=True)
    cheetah = [str(cheetah_bin()), "--config", str(config)]

    log("backfill of 10,000 fields")
    backfill = seconds_of(cheetah + ["update", "--no-progress"])
    status_runs = [seconds_of(cheetah + ["status", "--json"]) for _ in range(3)]
    status = json.loads(subprocess.run(cheetah + ["status", "--json"], check=True, capture_output=True, text=True).stdout)
    cached = sum(len(t["fields"]) for t in status["tables"])
    assert cached == TABLES * FIELDS_PER_TABLE, cached

    log("one new date for every field")
    add_date(args.pg, "2025-01-02")
    new_date = seconds_of(cheetah + ["update", "--no-progress"])
    nothing_new = seconds_of(cheetah + ["update", "--no-progress"])
    remove_dates_after(args.pg, LAST)
    # Back to the year, so the reads below cover exactly 2024 either way.
    subprocess.run(cheetah + ["update", "--no-progress"], check=True, capture_output=True)

    log("reads of 4 and 50 fields over the year")
    cols4, cols50 = fields(0)[:4], fields(0)[100:150]
    probes = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", PROBE, str(config), json.dumps(cols4), json.dumps(cols50)],
                             check=True, capture_output=True, text=True).stdout
        probes.append(json.loads(out))
    med = {k: statistics.median(p[k] for p in probes) for k in probes[0]}

    rows = [
        ("fields cached", f"{cached:,}", ""),
        ("backfill (10 tables, 86M values)", f"{backfill:.1f} s", ""),
        ("open (`cheetah.open`, new process)", f"{med['open'] * 1e3:.0f} ms", "< 1 s"),
        ("`cheetah status --json` (whole process)", f"{statistics.median(status_runs):.2f} s", "< 2 s"),
        ("update adding one date to all 10,000 fields", f"{new_date:.2f} s", "< 10 s"),
        ("update with nothing new", f"{nothing_new:.2f} s", ""),
        ("get_data, 4 fields, 1 year, hot", f"{med['hot4'] * 1e3:.1f} ms ({med['hot4'] * 1e3 / 4:.2f} ms/field)", ""),
        ("get_data, 50 fields, 1 year, hot", f"{med['hot50'] * 1e3:.1f} ms ({med['hot50'] * 1e3 / 50:.2f} ms/field)",
         "per field ≤ 4-field read"),
        ("get_data, 4 fields, 1 year, cold", f"{med['cold4'] * 1e3:.1f} ms ({med['cold4'] * 1e3 / 4:.2f} ms/field)", ""),
        ("get_data, 50 fields, 1 year, cold", f"{med['cold50'] * 1e3:.1f} ms ({med['cold50'] * 1e3 / 50:.2f} ms/field)",
         "per field ≤ 4-field read"),
    ]
    report = [f"Scale: {TABLES} tables x {FIELDS_PER_TABLE} fields, {SYMBOLS} symbols; rows per read: "
              f"{med['rows4']:,.0f}; {time.strftime('%Y-%m-%d')}, median of 3 processes.", "",
              "| measure | Cheetah | target |", "|---|---|---|"]
    report += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(report) + "\n"
    (work / "scale.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
