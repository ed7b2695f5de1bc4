"""Times Cheetah's reads of the DESIGN.md §6 queries: cold (a new process, OS cache warm) and hot
(repeated in one process), with the peak memory of a cold read against the result's size.

    python benches/read.py --config bench/cheetah.toml [--runs 5]

The store must hold the market of `benches/market.py` (daily_bar, valuation, factors).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

QUERIES = {
    "Q1": ("2015-01-01", "2024-12-31", ["close", "volume", "pe", "total_mv"]),
    "Q2": ("2020-03-01", "2020-03-31", ["close", "volume", "pe", "total_mv"]),
    "Q3": ("2023-01-01", "2023-12-31", ["close", "pe"] + [f"f{i:02d}" for i in range(40)]),
}

COLD = r"""
import json, resource, sys, time
import cheetah
config, start, end, cols = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
t0 = time.perf_counter()
cache = cheetah.open(config)
t1 = time.perf_counter()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
df = cache.get_data(start, end, cols)
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = int(df.memory_usage(index=True, deep=False).sum())
print(json.dumps({"open": t1 - t0, "get": t2 - t1, "rows": len(df), "peak_kib": peak - before, "result": result}))
"""


def cold(config: str, query: tuple) -> dict:
    start, end, cols = query
    out = subprocess.run([sys.executable, "-c", COLD, config, start, end, ",".join(cols)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    import cheetah

    cache = cheetah.open(args.config)
    print("| query | rows | cold median | cold min | hot median | hot min | peak memory / result |")
    print("|---|---|---|---|---|---|---|")
    for name, query in QUERIES.items():
        colds = [cold(args.config, query) for _ in range(args.runs)]
        cold_times = [c["open"] + c["get"] for c in colds]
        start, end, cols = query
        cache.get_data(start, end, cols)  # fills the hot layer
        hot_times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            df = cache.get_data(start, end, cols)
            hot_times.append(time.perf_counter() - t)
        ratio = max(c["peak_kib"] * 1024 / c["result"] for c in colds)
        print(f"| {name} | {len(df):,} | {statistics.median(cold_times) * 1e3:.1f} ms | {min(cold_times) * 1e3:.1f} ms "
              f"| {statistics.median(hot_times) * 1e3:.1f} ms | {min(hot_times) * 1e3:.1f} ms | {ratio:.2f}x |")


if __name__ == "__main__":
    main(sys.argv[1:])
