"""The kind scripts cannot run here (no Docker engine); everything they call is checked."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from kubecycle.config import load_config
from kubecycle.images import components_image, serving_image

from .conftest import REPO

KIND = REPO / "scripts" / "kind"


@pytest.mark.parametrize("script", sorted([*KIND.glob("*.sh"),
                                            *(REPO / "scripts" / "containers").glob("*.sh")]),
                         ids=lambda p: p.name)
def test_shellcheck(script):
    result = subprocess.run(["shellcheck", "-x", "-P", "SCRIPTDIR", str(script)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_kind_cluster_config():
    config = yaml.safe_load((KIND / "cluster.yaml").read_text())
    assert config["kind"] == "Cluster" and len(config["nodes"]) >= 2
    assert "certs.d" in config["containerdConfigPatches"][0]


def test_cluster_demo_config_is_valid():
    cfg = load_config(KIND / "penguins-in-image.yaml")
    assert cfg.data.source.endswith("site-packages/kubecycle/examples/penguins.csv")


def test_make_images_tags_match_the_pipeline_image():
    dry = subprocess.run(["make", "-n", "images"], cwd=REPO, capture_output=True, text=True)
    registry, version = dry.stdout.split("build-images.sh ")[1].split()[:2]
    assert f"{registry}/components:{version}" == components_image()
    assert f"{registry}/serving:{version}" == serving_image()
    script = (REPO / "scripts" / "containers" / "build-images.sh").read_text()
    assert '-t "$registry/$name:$version"' in script


def test_e2e_pins_kfp_and_waits_with_timeouts():
    text = (KIND / "e2e.sh").read_text()
    assert 'KFP_VERSION="${KFP_VERSION:-2.' in text
    assert text.count("--timeout") >= 4


def test_e2e_serves_the_champion_and_predicts_through_the_service():
    text = (KIND / "e2e.sh").read_text()
    steps = ["--set serving.enabled=false",  # no model yet at install time
             'package --model "${MODEL}@champion" --export',
             "create secret generic kubecycle-bento-store",
             '--set "serving.bentoUri=${bento_uri}"',
             "rollout status deployment/kubecycle-serving --timeout=",
             "svc/kubecycle-serving",
             "/predict",
             'answer.get("model_version") == sys.argv[2]']
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions), "the serving steps run in this order"
    assert "--from-literal" not in text  # secret values never on a command line
    up = (KIND / "up.sh").read_text()
    assert "for image in components mlflow serving; do" in up
