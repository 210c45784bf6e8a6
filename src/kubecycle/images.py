"""Container image references, tags derived from the package version."""

from __future__ import annotations

import os

from kubecycle import __version__

DEFAULT_REGISTRY = "ghcr.io/kubecycle"


def components_image() -> str:
    """The image every pipeline stage runs in (KUBECYCLE_COMPONENTS_IMAGE overrides)."""
    registry = os.environ.get("KUBECYCLE_IMAGE_REGISTRY", DEFAULT_REGISTRY)
    return os.environ.get("KUBECYCLE_COMPONENTS_IMAGE", f"{registry}/components:{__version__}")


def serving_image() -> str:
    """The runtime that serves any exported bento (KUBECYCLE_SERVING_IMAGE overrides)."""
    registry = os.environ.get("KUBECYCLE_IMAGE_REGISTRY", DEFAULT_REGISTRY)
    return os.environ.get("KUBECYCLE_SERVING_IMAGE", f"{registry}/serving:{__version__}")
