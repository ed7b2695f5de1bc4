"""The progress bars of `Cache.update`, drawn with tqdm (a widget in a notebook, text on a
terminal) from the progress events the library reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass
class _Fetch:
    bar: Any
    first: date
    started: float = field(default_factory=time.monotonic)
    rows: int = 0


class UpdateBars:
    """A bar per running fetch: its dates covered, rows per second and an ETA. Call it with each
    event; `close()` ends the bars a stopped update left open."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._fetches: dict[tuple[str, str], _Fetch] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        key = (event.get("table", ""), event.get("task", ""))
        kind = event["event"]
        if kind == "started":
            first, last = date.fromisoformat(event["from"]), date.fromisoformat(event["to"])
            label = key[0] if key[1] == "new dates" else f"{key[0]} ({key[1]})"
            bar = self._tqdm(total=(last - first).days + 1, desc=label, unit="day", dynamic_ncols=True)
            self._fetches[key] = _Fetch(bar, first)
        elif kind == "committed" and key in self._fetches:
            fetch = self._fetches[key]
            fetch.rows += event["rows"]
            fetch.bar.update((date.fromisoformat(event["date"]) - fetch.first).days + 1 - fetch.bar.n)
            rate = fetch.rows / max(time.monotonic() - fetch.started, 1e-3)
            fetch.bar.set_postfix_str(f"{event['date']} {fetch.rows:,} rows {rate:,.0f} rows/s", refresh=False)
        elif kind == "finished" and key in self._fetches:
            self._fetches.pop(key).bar.close()

    def close(self) -> None:
        for fetch in self._fetches.values():
            fetch.bar.close()
        self._fetches.clear()
