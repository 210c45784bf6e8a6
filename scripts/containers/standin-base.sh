#!/usr/bin/env bash
# Build a stand-in for python:3.11-slim-bookworm from Debian's packages, for machines that
# reach Debian's mirror but no container registry. It is Debian's Python 3.11 (not the official
# image's build), with /usr/local/bin/python{,3} pointing at it like the official image.
#   usage: standin-base.sh ENGINE IMAGE [MIRROR]
set -euo pipefail
engine=$1
image=$2
mirror=${3:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}

if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d /var/tmp/kubecycle-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "building the stand-in base image $image from $mirror (no registry answered)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /bin/sh -ec '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv python3-venv \
    python3-pip ca-certificates netbase tzdata >/dev/null
  ln -sf /usr/bin/python3.11 /usr/local/bin/python3
  ln -sf /usr/bin/python3.11 /usr/local/bin/python
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
'
: > "$root/etc/resolv.conf"
tar -C "$root" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image" >/dev/null
echo "built $image"
