{{/* Names, labels and the pieces every pod of the chart shares. */}}

{{- define "ecommerce.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; a release named like the chart is not doubled. */}}
{{- define "ecommerce.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ecommerce.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "ecommerce.labels" -}}
helm.sh/chart: {{ include "ecommerce.chart" . }}
{{ include "ecommerce.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ecommerce
{{- end }}

{{- define "ecommerce.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecommerce.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's objects: (dict "ctx" $ "component" "web"). */}}
{{- define "ecommerce.componentLabels" -}}
{{ include "ecommerce.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ecommerce.componentSelectorLabels" -}}
{{ include "ecommerce.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ecommerce.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "ecommerce.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecommerce.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ecommerce.configMapName" -}}
{{- printf "%s-config" (include "ecommerce.fullname" .) }}
{{- end }}

{{- define "ecommerce.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "ecommerce.fullname" .)) }}
{{- end }}

{{- define "ecommerce.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "ecommerce.configMapName" . }}
  - secretRef:
      name: {{ include "ecommerce.secretName" . }}
{{- end }}

{{/* Settings of one process on top of the ConfigMap: (.Values.web.env etc.). */}}
{{- define "ecommerce.containerEnv" -}}
env:
  # The pod's own address joins ALLOWED_HOSTS, so Prometheus can scrape it by IP.
  - name: POD_IP
    valueFrom:
      fieldRef:
        fieldPath: status.podIP
  {{- range $name, $value := . }}
  - name: {{ $name }}
    value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}

{{/* Pod annotations: a settings change rolls the pods. */}}
{{- define "ecommerce.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* prometheus.io annotations of a pod that serves metrics, when metrics.annotations.enabled:
(dict "ctx" $ "port" 8080). For Prometheus jobs that discover pods by annotation. */}}
{{- define "ecommerce.scrapeAnnotations" -}}
{{- if .ctx.Values.metrics.annotations.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | toString | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* The pod-level fields web, worker, beat and the job share. */}}
{{- define "ecommerce.podCommon" -}}
serviceAccountName: {{ include "ecommerce.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* The only writable path of a container: /tmp, an emptyDir. (dict "medium" "" "size" "64Mi") */}}
{{- define "ecommerce.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ .size }}
{{- end }}

{{- define "ecommerce.tmpMount" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}

{{/* Init container: wait until every migration of this image is applied. */}}
{{- define "ecommerce.waitForMigrations" -}}
- name: wait-for-migrations
  image: {{ include "ecommerce.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command:
    - sh
    - -c
    - until python manage.py migrate --check >/dev/null; do echo "waiting for migrations"; sleep 5; done
  {{- include "ecommerce.envFrom" . | nindent 2 }}
  resources:
    {{- toYaml .Values.migrations.waitResources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  {{- include "ecommerce.tmpMount" . | nindent 2 }}
{{- end }}

{{/* An HTTP probe on the web port: (dict "probe" .Values.web.probes.liveness "host" .Values.probeHost). */}}
{{- define "ecommerce.httpProbe" -}}
httpGet:
  path: {{ .probe.path }}
  port: http
  httpHeaders:
    - name: Host
      value: {{ .host | quote }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}

{{/* Scheduling knobs of one component: (.Values.web etc.). */}}
{{- define "ecommerce.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
