{{/* Names */}}
{{- define "kubecycle.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubecycle.mlflow.name" -}}{{ include "kubecycle.fullname" . | trunc 56 | trimSuffix "-" }}-mlflow{{- end -}}
{{- define "kubecycle.postgresql.name" -}}{{ include "kubecycle.fullname" . | trunc 52 | trimSuffix "-" }}-postgresql{{- end -}}

{{- define "kubecycle.serviceAccountName" -}}
{{- default (include "kubecycle.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Labels */}}
{{- define "kubecycle.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: kubecycle
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kubecycle.selectorLabels" -}}
app.kubernetes.io/name: kubecycle
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Images */}}
{{- define "kubecycle.mlflow.image" -}}
{{- $repo := default (printf "%s/mlflow" .Values.imageRegistry) .Values.mlflow.image.repository -}}
{{- $tag := default .Chart.AppVersion .Values.mlflow.image.tag -}}
{{- printf "%s%s%s" $repo (ternary "@" ":" (hasPrefix "sha256:" $tag)) $tag -}}
{{- end -}}

{{- define "kubecycle.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Restricted Pod Security Standard */}}
{{- define "kubecycle.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kubecycle.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* MLflow accepts only these Host headers (DNS-rebinding protection). */}}
{{- define "kubecycle.mlflow.allowedHosts" -}}
{{- $svc := include "kubecycle.mlflow.name" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) "localhost" "127.0.0.1" -}}
{{- $all := list -}}
{{- range $hosts }}{{- $all = append (append $all .) (printf "%s:*" .) -}}{{- end -}}
{{- range .Values.mlflow.extraAllowedHosts }}{{- $all = append $all . -}}{{- end -}}
{{- join "," $all -}}
{{- end -}}

{{- define "kubecycle.postgresql.secretName" -}}
{{- default (include "kubecycle.postgresql.name" .) .Values.postgresql.existingSecret -}}
{{- end -}}

{{- define "kubecycle.validate" -}}
{{- if and (eq .Values.mlflow.backend.type "external") (not .Values.mlflow.backend.external.existingSecret) -}}
{{- fail "mlflow.backend.type=external needs mlflow.backend.external.existingSecret (a Secret holding the database URL)" -}}
{{- end -}}
{{- if and (eq .Values.mlflow.artifacts.type "s3") (not .Values.mlflow.artifacts.s3.destination) -}}
{{- fail "mlflow.artifacts.type=s3 needs mlflow.artifacts.s3.destination (e.g. s3://bucket/mlflow)" -}}
{{- end -}}
{{- if and (gt (int .Values.mlflow.replicas) 1) (or (eq .Values.mlflow.artifacts.type "pvc") (eq .Values.mlflow.backend.type "postgresql")) -}}
{{- fail "mlflow.replicas > 1 needs mlflow.backend.type=external and mlflow.artifacts.type=s3" -}}
{{- end -}}
{{- end -}}

{{/* Justified checkov skips shared by every workload (annotations). */}}
{{- define "kubecycle.checkovImageSkips" -}}
checkov.io/skip1: CKV_K8S_43=images are pinned by version tag derived from the chart; set the tag to a digest (sha256:...) to pin by digest
checkov.io/skip2: CKV_K8S_15=IfNotPresent suits immutable version tags; pullPolicy is a value
{{- end -}}

{{- define "kubecycle.monitoring.name" -}}{{ include "kubecycle.fullname" . | trunc 52 | trimSuffix "-" }}-monitoring{{- end -}}

{{- define "kubecycle.components.image" -}}
{{- $repo := default (printf "%s/components" .Values.imageRegistry) .Values.monitoring.image.repository -}}
{{- $tag := default .Chart.AppVersion .Values.monitoring.image.tag -}}
{{- printf "%s%s%s" $repo (ternary "@" ":" (hasPrefix "sha256:" $tag)) $tag -}}
{{- end -}}

{{/* Serving: a registered model version served by the serving runtime image. */}}
{{- define "kubecycle.serving.name" -}}{{ include "kubecycle.fullname" . | trunc 55 | trimSuffix "-" }}-serving{{- end -}}

{{- define "kubecycle.serving.serviceAccountName" -}}
{{- default (include "kubecycle.serving.name" .) .Values.serving.serviceAccount.name -}}
{{- end -}}

{{- define "kubecycle.serving.image" -}}
{{- $repo := default (printf "%s/serving" .Values.imageRegistry) .Values.serving.image.repository -}}
{{- $tag := default .Chart.AppVersion .Values.serving.image.tag -}}
{{- printf "%s%s%s" $repo (ternary "@" ":" (hasPrefix "sha256:" $tag)) $tag -}}
{{- end -}}

{{/* The bento name `kubecycle package` gives a model (kubecycle.registry.bento_name). */}}
{{- define "kubecycle.serving.bentoName" -}}
{{- $derived := regexReplaceAll "[^a-z0-9_.-]" (lower .Values.serving.model.name) "-" | trimAll "-." -}}
{{- default (default "kubecycle-model" $derived) .Values.serving.bentoName -}}
{{- end -}}

{{- define "kubecycle.serving.bentoUri" -}}
{{- $archive := printf "%s/%s-%v.bento" .Values.serving.bentoStore (include "kubecycle.serving.bentoName" .) .Values.serving.model.version -}}
{{- default $archive .Values.serving.bentoUri -}}
{{- end -}}

{{- define "kubecycle.serving.bentoStoreSecret" -}}
{{- default (printf "%s-bento-store" (include "kubecycle.fullname" .)) .Values.serving.bentoStoreSecret -}}
{{- end -}}

{{/* Stable serving pods; a canary (kubecycle deploy --canary) differs only in the track. */}}
{{- define "kubecycle.serving.selectorLabels" -}}
{{ include "kubecycle.selectorLabels" (dict "root" . "component" "serving") }}
kubecycle.io/track: stable
{{- end -}}

{{/* Where the inference log lives: the object-store URI, else the claim's mount path. */}}
{{- define "kubecycle.inferenceLog.location" -}}
{{- default "/data/inference-log" .Values.monitoring.inferenceLog.uri -}}
{{- end -}}

{{/* "true" when the inference log is a claim (no object-store URI). */}}
{{- define "kubecycle.inferenceLog.onClaim" -}}
{{- if not .Values.monitoring.inferenceLog.uri }}true{{ end -}}
{{- end -}}

{{- define "kubecycle.inferenceLog.claimName" -}}
{{- default (printf "%s-inference-log" (include "kubecycle.fullname" .)) .Values.monitoring.inferenceLog.existingClaim -}}
{{- end -}}

{{/* "true" when values pin the model (Helm then owns the pin); empty: kubecycle deploy owns it. */}}
{{- define "kubecycle.serving.pinnedByValues" -}}
{{- if .Values.serving.model.version }}true{{ end -}}
{{- end -}}

{{/* "true" when the live Deployment carries a pin (kubecycle deploy's); empty under helm template. */}}
{{- define "kubecycle.serving.pinnedLive" -}}
{{- $live := lookup "apps/v1" "Deployment" .Release.Namespace (include "kubecycle.serving.name" .) -}}
{{- if dig "metadata" "annotations" "kubecycle.io/model-version" "" ($live | default dict) }}true{{ end -}}
{{- end -}}

{{- define "kubecycle.serving.validate" -}}
{{- if and .Values.serving.model.version (not .Values.serving.model.name) -}}
{{- fail "serving.model.version needs serving.model.name (the registered model)" -}}
{{- end -}}
{{- $a := .Values.serving.autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail "serving.autoscaling.minReplicas must not exceed serving.autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}

{{/* Batch scoring: `kubecycle predict` as a Job or a CronJob. */}}
{{- define "kubecycle.scoring.name" -}}{{ include "kubecycle.fullname" . | trunc 52 | trimSuffix "-" }}-scoring{{- end -}}

{{/* The scoring Job's spec, shared by the one-off Job and the CronJob's jobTemplate. */}}
{{- define "kubecycle.scoring.jobSpec" -}}
{{- $s := .Values.scoring -}}
backoffLimit: {{ $s.backoffLimit }}
activeDeadlineSeconds: {{ $s.activeDeadlineSeconds }}
podFailurePolicy:
  rules:
    - action: FailJob  # exit 2: a bad config; retrying cannot help
      onExitCodes: {containerName: score, operator: In, values: [2]}
template:
  metadata:
    labels:
      {{- include "kubecycle.selectorLabels" (dict "root" . "component" "scoring") | nindent 6 }}
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "kubecycle.serviceAccountName" . }}
    automountServiceAccountToken: false
    {{- with include "kubecycle.imagePullSecrets" . }}{{ . | nindent 4 }}{{- end }}
    securityContext:
      {{- include "kubecycle.podSecurityContext" . | nindent 6 }}
    containers:
      - name: score
        image: {{ include "kubecycle.components.image" . }}
        imagePullPolicy: {{ .Values.monitoring.image.pullPolicy }}
        command: [kubecycle, predict, /etc/kubecycle/config.yaml]
        args:
          - --input={{ $s.input }}
          - --output={{ $s.output }}
          - --tracking-uri=http://{{ include "kubecycle.mlflow.name" . }}.{{ .Release.Namespace }}:{{ .Values.mlflow.port }}
          {{- with $s.model }}
          - --model={{ . }}
          {{- end }}
        {{- with $s.existingSecret }}
        envFrom:
          - secretRef: {name: {{ . }}}
        {{- end }}
        resources:
          {{- toYaml $s.resources | nindent 10 }}
        securityContext:
          {{- include "kubecycle.containerSecurityContext" . | nindent 10 }}
        volumeMounts:
          - {name: config, mountPath: /etc/kubecycle, readOnly: true}
          {{- if $s.existingClaim }}
          - {name: data, mountPath: /data/scoring}
          {{- end }}
          - {name: tmp, mountPath: /tmp}
    volumes:
      - name: config
        configMap: {name: {{ include "kubecycle.scoring.name" . }}}
      {{- with $s.existingClaim }}
      - name: data
        persistentVolumeClaim: {claimName: {{ . }}}
      {{- end }}
      - name: tmp
        emptyDir: {}
{{- end -}}

{{/* The Evidently workspace: its claim and the UI's name. */}}
{{- define "kubecycle.evidently.name" -}}{{ include "kubecycle.fullname" . | trunc 53 | trimSuffix "-" }}-evidently{{- end -}}
{{- define "kubecycle.evidently.claimName" -}}
{{- default (include "kubecycle.evidently.name" .) .Values.monitoring.evidently.existingClaim -}}
{{- end -}}
