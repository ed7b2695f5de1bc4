"""Cheetah in Jupyter: the example notebook runs top to bottom in a real kernel, the cache and the
update report render as HTML tables, and `update()` draws its progress bars."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbclient
import nbformat

import cheetah

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"outputs committed: {cell.source[:60]}"


def test_the_example_notebook_runs_in_a_kernel(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path)
    notebook = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any(h.startswith("<table><caption") and "Update: 2 tables" in h for h in html), "the update report"
    assert any("Cheetah cache of" in h and "<td>revenue</td>" in h for h in html), "the cache"
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot"
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "wrote " in streams and "cheetah.toml" in streams, "cheetah init"
    # The notebook's cache is a real one: its asof field reads back as the notebook showed.
    cache = cheetah.open(tmp_path / "quickstart" / "cheetah.toml")
    df = cache.get_data("2024-01-02", "2024-03-29", cols=["close", "revenue"])
    assert len(df) == 60 * 30 and df["revenue"].notna().all()
    # Each symbol moves from its Q3 revenue to its Q4 one on the date it announced Q4.
    assert df.groupby(level="symbol")["revenue"].nunique().eq(2).all()


def test_the_cache_and_the_update_report_render_as_tables(market, tmp_path, capsys):
    config = tmp_path / "cheetah.toml"
    config.write_text(market.config.read_text())
    assert "empty, no update has run yet" in cheetah.open(config)._repr_html_()
    writer = cheetah.open(config, writer=True)
    report = writer.update(progress=True)
    bars = capsys.readouterr().err
    for table in ("bar", "val", "fac"):
        assert table in bars
    assert "rows/s" in bars and "100%" in bars
    assert isinstance(report, list) and [r["table"] for r in report] == ["bar", "val", "fac"]
    html = report._repr_html_()
    assert "<th>dates deleted</th>" in html
    assert f"<td>bar</td><td style=\"text-align:right\">{report[0]['dates']:,}</td>" in html
    status = writer.status()
    page = writer._repr_html_()
    for table in status["tables"]:
        for field in table["fields"]:
            assert f"<td>{table['name']}</td><td>{field['name']}</td><td>{field['type']}</td>" in page
    assert page.count("<tr>") == 1 + sum(len(t["fields"]) for t in status["tables"])
    assert repr(writer) == f"cheetah.Cache({str(config)!r})"
