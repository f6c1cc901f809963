"""Execute a tutorial notebook and store it clean (or only check that it runs).

    python tutorials/run.py tutorials/generation.ipynb            # full settings, stored
    python tutorials/run.py tutorials/generation.ipynb --quick    # reduced settings, not stored
    python tutorials/run.py --all --quick                         # every tutorial, reduced

Notebooks read ``SCCALMFLOW_TUTORIAL_QUICK`` (``"1"``: fewer epochs and cells) in their
first code cell; ``--quick`` sets it, and ``tests/test_tutorials.py`` runs every notebook
that way so none can rot. The kernel runs in a temporary folder (files a tutorial writes do
not land in the repository) with the package's default of one torch thread. A stored notebook keeps only what a
reader should see: stderr outputs are dropped, and an output that shows a local path
(``/tmp/...``, ``/home/...``, the repository's folder) is an error: silence it at the
source instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK_ENV = "SCCALMFLOW_TUTORIAL_QUICK"
#: Stored in the order the docs list them.
TUTORIALS = (
    "how_it_works.ipynb",
    "kang_ifnb.ipynb",
    "generation.ipynb",
    "conditions_and_prompts.ipynb",
    "scanpy_pipeline.ipynb",
    "language_backbones.ipynb",
)
_LOCAL_PATH = re.compile(r"(/tmp/|/home/|/root/|/work/|/private/var/|[A-Z]:\\\\Users)")


def local_paths(nb) -> list[str]:
    """Outputs of ``nb`` that show a local path (cell index and a snippet)."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")]
            texts += [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else str(text)
                m = _LOCAL_PATH.search(text)
                if m:
                    found.append(f"cell {i}: ...{text[max(0, m.start() - 40) : m.end() + 40]}...")
    return found


def clean(nb):
    """Drop stderr streams and per-cell execution metadata; keep results and figures."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [
            o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")
        ]
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def execute(path: str | Path, *, quick: bool, timeout: int = 1800):
    """Run ``path`` in a fresh kernel (temporary working folder); return the notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    env_before = os.environ.get(QUICK_ENV)
    os.environ[QUICK_ENV] = "1" if quick else "0"
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    try:
        with tempfile.TemporaryDirectory() as cwd:
            client = NotebookClient(
                nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}}
            )
            client.execute()
    finally:
        if env_before is None:
            os.environ.pop(QUICK_ENV, None)
        else:
            os.environ[QUICK_ENV] = env_before
    return clean(nb)


def main(argv: list[str] | None = None) -> None:
    """Execute the given notebooks (or ``--all``); store them unless ``--quick``."""
    import nbformat

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*")
    p.add_argument("--all", action="store_true", help="every tutorial in TUTORIALS")
    p.add_argument("--quick", action="store_true", help="reduced settings; nothing is stored")
    args = p.parse_args(argv)
    paths = [HERE / n for n in TUTORIALS] if args.all else [Path(n) for n in args.notebooks]
    if not paths:
        p.error("name notebooks or pass --all")
    for path in paths:
        nb = execute(path, quick=args.quick)
        bad = local_paths(nb)
        if bad:
            sys.exit(f"{path}: outputs show local paths:\n" + "\n".join(bad))
        if not args.quick:
            nbformat.write(nb, str(path))
        print(f"{path.name}: ok ({'quick, not stored' if args.quick else 'stored'})")


if __name__ == "__main__":
    main()
