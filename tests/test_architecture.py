"""The package's shape: no import cycles, a light ``import fewshot``, a wheel that carries its data."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fewshot"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports anywhere (module level and inside functions; not under
    ``if TYPE_CHECKING:``), relative imports resolved; ``from pkg import name`` counts ``pkg.name`` when
    that is a module (and ``pkg`` itself only when some name is not a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            found.update(submodules)
            if len(submodules) < len(node.names):  # some name comes from the module itself
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imported_modules(f, modules) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_function_level_imports_are_edges(tmp_path: Path) -> None:
    graph = import_graph()
    assert "fewshot.errors" in graph["fewshot.classifier"]  # a module-level relative import
    assert "fewshot.io.output" in graph["fewshot.cli.classify"]  # imported inside a function


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_distributed_engine_calls_the_library_not_the_cli() -> None:
    graph = import_graph()
    assert not {m for m in graph["fewshot.distributed.ray_engine"] if m.split(".")[:2] == ["fewshot", "cli"]}


HEAVY = ("gradio", "ray", "matplotlib", "torch", "fewshot.meta", "fewshot.losses", "fewshot.app", "fewshot.train",
         "fewshot.maml")


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter, without the variables that an import of scikit-learn in this test
    process may have set (so that the check does not depend on which tests ran before)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMP_")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_import_fewshot_is_light_and_changes_no_setting() -> None:
    out = _run(
        "import json, os, sys\n"
        "env = dict(os.environ)\n"
        "import fewshot\n"
        "fewshot.__version__\n"
        "import fewshot.config, fewshot.text, fewshot.progress, fewshot.errors, fewshot.encoders.registry  # light\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r}))\n"
        "print(json.dumps({'heavy': heavy, 'env_same': env == dict(os.environ)}))\n")
    assert out == {"heavy": [], "env_same": True}


def test_using_the_classifier_loads_no_app_ray_or_training_code_and_no_global_setting() -> None:
    out = _run(
        "import json, os, sys\n"
        "import torch\n"
        "threads = torch.get_num_threads()\n"
        "env = dict(os.environ)\n"
        "from fewshot import FewShotClassifier, ClassifierConfig\n"
        "import fewshot.cli, fewshot.io.output\n"
        "env_same = env == dict(os.environ)\n"
        "import fewshot.metrics, fewshot.diagnostics  # scikit-learn sets KMP_* variables when imported\n"
        "from fewshot.encoders.determinism import strict_blas\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'ray', 'matplotlib')\n"
        "               or m.startswith(('fewshot.meta', 'fewshot.losses', 'fewshot.app', 'fewshot.train',\n"
        "                                'fewshot.maml')))\n"
        "print(json.dumps({'heavy': heavy, 'threads_same': torch.get_num_threads() == threads,\n"
        "                  'env_same': env_same, 'strict_applied': strict_blas.cache_info().currsize}))\n")
    assert out == {"heavy": [], "threads_same": True, "env_same": True, "strict_applied": 0}


@pytest.mark.slow
def test_wheel_carries_label_sets_and_models(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=900)
    if res.returncode != 0 and ("No matching distribution" in res.stderr or "connection" in res.stderr.lower()):
        pytest.skip(f"the build backend could not be installed (offline?): {res.stderr[-300:]}")
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = tmp_path.glob("fewshot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    label_sets = sorted(n for n in names if n.startswith("fewshot/label_sets/") and n.endswith(".csv"))
    assert label_sets, "no example label set in the wheel"
    for shipped in (ROOT / "fewshot" / "label_sets").glob("*.csv"):
        assert f"fewshot/label_sets/{shipped.name}" in names
    for model in ("default", "xfer-no-clinc150", "xfer-no-hwu64"):
        assert f"fewshot/models/{model}/fewshot_model.json" in names
        config = json.loads((ROOT / "models" / model / "fewshot_model.json").read_text())
        for weights in config.get("weights_files", ["weights.safetensors"]):
            assert f"fewshot/models/{model}/{weights}" in names
    assert "fewshot/encoders/registry.py" in names and "fewshot/io/output.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "docs/"))]


def _names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!~\[; ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements
            if r.strip() and not r.strip().startswith(("#", "-"))}  # comments and pip options


def test_extras_and_space_requirements_agree() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core, extras = _names(project["dependencies"]), project["optional-dependencies"]
    assert not core & {"gradio", "matplotlib", "ray", "onnx", "onnxruntime"}  # the library and CLI only
    assert _names(extras["app"]) == {"gradio", "matplotlib", "openpyxl"}  # the app reads .xlsx uploads
    assert _names(extras["excel"]) == {"openpyxl"}
    assert "fewshot" in _names(extras["test"])  # [test] pulls [app]: the tests cover the app
    assert len(extras["mpnet"]) == 5
    space = _names((ROOT / "requirements.txt").read_text().splitlines())
    assert space == core | (_names(extras["app"]) - {"gradio"})  # the Space brings Gradio itself
