{{/* The chart's name, at most 63 characters. */}}
{{- define "finetune.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name, at most 52 characters: Kubernetes appends suffixes to Job and pod names. */}}
{{- define "finetune.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else if contains (include "finetune.name" .) .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "finetune.name" .) | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels picking this release's pods: the headless Service's and the NetworkPolicy's selector. */}}
{{- define "finetune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "finetune.appName" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/* Standard labels, then the user's (the schema refuses keys under the standard prefixes). */}}
{{- define "finetune.labels" -}}
{{ include "finetune.selectorLabels" . }}
app.kubernetes.io/component: "fine-tuning"
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- with .Values.queue }}
kueue.x-k8s.io/queue-name: {{ . | quote }}
{{- end }}
{{- range $key, $value := .Values.labels }}
{{ $key | quote }}: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The object metadata every object shares: namespace and labels. */}}
{{- define "finetune.metadata" -}}
namespace: {{ .Release.Namespace | quote }}
labels:
  {{- include "finetune.labels" . | nindent 2 }}
{{- end -}}

{{- define "finetune.annotations" -}}
{{- with .Values.annotations }}
annotations:
  {{- range $key, $value := . }}
  {{ $key | quote }}: {{ $value | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "finetune.serviceAccountName" -}}
{{- default (include "finetune.fullname" .) .Values.service_account -}}
{{- end -}}

{{/* The headless Service giving the pods of a multi-pod job their DNS names (<job>-<index>.<service>). */}}
{{- define "finetune.workerService" -}}
{{- printf "%s-workers" (include "finetune.fullname" .) -}}
{{- end -}}

{{- define "finetune.processesPerPod" -}}
{{- .Values.devices_per_worker | default .Values.resources.accelerators | default 1 -}}
{{- end -}}

{{/* A job setting, or "" when unset. */}}
{{- define "finetune.setting" -}}
{{- $value := index (.root.Values.settings | default dict) .name -}}
{{- if not (kindIs "invalid" $value) }}{{ $value }}{{ end -}}
{{- end -}}

{{/* The device target the accelerators imply when settings.device_target is unset ("" when none), after the
same consistency checks as the launcher's. */}}
{{- define "finetune.impliedDeviceTarget" -}}
{{- $target := include "finetune.setting" (dict "root" . "name" "device_target") -}}
{{- $count := int .Values.resources.accelerators -}}
{{- $resource := .Values.resources.accelerator_resource -}}
{{- $known := "" -}}
{{- if hasPrefix "nvidia.com/gpu" $resource }}{{ $known = "GPU" }}{{ else if hasPrefix "huawei.com/Ascend" $resource }}{{ $known = "Ascend" }}{{ end -}}
{{- if and $count (not $target) (not $known) -}}
{{- fail (printf "settings.device_target: required with resources.accelerator_resource %s (GPU or Ascend)" $resource) -}}
{{- end -}}
{{- if and $count (eq $target "CPU") -}}
{{- fail (printf "settings.device_target: CPU with resources.accelerators: %d would train on the CPU of an accelerator node; set GPU or Ascend, or remove the accelerators" $count) -}}
{{- end -}}
{{- if and (has $target (list "GPU" "Ascend")) (not $count) -}}
{{- fail (printf "settings.device_target: %s needs resources.accelerators (at least 1): the pod would get no %s device" $target $target) -}}
{{- end -}}
{{- if and $target $known $count (ne $target "CPU") (ne $target $known) -}}
{{- fail (printf "settings.device_target: %s does not match resources.accelerator_resource %s (%s devices)" $target $resource $known) -}}
{{- end -}}
{{- if and $count (not $target) }}{{ $known }}{{ end -}}
{{- end -}}

{{/* An env value Kubernetes will not expand: every $ doubled, as the launcher does. */}}
{{- define "finetune.literal" -}}
{{- . | toString | replace "$" "$$" | quote -}}
{{- end -}}

{{/* A setting's value as the job reads it: text as is, numbers as JSON writes them (never 2.0240101e+07). */}}
{{- define "finetune.settingValue" -}}
{{- if kindIs "string" . }}{{ include "finetune.literal" . }}{{ else if kindIs "bool" . }}{{ . | toString | quote }}{{ else }}{{ toJson . | quote }}{{ end -}}
{{- end -}}

{{/* The container's environment: the job's settings contract and the layout's paths. */}}
{{- define "finetune.env" -}}
{{- if .Values.cronjob.enabled }}
- name: JOB_NAME
  valueFrom: {fieldRef: {fieldPath: "metadata.labels['batch.kubernetes.io/job-name']"}}
{{- end }}
- {name: FT_MODEL, value: {{ required "model is required" .Values.model | include "finetune.literal" }}}
- {name: FT_TRAIN_DATA, value: {{ required "train_data is required" .Values.train_data | include "finetune.literal" }}}
- {name: FT_EVAL_DATA, value: {{ required "eval_data is required" .Values.eval_data | include "finetune.literal" }}}
{{- if .Values.cronjob.enabled }}
{{- /* each scheduled run writes under its own Job's name: a finished output is never retrained */}}
- {name: FT_OUTPUT, value: {{ printf "%s/$(JOB_NAME)" (required "output is required" .Values.output | replace "$" "$$" | trimSuffix "/") | quote }}}
{{- else }}
- {name: FT_OUTPUT, value: {{ required "output is required" .Values.output | include "finetune.literal" }}}
{{- end }}
{{- if eq .Values.mode "predict" }}
- {name: FT_PREDICT_RUN, value: {{ .Values.predict.run | default .Values.output | include "finetune.literal" }}}
- {name: FT_PREDICT_IMAGES, value: {{ required "predict.images is required with mode: predict" .Values.predict.images | include "finetune.literal" }}}
- {name: FT_PREDICT_TO, value: {{ required "predict.to is required with mode: predict" .Values.predict.to | include "finetune.literal" }}}
- {name: FT_PREDICT_TOP_K, value: {{ .Values.predict.top_k | toString | quote }}}
{{- end }}
{{ include "finetune.layoutEnv" . }}
{{- if or (gt (int .Values.workers) 1) (gt (int (include "finetune.processesPerPod" .)) 1) }}
- {name: FT_WORKERS, value: {{ .Values.workers | toString | quote }}}
- {name: FT_DEVICES_PER_WORKER, value: {{ include "finetune.processesPerPod" . | quote }}}
{{- end }}
{{- if gt (int .Values.workers) 1 }}
- {name: FT_WORKER_SERVICE, value: {{ include "finetune.workerService" . | quote }}}
{{- end }}
{{- if .Values.storage.credentials_secret }}
- {name: FT_S3_CREDENTIALS_DIR, value: {{ include "finetune.credentialsDir" . | quote }}}
{{- end }}
{{- with include "finetune.impliedDeviceTarget" . }}
- {name: FT_DEVICE_TARGET, value: {{ . | quote }}}
{{- end }}
{{- range $key, $value := .Values.settings }}
{{- if not (kindIs "invalid" $value) }}
- {name: {{ printf "FT_%s" (upper $key) | quote }}, value: {{ include "finetune.settingValue" $value }}}
{{- end }}
{{- end }}
{{- with .Values.storage.endpoint }}
- {name: AWS_ENDPOINT_URL, value: {{ include "finetune.literal" . }}}
{{- end }}
{{- with .Values.storage.region }}
- {name: AWS_DEFAULT_REGION, value: {{ include "finetune.literal" . }}}
{{- end }}
{{- range $key, $value := .Values.env }}
- {name: {{ $key | quote }}, value: {{ include "finetune.literal" $value }}}
{{- end }}
{{- end -}}

{{/* The S3 credentials Secret as files (the same Secret keys as ever): no process environment holds them. */}}
{{- define "finetune.credentialsVolume" -}}
{{- with .Values.storage.credentials_secret }}
- name: s3-credentials
  secret:
    secretName: {{ . | quote }}
    defaultMode: {{ include "finetune.credentialsMode" $ }}
    items:
      - {key: {{ $.Values.storage.access_key_id_key | quote }}, path: {{ include "finetune.accessKeyFile" $ | quote }}}
      - {key: {{ $.Values.storage.secret_access_key_key | quote }}, path: {{ include "finetune.secretKeyFile" $ | quote }}}
{{- end }}
{{- end -}}

{{- define "finetune.credentialsMount" -}}
{{- if .Values.storage.credentials_secret }}
- {name: s3-credentials, mountPath: {{ include "finetune.credentialsDir" . | quote }}, readOnly: true}
{{- end }}
{{- end -}}

{{/* Pod settings the Job's pods and the test pod share. */}}
{{- define "finetune.podCommon" -}}
enableServiceLinks: false
{{- if or .Values.service_account .Values.create_service_account }}
serviceAccountName: {{ include "finetune.serviceAccountName" . | quote }}
{{- end }}
automountServiceAccountToken: {{ .Values.service_account_token }}
{{- with .Values.image_pull_secrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The pod's grace period from the job's own FT_TERM_GRACE_SECONDS, plus the contract's margin. */}}
{{- define "finetune.terminationGrace" -}}
{{- $grace := include "finetune.setting" (dict "root" . "name" "term_grace_seconds") | default (include "finetune.termGraceDefault" .) -}}
{{- add (int (ceil $grace)) (int (include "finetune.graceMargin" .)) -}}
{{- end -}}

{{/* Checks the API server would make, made before anything is installed. */}}
{{- define "finetune.checks" -}}
{{- $size := 0 -}}
{{- range $key, $value := .Values.annotations }}{{ $size = add $size (len $key) (len $value) }}{{ end -}}
{{- if gt (int $size) (int (include "finetune.annotationsMaxBytes" .)) -}}
{{- fail (printf "annotations: %d bytes together, the API server's limit is %s; keep large data out of annotations" $size (include "finetune.annotationsMaxBytes" .)) -}}
{{- end -}}
{{- if gt (mul .Values.retries .Values.workers) (int64 (include "finetune.int32Max" .)) -}}
{{- fail (printf "retries: %d x %d workers exceeds the API server's backoffLimit limit %s" (int64 .Values.retries) (int64 .Values.workers) (include "finetune.int32Max" .)) -}}
{{- end -}}
{{- if and (eq .Values.mode "predict") (gt (int .Values.workers) 1) -}}
{{- fail (printf "workers: %d with mode: predict; prediction runs in one pod (workers: 1)" (int .Values.workers)) -}}
{{- end -}}
{{- $urls := dict "model" .Values.model "settings.hub_mirror" (include "finetune.setting" (dict "root" . "name" "hub_mirror")) "storage.endpoint" (.Values.storage.endpoint | default "") -}}
{{- range $where, $value := $urls -}}
{{- if and (regexMatch "^https?://" $value) (not (regexMatch "^https?://([^/:@]+|\\[[0-9a-fA-F:.]+\\])(:[0-9]{1,5})?([/?#]|$)" $value)) -}}
{{- fail (printf "%s: %q is not a valid URL (its host or port does not parse)" $where $value) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Job spec shared by the Job and the CronJob: the launcher renders the same (tests compare them whole). */}}
{{- define "finetune.jobSpec" -}}
{{- include "finetune.checks" . }}
{{- if gt (int .Values.workers) 1 }}
{{- /* one pod per worker; a failed attempt fails every pod, so the limit counts pods */}}
completionMode: Indexed
completions: {{ .Values.workers }}
parallelism: {{ .Values.workers }}
{{- end }}
backoffLimit: {{ mul .Values.retries .Values.workers }}
{{- with .Values.deadline_seconds }}
activeDeadlineSeconds: {{ . | int64 }}
{{- end }}
{{- if not (kindIs "invalid" .Values.ttl_seconds_after_finished) }}
ttlSecondsAfterFinished: {{ .Values.ttl_seconds_after_finished | int64 }}
{{- end }}
podFailurePolicy:
  {{- include "finetune.podFailurePolicy" . | nindent 2 }}
template:
  metadata:
    labels:
      {{- include "finetune.labels" . | nindent 6 }}
    {{- include "finetune.annotations" . | nindent 4 }}
  spec:
    restartPolicy: Never
    {{- if gt (int .Values.workers) 1 }}
    subdomain: {{ include "finetune.workerService" . | quote }}
    {{- end }}
    terminationGracePeriodSeconds: {{ include "finetune.terminationGrace" . }}
    {{- include "finetune.podCommon" . | nindent 4 }}
    {{- with .Values.priority_class }}
    priorityClassName: {{ . | quote }}
    {{- end }}
    {{- with .Values.node_selector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- include "finetune.podSecurityContext" . | nindent 6 }}
    containers:
      - name: {{ include "finetune.containerName" . }}
        image: {{ .Values.image | quote }}
        imagePullPolicy: IfNotPresent
        command: {{ include "finetune.command" . }}
        {{- if eq .Values.mode "predict" }}
        args: {{ include "finetune.predictArgs" . }}
        {{- end }}
        env:
          {{- include "finetune.env" . | nindent 10 }}
        resources:
          requests:
            cpu: {{ .Values.resources.cpu | toString | quote }}
            memory: {{ .Values.resources.memory | quote }}
            {{- if .Values.resources.accelerators }}
            {{ .Values.resources.accelerator_resource | quote }}: {{ .Values.resources.accelerators }}
            {{- end }}
          limits:
            memory: {{ .Values.resources.memory | quote }}
            {{- if .Values.resources.accelerators }}
            {{ .Values.resources.accelerator_resource | quote }}: {{ .Values.resources.accelerators }}
            {{- end }}
        securityContext:
          {{- include "finetune.containerSecurityContext" . | nindent 10 }}
        terminationMessagePolicy: {{ include "finetune.terminationMessagePolicy" . }}
        volumeMounts:
          {{- include "finetune.volumeMounts" . | nindent 10 }}
          {{- include "finetune.credentialsMount" . | nindent 10 }}
    volumes:
      - name: scratch
        emptyDir: {sizeLimit: {{ .Values.resources.scratch | quote }}}
      - name: cache
        emptyDir: {sizeLimit: {{ .Values.resources.scratch | quote }}}
      - name: shm
        emptyDir: {medium: Memory, sizeLimit: {{ .Values.resources.shm | quote }}}
      {{- include "finetune.credentialsVolume" . | nindent 6 }}
{{- end -}}

{{/* TCP ports of the places the job reaches: the S3 endpoint, the hub mirror, a descriptor URL, the MLflow
tracking server, extra ones;
as a JSON list of zero-padded numbers in ascending order (Helm sorts text only). */}}
{{- define "finetune.egressPorts" -}}
{{- $ports := list -}}
{{- range .Values.network_policy.extra_egress_ports }}{{ $ports = append $ports (printf "%05d" (int .)) }}{{ end -}}
{{- include "finetune.checks" . -}}
{{- $mirror := include "finetune.setting" (dict "root" . "name" "hub_mirror") | default (include "finetune.publicHub" .) -}}
{{- $mlflow := include "finetune.setting" (dict "root" . "name" "mlflow_tracking_uri") -}}
{{- range list (.Values.storage.endpoint | default (include "finetune.awsEndpoint" .)) $mirror .Values.model $mlflow -}}
{{- $url := urlParse . -}}
{{- if has $url.scheme (list "http" "https") -}}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" -}}
{{- if not $port }}{{ $port = ternary "443" "80" (eq $url.scheme "https") }}{{ end -}}
{{- $ports = append $ports (printf "%05d" (atoi $port)) -}}
{{- end -}}
{{- end -}}
{{- $ports | uniq | sortAlpha | toJson -}}
{{- end -}}
