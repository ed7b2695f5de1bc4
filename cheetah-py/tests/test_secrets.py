"""A notebook that only reads needs none of the connection string's secrets: a reader process
without the variable reads, and an update without it names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import cheetah

VARIABLE = "CHEETAH_TEST_NOTEBOOK_SECRET"


@pytest.fixture(scope="module")
def shared_config(market, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The market's config, its connection string now holding ${VARIABLE}, over a store that a
    writer holding the variable filled."""
    config = tmp_path_factory.mktemp("secret") / "cheetah.toml"
    text = market.config.read_text().replace("NoCreat=1;", f"NoCreat=1;PWD=${{{VARIABLE}}};")
    assert f"${{{VARIABLE}}}" in text
    config.write_text(text.replace('path = "store"', f'path = "{market.config.parent / "store"}"'))
    return config


def test_a_reader_process_without_the_variable_reads(shared_config: Path, cache: cheetah.Cache) -> None:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    script = (
        "import cheetah, sys\n"
        "cache = cheetah.open(sys.argv[1])\n"
        "df = cache.get_data('2020-01-01', '2020-03-01', ['close', 'pe'])\n"
        "print(len(df), len(cache.fields()), cache.status()['tables'][0]['name'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(shared_config)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows, fields, _ = done.stdout.split()
    expected = cache.get_data("2020-01-01", "2020-03-01", ["close", "pe"])
    assert int(rows) == len(expected) > 0
    assert int(fields) == len(cache.fields())


def test_an_update_without_the_variable_names_it(shared_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    with pytest.raises(cheetah.ConfigError, match=rf"\[source\] odbc uses \$\{{{VARIABLE}\}}.*not set"):
        cheetah.open(shared_config, writer=True).update(progress=False)
    monkeypatch.setenv(VARIABLE, "anything")
    report = cheetah.open(shared_config, writer=True).update(progress=False)
    assert {r["table"] for r in report if "table" in r} == {"bar", "val", "fac"}
    assert isinstance(cheetah.open(shared_config).get_data("2020-01-01", "2020-01-10", "close"), pd.DataFrame)
