#!/usr/bin/env bash
# `make demo`: generate a seeded SQLite market, cache it with Cheetah, and query it.
set -euo pipefail
cd "$(dirname "$0")/.."
CHEETAH=$(realpath "${1:-target/release/cheetah}")
DEMO=$(pwd)/demo
mkdir -p "$DEMO"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A market generated before the generator wrote index memberships is made again.
has_members() { .venv/bin/python -c 'import sqlite3, sys; sys.exit(not sqlite3.connect(sys.argv[1]).execute("SELECT 1 FROM sqlite_master WHERE name = ?", ("index_member",)).fetchone())' "$1"; }
if [ ! -f "$DEMO/market.db" ] || ! has_members "$DEMO/market.db"; then
  step "Generating a seeded market into $DEMO/market.db (SQLite: no server needed)"
  .venv/bin/python benches/market.py sqlite "$DEMO/market.db.tmp" --symbols 800 --years 3
  mv "$DEMO/market.db.tmp" "$DEMO/market.db"
fi

# The shared layer lives on a tmpfs when there is one.
SHARE=/dev/shm/cheetah-demo-$(id -u)
[ -d /dev/shm ] && [ -w /dev/shm ] || SHARE="$DEMO/share"

cat > "$DEMO/cheetah.toml" <<TOML
# Written by scripts/demo.sh.
[store]
path = "store"
hot_cache = "512MiB"

[source]
odbc = "Driver={SQLite3};Database=$DEMO/market.db;BigInt=1;NoCreat=1;"

[share]
path = "$SHARE"
budget = "1GiB"

# Reads for other processes and machines over Arrow Flight; port 0 picks a free one.
[flight]
listen = "127.0.0.1:0"

[[table]]
name = "daily_bar"
date = "trade_date"
symbol = "symbol"
fields = ["open", "high", "low", "close", "volume", "amount", "adj_factor"]
start = "2015-01-01"

# Prices adjusted at read time: the store keeps raw prices, so updates stay incremental.
[table.adjust]
factor = "adj_factor"
fields = ["open", "high", "low", "close"]

[[table]]
name = "valuation"
date = "trade_date"
symbol = "symbol"
fields = ["*"]
start = "2015-01-01"

[[table]]
name = "fundamentals"
kind = "asof"
date = "ann_date"
symbol = "symbol"
order_by = "report_period"
fields = ["revenue", "net_profit"]
start = "2014-01-01"

# Index membership intervals, read whole by every update: a symbol is a member on a date when
# in_date <= date < out_date (NULL: still a member).
[[universe]]
name = "csi300"
table = "index_member"
symbol = "con_code"
start = "in_date"
end = "out_date"
where = "index_code = '000300.SH'"

[[universe]]
name = "csi500"
table = "index_member"
symbol = "con_code"
start = "in_date"
end = "out_date"
where = "index_code = '000905.SH'"
TOML
export CHEETAH_CONFIG="$DEMO/cheetah.toml"
rm -rf "$DEMO/store" "$SHARE"  # each demo starts from an empty cache

step "cheetah update   (first run: backfills every table from its start date)"
time "$CHEETAH" update

step "cheetah update   (again: re-fetches only the last 5 cached dates of each table)"
time "$CHEETAH" update

step "cheetah status"
"$CHEETAH" status

step "cheetah get --start 2016-03-01 --end 2016-03-31 --cols close,volume,pe,total_mv --symbols 000001.SH,000002.SZ"
"$CHEETAH" get --start 2016-03-01 --end 2016-03-31 --cols close,volume,pe,total_mv --symbols 000001.SH,000002.SZ

step "cheetah get  (three years of four fields from two tables, to Parquet)"
time "$CHEETAH" get --start 2015-01-01 --end 2017-12-31 --cols close,volume,pe,total_mv --out "$DEMO/q1.parquet"

step "Python: cheetah.get_data(...) into pandas, decoding from the store"
.venv/bin/python - <<'PY'
import time
from datetime import datetime

import cheetah

cache = cheetah.open(share=False)
started = time.perf_counter()
df = cache.get_data(datetime(2010, 1, 1), datetime(2020, 1, 1), cols=["close", "volume", "pe", "total_mv"])
first = time.perf_counter() - started
started = time.perf_counter()
df = cache.get_data(datetime(2010, 1, 1), datetime(2020, 1, 1), cols=["close", "volume", "pe", "total_mv"])
again = time.perf_counter() - started
print(df.head(8))
print(f"\n{len(df):,} rows x {df.shape[1]} fields; covered {df.attrs['cheetah']['covered']}")
print(f"first call {first * 1e3:.0f} ms (decompresses), repeated {again * 1e3:.0f} ms (hot layer)")
PY

step "cheetah warm   (publishes the four fields into the shared layer at $SHARE)"
"$CHEETAH" warm --start 2015-01-01 --end 2030-12-31 --cols close,volume,pe,total_mv

step "Python: the same read in a new process, through the shared layer"
.venv/bin/python - <<'PY'
import time
from datetime import datetime

started = time.perf_counter()
import cheetah

imported = time.perf_counter()
df = cheetah.get_data(datetime(2010, 1, 1), datetime(2020, 1, 1), cols=["close", "volume", "pe", "total_mv"])
read = time.perf_counter() - imported
shared = df.attrs["cheetah"]["shared"]
print(f"{len(df):,} rows in {read * 1e3:.0f} ms in a new process: generation {shared['generation']}, "
      f"{'views of the mapped layer' if shared['views'] else 'copied from the layer'} (import took {(imported - started) * 1e3:.0f} ms)")
df["close"] *= 2  # a frame built on the layer is still yours to modify
print("modified in place; every other process still sees the published values")

# Point-in-time: each row gets the latest report announced on or before its date.
pit = cheetah.get_data("2016-01-01", "2016-12-31", cols=["close", "revenue", "net_profit"], symbols=["000001.SH"])
print("\nquarterly reports aligned point-in-time (asof) to daily rows:")
print(pit.iloc[::40])
PY

step "cheetah universes   (membership intervals read from index_member)"
"$CHEETAH" universes

step "cheetah get --adjust forward --universe csi300   (prices adjusted at read time, members only)"
"$CHEETAH" get --start 2017-12-01 --end 2017-12-29 --cols close,adj_factor --adjust forward --universe csi300

step "Python: adjusted prices, a universe as of each date, and a wide panel"
.venv/bin/python - <<'PY'
import time

import cheetah

factors = cheetah.get_data("2015-01-01", "2017-12-31", ["adj_factor"])["adj_factor"]
moved = factors.groupby(level="symbol").nunique()
symbol = moved[moved > 1].index[0]  # a symbol with a dividend or split in the range
raw = cheetah.get_data("2015-01-01", "2017-12-31", ["close", "adj_factor"], symbols=[symbol])
fwd = cheetah.get_data("2015-01-01", "2017-12-31", ["close"], symbols=[symbol], adjust="forward")
both = raw.join(fwd.rename(columns={"close": "close_fwd"}))
step = int((raw["adj_factor"].diff() != 0).to_numpy().nonzero()[0][1])
print(f"{symbol}: raw close and its factor beside the forward-adjusted close (the latest prices as traded):")
print(both.iloc[[0, step - 1, step, len(both) - 1]])

print(f"\ncsi300 had {len(cheetah.members('csi300', '2015-06-01'))} members on 2015-06-01 and "
      f"{len(cheetah.members('csi300', '2017-12-01'))} on 2017-12-01")
members = cheetah.get_data("2015-01-01", "2017-12-31", ["close"], universe="csi300")
print(f"its members' rows over three years: {len(members):,} of "
      f"{len(cheetah.get_data('2015-01-01', '2017-12-31', ['close'])):,}, each on a date its symbol was in")

started = time.perf_counter()
panel = cheetah.get_panel("2015-01-01", "2017-12-31", "close", adjust="backward")
took = time.perf_counter() - started
started = time.perf_counter()
pivot = cheetah.get_data("2015-01-01", "2017-12-31", ["close"], adjust="backward")["close"].unstack("symbol")
pivoted = time.perf_counter() - started
# unstack orders the symbols by first appearance; the panel keeps them sorted.
print(f"\nget_panel: {panel.shape[0]} dates x {panel.shape[1]} symbols in {took * 1e3:.0f} ms "
      f"(get_data(...).unstack(): {pivoted * 1e3:.0f} ms); equal: {panel.equals(pivot.sort_index(axis=1))}")
print(panel.iloc[-3:, :5])
PY

step "cheetah status   (the shared layer heads it)"
"$CHEETAH" status | sed -n 1,4p

step "cheetah serve --no-update   (Arrow Flight on loopback), read by cheetah.connect in another process"
"$CHEETAH" serve --no-update 2> "$DEMO/serve.log" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q "serving reads over Arrow Flight" "$DEMO/serve.log" && break; sleep 0.05; done
URL="grpc://$(grep -o 'addr=[^ ]*' "$DEMO/serve.log" | head -1 | cut -d= -f2)"
.venv/bin/python - "$URL" <<'PY'
import sys
import time

import cheetah

url = sys.argv[1]
remote = cheetah.connect(url)
started = time.perf_counter()
df = remote.get_data("2015-01-01", "2017-12-31", cols=["close", "volume", "pe", "total_mv"])
took = time.perf_counter() - started
local = cheetah.get_data("2015-01-01", "2017-12-31", cols=["close", "volume", "pe", "total_mv"])
print(f"{len(df):,} rows from {url} in {took * 1e3:.0f} ms; equal to the local read: {df.equals(local)}")
try:
    remote.get_data("2016-01-01", "2016-01-31", cols=["clsoe"])
except cheetah.QueryError as e:
    print(f"an unknown field over Flight is the local error: {e}")
PY
kill $SERVE
wait $SERVE || true
trap - EXIT

step "cheetah verify   (row counts and per-field checksums, computed by the source, date by date)"
"$CHEETAH" verify

step "cheetah quality --html   (does the source look right? coverage, missing, stale, outliers, late events)"
time "$CHEETAH" quality --html "$DEMO/quality.html" | cut -c1-160 | sed -n 1,12p
echo "open $DEMO/quality.html in a browser for the heatmaps"

printf '\nDone. Try: CHEETAH_CONFIG=%s %s --help\n' "$DEMO/cheetah.toml" "$CHEETAH"
