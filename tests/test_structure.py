"""The layout rules of the house (see docs/architecture.md), checked on the source."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "sccalmflow"
MAX_FUNCTION_LINES = 80
MAX_MODEL_LINES = 400


def _modules(folder: Path, package: str):
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, ".".join(parts)


def _project_files():
    yield from _modules(SRC, "sccalmflow")
    yield from _modules(ROOT / "benchmarks", "benchmarks")
    yield from _modules(ROOT / "tests", "tests")


def _package_of(path: Path, module: str) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(package: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = package.split(".")
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _private_imports(path: Path, module: str) -> list[str]:
    package = _package_of(path, module)
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(package, node)
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            target, names = "", [a.name for a in node.names]
            for name in names:
                if name.startswith("sccalmflow") and any(
                    p.startswith("_") for p in name.split(".")
                ):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} import {name}")
            continue
        else:
            continue
        if not target.startswith(("sccalmflow", "benchmarks")):
            continue
        if target == package or target.startswith(package + "."):
            continue  # inside the importing module's own package
        private_part = any(p.startswith("_") and not p.startswith("__") for p in target.split("."))
        private_name = any(n.startswith("_") and not n.startswith("__") for n in names)
        if private_part or private_name:
            bad.append(f"{path.relative_to(ROOT)}:{node.lineno} from {target} import {names}")
    return bad


def test_no_private_name_is_imported_from_another_package():
    bad = [b for path, module in _project_files() for b in _private_imports(path, module)]
    assert not bad, "private names imported across packages:\n" + "\n".join(bad)


def _code_lines(node: ast.FunctionDef) -> int:
    body = node.body
    first = body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    start = first.end_lineno + 1 if has_doc and isinstance(first.value.value, str) else first.lineno
    return node.end_lineno - start + 1


def test_no_long_functions_in_src():
    long = []
    for path, _ in _modules(SRC, "sccalmflow"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(node)
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 80 lines of code:\n" + "\n".join(long)


def test_model_class_is_thin():
    n = len((SRC / "model" / "_model.py").read_text().splitlines())
    assert n <= MAX_MODEL_LINES, f"model/_model.py has {n} lines"


def test_matrices_are_read_through_get_matrix():
    """``.layers[...]`` and ``.obsm[...]`` are read in one place: ``data.get_matrix``."""
    reads = []
    for path, _ in _modules(SRC, "sccalmflow"):
        if path == SRC / "data" / "_matrix.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Load)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr in ("layers", "obsm")
            ):
                reads.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not reads, "matrix reads outside data.get_matrix:\n" + "\n".join(reads)


@pytest.mark.parametrize("forbidden", [".predict(", "evaluate(", "joint_umap(", "UMAP("])
def test_pl_only_draws(forbidden):
    calls = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in sorted((SRC / "pl").rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if forbidden in line and not line.lstrip().startswith(("#", ">>>", "..."))
    ]
    assert not calls, f"pl computes ({forbidden}):\n" + "\n".join(calls)


def test_public_api_after_bare_import():
    """``import sccalmflow as scf`` is enough for ``scf.pl.history``, ``scf.tl...`` etc."""
    code = (
        "import sccalmflow as scf\n"
        "missing = [n for n in scf.__all__ if not hasattr(scf, n)]\n"
        "for pkg in ('pl', 'tl', 'metrics', 'baselines', 'datasets', 'data'):\n"
        "    mod = getattr(scf, pkg)\n"
        "    missing += [f'{pkg}.{n}' for n in mod.__all__ if not hasattr(mod, n)]\n"
        "assert callable(scf.pl.history) and callable(scf.metrics.evaluate)\n"
        "print(' '.join(missing))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"unresolved public names: {out.stdout}"


def test_bare_import_is_light():
    """``import sccalmflow`` loads no heavy dependency; they come with the first use."""
    code = (
        "import sys, sccalmflow as scf\n"
        "heavy = [m for m in ('torch', 'lightning', 'scvi', 'scanpy', 'transformers', 'umap')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from sccalmflow import CaLMFlowModel\n"
        "assert 'scvi' in sys.modules and CaLMFlowModel is scf.model.CaLMFlowModel\n"
        "assert set(scf.__all__) <= set(dir(scf))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_ci_fails_when_a_test_run_fails():
    """``.ci/run`` runs README's command and exits non-zero when any part of it fails (a
    failure inside an ``&&`` list does not stop a ``set -e`` script by itself)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text().splitlines()
    command = next(
        line for line in readme if line.startswith("python3 -m venv .venv") and "pytest" in line
    )
    ci_line = next(
        line for line in (root / ".ci" / "run").read_text().splitlines() if command in line
    )
    parts = command.split(" && ")
    for failing in range(len(parts)):
        chain = " && ".join("false" if i == failing else "true" for i in range(len(parts)))
        script = "set -euo pipefail\n" + ci_line.replace(command, chain) + "\necho reached\n"
        res = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        assert res.returncode != 0 and "reached" not in res.stdout, parts[failing]


def test_ci_constraints_pin_exact_versions_without_torch():
    """README's test install reads ``.ci/constraints.txt``: one exact ``name==version`` per
    line, each package once, and neither torch (installed first, from the CPU wheel) nor a
    CUDA package nor the project itself."""
    import re

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    assert '-e ".[test]" -c .ci/constraints.txt' in readme
    lines = (root / ".ci" / "constraints.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    pattern = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+$")
    assert pins and all(pattern.match(p) for p in pins), [p for p in pins if not pattern.match(p)]
    names = [re.sub(r"[-_.]+", "-", p.split("==")[0]).lower() for p in pins]
    assert len(names) == len(set(names))
    assert not {"torch", "torchcfm", "sccalmflow"} & set(names)
    assert not [n for n in names if n.startswith("nvidia") or "cuda" in n]
