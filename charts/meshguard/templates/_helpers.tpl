{{/* The prefix of every object's name: the release name, or release-chart. */}}
{{- define "meshguard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
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

{{- define "meshguard.serviceAccountName" -}}
{{ include "meshguard.fullname" . }}-controller-manager
{{- end -}}

{{/*
Labels as the manager's label flags take them: k=v,k=v, sorted by key.
*/}}
{{- define "meshguard.labelList" -}}
{{- $l := list }}
{{- range $k, $v := . }}{{ $l = append $l (printf "%s=%s" $k $v) }}{{ end }}
{{- join "," $l }}
{{- end }}
