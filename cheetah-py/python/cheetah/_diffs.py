"""A diff's changed cells as one frame."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa


def diff_frame(parts: list[tuple[str, str, pa.Table]], old: Any, new: Any, skipped: list[str]) -> pd.DataFrame:
    """The cells of a diff, one field's table after another, as one frame: `table`, `field`,
    `date`, `symbol`, `old`, `new`. `old` and `new` keep a number's float64 when every part is
    numeric, and become objects (each cell its own Python value) otherwise."""
    columns = ["table", "field", "date", "symbol", "old", "new"]
    numeric = all(pa.types.is_integer(t.schema.field("old").type) or pa.types.is_floating(t.schema.field("old").type)
                  for _, _, t in parts)
    frames = []
    for table, field, cells in parts:
        frame = cells.to_pandas(date_as_object=False)
        for side in ("old", "new"):
            if numeric:
                frame[side] = frame[side].astype("float64")
            else:
                frame[side] = pd.Series(cells.column(side).to_pylist(), dtype=object)
        frame.insert(0, "field", field)
        frame.insert(0, "table", table)
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {c: pd.Series([], dtype="float64" if c in ("old", "new") else object) for c in columns})
    result["date"] = pd.to_datetime(result["date"]).astype("datetime64[ns]")
    result = result[columns]
    result.attrs["cheetah"] = {"from": _lineage(old), "to": _lineage(new), "skipped": list(skipped)}
    return result


def _lineage(version: Any) -> dict[str, Any]:
    number, committed, _ = version
    return {"version": number, "known_at": committed}
