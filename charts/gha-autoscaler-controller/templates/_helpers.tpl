{{/* ARC's base name, so objects keep ARC's names (`<release>-gha-rs-controller`) and ARC's scale-set values
(`controllerServiceAccount.name: arc-gha-rs-controller`) name our ServiceAccount. */}}
{{- define "gha-autoscaler-controller.baseName" -}}
gha-rs-controller
{{- end }}

{{- define "gha-autoscaler-controller.name" -}}
{{- default (include "gha-autoscaler-controller.baseName" .) .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: fullnameOverride, or the release name (suffixed with the base name unless it contains it). */}}
{{- define "gha-autoscaler-controller.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default (include "gha-autoscaler-controller.baseName" .) .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gha-autoscaler-controller.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "gha-autoscaler-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gha-autoscaler-controller.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Selector labels: ARC's, so `helm upgrade` of an ARC release keeps the Deployment's immutable selector. */}}
{{- define "gha-autoscaler-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gha-autoscaler-controller.name" . }}
app.kubernetes.io/namespace: {{ include "gha-autoscaler-controller.namespace" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object; scale-set charts (ours and ARC's) find the controller by part-of. */}}
{{- define "gha-autoscaler-controller.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "gha-autoscaler-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: gha-rs-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- range $key, $value := .Values.labels }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* The four CRDs, their status and finalizers: what the controllers own. */}}
{{- define "gha-autoscaler-controller.crdRules" -}}
- apiGroups: [actions.github.com]
  resources: [autoscalingrunnersets, ephemeralrunnersets, ephemeralrunners, autoscalinglisteners]
  verbs: [create, delete, get, list, patch, update, watch]
- apiGroups: [actions.github.com]
  resources: [autoscalingrunnersets/status, ephemeralrunnersets/status, ephemeralrunners/status, autoscalinglisteners/status]
  verbs: [get, patch, update]
- apiGroups: [actions.github.com]
  resources: [autoscalingrunnersets/finalizers, ephemeralrunnersets/finalizers, ephemeralrunners/finalizers, autoscalinglisteners/finalizers]
  verbs: [update]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* What the controller watches in runner namespaces; everything else there comes from each scale set's
manager Role (the scale-set chart), so there is no cluster-wide access to Secrets. */}}
{{- define "gha-autoscaler-controller.watchRules" -}}
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [list, watch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [list, watch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [patch]
{{- end }}

{{/* A RoleBinding or ClusterRoleBinding of the controller's ServiceAccount. */}}
{{- define "gha-autoscaler-controller.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: {{ include "gha-autoscaler-controller.serviceAccountName" . }}
    namespace: {{ include "gha-autoscaler-controller.namespace" . }}
{{- end }}
