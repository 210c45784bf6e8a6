"""The built wheel holds every package folder under the `kubecycle` import root."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"src/kubecycle": "kubecycle", "components": "kubecycle/components",
          "pipelines": "kubecycle/pipelines", "examples": "kubecycle/examples"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    return next(out.glob("kubecycle-*.whl"))


def test_every_package_folder_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for source, target in MAPPED.items():
        for init in (ROOT / source).rglob("__init__.py"):
            relative = init.relative_to(ROOT / source).as_posix()
            assert f"{target}/{relative}" in names, f"{source}/{relative} missing from wheel"
    assert "kubecycle/examples/penguins.csv" in names
    assert "kubecycle/examples/penguins.yaml" in names
    assert not [n for n in names if n.startswith(("components/", "pipelines/", "tests/"))]


def test_wheel_imports_as_kubecycle(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import kubecycle, kubecycle.components.train.core, kubecycle.pipelines.training;"
            "from kubecycle.examples import DEMO_CONFIG; assert DEMO_CONFIG.is_file();"
            "print(kubecycle.__file__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(target)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(target))
