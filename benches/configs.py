"""The Cheetah configs the benchmarks write: the market's tables from the PostgreSQL source
into a store under the work directory."""

from __future__ import annotations

import json
from pathlib import Path

from peers import dsn_parts
from queries import TABLES


def odbc_string(dsn: str) -> str:
    """The psqlODBC connection string to the database of `dsn`, as Cheetah's config holds it."""
    parts = dsn_parts(dsn)
    return (f"Driver={{PostgreSQL Unicode}};Server={parts['host']};Port={parts['port']};"
            f"Database={parts['dbname']};Uid={parts['user']};BoolsAsChar=0;")


def write_config(work: Path, dsn: str, name: str = "cheetah", tables: dict[str, list[str]] = TABLES,
                 lookback: int = 5, store: str | None = None, start: str = "2015-01-01",
                 source_extra: str = "", hot_cache: str = "4GiB", extra: str = "") -> Path:
    """`WORK/<name>.toml`, caching `tables` from the source into `store`, `WORK/<name>-store` by default."""
    sections = "".join(f"""
[[table]]
name = "{t}"
date = "trade_date"
symbol = "symbol"
fields = {json.dumps(fields)}
start = "{start}"
lookback = {lookback}
""" for t, fields in tables.items())
    config = work / f"{name}.toml"
    config.write_text(f"""# Written by benches/configs.py.
[store]
path = "{store or name + '-store'}"
hot_cache = "{hot_cache}"

[source]
odbc = "{odbc_string(dsn)}"
{source_extra}
{sections}{extra}""")
    return config
