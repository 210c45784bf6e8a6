#!/usr/bin/env bash
# Sourced by the image scripts: picks the container engine and sets it up.
#   KUBECYCLE_CONTAINER_ENGINE=docker|podman forces one; else docker when a Docker engine
#   answers, else podman (installed from Debian when missing, as the other tools are).
# On machines without systemd (containers, CI sandboxes) podman gets the settings in
# containers.conf beside this file: runc, cgroupfs, file events, ulimits it may set.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -z "${KUBECYCLE_CONTAINER_ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    KUBECYCLE_CONTAINER_ENGINE=docker
  else
    KUBECYCLE_CONTAINER_ENGINE=podman
  fi
fi
export KUBECYCLE_CONTAINER_ENGINE

if [ "$KUBECYCLE_CONTAINER_ENGINE" = podman ]; then
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    echo "installing podman from Debian (no Docker engine answered)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      podman buildah runc fuse-overlayfs uidmap slirp4netns debootstrap >/dev/null
  fi
  if [ -z "${CONTAINERS_CONF:-}" ] && [ ! -d /run/systemd/system ]; then
    export CONTAINERS_CONF="$here/containers.conf"
  fi
fi
