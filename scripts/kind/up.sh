#!/usr/bin/env bash
# make kind-up: a kind cluster, a local registry wired into it, and kubecycle's images in it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind kubectl

step "local registry ${REGISTRY_NAME} on ${REGISTRY}"
if [ "$(docker inspect -f '{{.State.Running}}' "${REGISTRY_NAME}" 2>/dev/null || true)" != "true" ]; then
  docker run -d --restart=always -p "127.0.0.1:${REGISTRY_PORT}:5000" --network bridge \
    --name "${REGISTRY_NAME}" registry:2 || fail "could not start the registry container"
fi

step "kind cluster ${KIND_CLUSTER}"
if ! kind get clusters | grep -qx "${KIND_CLUSTER}"; then
  kind create cluster --name "${KIND_CLUSTER}" --config "${REPO_ROOT}/scripts/kind/cluster.yaml" \
    --wait 180s || fail "kind create cluster"
fi

step "containerd on every node pulls ${REGISTRY} from ${REGISTRY_NAME}"
for node in $(kind get nodes --name "${KIND_CLUSTER}"); do
  docker exec "$node" mkdir -p "/etc/containerd/certs.d/${REGISTRY}"
  printf '[host."http://%s:5000"]\n' "${REGISTRY_NAME}" |
    docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/${REGISTRY}/hosts.toml"
done
if [ "$(docker inspect -f='{{json .NetworkSettings.Networks.kind}}' "${REGISTRY_NAME}")" = "null" ]; then
  docker network connect kind "${REGISTRY_NAME}" || fail "connect the registry to the kind network"
fi
kubectl apply -f - <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "${REGISTRY}"
YAML

step "build and push kubecycle images ${VERSION}"
make -C "${REPO_ROOT}" images IMAGE_REGISTRY="${REGISTRY}/kubecycle"
for image in components mlflow serving; do
  docker push "${REGISTRY}/kubecycle/${image}:${VERSION}" || fail "push ${image}"
  # also load into the nodes, so a registry hiccup does not stop the run
  kind load docker-image --name "${KIND_CLUSTER}" "${REGISTRY}/kubecycle/${image}:${VERSION}"
done
step "kind cluster ${KIND_CLUSTER} is ready: images at ${REGISTRY}/kubecycle"
