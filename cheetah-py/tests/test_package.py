"""The package as a pip user has it: the `cheetah` console script is the Rust command, the
versions agree, a reader never loads an ODBC driver, and an update without its driver says
what to install."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import cheetah

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = Path("/etc/odbcinst.ini")
ODBC_LIBS = Path("/usr/lib/x86_64-linux-gnu/odbc")


def console_script() -> Path:
    script = Path(sys.executable).parent / "cheetah"
    assert script.is_file(), f"{script} is missing: the package installs it (`make python`)"
    return script


def binary() -> str:
    path = os.environ.get("CHEETAH_BIN") or str(ROOT / "target" / "debug" / "cheetah")
    assert Path(path).is_file(), f"{path} is missing: `cargo build -p cheetah-cli` first (`make test` does)"
    return path


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True, timeout=120, env=env)


def test_the_extension_loads_late_without_static_tls():
    """Python loads the extension with dlopen, after numpy, pyarrow and whatever a notebook
    imported first. glibc keeps only a small reserve of static TLS for such libraries, and a
    library marked STATIC_TLS (initial-exec TLS, as mimalloc's default) must fit all of its TLS
    in it: "cannot allocate memory in static TLS block". The wheel's build hit exactly that."""
    extension = Path(cheetah._cheetah.__file__)
    readelf = run("readelf", "--dynamic", "--wide", extension)
    assert readelf.returncode == 0, readelf.stderr
    assert "(NEEDED)" in readelf.stdout, readelf.stdout
    flags = [line.strip() for line in readelf.stdout.splitlines() if "(FLAGS)" in line]
    assert not any("STATIC_TLS" in line for line in flags), f"{extension.name} needs static TLS: {flags}"


def test_the_versions_agree_with_the_workspace_and_the_changelog():
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    assert cheetah.__version__ == workspace
    for command in ([console_script()], [binary()], [sys.executable, "-m", "cheetah"]):
        done = run(*command, "--version")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"cheetah {workspace}", command
    assert re.search(rf"^## {re.escape(workspace)}\b", (ROOT / "CHANGELOG.md").read_text(), re.M), (
        f"CHANGELOG.md has no `## {workspace}` entry"
    )


def test_the_console_script_runs_the_same_command_as_the_binary(market):
    for args in (
        ["status", "--json"],
        ["get", "--start", "2020-01-01", "--end", "2020-02-28", "--cols", "close,pe,f0"],
        ["fields", "*", "--table", "val"],
        ["universes"],
    ):
        ours = run(console_script(), "--config", market.config, *args)
        theirs = run(binary(), "--config", market.config, *args)
        assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
        assert ours.stdout == theirs.stdout, args
    status = json.loads(run(console_script(), "--config", market.config, "status", "--json").stdout)
    assert sorted(t["name"] for t in status["tables"]) == ["bar", "fac", "val"]
    # A usage error exits 2 with clap's message, as the binary does.
    wrong = run(console_script(), "--config", market.config, "get", "--start", "2020-01-01")
    assert wrong.returncode == 2 and "--end <END>" in wrong.stderr


def driver_libraries() -> set[str]:
    """The files of every driver registered on this machine, as a process maps them: links
    resolved, names without a directory found where unixODBC looks for them."""
    names = re.findall(r"^\s*Driver\s*=\s*(\S+)", DRIVERS.read_text(), re.M)
    assert names, f"{DRIVERS} registers no driver: `make deps` installs three"
    return {str((Path(n) if "/" in n else ODBC_LIBS / n).resolve()) for n in names}


MAPPED = r"""
import json, sys
import cheetah

def mapped():
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if ".so" in line}

seen = set()
cache = cheetah.open(sys.argv[1], writer=sys.argv[2] == "write")
if sys.argv[2] == "write":
    # While a connection is open: the driver manager unloads a driver on disconnect.
    cache._inner.update_json(lambda event: seen.update(mapped()) if event["event"] == "committed" else None)
df = cache.get_data("2020-01-01", "2020-03-31", ["close", "pe", "f0"])
cache.status(); cache.universes(); cache.quality()
assert len(df) > 0
print(json.dumps(sorted(seen | mapped())))
"""


def test_reading_never_loads_an_odbc_driver(market, tmp_path):
    drivers = driver_libraries()
    done = run(sys.executable, "-c", MAPPED, market.config, "read")
    assert done.returncode == 0, done.stderr
    mapped = set(json.loads(done.stdout))
    assert not mapped & drivers, f"a reader mapped {mapped & drivers}"
    # The check sees a driver when one is loaded: an update in a fresh store maps SQLite's.
    config = tmp_path / "cheetah.toml"
    config.write_text(market.config.read_text())
    done = run(sys.executable, "-c", MAPPED, config, "write")
    assert done.returncode == 0, done.stderr
    assert str((ODBC_LIBS / "libsqlite3odbc.so").resolve()) in set(json.loads(done.stdout)) & drivers


def test_an_update_without_its_driver_names_the_driver_and_the_debian_package(market, tmp_path):
    config = tmp_path / "cheetah.toml"
    config.write_text(market.config.read_text())
    # The driver manager reads the drivers from $ODBCSYSINI/odbcinst.ini: here, none.
    (tmp_path / "odbc").mkdir()
    (tmp_path / "odbc" / "odbcinst.ini").write_text("")
    env = {**os.environ, "ODBCSYSINI": str(tmp_path / "odbc"), "HOME": str(tmp_path)}
    for command in (console_script(), binary()):
        done = run(command, "--config", config, "update", "--no-progress", env=env)
        assert done.returncode == 1
        assert "needs the ODBC driver `SQLite3`, which is not installed" in done.stderr, done.stderr
        assert "apt-get install libsqliteodbc" in done.stderr, done.stderr
        assert str(market.path) not in done.stderr
    # From Python it is an UpdateError with the same words, and the store loses nothing: the
    # next update, with the driver, fills it.
    code = (
        "import sys, cheetah\n"
        "try:\n    cheetah.open(sys.argv[1], writer=True).update(progress=False)\n"
        "except cheetah.UpdateError as e:\n    print(e)\n"
    )
    done = run(sys.executable, "-c", code, config, env=env)
    assert "apt-get install libsqliteodbc" in done.stdout, done.stdout + done.stderr
    writer = cheetah.open(config, writer=True)
    writer.update(progress=False)
    del writer
    ours = cheetah.open(config).get_data("2020-01-01", "2020-03-31", ["close", "pe"])
    assert ours.equals(cheetah.open(market.config).get_data("2020-01-01", "2020-03-31", ["close", "pe"]))


IMPORTS = """
import sys
import cheetah

def loaded(*names):
    return sorted(m for m in sys.modules if m.split(".")[0] in names or m in names)

assert not loaded("pandas", "pyarrow.flight", "numpy"), loaded("pandas", "pyarrow.flight", "numpy")
cache = cheetah.open(sys.argv[1])
table = cache.get_arrow("2020-01-01", "2020-12-31", ["close"])
assert table.num_rows > 0
assert not loaded("pandas", "pyarrow.flight"), loaded("pandas", "pyarrow.flight")
frame = cache.get_data("2020-01-01", "2020-12-31", ["close"])
assert len(frame) == table.num_rows and "pandas" in sys.modules
assert "pyarrow.flight" not in sys.modules
assert callable(cheetah.connect) and "pyarrow.flight" in sys.modules
assert issubclass(cheetah.RemoteError, cheetah.CheetahError)
"""


def test_import_cheetah_loads_what_a_call_needs_when_it_is_made(market):
    done = run(sys.executable, "-c", IMPORTS, market.config)
    assert done.returncode == 0, done.stderr
