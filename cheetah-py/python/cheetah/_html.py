"""HTML tables for Jupyter: what `Cache` and an update report show as their `_repr_html_`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any


def human_bytes(n: int) -> str:
    value, unit = float(n), 0
    units = ("B", "KB", "MB", "GB", "TB")
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f"{n} B" if unit == 0 else f"{value:.1f} {units[unit]}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """A plain HTML table; numbers right-aligned, `None` shown empty."""

    def cell(value: Any) -> str:
        if value is None:
            return "<td></td>"
        if isinstance(value, bool):
            return f"<td>{'yes' if value else 'no'}</td>"
        if isinstance(value, int):
            return f'<td style="text-align:right">{value:,}</td>'
        if isinstance(value, float):
            return f'<td style="text-align:right">{value:,.2f}</td>'
        return f"<td>{escape(str(value))}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(cell(v) for v in row)}</tr>" for row in rows)
    title = f"<caption style=\"text-align:left\">{escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def status_html(config_path: str, status: dict[str, Any] | None) -> str:
    """A cache's fields with their dates, rows and bytes, table by table."""
    if status is None:
        return table([], [], f"Cheetah cache of {config_path}: empty, no update has run yet")
    rows = []
    for t in status["tables"]:
        for f in t["fields"]:
            rows.append(
                (
                    t["name"],
                    f["name"],
                    f["type"],
                    f["first"],
                    f["last"],
                    f["dates"],
                    f["rows"],
                    human_bytes(f["bytes"]),
                    t["source"],
                    t["watermark"],
                )
            )
    caption = (
        f"Cheetah cache of {config_path}: {len(status['tables'])} tables, {len(rows)} fields, "
        f"{status['symbols']:,} symbols, {human_bytes(status['disk_bytes'])} on disk"
    )
    headers = ("table", "field", "type", "first", "last", "dates", "rows", "bytes", "source", "watermark")
    return table(headers, rows, caption)


class UpdateReport(list):  # type: ignore[type-arg]
    """What `Cache.update` returns: a dict per table (`table`, `dates`, `rows`, `dates_deleted`,
    `watermark`, `seconds`), then one per universe (`universe`, `intervals`, `symbols`,
    `seconds`). A list, shown as tables in Jupyter."""

    def _repr_html_(self) -> str:
        tables = [r for r in self if "table" in r]
        universes = [r for r in self if "universe" in r]
        dates = sum(r["dates"] for r in tables)
        rows = sum(r["rows"] for r in tables)
        html = table(
            ("table", "dates", "rows", "dates deleted", "watermark", "seconds"),
            [(r["table"], r["dates"], r["rows"], r["dates_deleted"], r["watermark"], r["seconds"]) for r in tables],
            f"Update: {len(tables)} tables, {dates:,} dates, {rows:,} rows",
        )
        if universes:
            html += table(
                ("universe", "intervals", "symbols", "seconds"),
                [(r["universe"], r["intervals"], r["symbols"], r["seconds"]) for r in universes],
            )
        return html
