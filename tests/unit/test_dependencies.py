"""Dependency direction: core (kubecycle) <- stages (kubecycle.components.<stage>) <- pipelines.

No stage imports another stage (what two stages share lives in the core); no stage imports
kubecycle.pipelines; the core imports neither stages nor pipelines. Every import counts: at
module level, inside functions (component bodies import lazily), under TYPE_CHECKING, relative
ones (resolved against the importing module) and importlib.import_module("...") with a literal.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import kubecycle
import kubecycle.components
from kubecycle.serving.bento import BENTO_MODULES

CORE = Path(kubecycle.__file__).resolve().parent
COMPONENTS = Path(kubecycle.components.__path__[0]).resolve()
STAGES = sorted(p.name for p in COMPONENTS.iterdir() if (p / "__init__.py").is_file())
STAGE_ROOT = "kubecycle.components"
PIPELINES = "kubecycle.pipelines"


def module_name(path: Path, root: Path, package: str) -> str:
    """The dotted name a file under root imports as, root being the package `package`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imported(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything the source imports, wherever the import statement is.

    `from a.b import c` gives a.b.c (c may be a module or a name in a.b: both depend on a.b).
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                yield node.lineno, target if alias.name == "*" else f"{target}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(source: str, module: str, forbidden: list[str], is_package: bool = False
               ) -> list[str]:
    """The imports of source that fall under a forbidden prefix."""
    return [f"{module}:{line} imports {name}"
            for line, name in imported(source, module, is_package)
            if any(under(name, prefix) for prefix in forbidden)]


def check(files: list[Path], root: Path, package: str, forbidden: list[str]) -> list[str]:
    found = []
    for path in files:
        module = module_name(path, root, package)
        found += violations(path.read_text(), module, forbidden, path.name == "__init__.py")
    return found


def test_the_stages_are_found():
    assert len(STAGES) >= 13, STAGES
    assert {"features", "tune", "train", "register", "monitor", "package"} <= set(STAGES)
    assert "deploy" not in STAGES  # not a kfp stage: kubecycle.deploy


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_other_stage_and_no_pipeline(stage: str):
    others = [f"{STAGE_ROOT}.{other}" for other in STAGES if other != stage]
    files = sorted((COMPONENTS / stage).rglob("*.py"))
    assert files
    assert check(files, COMPONENTS, STAGE_ROOT, [*others, PIPELINES]) == []


def test_the_shared_component_modules_import_no_stage():
    files = sorted(COMPONENTS.glob("*.py"))  # __init__.py, _kfp.py
    stages = [f"{STAGE_ROOT}.{stage}" for stage in STAGES]
    assert check(files, COMPONENTS, STAGE_ROOT, [*stages, PIPELINES]) == []


def test_the_core_imports_no_stage_and_no_pipeline():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 5
    assert check(files, CORE, "kubecycle", [STAGE_ROOT, PIPELINES]) == []


@pytest.mark.parametrize("module", BENTO_MODULES)
def test_what_a_bento_carries_imports_only_what_it_carries(module: str):
    """A bento holds these files of kubecycle and nothing else of it (not installed there)."""
    carried = {"kubecycle." + m.removesuffix(".py").replace("/", ".") for m in BENTO_MODULES}
    name = "kubecycle." + module.removesuffix(".py").replace("/", ".")
    names = [n for _, n in imported((CORE / module).read_text(), name) if under(n, "kubecycle")]
    assert [n for n in names if n != "kubecycle" and not any(under(n, c) for c in carried)] == []


def test_the_old_transformers_path_still_imports():
    """Registered models pickled their transformers under the features stage's folder."""
    from kubecycle import transformers
    from kubecycle.components.features import transformers as old

    assert old.DatetimeExpander is transformers.DatetimeExpander
    assert old.TextColumns is transformers.TextColumns


def test_every_kind_of_import_is_seen():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import kubecycle.components.tune.core\n"
        "from kubecycle.components.features import core\n"
        "from kubecycle import pipelines\n"
        "from ..tune.core import split_xy\n"
        "from . import gate\n"
        "from kubecycle.components.features.transformers import TextColumns\n"
        "if TYPE_CHECKING:\n"
        "    from kubecycle.components.monitor.drift import DriftResult\n"
        "def later():\n"
        "    import importlib\n"
        "    from kubecycle.components.package.core import bento_name\n"
        "    return importlib.import_module('kubecycle.components.monitor.window')\n"
    )
    forbidden = [f"{STAGE_ROOT}.{other}" for other in STAGES if other != "register"]
    found = violations(source, "kubecycle.components.register.core", [*forbidden, PIPELINES])
    assert [line.split(" imports ")[1] for line in found] == [
        "kubecycle.components.tune.core",
        "kubecycle.components.features.core",
        "kubecycle.pipelines",
        "kubecycle.components.tune.core.split_xy",
        "kubecycle.components.features.transformers.TextColumns",
        "kubecycle.components.monitor.drift.DriftResult",
        "kubecycle.components.package.core.bento_name",
        "kubecycle.components.monitor.window",
    ]
