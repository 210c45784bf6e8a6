#!/usr/bin/env bash
# Build kubecycle's three images (components, mlflow, serving), tagged REGISTRY/NAME:VERSION,
# and on request components-gpu (after components; it needs PyPI's CUDA build of torch),
# with docker when a Docker engine answers, else with podman.
#   usage: build-images.sh REGISTRY VERSION [NAME...]
# The base is python:3.11-slim-bookworm. Where no registry can be pulled from, a stand-in
# base is built from Debian's packages (standin-base.sh) and used instead, and this says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
registry=$1
version=$2
shift 2
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(components mlflow serving)
# shellcheck source=scripts/containers/engine.sh
. scripts/containers/engine.sh
engine=$KUBECYCLE_CONTAINER_ENGINE

base=python:3.11-slim-bookworm
standin=localhost/kubecycle/python-standin:3.11-slim-bookworm
if "$engine" image inspect "$base" >/dev/null 2>&1; then
  :
elif "$engine" pull -q "docker.io/library/$base" >/dev/null 2>&1; then
  base=docker.io/library/$base
else
  echo "NOTE: cannot pull $base (no registry reachable): building on a stand-in base from" \
       "Debian's packages ($standin); release builds use $base"
  "$engine" image inspect "$standin" >/dev/null 2>&1 \
    || scripts/containers/standin-base.sh "$engine" "$standin"
  base=$standin
fi

build_args=(--build-arg "BASE_IMAGE=$base")
if [ "$engine" = podman ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  # the host's CA bundle, for machines whose TLS to PyPI goes through a proxy (not in a layer)
  build_args+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro
               --build-arg CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt)
fi
for name in "${names[@]}"; do
  start=$SECONDS
  echo "building $registry/$name:$version with $engine"
  log=.containers/build-$name.log
  mkdir -p .containers
  own_args=()  # components-gpu adds PyTorch's CUDA build to the components image built here
  [ "$name" != components-gpu ] || own_args=(--build-arg "COMPONENTS_IMAGE=$registry/components:$version")
  if ! "$engine" build "${build_args[@]}" "${own_args[@]}" -f "images/$name/Dockerfile" \
      -t "$registry/$name:$version" . >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "building $name failed (full log: $log)" >&2
    exit 1
  fi
  echo "built $registry/$name:$version in $((SECONDS - start)) s"
done
