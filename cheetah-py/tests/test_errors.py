"""The exceptions users handle differently: each is its own class, and a subclass of the family
it belongs to, so `except StoreError` / `except QueryError` clauses keep catching them."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest

import cheetah

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def test_empty_cache_is_both_families_it_used_to_arrive_as(tmp_path, market):
    assert issubclass(cheetah.EmptyCache, cheetah.StoreError)
    assert issubclass(cheetah.EmptyCache, cheetah.QueryError)
    config = tmp_path / "fresh.toml"
    config.write_text(market.config.read_text().replace('path = "store"', f'path = "{tmp_path / "none"}"'))
    reader = cheetah.open(config)
    for family in (cheetah.EmptyCache, cheetah.StoreError, cheetah.QueryError):
        with pytest.raises(family, match="empty cache"):
            reader.get_data("2020-01-01", "2020-12-31", ["close"])


def test_a_second_writer_gets_store_locked(market):
    writer = cheetah.open(market.config, writer=True)
    with pytest.raises(cheetah.StoreLocked, match="locked by another writer") as caught:
        cheetah.open(market.config, writer=True)
    assert isinstance(caught.value, cheetah.StoreError)
    del writer


def test_a_corrupt_chunk_names_its_table_field_and_date(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(FIXTURES / "store-corrupt", store)
    source = tmp_path / "source.db"
    with sqlite3.connect(source) as db:
        db.executescript((FIXTURES / "source.sql").read_text())
    config = tmp_path / "cheetah.toml"
    template = (FIXTURES / "config.toml.in").read_text()
    config.write_text(template.replace("@SOURCE@", str(source)).replace("@STORE@", str(store)))
    cache = cheetah.open(config)
    assert len(cache.get_data("2024-01-01", "2024-12-31", ["close"])) == 8, "an intact field reads"
    with pytest.raises(cheetah.CorruptChunk, match=r"chunk of field `volume` on 2024-01-03.*verify --repair") as caught:
        cache.get_data("2024-01-01", "2024-12-31", ["volume"])
    error = caught.value
    assert isinstance(error, cheetah.StoreError)
    assert (error.table, error.field, error.date) == ("bar", "volume", dt.date(2024, 1, 3))
