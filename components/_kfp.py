"""The one way stages become kfp components.

They are lightweight Python components whose base image is the project's components image
(kubecycle installed), so the same component runs on the local SubprocessRunner and on a cluster.
"""

from __future__ import annotations

import functools

from kfp import dsl

from kubecycle.images import components_image

stage_component = functools.partial(
    dsl.component, base_image=components_image(), install_kfp_package=False
)
