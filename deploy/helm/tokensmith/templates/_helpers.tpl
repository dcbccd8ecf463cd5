{{/*
The chart's name, or nameOverride.
*/}}
{{- define "tokensmith.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the objects: the release name, with the chart name after it unless the
release name already holds it. Kept to 57 characters so that "-admin" still fits in 63.
*/}}
{{- define "tokensmith.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "tokensmith.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "tokensmith.labels" -}}
helm.sh/chart: {{ include "tokensmith.chart" . }}
{{ include "tokensmith.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that pick the pods; they never change across upgrades (a Deployment's selector cannot).
*/}}
{{- define "tokensmith.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokensmith.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "tokensmith.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tokensmith.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository:tag, or repository@digest when a digest is given.
*/}}
{{- define "tokensmith.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Whether the store is Redis.
*/}}
{{- define "tokensmith.redis" -}}
{{- if eq .Values.storage.type "redis" }}true{{ end }}
{{- end }}

{{/*
Whether more than one pod can run at once: the PodDisruptionBudget is made only then.
*/}}
{{- define "tokensmith.manyReplicas" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
The fewest replicas that should be running: what the replica alert expects.
*/}}
{{- define "tokensmith.minReplicas" -}}
{{- if gt (int .Values.prometheusRule.minReplicas) 0 }}
{{- .Values.prometheusRule.minReplicas }}
{{- else if .Values.autoscaling.enabled }}
{{- .Values.autoscaling.minReplicas }}
{{- else }}
{{- .Values.replicaCount }}
{{- end }}
{{- end }}

{{/*
Whether the chart's own Secret is needed: for a generated or given admin token, or a Redis
password given in values.
*/}}
{{- define "tokensmith.ownSecret" -}}
{{- if or (not .Values.adminToken.existingSecret) (and (include "tokensmith.redis" .) .Values.storage.redis.password (not .Values.storage.redis.urlSecret.name)) }}true{{ end }}
{{- end }}

{{/*
The Secret and key of the Redis password, when one is used.
*/}}
{{- define "tokensmith.redisPasswordRef" -}}
{{- if .Values.storage.redis.existingSecret }}
name: {{ .Values.storage.redis.existingSecret }}
key: {{ .Values.storage.redis.existingSecretPasswordKey }}
{{- else if .Values.storage.redis.password }}
name: {{ include "tokensmith.fullname" . }}
key: redis-password
{{- end }}
{{- end }}

{{/*
The storage URL with the password put in as a reference to TOKENSMITH_REDIS_PASSWORD, which
Kubernetes expands from the variable defined before it.
*/}}
{{- define "tokensmith.redisURL" -}}
{{- $r := .Values.storage.redis }}
{{- if or $r.existingSecret $r.password }}
{{- regexReplaceAll "^([a-z+]+://)" $r.url (printf "${1}%s:$(TOKENSMITH_REDIS_PASSWORD)@" $r.username) }}
{{- else if $r.username }}
{{- regexReplaceAll "^([a-z+]+://)" $r.url (printf "${1}%s@" $r.username) }}
{{- else }}
{{- $r.url }}
{{- end }}
{{- end }}

{{/*
Whether the public listener serves TLS: the probes then speak HTTPS.
*/}}
{{- define "tokensmith.probeScheme" -}}
{{- if .Values.tls.secretName }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/*
The OTEL_* variables of the otel block.
*/}}
{{- define "tokensmith.otelEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ default (include "tokensmith.fullname" .) .Values.otel.serviceName | quote }}
{{- with .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .Values.otel.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .Values.otel.sampler | quote }}
{{- with .Values.otel.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- $attrs := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" }}
{{- range $k, $v := .Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- end }}
