"""Arrow Flight's rows of `make bench`: `cheetah serve --no-update` over the shared layer, read
by new client processes with `cheetah.connect` on the server's machine (which map its layer) and
over loopback (`local=False`), by `pyarrow.flight` alone for the throughput, by 8 clients at
once, and by a Dask cluster of 2 worker processes."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

from measure import beside, fmt_bytes, fmt_seconds

# pandas is imported before the read's clock starts, as the local peers have it; its import is
# reported beside the read.
CONNECT = r"""
import json, sys, time
t0 = time.perf_counter()
import cheetah
t1 = time.perf_counter()
import pandas
t2 = time.perf_counter()
df = cheetah.connect(sys.argv[1], local=sys.argv[5] == "local").get_data(sys.argv[2], sys.argv[3], sys.argv[4].split(","))
t3 = time.perf_counter()
assert df.attrs["cheetah"].get("same_machine", False) == (sys.argv[5] == "local"), df.attrs
print(json.dumps({"import": t1 - t0, "pandas": t2 - t1, "read": t3 - t2, "rows": len(df)}))
"""

WARM = r"""
import json, sys, time
import cheetah
remote = cheetah.connect(sys.argv[1], local=False)
args = sys.argv[2], sys.argv[3], sys.argv[4].split(",")
remote.get_data(*args)
times = []
for _ in range(int(sys.argv[5])):
    t0 = time.perf_counter()
    remote.get_data(*args)
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""

THROUGHPUT = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import pyarrow.flight as flight
url, start, end, cols, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5])
ticket = json.dumps({"fields": cols, "start": start, "end": end}).encode()
clients = [flight.connect(url) for _ in range(4)]
info = clients[0].get_flight_info(flight.FlightDescriptor.for_command(ticket))
def fetch(i_endpoint):
    i, endpoint = i_endpoint
    return clients[i % len(clients)].do_get(endpoint.ticket).read_all()
results = []
for _ in range(runs + 1):
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        tables = list(pool.map(fetch, enumerate(info.endpoints)))
    seconds = time.perf_counter() - t0
    results.append({"seconds": seconds, "bytes": sum(t.nbytes for t in tables), "endpoints": len(info.endpoints)})
print(json.dumps(results[1:]))
"""

DASK = r"""
import json, sys, time
import distributed
import cheetah.dask
url, start, end, cols, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5])
with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
        distributed.Client(cluster):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ddf = cheetah.dask.read_data(url, start, end, cols)
        total = ddf[cols].sum().compute()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": times, "partitions": ddf.npartitions}))
"""


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Server:
    """`cheetah serve --no-update` with a `[flight]` on a free loopback port."""

    def __init__(self, binary: Path, config: Path) -> None:
        self.log = config.with_suffix(".serve.log")
        self.process = subprocess.Popen([str(binary), "--config", str(config), "serve", "--no-update"],
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"serving reads over Arrow Flight addr=(\S+)", self.log.read_text())
            if found:
                self.url = f"grpc://{found.group(1)}"
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"cheetah serve did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def flight_section() -> str:
    return '\n[flight]\nlisten = "127.0.0.1:0"\n'


def _json(python: str, script: str, *args: str) -> object:
    out = subprocess.run([python, "-c", script, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def report(python: str, config: Path, queries: dict, best_peer: dict[str, float], runs: int, binary: Path,
           log: Callable[[str], None]) -> list[str]:
    """Every row of the Flight table; `config` has `[flight]` and the shared layer published."""
    server = Server(binary, config)
    lines = []
    try:
        url = server.url
        for q in ("Q1", "Q2"):
            _, start, end, cols = queries[q]
            for where, how in (("local", "on the server's machine, mapping its layer"), ("network", "over loopback, `local=False`")):
                log(f"{q} through cheetah.connect, new client processes, {how}")
                results, load = beside(lambda: [_json(python, CONNECT, url, start, end, ",".join(cols), where)
                                                for _ in range(runs)])
                reads = [r["read"] for r in results]
                whole = [r["read"] + r["import"] + r["pandas"] for r in results]
                median = statistics.median(reads)
                target = " (target <= 0.5 s, >= 8x)" if q == "Q1" else ""
                lines.append(f"| {q} into pandas, new client process {how}: `cheetah.connect` to the frame | "
                             f"{fmt_seconds(median)} median, {fmt_seconds(min(reads))} min; "
                             f"{best_peer[q] / median:,.1f}x the best local peer{target}; "
                             f"with `import cheetah` and pandas, {fmt_seconds(statistics.median(whole))}; "
                             f"beside them: {load} |")
            if q == "Q2":
                log("Q2 through Flight, a warm client")
                warm = _json(python, WARM, url, start, end, ",".join(cols), str(max(runs, 20)))
                lines.append(f"| Q2 through Flight, a connected client | {fmt_seconds(statistics.median(warm))} median, "
                             f"{fmt_seconds(min(warm))} min (target <= 10 ms) |")
        _, start, end, cols = queries["Q1"]
        log("Q1's Flight throughput with pyarrow.flight")
        fetched = _json(python, THROUGHPUT, url, start, end, ",".join(cols), str(runs))
        best = min(fetched, key=lambda r: r["seconds"])
        rates = [r["bytes"] / r["seconds"] for r in fetched]
        lines.append(f"| Q1's throughput, `pyarrow.flight`, its {best['endpoints']} endpoints on 4 connections | "
                     f"{statistics.median(rates) / 1e9:.2f} GB/s median, {max(rates) / 1e9:.2f} GB/s best "
                     f"({fmt_bytes(best['bytes'])} of Arrow in {fmt_seconds(best['seconds'])}; target >= 1 GB/s) |")

        log("8 concurrent client processes each reading Q1")
        before = _rss(server.process.pid)
        started = time.perf_counter()
        children = [subprocess.Popen([python, "-c", CONNECT, url, start, end, ",".join(cols), "network"],
                                     stdout=subprocess.PIPE, text=True) for _ in range(8)]
        outs = [json.loads(c.communicate()[0]) for c in children]
        total = time.perf_counter() - started
        assert all(o["rows"] == outs[0]["rows"] for o in outs)
        lines.append(f"| 8 client processes each reading Q1 at once over loopback | all done in {fmt_seconds(total)} (slowest read "
                     f"{fmt_seconds(max(o['read'] for o in outs))}); server RSS {fmt_bytes(before)} before, peak "
                     f"{fmt_bytes(_peak_rss(server.process.pid))} |")

        log("Q1 through Dask, 2 worker processes")
        dask = _json(python, DASK, url, start, end, ",".join(cols), str(max(2, runs // 2)))
        lines.append(f"| Q1 through Dask, `LocalCluster` of 2 worker processes, `.sum().compute()` | "
                     f"{fmt_seconds(statistics.median(dask['seconds']))} median over {dask['partitions']} partitions |")
    finally:
        server.stop()
    return ["| Arrow Flight over loopback | figure |", "|---|---|", *lines]
