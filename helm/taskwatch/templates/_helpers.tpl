{{/* The chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "taskwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; a service's resources append "-<service>", so it leaves room for that. */}}
{{- define "taskwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "taskwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "taskwatch.labels" -}}
helm.sh/chart: {{ include "taskwatch.chart" . }}
{{ include "taskwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: taskwatch
{{- end }}

{{- define "taskwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
A service's selector labels. `app.kubernetes.io/component` is the service's name, which the ServiceMonitor
turns into the `job` label the recording and alerting rules select on (job="backend", …).
Call with (dict "root" $ "service" "backend").
*/}}
{{- define "taskwatch.serviceSelectorLabels" -}}
{{ include "taskwatch.selectorLabels" .root }}
app.kubernetes.io/component: {{ .service }}
{{- end }}

{{- define "taskwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taskwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "taskwatch.secretName" -}}
{{- default (printf "%s-secrets" (include "taskwatch.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/*
Which credentials each service reads from the Secret: environment variable → Secret key. Only these; a service
never sees another's credentials. smtp-password is optional (plain relays need none).
*/}}
{{- define "taskwatch.secretEnv" -}}
backend:
  DATABASE_URL: database-url
  AUTH_JWT_SECRET: jwt-secret
  INTERNAL_SERVICE_TOKEN: internal-service-token
reminder:
  DATABASE_URL: database-url
recurring-task:
  INTERNAL_SERVICE_TOKEN: internal-service-token
notification:
  DATABASE_URL: database-url
  INTERNAL_SERVICE_TOKEN: internal-service-token
  WEBHOOK_SIGNING_SECRET: webhook-signing-secret
  SMTP_PASSWORD: smtp-password
audit-log:
  DATABASE_URL: database-url
  INTERNAL_SERVICE_TOKEN: internal-service-token
{{- end }}

{{/* Plain variables the chart wires per service (addresses, SMTP). Call with (dict "root" $ "service" NAME). */}}
{{- define "taskwatch.wiredEnv" -}}
{{- $root := .root }}
{{- $env := dict "KAFKA_BROKERS" (include "taskwatch.kafkaBrokers" $root) }}
{{- if has .service (list "recurring-task" "notification") }}
{{- $backend := index $root.Values.services "backend" }}
{{- $_ := set $env "BACKEND_URL" (printf "http://%s-backend:%v" (include "taskwatch.fullname" $root) $backend.port) }}
{{- end }}
{{- $auditLog := index $root.Values.services "audit-log" | default dict }}
{{- if and (eq .service "backend") $auditLog.enabled }}
{{- $_ := set $env "AUDIT_LOG_URL" (printf "http://%s-audit-log:%v" (include "taskwatch.fullname" $root) $auditLog.port) }}
{{- end }}
{{- if eq .service "notification" }}
{{- $smtp := $root.Values.smtp }}
{{- $_ := set $env "SMTP_HOST" (required "smtp.host is required (the notification service's mail server)" $smtp.host) }}
{{- $_ := set $env "SMTP_FROM" (required "smtp.from is required (the sender mailbox)" $smtp.from) }}
{{- $_ := set $env "SMTP_TLS" $smtp.tls }}
{{- if $smtp.port }}{{ $_ := set $env "SMTP_PORT" (toString $smtp.port) }}{{ end }}
{{- if $smtp.username }}{{ $_ := set $env "SMTP_USERNAME" $smtp.username }}{{ end }}
{{- end }}
{{- if $root.Values.otlpEndpoint }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" $root.Values.otlpEndpoint }}
{{- end }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER" $root.Values.tracesSampler.name }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER_ARG" (toString $root.Values.tracesSampler.ratio) }}
{{- toYaml $env }}
{{- end }}

{{/* Names of the optional in-chart dependencies (StatefulSet = headless Service = this name). */}}
{{- define "taskwatch.postgresName" -}}
{{- printf "%s-postgres" (include "taskwatch.fullname" .) }}
{{- end }}

{{- define "taskwatch.kafkaName" -}}
{{- printf "%s-kafka" (include "taskwatch.fullname" .) }}
{{- end }}

{{/*
The single in-chart Kafka node's address. The pod's own DNS name through the headless Service: it is both the
bootstrap address and what the broker advertises, so clients reach the same name either way.
*/}}
{{- define "taskwatch.kafkaNodeAddress" -}}
{{- $name := include "taskwatch.kafkaName" . }}
{{- printf "%s-0.%s.%s.svc:9092" $name $name .Release.Namespace }}
{{- end }}

{{/* Bootstrap servers: the in-chart node or the external `kafka.brokers`. */}}
{{- define "taskwatch.kafkaBrokers" -}}
{{- if .Values.kafka.inChart.enabled }}
{{- include "taskwatch.kafkaNodeAddress" . }}
{{- else }}
{{- required "kafka.brokers is required (bootstrap servers), or kafka.inChart.enabled" .Values.kafka.brokers }}
{{- end }}
{{- end }}

{{/* The `database-url` the chart's Secret holds: derived for the in-chart server, else `postgres.url`. */}}
{{- define "taskwatch.databaseUrl" -}}
{{- $pg := .Values.postgres }}
{{- if $pg.inChart.enabled }}
{{- $password := required "secrets.postgresPassword is required with postgres.inChart (or secrets.existingSecret)" .Values.secrets.postgresPassword }}
{{- printf "postgres://%s:%s@%s.%s.svc:5432/%s" $pg.inChart.username $password (include "taskwatch.postgresName" .) .Release.Namespace $pg.inChart.database }}
{{- else }}
{{- required "postgres.url is required (or postgres.inChart.enabled, or secrets.existingSecret with database-url)" $pg.url }}
{{- end }}
{{- end }}

{{/* A container securityContext with nothing granted; the in-chart images add only what they need. */}}
{{- define "taskwatch.restrictedContainerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
One route of monitoring/alertmanager/alertmanager.yml in the AlertmanagerConfig's shape (camelCase fields,
structured matchers); its child routes are the caller's business.
*/}}
{{- define "taskwatch.amRoute" -}}
receiver: {{ .receiver }}
{{- with .group_by }}
groupBy: {{ toJson . }}
{{- end }}
{{- if hasKey . "continue" }}
continue: {{ .continue }}
{{- end }}
{{- with .matchers }}
matchers:
  {{- include "taskwatch.amMatchers" . | trim | nindent 2 }}
{{- end }}
{{- with .group_wait }}
groupWait: {{ . }}
{{- end }}
{{- with .group_interval }}
groupInterval: {{ . }}
{{- end }}
{{- with .repeat_interval }}
repeatInterval: {{ . }}
{{- end }}
{{- with .mute_time_intervals }}
muteTimeIntervals: {{ toJson . }}
{{- end }}
{{- end }}

{{/*
Alertmanager matcher strings (`name="value"`, `name=~"regex"`, `!=`, `!~`) as the CRD's {name, value, matchType}.
*/}}
{{- define "taskwatch.amMatchers" -}}
{{- $pattern := `^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"(.*)"$` }}
{{- range . }}
{{- if not (regexMatch $pattern .) }}
{{- fail (printf "alertmanager.yml: matcher %q is not name<op>\"value\"" .) }}
{{- end }}
- name: {{ regexReplaceAll $pattern . "${1}" }}
  matchType: {{ regexReplaceAll $pattern . "${2}" | quote }}
  value: {{ regexReplaceAll $pattern . "${3}" | quote }}
{{- end }}
{{- end }}
