#!/usr/bin/env bash
# make kind-e2e: KFP standalone, the kubecycle chart, one pipeline run on the cluster, one
# monitoring job, and the champion served: its bento exported from MLflow, put in KFP's MinIO,
# imported by the serving pods, one prediction through the Service.
# Needs `make kind-up` first. Every step waits with a timeout and reports what failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need docker kind kubectl helm curl base64 timeout
KFP_VERSION="${KFP_VERSION:-2.14.3}"  # pinned Kubeflow Pipelines backend release
KFP_PORT="${KFP_PORT:-8888}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
MINIO_PORT="${MINIO_PORT:-9000}"
SERVING_PORT="${SERVING_PORT:-3000}"
MODEL="${MODEL:-penguins-species}"
BENTO_PREFIX="${BENTO_PREFIX:-s3://mlpipeline/kubecycle/bentos}"  # KFP's own MinIO bucket
KUBECYCLE="${KUBECYCLE:-${REPO_ROOT}/.venv/bin/kubecycle}"
PYTHON="${PYTHON:-${REPO_ROOT}/.venv/bin/python}"
CHART_SET=(--set "imageRegistry=${REGISTRY}/kubecycle")
kubectl config use-context "kind-${KIND_CLUSTER}" >/dev/null

step "Kubeflow Pipelines ${KFP_VERSION} (standalone, platform-agnostic)"
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=${KFP_VERSION}"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=${KFP_VERSION}"
kubectl -n kubeflow wait --for=condition=Available --timeout=900s deployment --all ||
  { report kubeflow; fail "KFP deployments did not become available"; }

step "kubecycle chart into namespace ${NAMESPACE} (serving waits for a trained model)"
helm upgrade --install kubecycle "${REPO_ROOT}/charts/kubecycle" -n "${NAMESPACE}" \
  --create-namespace "${CHART_SET[@]}" --set serving.enabled=false --wait --timeout 10m ||
  { report "${NAMESPACE}"; fail "helm install"; }
helm test kubecycle -n "${NAMESPACE}" --timeout 5m || { report "${NAMESPACE}"; fail "helm test"; }

step "KFP API on localhost:${KFP_PORT}"
forward kubeflow svc/ml-pipeline "${KFP_PORT}:8888"
wait_for "the KFP API" 60 curl -sf "http://localhost:${KFP_PORT}/apis/v2beta1/healthz" ||
  fail "KFP API not reachable through port-forward"

step "training pipeline run on the cluster (demo data baked into the components image)"
KUBECYCLE_COMPONENTS_IMAGE="${REGISTRY}/kubecycle/components:${VERSION}" \
  "${KUBECYCLE}" submit "${REPO_ROOT}/scripts/kind/penguins-in-image.yaml" \
  --host "http://localhost:${KFP_PORT}" --experiment kubecycle-e2e \
  --tracking-uri "http://kubecycle-mlflow.${NAMESPACE}:5000" --wait --timeout 1800 ||
  { report kubeflow; fail "pipeline run"; }

step "the champion is registered in MLflow"
kubectl -n "${NAMESPACE}" run mlflow-check --rm -i --restart=Never \
  --image="${REGISTRY}/kubecycle/mlflow:${VERSION}" --command -- python3 -c \
  "import mlflow; c = mlflow.MlflowClient('http://kubecycle-mlflow:5000'); print(c.get_model_version_by_alias('penguins-species', 'champion'))" ||
  { report "${NAMESPACE}"; fail "no champion in MLflow"; }
step "one monitoring Job from the CronJob"
# Nothing in this run serves the model yet, so the inference log is empty: the job must start,
# reach MLflow and the champion, and stop with monitoring's documented empty-window error.
kubectl -n "${NAMESPACE}" create job kubecycle-monitoring-e2e --from=cronjob/kubecycle-monitoring
job_done() {
  kubectl -n "${NAMESPACE}" get job kubecycle-monitoring-e2e \
    -o jsonpath='{.status.succeeded}{.status.failed}' | grep -q '[1-9]'
}
wait_for "the monitoring job to finish" 900 job_done || { report "${NAMESPACE}"; fail "monitoring job"; }
logs="$(kubectl -n "${NAMESPACE}" logs job/kubecycle-monitoring-e2e --tail=50 || true)"
if ! kubectl -n "${NAMESPACE}" wait --for=condition=complete --timeout=5s job/kubecycle-monitoring-e2e; then
  grep -q "holds no .parquet files" <<<"$logs" || { printf '%s\n' "$logs" >&2; fail "monitoring job"; }
fi

step "the champion's bento: exported through the MLflow API, put in KFP's object store"
# KFP's store answers as svc/minio-service:9000 with keys in Secret mlpipeline-minio-artifact,
# whether it is MinIO or (newer KFP) SeaweedFS. Checksums only when required: older MinIO
# releases reject the flexible checksums newer AWS SDKs send by default.
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
forward "${NAMESPACE}" svc/kubecycle-mlflow "${MLFLOW_PORT}:5000"
forward kubeflow svc/minio-service "${MINIO_PORT}:9000"
wait_for "MLflow on localhost:${MLFLOW_PORT}" 60 curl -sf "http://localhost:${MLFLOW_PORT}/health" ||
  fail "MLflow not reachable through port-forward"
export_dir="$(mktemp -d)"
SCRATCH+=("${export_dir}")
KUBECYCLE_HOME="${export_dir}/home" BENTOML_HOME="${export_dir}/bentoml" \
  timeout 900 "${KUBECYCLE}" package --model "${MODEL}@champion" --export "${export_dir}/export" \
  --tracking-uri "http://localhost:${MLFLOW_PORT}" || fail "kubecycle package of ${MODEL}@champion"
archives=("${export_dir}"/export/*.bento)
[ -f "${archives[0]}" ] || fail "kubecycle package exported no .bento archive"
archive="$(basename "${archives[0]}")"  # <bento name>-<version>.bento
version="${archive##*-}"
version="${version%.bento}"
bento_uri="${BENTO_PREFIX}/${archive}"
minio_secret() {
  kubectl -n kubeflow get secret mlpipeline-minio-artifact -o "jsonpath={.data.$1}" | base64 -d
}
access_key="$(minio_secret accesskey)" || fail "no accesskey in kubeflow/mlpipeline-minio-artifact"
secret_key="$(minio_secret secretkey)" || fail "no secretkey in kubeflow/mlpipeline-minio-artifact"
# any HTTP answer (an anonymous request is refused) means the store listens
wait_for "the object store on localhost:${MINIO_PORT}" 60 curl -s -o /dev/null "http://localhost:${MINIO_PORT}/" ||
  fail "KFP's object store not reachable through port-forward"
# upload_bento FILE BUCKET/KEY: through the port-forward, with pyarrow from the project's venv
upload_bento() {
  AWS_ACCESS_KEY_ID="${access_key}" AWS_SECRET_ACCESS_KEY="${secret_key}" \
    timeout 300 "${PYTHON}" - "$1" "$2" "localhost:${MINIO_PORT}" <<'PY'
import os, sys
from pyarrow import fs
s3 = fs.S3FileSystem(endpoint_override=sys.argv[3], scheme="http", region="us-east-1",
                     access_key=os.environ["AWS_ACCESS_KEY_ID"],
                     secret_key=os.environ["AWS_SECRET_ACCESS_KEY"])
fs.copy_files(sys.argv[1], sys.argv[2], destination_filesystem=s3)
info = s3.get_file_info(sys.argv[2])
assert info.size == os.path.getsize(sys.argv[1]), info
print("uploaded", info)
PY
}
upload_bento "${export_dir}/export/${archive}" "${bento_uri#s3://}" ||
  fail "upload of ${archive} to ${bento_uri}"
# The import container reads the store's keys and endpoint from this Secret (by reference);
# the values go through a file descriptor, never on a command line.
kubectl -n "${NAMESPACE}" create secret generic kubecycle-bento-store --dry-run=client -o yaml \
  --from-env-file=<(printf '%s\n' "AWS_ACCESS_KEY_ID=${access_key}" \
    "AWS_SECRET_ACCESS_KEY=${secret_key}" "AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000" \
    "AWS_DEFAULT_REGION=us-east-1" "AWS_REQUEST_CHECKSUM_CALCULATION=when_required" \
    "AWS_RESPONSE_CHECKSUM_VALIDATION=when_required") |
  kubectl apply -f - >/dev/null || fail "Secret kubecycle-bento-store"
# SeaweedFS comes with an ingress NetworkPolicy (its namespace and profile namespaces only):
# let the serving pods of this namespace import. MinIO has none, and adding one would isolate it.
if kubectl -n kubeflow get networkpolicy seaweedfs >/dev/null 2>&1; then
  kubectl apply -f - <<YAML || fail "NetworkPolicy for bento imports from KFP's store"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: kubecycle-serving-bento-import
  namespace: kubeflow
spec:
  podSelector:
    matchLabels: {app: seaweedfs}
  policyTypes: [Ingress]
  ingress:
    - ports: [{port: 8333}]
      from:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: ${NAMESPACE}}
          podSelector:
            matchLabels: {app.kubernetes.io/component: serving}
YAML
fi

step "serving ${MODEL} version ${version} from ${bento_uri}"
serving_report() {
  report "${NAMESPACE}"
  kubectl -n "${NAMESPACE}" logs deploy/kubecycle-serving -c import-bento --tail=30 >&2 || true
  kubectl -n "${NAMESPACE}" logs deploy/kubecycle-serving -c serve --tail=30 >&2 || true
}
helm upgrade kubecycle "${REPO_ROOT}/charts/kubecycle" -n "${NAMESPACE}" "${CHART_SET[@]}" \
  --set serving.enabled=true --set "serving.model.name=${MODEL}" \
  --set-string "serving.model.version=${version}" --set "serving.bentoUri=${bento_uri}" \
  --wait --timeout 10m || { serving_report; fail "helm upgrade with serving"; }
kubectl -n "${NAMESPACE}" rollout status deployment/kubecycle-serving --timeout=5m ||
  { serving_report; fail "serving rollout"; }
helm test kubecycle -n "${NAMESPACE}" --timeout 5m || { serving_report; fail "helm test with serving"; }

step "one prediction through the Service"
forward "${NAMESPACE}" svc/kubecycle-serving "${SERVING_PORT}:3000"
wait_for "serving /readyz on localhost:${SERVING_PORT}" 60 \
  curl -sf "http://localhost:${SERVING_PORT}/readyz" || { serving_report; fail "serving not ready"; }
record='{"record": {"island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181, "body_mass_g": 3750, "sex": "male", "year": 2007}}'
answer="$(curl -sS --max-time 30 -X POST "http://localhost:${SERVING_PORT}/predict" \
  -H 'Content-Type: application/json' -d "${record}")" || { serving_report; fail "POST /predict"; }
"${PYTHON}" -c '
import json, sys
answer = json.loads(sys.argv[1])
assert answer.get("model_version") == sys.argv[2], f"expected model_version {sys.argv[2]}: {answer}"
print("prediction:", answer["prediction"], "from", answer["model_name"], "version", answer["model_version"])
' "${answer}" "${version}" || { printf 'answer: %s\n' "${answer}" >&2; fail "prediction without model_version ${version}"; }

step "kind end-to-end run passed"
