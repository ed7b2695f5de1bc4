"""A cache another machine serves over Arrow Flight (`cheetah serve` with ``[flight]``), with the
read API of a local one: ``cheetah.connect("grpc://host:8815", token=...)``.

A read asks the server for its plan (`GetFlightInfo`), which splits it into date-range
endpoints, fetches the endpoints in parallel (`DoGet`), and joins them into the table a local
read returns. The server's errors come back as the exceptions a local read raises.

A client on the server's own machine reads past the network: the server says where its config
lies (`DoAction` `location`), and when the client runs under the same kernel boot and the store
it finds there has the server's identity, reads open that store and map its shared layer, as a
local `cheetah.open` would. Anything else, or ``connect(url, local=False)``, reads over Flight.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight

from ._cheetah import (
    CheetahError,
    ConfigError,
    CorruptChunk,
    EmptyCache,
    QueryError,
    StoreError,
    VersionError,
    WriteError,
)
from ._fill import Fill, Unfillable, fillable, join, parts_to_pandas, run
from ._reads import DateLike, Read, ReadOptions, Reads, read_keywords
from ._writes import to_arrow


if TYPE_CHECKING:
    from typing_extensions import Unpack

    from . import Cache


class RemoteError(CheetahError):
    """The Flight server is unreachable, refused the token, or went away mid-read."""


_KINDS: dict[str, type[Exception]] = {
    "QueryError": QueryError,
    "VersionError": VersionError,
    "EmptyCache": EmptyCache,
    "CorruptChunk": CorruptChunk,
    "StoreError": StoreError,
    "ConfigError": ConfigError,
    "CheetahError": CheetahError,
    "WriteError": WriteError,
}

# pyarrow wraps the server's message: "Flight returned <code> error, with message: <message>.
# gRPC client debug context: ...".
_MESSAGE = re.compile(r"with message: (?P<message>.*?)(?:\. gRPC client debug context:|\. Client context:|$)", re.S)

#: Endpoints fetched at once by one read.
PARALLEL_FETCHES = 4

#: Blocks below this size come from glibc's heap, not a mapping of their own (`M_MMAP_THRESHOLD`).
HEAP_BLOCKS_BELOW = 4 << 20
#: Free memory glibc keeps at the top of a heap before returning it (`M_TRIM_THRESHOLD`).
HEAP_KEPT_FREE = 16 << 20


def keep_freed_memory() -> bool:
    """Has glibc keep the memory a read over Flight frees for the next read, unless the process
    chose its own malloc settings. Returns whether it did; called once per process.

    gRPC receives each message into a block of its own, and glibc gives a freed block of 128 KiB
    or more back to the kernel at once (its bound grows only to the largest block freed so far).
    So every read faulted in again the megabytes its messages took: 1,900 page faults, a third
    of a connected client's one-month read. Setting either bound turns that adjustment off.
    """
    global _MALLOC_SET
    if _MALLOC_SET is not None:
        return _MALLOC_SET
    _MALLOC_SET = False
    chosen = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
    if any(name in os.environ for name in chosen) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    _MALLOC_SET = bool(mallopt(m_mmap_threshold, HEAP_BLOCKS_BELOW) and mallopt(m_trim_threshold, HEAP_KEPT_FREE))
    return _MALLOC_SET


_MALLOC_SET: bool | None = None


@dataclass(frozen=True)
class Endpoint:
    """One date range of a read: the ticket that fetches it, and its first and last date."""

    ticket: bytes
    first: str
    last: str
    rows: int


@dataclass(frozen=True)
class Plan:
    """A read as the server planned it: its schema, its endpoints in date order, what it covers."""

    schema: pa.Schema
    endpoints: list[Endpoint]
    covered: tuple[str, str] | None
    #: The store version every endpoint reads (its number, commit time, the snapshot named).
    lineage: tuple[int, str, str | None] | None = None


def _boot_id() -> str | None:
    """This boot of this machine's kernel; `None` where the kernel does not say."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:  # noqa: PTH123
            return f.read().strip()
    except OSError:
        return None


def _server_message(error: Exception) -> str:
    text = str(error)
    found = _MESSAGE.search(text)
    return found.group("message").strip() if found else text


def _translate(error: Exception, url: str) -> Exception:
    """The exception a local read would raise for the server's `error`."""
    message = _server_message(error)
    kind = None
    extra = getattr(error, "extra_info", None)
    if extra:
        try:
            detail = json.loads(extra)
            kind = detail.get("kind")
        except (ValueError, AttributeError):
            detail = {}
    if kind in _KINDS:
        translated = _KINDS[kind](message)
        if kind == "CorruptChunk":
            for key in ("table", "field", "date"):
                setattr(translated, key, detail.get(key))
        return translated
    if isinstance(error, flight.FlightUnauthorizedError):
        return RemoteError(f"{url} refused: {message}")
    if isinstance(error, flight.FlightUnauthenticatedError):
        return RemoteError(f"{url} refused the token: {message}")
    if isinstance(error, flight.FlightUnavailableError):
        return RemoteError(
            f"cannot reach the Cheetah server at {url}, or it went away mid-read ({message}); "
            "check that `cheetah serve` runs there with [flight], then call again"
        )
    if isinstance(error, pa.ArrowInvalid):
        return QueryError(message)
    return RemoteError(f"the read from {url} failed: {message}")


class RemoteCache(Reads):
    """A cache served over Arrow Flight; build it with `cheetah.connect`."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        tls_root_certs: bytes | str | None = None,
        timeout: float | None = None,
        local: bool = True,
    ) -> None:
        if not re.match(r"^grpc(\+tcp|\+tls)?://[^/]+$", url):
            raise ValueError(f"url={url!r}: give grpc://host:port, or grpc+tls://host:port for a TLS server")
        self.url = url
        self._token = token if token is not None else os.environ.get("CHEETAH_TOKEN")
        if isinstance(tls_root_certs, str):
            with open(tls_root_certs, "rb") as f:  # noqa: PTH123
                tls_root_certs = f.read()
        self._tls_root_certs = tls_root_certs
        self._timeout = timeout
        keep_freed_memory()
        self._per_thread = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        #: The server's cache opened here, once found on this machine; False once ruled out.
        self._same_box: Cache | bool | None = None if local else False

    def __getstate__(self) -> dict[str, Any]:
        # Sent to other processes (Dask workers) without its connections.
        return {
            "url": self.url,
            "token": self._token,
            "tls": self._tls_root_certs,
            "timeout": self._timeout,
            "local": self._same_box is not False,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"],
            token=state["token"],
            tls_root_certs=state["tls"],
            timeout=state["timeout"],
            local=state.get("local", True),
        )

    def __repr__(self) -> str:
        return f"cheetah.RemoteCache({self.url!r})"

    def _client(self) -> flight.FlightClient:
        # One connection per thread: parallel endpoint fetches use separate HTTP/2 connections.
        client = getattr(self._per_thread, "client", None)
        if client is None:
            kwargs: dict[str, Any] = {}
            if self._tls_root_certs is not None:
                kwargs["tls_root_certs"] = self._tls_root_certs
            client = flight.connect(self.url, **kwargs)
            self._per_thread.client = client
        return client

    def _options(self) -> flight.FlightCallOptions:
        headers = [] if not self._token else [(b"authorization", b"Bearer " + self._token.encode())]
        return flight.FlightCallOptions(headers=headers, timeout=self._timeout)

    def _call(self, fn: Any) -> Any:
        try:
            return fn(self._client(), self._options())
        except (flight.FlightError, pa.ArrowException) as error:
            raise _translate(error, self.url) from None

    @read_keywords
    def plan(
        self,
        start: DateLike,
        end: DateLike,
        cols: str | Sequence[str],
        *,
        dictionary_dates: bool = True,
        **options: Unpack[ReadOptions],
    ) -> Plan:
        """The read's plan: its schema and its date-range endpoints, each fetchable anywhere."""
        return self._plan(Read.of(start, end, cols, **options), dictionary_dates)

    def _plan(self, read: Read, dictionary_dates: bool) -> Plan:
        ticket = read.ticket()
        if not dictionary_dates:
            ticket["dates"] = "date32"
        descriptor = flight.FlightDescriptor.for_command(json.dumps(ticket).encode())
        info = self._call(lambda c, o: c.get_flight_info(descriptor, o))
        metadata = json.loads(info.app_metadata or b"{}") if hasattr(info, "app_metadata") else {}
        endpoints = []
        for endpoint in info.endpoints:
            part = json.loads(endpoint.app_metadata or b"{}")
            endpoints.append(Endpoint(endpoint.ticket.ticket, part.get("first"), part.get("last"), part.get("rows", 0)))
        covered = metadata.get("covered")
        lineage = None
        if "version" in metadata:
            lineage = (metadata["version"], metadata["known_at"], metadata.get("snapshot"))
        return Plan(info.schema, endpoints, None if covered is None else tuple(covered), lineage)

    def fetch(self, endpoint: Endpoint) -> pa.Table:
        """One endpoint's table."""
        ticket = flight.Ticket(endpoint.ticket)
        return self._call(lambda c, o: c.do_get(ticket, o).read_all())

    def _batches(self, endpoint: Endpoint) -> Iterator[pa.RecordBatch]:
        """One endpoint's batches, each read as the previous is done with."""
        ticket = flight.Ticket(endpoint.ticket)
        reader = self._call(lambda c, o: c.do_get(ticket, o))
        while True:
            try:
                yield reader.read_chunk().data
            except StopIteration:
                return
            except (flight.FlightError, pa.ArrowException) as error:
                raise _translate(error, self.url) from None

    def _get(self, read: Read, dictionary_dates: bool = False) -> tuple[pa.Table, dict[str, Any]]:
        local = self._local_cache()
        if local is not None:
            table, info = local._get(read, dictionary_dates)
            return table, self._served_here(info)
        plan, parts, info = self._parts(read, dictionary_dates)
        return join(parts, plan.schema), info

    def _get_frame(self, read: Read, backend: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        local = self._local_cache()
        if local is not None:
            frame, info = local._get_frame(read, backend)
            return frame, self._served_here(info)
        plan = self._plan(read, True)
        if fillable(plan.schema, backend) and plan.endpoints:
            try:
                return self._streamed(plan), self._info(read, plan)
            except Unfillable:
                pass  # the parts are fetched whole and joined instead
        return parts_to_pandas(self._fetch_all(plan), plan.schema, backend), self._info(read, plan)

    def _streamed(self, plan: Plan) -> pd.DataFrame:
        """The frame of `plan`, each endpoint's batches copied into place as they arrive."""
        fill = Fill(plan.schema, [e.rows for e in plan.endpoints])
        first, last = plan.endpoints[0].first, plan.endpoints[-1].last
        if first and last:
            day = datetime.date.fromisoformat
            fill.bound_dates((day(last) - day(first)).days + 1)
        pool = self._fetchers() if len(plan.endpoints) > 1 else None
        run(fill, [lambda e=e: self._batches(e) for e in plan.endpoints], pool)
        return fill.frame()

    def _served_here(self, info: dict[str, Any]) -> dict[str, Any]:
        info["remote"] = self.url
        info["same_machine"] = True
        return info

    def _local_cache(self) -> Cache | None:
        """The server's cache opened on this machine, when the server runs here and its store
        opens; `None` (decided once) otherwise."""
        if self._same_box is None:
            with self._pool_lock:
                if self._same_box is None:
                    self._same_box = self._open_same_box() or False
        return self._same_box or None

    def _open_same_box(self) -> Cache | None:
        from . import Cache

        try:
            where = self._action("location")
        except QueryError:
            return None  # a server from before `location`
        if not where.get("boot_id") or where["boot_id"] != _boot_id():
            return None
        try:
            cache = Cache(where["config"])
            identity = cache._inner.identity()
        except (CheetahError, OSError) as error:
            warnings.warn(
                f"the Cheetah server at {self.url} runs on this machine, but its cache at {where['config']} "
                f"does not open here ({error}); reading over the network",
                stacklevel=5,
            )
            return None
        # The same path may name another store here (another container sharing the kernel).
        return cache if identity == where["identity"] else None

    def _parts(self, read: Read, dictionary_dates: bool) -> tuple[Plan, list[pa.Table], dict[str, Any]]:
        """The plan, its endpoints' tables fetched in parallel, and the frame's `attrs`."""
        plan = self._plan(read, dictionary_dates)
        return plan, self._fetch_all(plan), self._info(read, plan)

    def _fetch_all(self, plan: Plan) -> list[pa.Table]:
        if len(plan.endpoints) > 1:
            return list(self._fetchers().map(self.fetch, plan.endpoints))
        return [self.fetch(e) for e in plan.endpoints]

    def _info(self, read: Read, plan: Plan) -> dict[str, Any]:
        info = read.info(plan.covered, plan.lineage)
        info["remote"] = self.url
        return info

    def _fetchers(self) -> ThreadPoolExecutor:
        # Kept for the cache's life, so each thread's connection serves every later read.
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(PARALLEL_FETCHES, thread_name_prefix="cheetah-fetch")
            return self._pool

    def _action(self, name: str) -> Any:
        results = self._call(lambda c, o: list(c.do_action(flight.Action(name, b""), o)))
        return json.loads(results[0].body.to_pybytes())

    def status(self) -> dict[str, Any]:
        """The server's store, per table and field, and its streams under ``"flight"``."""
        return self._action("status")

    def snapshots(self) -> pd.DataFrame:
        """The server's snapshots: `name`, `version`, `created` (UTC) and `note`."""
        rows = self._action("snapshots")
        for row in rows:
            row["created"] = pd.Timestamp(row["created"])
        return pd.DataFrame(rows, columns=["name", "version", "created", "note"])

    def write(self, table: str, frame: Any, *, date: str = "date", symbol: str = "symbol") -> dict[str, Any]:
        """Writes `frame` into the server's local table `table`, as `Cache.write` does there,
        with Flight `DoPut`. Needs the server's write token (``[flight] write_token``) as this
        connection's token; with the read token the server refuses it."""
        data, date, symbol = to_arrow(frame, date, symbol)
        command = json.dumps({"table": table, "date": date, "symbol": symbol}).encode()

        def put(client: flight.FlightClient, options: flight.FlightCallOptions) -> Any:
            writer, reader = client.do_put(flight.FlightDescriptor.for_command(command), data.schema, options)
            writer.write_table(data)
            writer.done_writing()
            answer = reader.read()
            writer.close()
            return answer

        try:
            answer = self._call(put)
        except QueryError as error:
            # pyarrow drops the status details of a put: what the server refused is the frame.
            raise WriteError(str(error)) from None
        return json.loads(answer.to_pybytes()) if answer is not None else {}

    def _universes(self) -> list[dict[str, Any]]:
        return self._action("universes")

    def _members(self, universe: str, date: datetime.date) -> list[str]:
        on = date.isoformat()
        universes = self._universes()
        for u in universes:
            if u["name"] == universe:
                if u["read"] is None:
                    raise QueryError(f"universe `{universe}` is not cached yet; run `cheetah update`")
                spans = u["read"]["spans"]
                return sorted(s for s, start, end in spans if start <= on and (end is None or on < end))
        known = ", ".join(f"`{u['name']}`" for u in universes)
        raise QueryError(f"universe `{universe}` is not configured on {self.url}; configured universes: {known or 'none'}")

    def close(self) -> None:
        """Closes the connections; the next call opens others."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        client = getattr(self._per_thread, "client", None)
        if client is not None:
            client.close()
            self._per_thread.client = None


def connect(
    url: str,
    *,
    token: str | None = None,
    tls_root_certs: bytes | str | None = None,
    timeout: float | None = None,
    local: bool = True,
) -> RemoteCache:
    """A cache served over Arrow Flight at `url` (``grpc://host:8815``, or ``grpc+tls://`` for a
    server with ``tls_cert``): `get_data`, `get_arrow`, `get_polars`, `fields()` and `status()`
    as on a local cache.

    `token` is the server's ``[flight] token`` (default: ``$CHEETAH_TOKEN``). `tls_root_certs` is
    the PEM (bytes or a file path) of the CA that signed the server's certificate, when the
    system's roots do not. `timeout` bounds each call, in seconds. Connecting is lazy: the first
    read reaches the server.

    On the server's own machine, reads open the server's store and map its shared layer instead
    of streaming over the network (the frame's ``attrs["cheetah"]["same_machine"]`` says so);
    ``local=False`` always reads over Flight. Writes, `status()`, plans and endpoints always go
    to the server. The first `connect` in a process has glibc keep memory a read frees for the
    next read, unless the process set its own malloc thresholds (docs/flight.md, "Memory").
    """
    return RemoteCache(url, token=token, tls_root_certs=tls_root_certs, timeout=timeout, local=local)
