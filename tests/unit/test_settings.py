"""Every environment variable is declared once (kubecycle.settings): typed, documented, checked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kubecycle import settings
from kubecycle.errors import SettingError
from kubecycle.settings import SETTINGS

REPO = Path(__file__).resolve().parents[2]
CODE = [p for folder in ("src", "components", "pipelines") for p in (REPO / folder).rglob("*.py")]


def test_defaults_parse():
    for setting in SETTINGS.values():
        if setting.default not in (None, ""):
            setting.get()


@pytest.mark.parametrize("setting", [s for s in SETTINGS.values()
                                     if s.choices or s.accepts != "text"], ids=lambda s: s.name)
def test_a_bad_value_names_the_variable_and_what_it_accepts(monkeypatch, setting):
    monkeypatch.setenv(setting.name, "not-a-value")
    with pytest.raises(SettingError, match=re.escape(setting.name)) as raised:
        setting.get()
    assert (", ".join(setting.choices) if setting.choices else setting.accepts) in str(raised.value)


def test_values_are_typed(monkeypatch):
    monkeypatch.setenv("KUBECYCLE_WORKERS", "cpu_count")
    assert settings.WORKERS.get() == "cpu_count"
    monkeypatch.setenv("KUBECYCLE_WORKERS", "3")
    assert settings.WORKERS.get() == 3
    monkeypatch.setenv("KUBECYCLE_FORKSERVER", "off")
    assert settings.FORKSERVER.get() is False
    monkeypatch.setenv("KUBECYCLE_REQUEST_TIMEOUT_SECONDS", "0")
    with pytest.raises(SettingError, match="positive"):
        settings.REQUEST_TIMEOUT_SECONDS.get()
    monkeypatch.setenv("KUBECYCLE_TUNE_THREADS", "")  # empty means unset
    assert settings.TUNE_THREADS.get() is None


def _name_literals(path: Path) -> list[tuple[int, str]]:
    """String constants that are exactly a declared variable's name (docstrings aside)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef,
                                       ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in SETTINGS and id(node) not in docstrings]


@pytest.mark.parametrize("path", [p for p in CODE if p.name != "settings.py"],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_else_names_a_variable(path):
    """Variables are read and set through their Setting, never spelled again."""
    assert _name_literals(path) == []


def test_readme_table_lists_every_setting_with_its_default():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Environment variables"):]
    section = section[:section.index("\n## ", 3)]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (`[^`]*`|-) \|", section, re.MULTILINE)
    documented = {name: default.strip("`") if default != "-" else None for name, default in rows}
    declared = {s.name: s.default or None for s in SETTINGS.values()}
    assert documented == declared
