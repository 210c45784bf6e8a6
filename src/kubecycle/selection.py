"""Which model families a run tunes, and why each one ran or was skipped.

The one place that decides it: the task (a family exists for some tasks only), the data's
size (a neural network is worth tuning only on enough rows) and the installed extras (a
family whose package is missing is skipped with the install line, not failed).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Any

from kubecycle.catalog import FAMILIES, Task, get_family
from kubecycle.errors import ConfigError


@dataclass(frozen=True)
class FamilyChoice:
    """One candidate family: whether the run tunes it, and why."""

    family: str
    selected: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The choice as a JSON-ready dict."""
        return asdict(self)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _choose(task: Task, name: str, rows: int, configured: bool) -> FamilyChoice:
    if (task, name) not in FAMILIES:
        other = sorted(t for (t, n) in FAMILIES if n == name)
        return FamilyChoice(name, False, f"a {' and '.join(other)} family; the task is {task}")
    spec = get_family(task, name)
    if spec.package and not _installed(spec.package):
        install = f"pip install 'kubecycle[{spec.extra}]'" if spec.extra else f"pip install {spec.package}"
        return FamilyChoice(name, False, f"{spec.package} is not installed ({install})")
    if configured:
        return FamilyChoice(name, True, "listed in models.families")
    if not spec.default:
        return FamilyChoice(name, False, "not in the default search; list it in models.families")
    if rows < spec.min_rows:
        return FamilyChoice(name, False, f"{rows} rows, fewer than the {spec.min_rows} it needs to "
                                         "pay off; list it in models.families to tune it anyway")
    if spec.min_rows:
        return FamilyChoice(name, True, f"default search for {task}: {rows} rows >= {spec.min_rows}")
    return FamilyChoice(name, True, f"default search for {task}")


def choose_families(task: Task, rows: int, configured: list[str] | None = None) -> list[FamilyChoice]:
    """Every candidate family of a run, selected or skipped, with the reason.

    Args:
        task: The run's task.
        rows: The rows the families would learn from.
        configured: models.families, or None for the default search (every family of the
            task, in catalog order).

    Returns:
        One choice per configured family (or per family of the task), in order.

    Raises:
        ConfigError: no family can run; the message lists each one's reason.
    """
    names = configured if configured is not None else [
        spec.name for (t, _), spec in FAMILIES.items() if t == task]
    choices = [_choose(task, name, rows, configured is not None) for name in names]
    if not any(choice.selected for choice in choices):
        reasons = "; ".join(f"{c.family}: {c.reason}" for c in choices)
        raise ConfigError(f"models.families: no family can run for {task} ({reasons})")
    return choices


def selected_families(choices: list[FamilyChoice]) -> list[str]:
    """The names of the families a run tunes."""
    return [choice.family for choice in choices if choice.selected]
