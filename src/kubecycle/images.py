"""Container image references, tags derived from the package version."""

from __future__ import annotations

from kubecycle import __version__
from kubecycle.settings import COMPONENTS_IMAGE, IMAGE_REGISTRY, SERVING_IMAGE


def components_image() -> str:
    """The image every pipeline stage runs in (KUBECYCLE_COMPONENTS_IMAGE overrides)."""
    return COMPONENTS_IMAGE.get() or f"{IMAGE_REGISTRY.get()}/components:{__version__}"


def serving_image() -> str:
    """The runtime that serves any exported bento (KUBECYCLE_SERVING_IMAGE overrides)."""
    return SERVING_IMAGE.get() or f"{IMAGE_REGISTRY.get()}/serving:{__version__}"


def components_gpu_image() -> str:
    """The components image with PyTorch's CUDA build, for the stages given a GPU."""
    return f"{IMAGE_REGISTRY.get()}/components-gpu:{__version__}"
