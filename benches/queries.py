"""What the benchmarks ask: the market's tables and fields, and the queries Q1, Q2 and Q3."""

from __future__ import annotations

import market

TABLES = {
    "daily_bar": market.BAR_FIELDS,
    "valuation": market.VALUATION_FIELDS,
    "factors": market.FACTOR_FIELDS,
}
QUERIES = {
    "Q1": ("all 10 years x close, volume, pe, total_mv", "2015-01-01", "2025-12-31", ["close", "volume", "pe", "total_mv"]),
    "Q2": ("one month x the same 4 fields", "2020-03-01", "2020-03-31", ["close", "volume", "pe", "total_mv"]),
    "Q3": ("one year x close, pe and the 40 factors", "2023-01-01", "2023-12-31", ["close", "pe"] + market.FACTOR_FIELDS),
}
FIELD_TABLE = {f: t for t, fields in TABLES.items() for f in fields}
