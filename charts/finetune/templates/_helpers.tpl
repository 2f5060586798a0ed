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

{{- define "finetune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "finetune.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/* Standard labels, then the user's (which cannot replace the standard ones). */}}
{{- define "finetune.labels" -}}
{{ include "finetune.selectorLabels" . }}
app.kubernetes.io/component: "fine-tuning"
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- if .Values.queue }}
kueue.x-k8s.io/queue-name: {{ .Values.queue | quote }}
{{- end }}
{{- range $key, $value := .Values.labels }}
{{- if not (or (hasPrefix "app.kubernetes.io/" $key) (hasPrefix "helm.sh/" $key)) }}
{{ $key | quote }}: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "finetune.serviceAccountName" -}}
{{- default (include "finetune.fullname" .) .Values.service_account -}}
{{- end -}}

{{/* The Job spec shared by the Job and the CronJob: same container, environment and security settings as
the launcher renders. */}}
{{/* The headless Service giving the pods of a multi-pod job their DNS names (<job>-<index>.<service>). */}}
{{- define "finetune.workerService" -}}
{{- printf "%s-workers" (include "finetune.fullname" .) -}}
{{- end -}}

{{- define "finetune.processesPerPod" -}}
{{- .Values.devices_per_worker | default .Values.resources.accelerators | default 1 -}}
{{- end -}}

{{- define "finetune.jobSpec" -}}
{{- if gt (int .Values.workers) 1 }}
{{- /* one pod per worker; a failed attempt fails every pod, so the limit counts pods */}}
completionMode: Indexed
completions: {{ .Values.workers }}
parallelism: {{ .Values.workers }}
backoffLimit: {{ mul .Values.retries .Values.workers }}
{{- else }}
backoffLimit: {{ .Values.retries }}
{{- end }}
{{- if .Values.deadline_seconds }}
activeDeadlineSeconds: {{ .Values.deadline_seconds }}
{{- end }}
ttlSecondsAfterFinished: {{ .Values.ttl_seconds_after_finished }}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: finetune
        operator: In
        values: [2]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
template:
  metadata:
    labels:
      {{- include "finetune.labels" . | nindent 6 }}
    {{- with .Values.annotations }}
    annotations:
      {{- range $key, $value := . }}
      {{ $key | quote }}: {{ $value | quote }}
      {{- end }}
    {{- end }}
  spec:
    restartPolicy: Never
    {{- if gt (int .Values.workers) 1 }}
    subdomain: {{ include "finetune.workerService" . | quote }}
    {{- end }}
    terminationGracePeriodSeconds: 40
    {{- if or .Values.service_account .Values.create_service_account }}
    serviceAccountName: {{ include "finetune.serviceAccountName" . | quote }}
    automountServiceAccountToken: true
    {{- else }}
    automountServiceAccountToken: false
    {{- end }}
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
      - name: finetune
        image: {{ .Values.image | quote }}
        imagePullPolicy: IfNotPresent
        command: ["python", "-m", "job"]
        env:
          {{- include "finetune.env" . | nindent 10 }}
        resources:
          requests:
            cpu: {{ .Values.resources.cpu | quote }}
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
        volumeMounts:
          - {name: scratch, mountPath: /scratch}
          - {name: cache, mountPath: /cache}
          - {name: shm, mountPath: /dev/shm}
    volumes:
      - name: scratch
        emptyDir: {sizeLimit: {{ .Values.resources.scratch | quote }}}
      - name: cache
        emptyDir: {sizeLimit: {{ .Values.resources.scratch | quote }}}
      - name: shm
        emptyDir: {medium: Memory, sizeLimit: {{ .Values.resources.shm | quote }}}
{{- end -}}


{{/* The container's environment: the job's settings contract (job/config.py) and Secret references. */}}
{{- define "finetune.env" -}}
{{- if .Values.cronjob.enabled }}
- name: JOB_NAME
  valueFrom: {fieldRef: {fieldPath: "metadata.labels['batch.kubernetes.io/job-name']"}}
{{- end }}
- {name: FT_MODEL, value: {{ include "finetune.literal" .Values.model }}}
- {name: FT_TRAIN_DATA, value: {{ required "train_data is required" .Values.train_data | include "finetune.literal" }}}
- {name: FT_EVAL_DATA, value: {{ required "eval_data is required" .Values.eval_data | include "finetune.literal" }}}
{{- if .Values.cronjob.enabled }}
{{- /* each scheduled run writes under its own Job's name: a finished output is never retrained */}}
- {name: FT_OUTPUT, value: {{ printf "%s/$(JOB_NAME)" (required "output is required" .Values.output | replace "$" "$$" | trimSuffix "/") | quote }}}
{{- else }}
- {name: FT_OUTPUT, value: {{ required "output is required" .Values.output | include "finetune.literal" }}}
{{- end }}
- {name: FT_HUB_CACHE, value: "/cache/hub"}
- {name: FT_DATA_CACHE, value: "/cache/data"}
- {name: FT_SCRATCH_DIR, value: "/scratch"}
- {name: HOME, value: "/scratch/home"}
- {name: MPLCONFIGDIR, value: "/scratch/matplotlib"}
{{- if or (gt (int .Values.workers) 1) (gt (int (include "finetune.processesPerPod" .)) 1) }}
- {name: FT_WORKERS, value: {{ .Values.workers | toString | quote }}}
- {name: FT_DEVICES_PER_WORKER, value: {{ include "finetune.processesPerPod" . | quote }}}
{{- end }}
{{- if gt (int .Values.workers) 1 }}
- {name: FT_WORKER_SERVICE, value: {{ include "finetune.workerService" . | quote }}}
{{- end }}
{{- range $key, $value := .Values.settings }}
- {name: {{ printf "FT_%s" (upper $key) | quote }}, value: {{ $value | toString | include "finetune.literal" }}}
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
{{- with .Values.storage.credentials_secret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.storage.access_key_id_key | quote }}}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.storage.secret_access_key_key | quote }}}}
{{- end }}
{{- end -}}

{{- define "finetune.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "finetune.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}


{{/* A quoted env value Kubernetes will not expand: every $ doubled, as the launcher does. */}}
{{- define "finetune.literal" -}}
{{- . | toString | replace "$" "$$" | quote -}}
{{- end -}}
