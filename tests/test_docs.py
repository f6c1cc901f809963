"""The documentation: the site builds with warnings as errors, and every tutorial runs.

Both are slow (minutes) and run in CI with ``-m slow``. The tutorials run with reduced
settings (``SCCALMFLOW_TUTORIAL_QUICK=1``) in a fresh kernel each, so an API change that
breaks one fails here instead of rotting in the stored notebook.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("tutorial_runner", ROOT / "tutorials" / "run.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


def test_every_tutorial_is_listed_linked_and_stored_clean():
    stored = sorted(p.name for p in (ROOT / "tutorials").glob("*.ipynb"))
    assert stored == sorted(runner.TUTORIALS)
    index = (ROOT / "docs" / "index.md").read_text()
    for name in runner.TUTORIALS:
        links = list((ROOT / "docs").rglob(name))
        assert links and all(p.resolve() == ROOT / "tutorials" / name for p in links), name
        assert str(links[0].relative_to(ROOT / "docs").with_suffix("")) in index, name
        nb = json.loads((ROOT / "tutorials" / name).read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{name} is not executed"
        outputs = [o for c in code for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("name") == "stderr"], f"{name} stores stderr"
        assert "SCCALMFLOW_TUTORIAL_QUICK" in "".join(code[0]["source"]), name
    import nbformat

    for name in runner.TUTORIALS:
        nb = nbformat.read(str(ROOT / "tutorials" / name), as_version=4)
        assert not runner.local_paths(nb), f"{name} shows local paths"


def test_local_paths_are_found():
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="saved /tmp/a/b.h5ad")]
    nb.cells = [cell]
    assert runner.local_paths(nb)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="saved b.h5ad")]
    assert not runner.local_paths(nb)


@pytest.mark.slow
@pytest.mark.parametrize("name", runner.TUTORIALS)
def test_tutorial_runs(name):
    nb = runner.execute(ROOT / "tutorials" / name, quick=True)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert not runner.local_paths(nb)


@pytest.mark.slow
def test_sphinx_builds_with_warnings_as_errors(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-5000:]
    html = (tmp_path / "html" / "generated" / "sccalmflow.CaLMFlowModel.html").read_text()
    assert "setup_anndata" in html
    for name in runner.TUTORIALS:
        page = next((tmp_path / "html").rglob(name.replace(".ipynb", ".html")))
        assert "<img" in page.read_text(), f"{name}: no figure rendered"
