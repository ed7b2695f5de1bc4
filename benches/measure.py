"""Measuring Cheetah in child processes: cold reads (a new process each), hot reads, a command's
own wall time and peak memory, what else the machine ran beside a timing, what it charges for
fresh memory, and the versions a report ran on."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# pandas is imported before the clock starts, as a notebook has it: `import cheetah` leaves it
# to the first frame, and its import (about 0.3 s) is the layer table's own row.
COLD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import cheetah, pandas
config, start, end, cols = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
keywords = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}  # known_at= or snapshot=

def status(key):  # bytes; VmHWM is this process's own peak (ru_maxrss would include the parent's)
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024

def disk_bytes():  # what this process has had read from storage, not from the page cache
    return int(next(l for l in open("/proc/self/io") if l.startswith("read_bytes:")).split()[1])

t1, disk, usage = time.perf_counter(), disk_bytes(), resource.getrusage(resource.RUSAGE_SELF)
cache = cheetah.open(config)
before = status("VmRSS")
df = cache.get_data(start, end, cols, **keywords)
t2, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
peak = status("VmHWM") - before
result = int(df.memory_usage(index=True, deep=False).sum())
print(json.dumps({"seconds": t2 - t1, "peak_bytes": peak, "result_bytes": result, "disk_bytes": disk_bytes() - disk,
                  "kernel_seconds": used.ru_stime - usage.ru_stime, "faults": used.ru_minflt - usage.ru_minflt,
                  "shared": df.attrs["cheetah"].get("shared")}))
"""
HOT = r"""
import json, sys, time
import cheetah, pandas
config, start, end, cols, warmup, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5]), int(sys.argv[6])
cache = cheetah.open(config)
for _ in range(warmup):
    frame = cache.get_data(start, end, cols)
times = []
for _ in range(runs):
    t = time.perf_counter()
    frame = cache.get_data(start, end, cols)
    times.append(time.perf_counter() - t)
print(json.dumps({"seconds": times, "pandas": pandas.__version__, "shared": frame.attrs["cheetah"].get("shared")}))
"""
WARMUP = 2
"""Untimed calls before the hot runs: the second one's output still lives while the next is
built, so the output pool needs two results' buffers before it serves every call."""


PEAK = r"""
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_bytes": usage.ru_maxrss * 1024, "code": os.waitstatus_to_exitcode(status)}), file=sys.stderr)
"""
"""Runs a command and reports its wall time and its own peak RSS. Linux starts a child's
`ru_maxrss` at its parent's RSS when it forks and keeps it across `exec`, so a child of this
process would inherit the benchmark's gigabytes (the market it generated); a child of this small
helper inherits only the helper's ~10 MB."""


def timed_child(argv: list[str]) -> tuple[float, int, str]:
    """Runs a command; returns its wall seconds, its own peak resident bytes and its stdout."""
    done = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True)
    *lines, last = done.stderr.rstrip("\n").split("\n")
    measured = json.loads(last)
    if measured["code"] != 0:
        raise subprocess.CalledProcessError(measured["code"], argv, done.stdout, "\n".join(lines))
    return measured["seconds"], measured["peak_bytes"], done.stdout


def versions(dsn: str, newest_python: str | None) -> str:
    """What the report ran on: Cheetah's commit, the Python stack of each venv, PostgreSQL, the CPU."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip():
        commit += " with uncommitted changes"
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
    stack = ", ".join(f"{n} {version(n)}" for n in ("pandas", "numpy", "pyarrow", "polars", "duckdb", "arcticdb", "connectorx"))
    newest = ""
    if newest_python:
        probe = "import pandas, numpy, pyarrow; print(pandas.__version__, numpy.__version__, pyarrow.__version__)"
        p, n, a = subprocess.run([newest_python, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
        newest = f"; newest-pandas venv: pandas {p}, numpy {n}, pyarrow {a}"
    server = subprocess.run(["psql", dsn, "-Atqc", "SHOW server_version"], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    return (f"Cheetah {commit}; Python {platform.python_version()}: {stack}{newest}; PostgreSQL {server}; "
            f"{os.cpu_count()} cores of {cpu}, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {platform.platform()}.")


def cheetah_bin() -> Path:
    """The release build of the `cheetah` command."""
    return ROOT / "target" / "release" / "cheetah"


def cold_runs(python: str, config: Path, start: str, end: str, cols: list[str], runs: int,
              keywords: dict | None = None) -> list[dict]:
    """`runs` reads, each in a new process of `python`, passing `keywords` (such as
    ``snapshot=``) to ``get_data``."""
    argv = [python, "-c", COLD, str(config), start, end, ",".join(cols), json.dumps(keywords or {})]
    return [json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout) for _ in range(runs)]


TOUCH = r"""
import mmap, resource, sys, time
size = int(sys.argv[1])
usage, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
memory = memoryview(mmap.mmap(-1, size))
for offset in range(0, size, mmap.PAGESIZE):
    memory[offset] = 1
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_stime - usage.ru_stime)
"""


#: Free memory this VM's balloon driver has handed back to its host since boot, in KiB (free page
#: reporting), where its kernel counts it.
REPORTED_KIB = Path("/sys/module/page_reporting/parameters/reported_kib")


def host_reclaimed() -> int | None:
    """Bytes of free memory this VM has handed back to its host since boot; `None` where the
    kernel does not count them. Memory handed back costs the next process to touch it a fault
    in the host as well as its own."""
    try:
        return int(REPORTED_KIB.read_text()) * 1024
    except (OSError, ValueError):
        return None


def reclaimed_between(before: int | None, after: int | None) -> str:
    """The free memory handed to the host between two readings of `host_reclaimed`, as text."""
    return "not counted by this kernel" if before is None or after is None else fmt_bytes(after - before)


def fresh_memory(size: int = 1 << 30, quiet: float = 5.0) -> str:
    """What the machine charges for memory no process has just freed: a new process touching
    `size` bytes after `quiet` seconds without one, then the next, which is given the pages the
    first just freed. A VM whose balloon reports free memory to its host (free page reporting)
    hands it back within seconds, and the next process to touch it pays the host's fault as well
    as its own; so does a new process's first read after any quiet spell."""
    def touch() -> tuple[float, float]:
        out = subprocess.run([sys.executable, "-c", TOUCH, str(size)], check=True, capture_output=True, text=True)
        wall, kernel = map(float, out.stdout.split())
        return wall, kernel

    before = host_reclaimed()
    time.sleep(quiet)
    (first, first_kernel), (then, then_kernel) = touch(), touch()
    return (f"{fmt_seconds(first)} (kernel {fmt_seconds(first_kernel)}), then {fmt_seconds(then)} "
            f"(kernel {fmt_seconds(then_kernel)}): {first / then:.2f}x; handed to the host meanwhile: "
            f"{reclaimed_between(before, host_reclaimed())}")


def _cpu_ticks() -> tuple[int, dict[int, tuple[str, int]]]:
    """The machine's stolen clock ticks since boot, and each process's name and CPU ticks."""
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    processes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it exited
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        processes[int(stat.parent.name)] = (name, int(rest[11]) + int(rest[12]))  # utime + stime
    return (cpu[7] if len(cpu) > 7 else 0), processes


def beside(run: Callable[[], T]) -> tuple[T, str]:
    """`run()`, and what else the machine ran meanwhile: the stolen share of its cores, and each
    process alive before and after it (so not the children it started) that used more than 2%
    of a core. A timing taken beside such a load is slower for it, not for what it measures."""
    started, (steal0, before) = time.perf_counter(), _cpu_ticks()
    result = run()
    seconds, (steal1, after) = time.perf_counter() - started, _cpu_ticks()
    ticks = os.sysconf("SC_CLK_TCK") * seconds
    others = sorted(((t - before[pid][1], name) for pid, (name, t) in after.items()
                     if pid in before and pid != os.getpid() and t - before[pid][1] > 0.02 * ticks), reverse=True)
    named = ", ".join(f"{name} {used / ticks:.0%}" for used, name in others) or "no other process over 2% of a core"
    return result, f"{named}; {(steal1 - steal0) / ticks / (os.cpu_count() or 1):.0%} stolen"


def fmt_seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"
