"""Reads over Arrow Flight from Python: a real `cheetah serve --no-update` process, read with
`cheetah.connect` (frames equal to local ones, the same errors) over the network and, on the
server's machine, from its store and layer; with `pyarrow.flight` alone and the ticket of
docs/flight.md, and split across the worker processes of a Dask `LocalCluster`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import cheetah

from conftest import Market

ALL = ["close", "volume", "pe", "total_mv", "rating", "val.shared", "f0", "f1", "flag"]
TOKEN = "py-token-81d2c4"


def _binary() -> str:
    binary = os.environ.get("CHEETAH_BIN")
    if not binary:
        pytest.skip("CHEETAH_BIN is unset: `make test-python` sets it to the built `cheetah`")
    return binary


class Server:
    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.log = config.with_suffix(".log")
        self.process = subprocess.Popen(
            [_binary(), "--config", str(config), "serve", "--no-update"],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(r"serving reads over Arrow Flight addr=(\S+)", self.log.read_text())
            if found:
                self.url = f"grpc://{found.group(1)}"
                return
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"serve never listened:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        assert self.process.wait(10) == 0, self.log.read_text()


def _config(market: Market, name: str, flight_section: str) -> Path:
    config = market.config.with_name(f"{name}.toml")
    text = market.config.read_text().replace('path = "store"', f'path = "{market.config.parent / "store"}"')
    config.write_text(f"{text}\n[flight]\n{flight_section}\n")
    return config


@pytest.fixture(scope="module")
def server(market: Market) -> Iterator[Server]:
    s = Server(_config(market, "flight", 'listen = "127.0.0.1:0"'))
    yield s
    s.stop()


@pytest.mark.parametrize("local", [False, True], ids=["network", "same-machine"])
def test_remote_frames_equal_local_ones(server: Server, cache: cheetah.Cache, local: bool) -> None:
    remote = cheetah.connect(server.url, local=local)
    for cols, kwargs in [
        (ALL, {}),
        (["close", "pe"], {"symbols": ["Q00", "W01", "nope"]}),
        (["pe", "f0"], {"base": "fac"}),
        (["close"], {"dtype_backend": "pyarrow"}),
    ]:
        got = remote.get_data("2019-12-01", "2030-01-01", cols, **kwargs)
        want = cache.get_data("2019-12-01", "2030-01-01", cols, **kwargs)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert got.attrs["cheetah"]["covered"] == want.attrs["cheetah"]["covered"]
        assert got.attrs["cheetah"]["remote"] == server.url
        assert got.attrs["cheetah"].get("same_machine", False) == local
    got = remote.get_arrow("2020-01-10", "2020-02-10", ["close", "rating"])
    want = cache.get_arrow("2020-01-10", "2020-02-10", ["close", "rating"])
    assert got.schema.field("date").type == pa.date32()
    assert got.cast(want.schema).equals(want)
    polars = pytest.importorskip("polars")
    assert remote.get_polars("2020-01-10", "2020-02-10", ["close"]).equals(
        cache.get_polars("2020-01-10", "2020-02-10", ["close"])
    )
    assert isinstance(remote.get_polars("2020-01-10", "2020-02-10", ["close"]), polars.DataFrame)
    pd.testing.assert_frame_equal(remote.fields(), cache.fields())
    assert remote.status()["flight"]["streams_active"] == 0
    empty = remote.get_data("1990-01-01", "1990-02-01", ["close"])
    assert len(empty) == 0 and list(empty.columns) == ["close"]


@pytest.mark.parametrize("local", [False, True], ids=["network", "same-machine"])
def test_remote_errors_are_the_local_ones(server: Server, cache: cheetah.Cache, local: bool) -> None:
    remote = cheetah.connect(server.url, local=local)
    for args, kind in [
        (("2020-01-01", "2020-12-31", ["clsoe"]), cheetah.QueryError),
        (("2020-01-01", "2020-12-31", ["shared"]), cheetah.QueryError),
        (("2020-12-31", "2020-01-01", ["close"]), cheetah.QueryError),
        (("2020-13-45", "2020-12-31", ["close"]), cheetah.QueryError),
        (("2020-01-01", "2020-12-31", ["close"], {"base": "nope"}), cheetah.QueryError),
    ]:
        kwargs = args[3] if len(args) == 4 else {}
        with pytest.raises(kind) as local:
            cache.get_data(*args[:3], **kwargs)
        with pytest.raises(kind) as far:
            remote.get_data(*args[:3], **kwargs)
        assert str(far.value) == str(local.value)
    with pytest.raises(cheetah.QueryError, match="like it: `bar.close`"):
        remote.get_data("2020-01-01", "2020-12-31", ["clsoe"])
    with pytest.raises(ValueError, match="grpc://host:port"):
        cheetah.connect("http://localhost:1")
    nobody = cheetah.connect("grpc://127.0.0.1:9", timeout=5)
    with pytest.raises(cheetah.RemoteError, match="cannot reach"):
        nobody.get_data("2020-01-01", "2020-12-31", ["close"])


def test_pyarrow_flight_alone_reads_the_documented_ticket(server: Server, cache: cheetah.Cache) -> None:
    client = flight.connect(server.url)
    ticket = {"fields": ["close", "pe"], "start": "2020-01-01", "end": "2020-12-31"}
    info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(ticket)))
    table = pa.concat_tables(client.do_get(e.ticket).read_all() for e in info.endpoints)
    assert info.schema.field("symbol").type == pa.dictionary(pa.int16(), pa.string())
    want = cache.get_arrow("2020-01-01", "2020-12-31", ["close", "pe"])
    assert table.unify_dictionaries().combine_chunks().cast(want.schema).equals(want)
    direct = client.do_get(flight.Ticket(json.dumps(ticket).encode())).read_all()
    assert direct.num_rows == want.num_rows
    actions = {a.type for a in client.list_actions()}
    assert actions == {"fields", "status", "universes", "snapshots", "location"}
    fields = json.loads(next(iter(client.do_action(flight.Action("fields", b"")))).body.to_pybytes())
    assert {f["field"] for f in fields} >= {"close", "pe", "f0"}
    with pytest.raises(pa.ArrowInvalid, match="unknown field `sql`"):
        client.do_get(flight.Ticket(b'{"fields": ["close"], "start": "2020-01-01", "end": "2020-12-31", "sql": "x"}')).read_all()


def test_a_token_server_refuses_other_clients(market: Market) -> None:
    server = Server(
        _config(market, "flight-token", 'listen = "127.0.0.1:0"\ntoken = "${CHEETAH_PY_TOKEN}"'),
        env={"CHEETAH_PY_TOKEN": TOKEN},
    )
    try:
        # On the server's machine too: the token guards where the server's cache lies.
        for local in (False, True):
            with pytest.raises(cheetah.RemoteError, match="token"):
                cheetah.connect(server.url, token="nope", local=local).get_data("2020-01-01", "2020-12-31", ["close"])
            with pytest.raises(cheetah.RemoteError, match="token"):
                cheetah.connect(server.url, token="", local=local).get_data("2020-01-01", "2020-12-31", ["close"])
        df = cheetah.connect(server.url, token=TOKEN).get_data("2020-01-01", "2020-12-31", ["close"])
        assert len(df) > 0
        os.environ["CHEETAH_TOKEN"] = TOKEN
        try:
            assert len(cheetah.connect(server.url).get_data("2020-01-01", "2020-12-31", ["close"])) == len(df)
        finally:
            del os.environ["CHEETAH_TOKEN"]
    finally:
        server.stop()
    assert TOKEN not in server.log.read_text()


def test_tls_with_the_servers_certificate(market: Market, tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "tests" / "make-certs.sh"
    subprocess.run([str(script), str(tmp_path)], check=True, capture_output=True)
    key, cert, ca = tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path / "ca.pem"
    server = Server(_config(market, "flight-tls", f'listen = "127.0.0.1:0"\ntls_cert = "{cert}"\ntls_key = "{key}"'))
    try:
        port = server.url.rsplit(":", 1)[1]
        remote = cheetah.connect(f"grpc+tls://localhost:{port}", tls_root_certs=str(ca))
        assert len(remote.get_data("2020-01-01", "2020-12-31", ["close"])) > 0
        with pytest.raises(cheetah.RemoteError):
            cheetah.connect(f"grpc://localhost:{port}", timeout=5).get_data("2020-01-01", "2020-12-31", ["close"])
    finally:
        server.stop()


def test_dask_workers_read_the_partitions_from_the_server(market: Market, cache: cheetah.Cache) -> None:
    distributed = pytest.importorskip("distributed")
    import cheetah.dask

    # A part size small enough that this market's read has several endpoints.
    server = Server(_config(market, "flight-dask", 'listen = "127.0.0.1:0"\npart_bytes = "8KB"'))
    try:
        # The frame of many endpoints, each with its own date dictionary, is the local frame.
        remote = cheetah.connect(server.url)
        assert len(remote.plan("2019-12-01", "2030-01-01", ALL).endpoints) > 2
        for kwargs in ({}, {"dtype_backend": "pyarrow"}, {"symbols": ["Q00", "W01"]}):
            pd.testing.assert_frame_equal(remote.get_data("2019-12-01", "2030-01-01", ALL, **kwargs),
                                          cache.get_data("2019-12-01", "2030-01-01", ALL, **kwargs), check_exact=True)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            ddf = cheetah.dask.read_data(server.url, "2019-12-01", "2030-01-01", ["close", "pe", "rating"])
            assert ddf.known_divisions and ddf.npartitions > 2, ddf.divisions
            got = ddf.compute()
            workers = {w for w in client.run(os.getpid).values()}
            assert len(workers) == 2 and os.getpid() not in workers
            want = cache.get_data("2019-12-01", "2030-01-01", ["close", "pe", "rating"])
            assert list(got.index.unique()) == sorted(got.index.unique())
            flat = want.reset_index(level="symbol")
            flat["symbol"] = pd.Categorical(flat["symbol"], categories=got["symbol"].cat.categories)
            # Dask turns text into its own string dtype (`dataframe.convert-string`): compare text
            # as Python objects, nulls as None.
            for frame in (got, flat):
                frame["rating"] = frame["rating"].astype(object).where(frame["rating"].notna(), None)
            pd.testing.assert_frame_equal(got, flat[["symbol", "close", "pe", "rating"]], check_exact=True, check_freq=False)
            means = ddf.groupby("symbol", observed=True).close.mean().compute().sort_index()
            pd.testing.assert_series_equal(means, flat.groupby("symbol", observed=True).close.mean().sort_index())
    finally:
        server.stop()


def test_a_client_on_the_servers_machine_maps_its_layer(market: Market, cache: cheetah.Cache, tmp_path: Path) -> None:
    share = tmp_path / "layer"
    config = _config(market, "flight-share", 'listen = "127.0.0.1:0"')
    config.write_text(f'{config.read_text()}\n[share]\npath = "{share}"\n')
    cheetah.open(config).publish("2019-12-01", "2030-01-01", ["close", "volume", "pe"])
    server = Server(config)
    try:
        script = (
            "import json, os, sys, cheetah\n"
            "df = cheetah.connect(sys.argv[1]).get_data('2019-12-01', '2030-01-01', ['close', 'volume', 'pe'])\n"
            "maps = open(f'/proc/{os.getpid()}/maps').read()\n"
            "print(json.dumps({'rows': len(df), 'attrs': df.attrs['cheetah'], 'mapped': sys.argv[2] in maps}))"
        )
        out = subprocess.run([sys.executable, "-c", script, server.url, str(share)], capture_output=True, text=True, check=True)
        got = json.loads(out.stdout)
        want = cache.get_data("2019-12-01", "2030-01-01", ["close", "volume", "pe"])
        assert got["rows"] == len(want) and got["attrs"]["same_machine"] is True
        assert got["attrs"]["shared"]["views"] is True and got["mapped"], got
        assert got["attrs"]["remote"] == server.url

        real = json.loads(next(iter(flight.connect(server.url).do_action(flight.Action("location", b"")))).body.to_pybytes())
        assert Path(real["config"]) == config.resolve() and real["boot_id"]

        # Another store at the server's config path (another container on the same kernel):
        # the identities differ, so the client reads over the network.
        other = tmp_path / "other-store"
        shutil.copytree(market.config.parent / "store", other)
        (other / "IDENTITY").write_text("another-store\n")
        config.write_text(config.read_text().replace(str(market.config.parent / "store"), str(other)))
        df = cheetah.connect(server.url).get_data("2019-12-01", "2030-01-01", ["close", "pe"])
        assert "same_machine" not in df.attrs["cheetah"]
        pd.testing.assert_frame_equal(df, cache.get_data("2019-12-01", "2030-01-01", ["close", "pe"]), check_exact=True)
    finally:
        server.stop()


def test_a_new_process_reads_through_connect(server: Server, cache: cheetah.Cache) -> None:
    script = "import sys, cheetah; df = cheetah.connect(sys.argv[1]).get_data('2019-12-01', '2030-01-01', ['close', 'pe']); print(len(df))"
    out = subprocess.run([sys.executable, "-c", script, server.url], capture_output=True, text=True, check=True)
    assert int(out.stdout) == len(cache.get_data("2019-12-01", "2030-01-01", ["close", "pe"]))


_REFAULTS = """
import resource, numpy as np, cheetah
from cheetah import remote

cheetah.connect("grpc://127.0.0.1:9")  # lazy: it reaches no server
def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def blocks(count: int) -> None:
    for _ in range(count):
        block = np.ones(3 << 20, dtype=np.uint8)
        del block
blocks(3)
before = faults()
blocks(20)
print(remote.keep_freed_memory(), faults() - before)
"""


def test_a_client_keeps_freed_message_memory_unless_the_process_chose_its_own() -> None:
    # Twenty 3 MiB blocks, the size of a message and its copy, allocated, written and freed.
    # Without settings of its own: a Dask cluster started by an earlier test leaves its
    # MALLOC_TRIM_THRESHOLD_ in this process's environment.
    plain = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    kept = subprocess.run([sys.executable, "-c", _REFAULTS], capture_output=True, text=True, check=True, env=plain)
    applied, faults = kept.stdout.split()
    assert applied == "True" and int(faults) < 200, kept.stdout

    own = {**plain, "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_MMAP_THRESHOLD_": "131072"}
    chosen = subprocess.run([sys.executable, "-c", _REFAULTS], capture_output=True, text=True, check=True, env=own)
    applied, faults = chosen.stdout.split()
    # Each block faulted in afresh: 768 pages apiece.
    assert applied == "False" and int(faults) > 20 * 700, chosen.stdout
