"""The example notebook runs from top to bottom, displays its objects compactly, draws
figures that also show in static exports, and leaves nothing behind in the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NOTEBOOK = ROOT / "examples" / "explore.ipynb"


def _untracked_and_changed() -> set[str]:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored=matching"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line[3:] for line in status.splitlines() if "__pycache__" not in line}


@pytest.fixture(scope="module")
def executed():
    """The notebook run where it lives (in ``examples/``), with what the run left behind."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    before = _untracked_and_changed()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    return notebook, _untracked_and_changed() - before


def _outputs(notebook):
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def test_example_notebook_runs(executed):
    notebook, _ = executed
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]


def test_running_it_leaves_nothing_in_the_repository(executed):
    _, left = executed
    assert left == set()


def test_summaries_display_compactly_with_agreeing_row_counts(executed):
    notebook, _ = executed
    first = notebook.cells[1].outputs[-1]["data"]["text/html"]
    assert first.count("<li") <= 5, first  # assumptions grouped, not one per file
    assert "408,864 rows read" in first and "/work" not in first and "sample_logs/" not in first
    printed = "".join(o.get("text", "") for o in _outputs(notebook) if o.output_type == "stream")
    assert "408,891 rows: 408,864 read, 27 changes inferred" in printed
    analysis = next(
        o["data"]["text/html"]
        for o in _outputs(notebook)
        if "timeline-analysis" in o.get("data", {}).get("text/html", "")
    )
    assert "Incident 1:" in analysis and "Incident 0" not in analysis
    assert "considered, no evidence" in analysis
    assert len(analysis) < 5_000
    assert "trigger: upgrade of daemonset/kube-system/kube-proxy" in printed


def test_figures_also_render_in_static_exports(executed):
    notebook, _ = executed
    figures = [
        o for o in _outputs(notebook) if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figures) == 2
    for output in figures:
        html = output["data"].get("text/html", "")
        assert "Plotly.newPlot" in html
    # plotly.js itself is in the notebook once, so an export draws them offline
    everything = "".join(o.get("data", {}).get("text/html", "") for o in _outputs(notebook))
    assert everything.count("plotly.js v") >= 1
