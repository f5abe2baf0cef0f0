{{/* The prefix of every object's name: fullnameOverride, or the release name when it contains the
chart's name (nameOverride if set), or release-name. 40 characters leave room for the suffixes. */}}
{{- define "meshguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The manager pods' selector: the same labels as config/manager (one meshguard per cluster). */}}
{{- define "meshguard.selectorLabels" -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/component: manager
{{- end -}}

{{/* Labels of every object. */}}
{{- define "meshguard.labels" -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* serviceAccount.name, or <fullname>-controller-manager; with serviceAccount.create=false the
account must exist (the chart still binds its roles to it). */}}
{{- define "meshguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.name -}}
{{ .Values.serviceAccount.name }}
{{- else -}}
{{ include "meshguard.fullname" . }}-controller-manager
{{- end -}}
{{- end -}}

{{/* The manager image: repository@digest when a digest is given, else repository:tag. */}}
{{- define "meshguard.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/*
Labels as the manager's label flags take them: k=v,k=v, sorted by key.
*/}}
{{- define "meshguard.labelList" -}}
{{- $l := list }}
{{- range $k, $v := . }}{{ $l = append $l (printf "%s=%s" $k $v) }}{{ end }}
{{- join "," $l }}
{{- end }}
