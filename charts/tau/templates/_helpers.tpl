{{/* Chart name. */}}
{{- define "tau.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: <release>-tau, or <release> when it already says tau. */}}
{{- define "tau.fullname" -}}
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

{{- define "tau.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "tau.labels" -}}
helm.sh/chart: {{ include "tau.chart" . }}
app.kubernetes.io/part-of: tau
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "operator"). */}}
{{- define "tau.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tau.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tau.componentLabels" -}}
{{ include "tau.labels" .ctx }}
{{ include "tau.selectorLabels" . }}
{{- end }}

{{/* Names. */}}
{{- define "tau.operator.fullname" -}}{{ include "tau.fullname" . | trunc 54 | trimSuffix "-" }}-operator{{- end }}
{{- define "tau.postgresql.fullname" -}}{{ include "tau.fullname" . | trunc 52 | trimSuffix "-" }}-postgresql{{- end }}
{{- define "tau.redis.fullname" -}}{{ include "tau.fullname" . | trunc 57 | trimSuffix "-" }}-redis{{- end }}
{{- define "tau.external.fullname" -}}{{ include "tau.fullname" . | trunc 54 | trimSuffix "-" }}-external{{- end }}

{{- define "tau.serviceAccountName" -}}
{{- default (include "tau.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- end }}

{{/* The TAU image: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "tau.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The image the operator gives relays: relay.image, else the TAU image (it holds tau-relay). */}}
{{- define "tau.relayImage" -}}
{{- if .Values.relay.image.repository }}
{{- printf "%s:%s" .Values.relay.image.repository (default .Chart.AppVersion .Values.relay.image.tag) }}
{{- else }}
{{- include "tau.image" . }}
{{- end }}
{{- end }}

{{/*
The namespaces the operator serves (JSON list): operator.namespaces, plus the
deprecated operator.watchNamespace and networkPolicy.relayNamespaces, which
extend the same list; empty: the release namespace. RBAC, TAU_NAMESPACES,
the relay NetworkPolicies and the PodMonitor all follow it.
With operator.allNamespaces the operator serves every namespace and this is
only where relay NetworkPolicies are rendered (networkPolicy.relayNamespaces,
else the release namespace).
*/}}
{{- define "tau.namespaces" -}}
{{- $op := .Values.operator }}
{{- $ns := concat $op.namespaces .Values.networkPolicy.relayNamespaces }}
{{- with $op.watchNamespace }}
{{- $ns = append $ns . }}
{{- end }}
{{- if not $ns }}
{{- $ns = list .Release.Namespace }}
{{- end }}
{{- toJson (uniq $ns) }}
{{- end }}

{{/*
Labels of the relay pods. The operator (not this chart) creates them; these
are the labels its builder sets (operator/src/build/mod.rs).
*/}}
{{- define "tau.relayPodLabels" -}}
app.kubernetes.io/name: tau-relay
app.kubernetes.io/managed-by: tau-operator
{{- end }}

{{/* The relay's HTTP port (operator/src/build/deployment.rs PORT; TAU_LISTEN in the pod). */}}
{{- define "tau.relayPort" -}}8000{{- end }}

{{/* Where the default database URL comes from: (list secretName key), or empty. */}}
{{- define "tau.databaseUrlRef" -}}
{{- if .Values.postgresql.enabled }}
{{- toJson (list (include "tau.postgresql.fullname" .) "database-url") }}
{{- else if .Values.externalDatabase.existingSecret.name }}
{{- toJson (list .Values.externalDatabase.existingSecret.name .Values.externalDatabase.existingSecret.key) }}
{{- else if .Values.externalDatabase.url }}
{{- toJson (list (include "tau.external.fullname" .) "database-url") }}
{{- end }}
{{- end }}

{{- define "tau.redisUrlRef" -}}
{{- if .Values.redis.enabled }}
{{- toJson (list (include "tau.redis.fullname" .) "redis-url") }}
{{- else if .Values.externalRedis.existingSecret.name }}
{{- toJson (list .Values.externalRedis.existingSecret.name .Values.externalRedis.existingSecret.key) }}
{{- else if .Values.externalRedis.url }}
{{- toJson (list (include "tau.external.fullname" .) "redis-url") }}
{{- end }}
{{- end }}

{{/*
A generated password kept across upgrades: (dict "ctx" $ "secret" NAME "key" KEY "fixed" VALUE).
The fixed value wins; else the live Secret's value (helm `lookup`: empty under
`helm template` and --dry-run, so those render a fresh random one); else 32
random alphanumerics (URL-safe, so it can sit in a connection URL unescaped).
*/}}
{{- define "tau.password" -}}
{{- if .fixed }}
{{- .fixed }}
{{- else }}
{{- $live := lookup "v1" "Secret" .ctx.Release.Namespace .secret }}
{{- if and $live $live.data (hasKey $live.data .key) }}
{{- index $live.data .key | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod securityContext for TAU's own binaries (distroless user nobody). */}}
{{- define "tau.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
fsGroup: 65534
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container securityContext used everywhere. */}}
{{- define "tau.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end }}
