"""The progress bars of `Cache.update`, drawn with tqdm (a widget in a notebook, text on a
terminal) from the progress events the library reports."""

from __future__ import annotations

import time
from datetime import date
from typing import Any


class UpdateBars:
    """A bar per running fetch: its dates covered, rows per second and an ETA. Call it with each
    event; `close()` ends the bars a stopped update left open."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._bars: dict[tuple[str, str], tuple[Any, date, float, list[int]]] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        key = (event.get("table", ""), event.get("task", ""))
        kind = event["event"]
        if kind == "started":
            first, last = date.fromisoformat(event["from"]), date.fromisoformat(event["to"])
            label = key[0] if key[1] == "new dates" else f"{key[0]} ({key[1]})"
            bar = self._tqdm(total=(last - first).days + 1, desc=label, unit="day", dynamic_ncols=True)
            self._bars[key] = (bar, first, time.monotonic(), [0])
        elif kind == "committed" and key in self._bars:
            bar, first, started, rows = self._bars[key]
            rows[0] += event["rows"]
            bar.update((date.fromisoformat(event["date"]) - first).days + 1 - bar.n)
            rate = rows[0] / max(time.monotonic() - started, 1e-3)
            bar.set_postfix_str(f"{event['date']} {rows[0]:,} rows {rate:,.0f} rows/s", refresh=False)
        elif kind == "finished" and key in self._bars:
            self._bars.pop(key)[0].close()

    def close(self) -> None:
        for bar, *_ in self._bars.values():
            bar.close()
        self._bars.clear()
