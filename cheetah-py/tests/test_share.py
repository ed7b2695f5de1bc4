"""The shared layer from Python: new processes read views of it, equal to reads from the store;
frames built on it may be modified in place, privately; a damaged or deleted layer is ignored
with one warning."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import cheetah

from conftest import Market

ALL = ["close", "volume", "pe", "total_mv", "rating", "val.shared", "f0", "f1", "flag"]


@pytest.fixture(scope="module")
def shared(market: Market, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config with a [share] whose layer holds every field over the whole market."""
    layer = tmp_path_factory.mktemp("shm") / "layer"
    config = market.config.with_name("cheetah-share.toml")
    text = market.config.read_text().replace('path = "store"', f'path = "{market.config.parent / "store"}"')
    config.write_text(f'{text}\n[share]\npath = "{layer}"\nbudget = "64MiB"\n')
    binary = os.environ.get("CHEETAH_BIN")
    if binary:
        args = [binary, "--config", str(config), "warm", "--start", "2019-12-01", "--end", "2030-01-01", "--no-update"]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        assert done.returncode == 0 and "published" in done.stdout, done.stdout + done.stderr
    else:
        report = cheetah.open(config).publish("2019-12-01", "2030-01-01")
        assert report["generation"] == 1
    return config


def test_a_new_process_reads_views_of_the_layer_equal_to_the_store(shared: Path) -> None:
    script = r"""
import json, sys
import numpy as np, pandas as pd
import cheetah
config, layer = sys.argv[1], sys.argv[2]
df = cheetah.open(config).get_data("2019-12-01", "2030-01-01", sys.argv[3].split(","))
ref = cheetah.open(config, share=False).get_data("2019-12-01", "2030-01-01", sys.argv[3].split(","))
pd.testing.assert_frame_equal(df, ref, check_exact=True)
maps = [line.split() for line in open("/proc/self/maps")]
def mapped(column):
    address = df[column].to_numpy().__array_interface__["data"][0]
    return [m[-1] for m in maps if len(m) == 6 and int(m[0].split("-")[0], 16) <= address < int(m[0].split("-")[1], 16)]
print(json.dumps({"shared": df.attrs["cheetah"]["shared"], "mapped": mapped("close"), "rows": len(df),
                  "volume": {"dtype": str(df["volume"].dtype), "nulls": int(df["volume"].isna().sum()),
                             "mapped": mapped("volume")}}))
"""
    layer = cheetah.open(shared).status()["share"]["path"]
    out = subprocess.run([sys.executable, "-c", script, str(shared), layer, ",".join(ALL)],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["shared"]["views"] is True and report["shared"]["rows"] == report["rows"]
    assert report["mapped"] and report["mapped"][0].startswith(layer), "close is a view of a layer file"
    # An integer with nulls: the layer's float64 copy, not one widened in this process.
    volume = report["volume"]
    assert volume["dtype"] == "float64" and volume["nulls"] > 0, volume
    assert volume["mapped"] and volume["mapped"][0].startswith(layer), volume


@pytest.mark.parametrize("through", ["layer", "store"])
def test_a_new_process_makes_its_symbol_level_once(shared: Path, through: str) -> None:
    # Through the store, the read's thread sends the symbols ahead, and the calling thread makes
    # the level while the read runs. The layer's read runs on the calling thread and is over in
    # a millisecond or so: the frame makes the level after it. Either way, once a process.
    script = r"""
import json, sys
import pandas as pd
import cheetah
from cheetah import _frames
from cheetah._reads import Read
config, cols, through = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
cache = cheetah.open(config, share=through == "layer")
if through == "store":
    cache.get_arrow("2020-01-15", "2020-01-15", cols)  # opens the store; makes no frame
inner, reading, made = cache._inner, [False], []

class Watched:
    def __getattr__(self, name):
        return getattr(inner, name)
    def get(self, *args):
        reading[0] = True
        try:
            return inner.get(*args)
        finally:
            reading[0] = False

make = _frames.text_index
def text_index(values, name):
    if name == "symbol":
        made.append(reading[0])
    return make(values, name)
_frames.text_index = text_index
cache._inner = Watched()
first = cache.get_data("2019-12-01", "2030-01-01", cols)
second = cache.get_data("2020-01-15", "2020-02-10", cols)
made_by_two = list(made)
pd.testing.assert_frame_equal(first, cheetah.open(config, share=False).get_data("2019-12-01", "2030-01-01", cols))
def refuse(symbols):
    raise ValueError(f"refused {len(symbols)} symbols")
try:
    inner.get(Read.of("2020-01-15", "2020-02-10", cols), True, True, refuse)
    raised = None
except ValueError as e:
    raised = str(e)
shared = first.attrs["cheetah"]["shared"]
print(json.dumps({"made": made_by_two, "shared": bool(shared and shared["views"]), "symbols": len(first.index.levels[1]),
                  "raised": raised}))
"""
    out = subprocess.run([sys.executable, "-c", script, str(shared), ",".join(ALL), through],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["shared"] is (through == "layer")
    if through == "store":
        # Made inside the first read's call; the frame and the second read found it made.
        assert report["made"] == [True], report
        assert report["raised"] == f"refused {report['symbols']} symbols", "an error of the caller's part is raised"
    else:
        # Made by the first frame, after its read; the second read found it made.
        assert report["made"] == [False], report
        assert report["raised"] is None, "a read the layer serves whole does not call ahead"


SHAPES = [
    dict(start="2019-12-01", end="2030-01-01", cols=["close", "pe"]),
    dict(start="2019-12-01", end="2030-01-01", cols=["close", "pe", "f0"]),
    dict(start="2020-01-15", end="2020-02-10", cols=ALL),
    dict(start="2020-01-15", end="2020-02-10", cols=["f0", "close"], symbols=["Q00", "W01", "nope", "B50"]),
    dict(start="2019-01-01", end="2020-01-20", cols=["pe", "rating"], base="bar"),
    dict(start="2020-02-01", end="2030-01-01", cols=["flag", "f1", "volume"], base="fac"),
    dict(start="2020-01-01", end="2020-01-01", cols=["total_mv"]),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: ",".join(s["cols"][:2]))
def test_every_read_equals_the_store(shared: Path, shape: dict) -> None:
    layered, plain = cheetah.open(shared), cheetah.open(shared, share=False)
    for backend in ("numpy", "pyarrow"):
        a = layered.get_data(**shape, dtype_backend=backend)
        pd.testing.assert_frame_equal(a, plain.get_data(**shape, dtype_backend=backend), check_exact=True)
        assert a.attrs["cheetah"]["shared"] is not None
    assert layered.get_arrow(**shape).equals(plain.get_arrow(**shape))
    assert layered.get_polars(**shape).equals(plain.get_polars(**shape))


def test_a_frame_is_modified_in_place_privately(shared: Path) -> None:
    cache = cheetah.open(shared)
    # Fields of all three tables: the segment's rows exactly, so views.
    df = cache.get_data("2019-12-01", "2030-01-01", ["close", "total_mv", "f0"])
    assert df.attrs["cheetah"]["shared"]["views"]
    before = df["close"].iloc[0]
    df.iloc[0, 0] = -1.0
    df["total_mv"] *= 2
    assert df["close"].iloc[0] == -1.0
    again = cache.get_data("2019-12-01", "2030-01-01", ["close", "total_mv", "f0"])
    assert again["close"].iloc[0] == before, "another result of this process is untouched"
    other = subprocess.run(
        [sys.executable, "-c", f"import cheetah; print(repr(cheetah.open({str(shared)!r}).get_data('2019-12-01', '2030-01-01', ['close', 'total_mv', 'f0'])['close'].iloc[0].item()))"],
        capture_output=True, text=True, check=True,
    )
    assert float(other.stdout) == before, "and so is every other process"


def _layer(shared: Path) -> Path:
    return Path(cheetah.open(shared).status()["share"]["path"])


def _read_with_warnings(shared: Path) -> tuple[pd.DataFrame, list[str]]:
    cache = cheetah.open(shared)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = [cache.get_data("2019-12-01", "2030-01-01", ["close", "pe", "f0"]) for _ in range(3)]
    shown = [str(w.message) for w in caught if issubclass(w.category, cheetah.ShareWarning)]
    return frames[-1], shown


def test_a_damaged_or_deleted_layer_is_ignored_with_one_warning(shared: Path) -> None:
    reference = cheetah.open(shared, share=False).get_data("2019-12-01", "2030-01-01", ["close", "pe", "f0"])
    layer = _layer(shared)
    manifest = (layer / "MANIFEST").read_bytes()
    try:
        damaged = bytearray(manifest)
        damaged[30] ^= 0x20
        (layer / "MANIFEST.new").write_bytes(bytes(damaged))
        os.replace(layer / "MANIFEST.new", layer / "MANIFEST")
        frame, shown = _read_with_warnings(shared)
        pd.testing.assert_frame_equal(frame, reference, check_exact=True)
        assert frame.attrs["cheetah"]["shared"] is None
        assert len(shown) == 1 and "damaged" in shown[0], shown
    finally:
        (layer / "MANIFEST.new").write_bytes(manifest)
        os.replace(layer / "MANIFEST.new", layer / "MANIFEST")

    saved = layer.with_name("saved")
    shutil.move(layer, saved)
    try:
        frame, shown = _read_with_warnings(shared)
        pd.testing.assert_frame_equal(frame, reference, check_exact=True)
        assert len(shown) == 1 and "no shared layer" in shown[0], shown
        status = cheetah.open(shared).status()["share"]
        assert status["usable"] is False and status["generation"] is None
    finally:
        shutil.move(saved, layer)
    frame, shown = _read_with_warnings(shared)
    assert frame.attrs["cheetah"]["shared"]["views"] and not shown


def test_status_and_publish_errors(shared: Path) -> None:
    status = cheetah.open(shared).status()["share"]
    assert status["usable"] and status["bytes"] <= status["budget"] == 64 << 20
    fields = {f for segment in status["segments"] for f in segment["fields"]}
    assert {"bar.close", "val.pe", "fac.flag"} <= fields
    with pytest.raises(cheetah.ShareError, match=r"no \[share\]"):
        cheetah.open(shared.with_name("cheetah.toml")).publish("2020-01-01", "2020-02-01")
    with pytest.raises(cheetah.QueryError, match="like it: `bar.close`"):
        cheetah.open(shared).publish("2020-01-01", "2020-02-01", ["clsoe"])
