"""The notebooks run top to bottom (in emulation) with small parameters, the
way papermill injects them: a cell after the one tagged `parameters`."""
import os
import time

import pytest

from ctrain.notebooks import notebooks

#: per notebook: parameter overrides for a fast run
FAST = {
    "1-quick-start-emulation.ipynb": {"EPOCHS": 2, "WARMUP": 0.5},
    "2-compressed-training.ipynb": {"EPOCHS": 2, "WARMUP": 0.5, "PRUNE_AT": 0.6},
    "3-training-on-the-board.ipynb": {"EPOCHS": 1, "WARMUP": 0.5, "EMULATE": True},
    "4-sweeps.ipynb": {"SEEDS": [0], "PRUNES": [0, 0.5], "EPOCHS": 1, "WARMUP": 0.5, "NUM_CPUS": 2},
}


def test_notebooks_are_all_listed():
    assert [p.name for p in notebooks()] == sorted(FAST)


def test_registered_for_pynq_get_notebooks():
    """pyproject registers ctrain.notebooks under `pynq.notebooks` and ships the
    .ipynb as package data (what `pynq get-notebooks ctrain` delivers)."""
    tomllib = pytest.importorskip("tomllib")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "pyproject.toml")
    if not os.path.exists(path):
        pytest.skip("not run from a source tree")
    with open(path, "rb") as f:
        project = tomllib.load(f)
    assert project["project"]["entry-points"]["pynq.notebooks"] == {"ctrain": "ctrain.notebooks"}
    assert "notebooks/*.ipynb" in project["tool"]["setuptools"]["package-data"]["ctrain"]


def _inject(nb, params):
    nbformat = pytest.importorskip("nbformat")
    for k, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "\n".join(f"{name} = {value!r}" for name, value in params.items())
            injected = nbformat.v4.new_code_cell(src)
            injected.metadata["tags"] = ["injected-parameters"]
            nb.cells.insert(k + 1, injected)
            return nb
    raise AssertionError("no cell tagged 'parameters'")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAST))
def test_notebook_runs(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    if name.startswith("3-"):
        pytest.importorskip("pynq")
    if name.startswith("4-"):
        pytest.importorskip("ray")
    path = next(p for p in notebooks() if p.name == name)
    nb = _inject(nbformat.read(path, as_version=4), FAST[name])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("CTRAIN_OVERLAY", raising=False)
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "test accuracy" in text
    print(f"{name}: {time.perf_counter() - t0:.1f} s")
