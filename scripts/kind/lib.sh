#!/usr/bin/env bash
# Shared helpers for the kind scripts: logging, timeouts, failure reports.
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
set -euo pipefail

KIND_CLUSTER="${KIND_CLUSTER:-kubecycle}"
REGISTRY_NAME="${REGISTRY_NAME:-kind-registry}"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
REGISTRY="localhost:${REGISTRY_PORT}"
NAMESPACE="${NAMESPACE:-mlops}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "${REPO_ROOT}/pyproject.toml" | head -n 1)"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

# need CMD...: fail early, naming the missing tools.
need() {
  local missing=()
  for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
  [ "${#missing[@]}" -eq 0 ] || fail "missing tools: ${missing[*]} (install them first)"
}

# wait_for DESCRIPTION TIMEOUT_SECONDS CMD...: retry CMD until it succeeds or time runs out.
wait_for() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf 'timed out after %ss waiting for %s; last attempt said:\n' "$timeout" "$what" >&2
      "$@" >&2 || true
      return 1
    fi
    sleep 5
  done
}

# report NAMESPACE: what a failed step needs to be understood.
report() {
  local ns="$1"
  kubectl -n "$ns" get pods -o wide >&2 || true
  kubectl -n "$ns" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 20 >&2 || true
}

# forward NAMESPACE TARGET LOCAL:REMOTE: a kubectl port-forward in the background, stopped on exit.
FORWARDS=()
SCRATCH=()
forward() {
  kubectl -n "$1" port-forward "$2" "$3" >/dev/null 2>&1 &
  FORWARDS+=("$!")
}
cleanup() {
  local pid dir
  for pid in "${FORWARDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for dir in "${SCRATCH[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT
