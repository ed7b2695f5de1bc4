"""A read as a Dask DataFrame: one partition per endpoint of the server's plan, read by the
workers straight from the Flight server.

    import cheetah.dask
    ddf = cheetah.dask.read_data("grpc://cache-host:8815", "2015-01-01", "2025-12-31", ["close", "pe"])
    ddf.groupby("symbol").close.mean().compute()

The frame is indexed by `date` with known divisions (each endpoint is a date range), and
`symbol` is a categorical column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import pyarrow as pa

from ._fill import parts_to_pandas
from ._frames import to_pandas
from ._reads import DateLike, ReadOptions, read_keywords
from .remote import Endpoint, RemoteCache, connect

if TYPE_CHECKING:
    from typing_extensions import Unpack

try:
    import dask.dataframe as dd
    from dask.dataframe.utils import UNKNOWN_CATEGORIES
except ImportError as error:  # pragma: no cover - exercised only without dask
    raise ImportError("cheetah.dask needs Dask: pip install 'dask[dataframe]' (and 'distributed' for a cluster)") from error

__all__ = ["read_data"]


def _by_date(frame: pd.DataFrame) -> pd.DataFrame:
    """A `get_data` frame indexed by `date`, with `symbol` a categorical column over the symbol
    dictionary."""
    index = frame.index
    symbol = pd.Categorical.from_codes(index.codes[1], categories=index.levels[1])
    frame.index = pd.DatetimeIndex(index.levels[0].take(index.codes[0]), name="date")
    frame.insert(0, "symbol", symbol)
    return frame


class _ReadPart:
    """Reads one endpoint on a worker; picklable, so the cache travels as its address."""

    def __init__(self, remote: RemoteCache, schema: pa.Schema, backend: str) -> None:
        self.remote = remote
        self.schema = schema
        self.backend = backend

    def __call__(self, endpoint: Endpoint) -> pd.DataFrame:
        return _by_date(parts_to_pandas([self.remote.fetch(endpoint)], self.schema, self.backend))


def _meta(schema: pa.Schema, backend: str) -> pd.DataFrame:
    empty = _by_date(to_pandas(schema.empty_table(), backend))
    empty["symbol"] = pd.Categorical([], categories=[UNKNOWN_CATEGORIES])
    return empty


@read_keywords
def read_data(
    url: str,
    start: DateLike,
    end: DateLike,
    cols: str | Sequence[str],
    *,
    token: str | None = None,
    tls_root_certs: bytes | str | None = None,
    dtype_backend: Literal["numpy", "pyarrow"] = "numpy",
    **options: Unpack[ReadOptions],
) -> Any:
    """`get_data` of the cache served at `url`, as a Dask DataFrame of one partition per endpoint.

    The arguments are those of `cheetah.connect` and `get_data`. Planning happens here, in the
    calling process; each partition is fetched by whichever worker computes it.
    """
    remote = connect(url, token=token, tls_root_certs=tls_root_certs)
    plan = remote.plan(start, end, cols, **options)
    meta = _meta(plan.schema, dtype_backend)
    if not plan.endpoints:
        return dd.from_pandas(meta, npartitions=1)
    divisions = [pd.Timestamp(e.first) for e in plan.endpoints] + [pd.Timestamp(plan.endpoints[-1].last)]
    return dd.from_map(
        _ReadPart(remote, plan.schema, dtype_backend),
        plan.endpoints,
        meta=meta,
        divisions=divisions,
        label="cheetah-read",
        enforce_metadata=False,
    )
