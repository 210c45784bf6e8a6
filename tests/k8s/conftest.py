"""The Kubernetes checkers that `make tools` installs under .tools/, as a fixture."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("KUBECYCLE_TOOLS_DIR", REPO / ".tools"))
BIN = {"helm": TOOLS / "bin" / "helm", "kubectl": TOOLS / "bin" / "kubectl",
       "checkov": TOOLS / "venv" / "bin" / "checkov",
       "kubernetes-validate": TOOLS / "venv" / "bin" / "kubernetes-validate",
       "yamllint": TOOLS / "venv" / "bin" / "yamllint",
       "hadolint": TOOLS / "venv" / "bin" / "hadolint"}


def tool(name: str) -> str:
    path = BIN[name]
    if not path.exists():
        raise RuntimeError(f"{path} is missing; run `make tools` (make test does it)")
    return str(path)


def run(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([tool(name), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="session")
def k8s() -> Callable[..., subprocess.CompletedProcess]:
    """Run one of the checkers: k8s("helm", "lint", ...)."""
    return run
