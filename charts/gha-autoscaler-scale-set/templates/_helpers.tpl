{{/* The scale set's name (release name unless runnerScaleSetName), at most 45 characters. */}}
{{- define "gha-autoscaler-scale-set.scale-set-name" -}}
{{- $name := default .Release.Name .Values.runnerScaleSetName }}
{{- if gt (len $name) 45 }}
{{- fail (printf "the scale set name %q is longer than 45 characters" $name) }}
{{- end }}
{{- $name }}
{{- end }}

{{/* The base of object names: the scale set's name with `_` (allowed on GitHub) as `-`. */}}
{{- define "gha-autoscaler-scale-set.objectName" -}}
{{- include "gha-autoscaler-scale-set.scale-set-name" . | replace "_" "-" }}
{{- end }}

{{- define "gha-autoscaler-scale-set.namespace" -}}
{{- $namespace := default .Release.Namespace .Values.namespaceOverride }}
{{- if gt (len $namespace) 63 }}
{{- fail (printf "the namespace %q is longer than 63 characters" $namespace) }}
{{- end }}
{{- $namespace }}
{{- end }}

{{/* The chart's own labels (reserved: users' labels never replace them). */}}
{{- define "gha-autoscaler-scale-set.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "gha-autoscaler-scale-set.scale-set-name" . }}
app.kubernetes.io/instance: {{ include "gha-autoscaler-scale-set.scale-set-name" . }}
app.kubernetes.io/version: {{ .Chart.Version | quote }}
app.kubernetes.io/part-of: gha-rs
app.kubernetes.io/managed-by: {{ .Release.Service }}
actions.github.com/scale-set-name: {{ include "gha-autoscaler-scale-set.scale-set-name" . }}
actions.github.com/scale-set-namespace: {{ include "gha-autoscaler-scale-set.namespace" . }}
{{- end }}

{{/* Labels of every object: the chart's, then the user's `labels` and `resourceMeta.<kind>.labels` except the
chart's own keys, `app.kubernetes.io/component` and `actions.github.com/*` (as ARC filters them). Called with
(dict "root" $ "kind" K). */}}
{{- define "gha-autoscaler-scale-set.labels" -}}
{{- $root := .root }}
{{- $base := include "gha-autoscaler-scale-set.baseLabels" $root | fromYaml }}
{{- $meta := index ($root.Values.resourceMeta | default (dict)) .kind | default (dict) }}
{{- $user := merge (dict) ($meta.labels | default (dict)) ($root.Values.labels | default (dict)) }}
{{- toYaml $base }}
{{- range $key, $value := $user }}
{{- if not (or (hasKey $base $key) (eq $key "app.kubernetes.io/component") (hasPrefix "actions.github.com/" $key)) }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Annotations of every object: the user's `annotations` and `resourceMeta.<kind>.annotations` except the ones the
chart and controller own (`actions.github.com/cleanup-*`, `actions.github.com/values-hash`). */}}
{{- define "gha-autoscaler-scale-set.annotations" -}}
{{- $root := .root }}
{{- $meta := index ($root.Values.resourceMeta | default (dict)) .kind | default (dict) }}
{{- $user := merge (dict) ($meta.annotations | default (dict)) ($root.Values.annotations | default (dict)) }}
{{- range $key, $value := $user }}
{{- if not (or (hasPrefix "actions.github.com/cleanup-" $key) (eq $key "actions.github.com/values-hash")) }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Metadata of one chart object: name, namespace, labels (with `component` if given) and annotations (global +
resourceMeta.<kind>). */}}
{{- define "gha-autoscaler-scale-set.metadata" -}}
name: {{ .name }}
namespace: {{ include "gha-autoscaler-scale-set.namespace" .root }}
labels:
  {{- include "gha-autoscaler-scale-set.labels" . | nindent 2 }}
  {{- with .component }}
  app.kubernetes.io/component: {{ . }}
  {{- end }}
{{- with include "gha-autoscaler-scale-set.annotations" . }}
annotations:
  {{- . | trim | nindent 2 }}
{{- end }}
{{- if .finalizer }}
finalizers:
  - actions.github.com/cleanup-protection
{{- end }}
{{- end }}

{{- define "gha-autoscaler-scale-set.githubsecret" -}}
{{- if kindIs "string" .Values.githubConfigSecret }}
{{- required "githubConfigSecret must name a Secret or give its keys" .Values.githubConfigSecret }}
{{- else }}
{{- include "gha-autoscaler-scale-set.objectName" . }}-gha-rs-github-secret
{{- end }}
{{- end }}

{{- define "gha-autoscaler-scale-set.noPermissionServiceAccountName" -}}
{{- include "gha-autoscaler-scale-set.objectName" . }}-gha-rs-no-permission
{{- end }}

{{- define "gha-autoscaler-scale-set.kubeModeName" -}}
{{- include "gha-autoscaler-scale-set.objectName" . }}-gha-rs-kube-mode
{{- end }}

{{- define "gha-autoscaler-scale-set.managerRoleName" -}}
{{- include "gha-autoscaler-scale-set.objectName" . }}-gha-rs-manager
{{- end }}

{{- define "gha-autoscaler-scale-set.policyConfigMapName" -}}
{{- include "gha-autoscaler-scale-set.objectName" . }}-gha-rs-policy
{{- end }}

{{/* The container mode: "", dind, kubernetes or kubernetes-novolume. */}}
{{- define "gha-autoscaler-scale-set.mode" -}}
{{- dig "type" "" (.Values.containerMode | default (dict)) }}
{{- end }}

{{/* Whether a chart-made Secret holds the credentials. */}}
{{- define "gha-autoscaler-scale-set.ownsSecret" -}}
{{- if not (kindIs "string" .Values.githubConfigSecret) }}true{{ end }}
{{- end }}

{{/* ",a,b," from a list of objects with `name` (for "does the user already set X"). */}}
{{- define "gha-autoscaler-scale-set.names" -}}
,{{- range . }}{{ .name }},{{- end }}
{{- end }}

{{/* The ServiceAccount of runner pods: the user's, the kube-mode one, or one without permissions. */}}
{{- define "gha-autoscaler-scale-set.runnerServiceAccountName" -}}
{{- $spec := .Values.template.spec | default (dict) }}
{{- if $spec.serviceAccountName }}
{{- $spec.serviceAccountName }}
{{- else if hasPrefix "kubernetes" (include "gha-autoscaler-scale-set.mode" .) }}
{{- include "gha-autoscaler-scale-set.kubeModeName" . }}
{{- else }}
{{- include "gha-autoscaler-scale-set.noPermissionServiceAccountName" . }}
{{- end }}
{{- end }}

{{/* The runner image (for dind's externals copy and kubernetes-novolume's ACTIONS_RUNNER_IMAGE). */}}
{{- define "gha-autoscaler-scale-set.runnerImage" -}}
{{- default "ghcr.io/actions/actions-runner:latest" (include "gha-autoscaler-scale-set.runnerImages" .) }}
{{- end }}

{{- define "gha-autoscaler-scale-set.runnerImages" -}}
{{- range (.Values.template.spec | default (dict)).containers }}{{ if eq .name "runner" }}{{ .image }}{{ end }}{{ end }}
{{- end }}

{{/* The dind daemon container (a native sidecar on Kubernetes >= 1.29). */}}
{{- define "gha-autoscaler-scale-set.dindContainer" -}}
name: dind
image: docker:dind
args:
  - dockerd
  - --host=unix:///var/run/docker.sock
  - --group=$(DOCKER_GROUP_GID)
env:
  - name: DOCKER_GROUP_GID
    value: "123"
securityContext:
  privileged: true
volumeMounts:
  - name: work
    mountPath: /home/runner/_work
  - name: dind-sock
    mountPath: /var/run
  - name: dind-externals
    mountPath: /home/runner/externals
{{- if .sidecar }}
restartPolicy: Always
startupProbe:
  exec:
    command: [docker, info]
  initialDelaySeconds: 0
  failureThreshold: 24
  periodSeconds: 5
{{- end }}
{{- end }}

{{/* The runner container: the user's, with what the container mode and TLS need added unless the user already
set the same env var or volume mount. Called with (dict "container" C "root" $). A list that ends up empty is left
out: `env: null` is refused by the API server's schema validation. */}}
{{- define "gha-autoscaler-scale-set.runnerContainer" -}}
{{ toYaml (omit .container "env" "volumeMounts") }}
{{- $env := include "gha-autoscaler-scale-set.runnerEnv" . }}
{{- if $env }}
env:
{{- $env }}
{{- end }}
{{- $mounts := include "gha-autoscaler-scale-set.runnerVolumeMounts" . }}
{{- if $mounts }}
volumeMounts:
{{- $mounts }}
{{- end }}
{{- end }}

{{/* The runner container's env entries (list items, or nothing). */}}
{{- define "gha-autoscaler-scale-set.runnerEnv" -}}
{{- $c := .container }}
{{- $root := .root }}
{{- $mode := include "gha-autoscaler-scale-set.mode" $root }}
{{- $env := include "gha-autoscaler-scale-set.names" ($c.env | default (list)) }}
{{- $mounts := include "gha-autoscaler-scale-set.names" ($c.volumeMounts | default (list)) }}
{{- $tls := $root.Values.githubServerTLS | default (dict) }}
{{- $tlsKey := dig "certificateFrom" "configMapKeyRef" "key" "" $tls }}
  {{- with $c.env }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if eq $mode "dind" }}
  {{- if not (contains ",DOCKER_HOST," $env) }}
  - name: DOCKER_HOST
    value: unix:///var/run/docker.sock
  {{- end }}
  {{- if not (contains ",RUNNER_WAIT_FOR_DOCKER_IN_SECONDS," $env) }}
  - name: RUNNER_WAIT_FOR_DOCKER_IN_SECONDS
    value: "120"
  {{- end }}
  {{- end }}
  {{- if hasPrefix "kubernetes" $mode }}
  {{- if not (contains ",ACTIONS_RUNNER_CONTAINER_HOOKS," $env) }}
  - name: ACTIONS_RUNNER_CONTAINER_HOOKS
    value: {{ ternary "/home/runner/k8s-novolume/index.js" "/home/runner/k8s/index.js" (eq $mode "kubernetes-novolume") }}
  {{- end }}
  {{- if not (contains ",ACTIONS_RUNNER_POD_NAME," $env) }}
  - name: ACTIONS_RUNNER_POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  {{- end }}
  {{- if not (contains ",ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER," $env) }}
  - name: ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER
    value: "true"
  {{- end }}
  {{- if and (eq $mode "kubernetes-novolume") (not (contains ",ACTIONS_RUNNER_IMAGE," $env)) }}
  - name: ACTIONS_RUNNER_IMAGE
    value: {{ $c.image | quote }}
  {{- end }}
  {{- end }}
  {{- if $tls.runnerMountPath }}
  {{- if not (contains ",NODE_EXTRA_CA_CERTS," $env) }}
  - name: NODE_EXTRA_CA_CERTS
    value: {{ printf "%s/%s" (trimSuffix "/" $tls.runnerMountPath) $tlsKey | quote }}
  {{- end }}
  {{- if not (contains ",RUNNER_UPDATE_CA_CERTS," $env) }}
  - name: RUNNER_UPDATE_CA_CERTS
    value: "1"
  {{- end }}
  {{- end }}
{{- end }}

{{/* The runner container's volume mounts (list items, or nothing). */}}
{{- define "gha-autoscaler-scale-set.runnerVolumeMounts" -}}
{{- $c := .container }}
{{- $root := .root }}
{{- $mode := include "gha-autoscaler-scale-set.mode" $root }}
{{- $env := include "gha-autoscaler-scale-set.names" ($c.env | default (list)) }}
{{- $mounts := include "gha-autoscaler-scale-set.names" ($c.volumeMounts | default (list)) }}
{{- $tls := $root.Values.githubServerTLS | default (dict) }}
{{- $tlsKey := dig "certificateFrom" "configMapKeyRef" "key" "" $tls }}
  {{- with $c.volumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if and (or (eq $mode "dind") (eq $mode "kubernetes")) (not (contains ",work," $mounts)) }}
  - name: work
    mountPath: /home/runner/_work
  {{- end }}
  {{- if and (eq $mode "dind") (not (contains ",dind-sock," $mounts)) }}
  - name: dind-sock
    mountPath: /var/run
  {{- end }}
  {{- if and $tls.runnerMountPath (not (contains ",github-server-tls-cert," $mounts)) }}
  - name: github-server-tls-cert
    mountPath: {{ printf "%s/%s" (trimSuffix "/" $tls.runnerMountPath) $tlsKey | quote }}
    subPath: {{ $tlsKey }}
  {{- end }}
{{- end }}

{{/* The runner pod's volumes (list items, or nothing): the user's, plus what the container mode and TLS mount.
kubernetes-novolume adds no work volume, but the TLS certificate is still mounted from its volume. */}}
{{- define "gha-autoscaler-scale-set.runnerVolumes" -}}
{{- $mode := include "gha-autoscaler-scale-set.mode" . }}
{{- $spec := .Values.template.spec | default (dict) }}
{{- $userVolumes := include "gha-autoscaler-scale-set.names" ($spec.volumes | default (list)) }}
{{- $tls := .Values.githubServerTLS | default (dict) }}
        {{- with $spec.volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- if and (eq $mode "dind") (not (contains ",work," $userVolumes)) }}
        - name: work
          emptyDir: {}
        {{- end }}
        {{- if and (eq $mode "dind") (not (contains ",dind-sock," $userVolumes)) }}
        - name: dind-sock
          emptyDir: {}
        {{- end }}
        {{- if and (eq $mode "dind") (not (contains ",dind-externals," $userVolumes)) }}
        - name: dind-externals
          emptyDir: {}
        {{- end }}
        {{- if and (eq $mode "kubernetes") (not (contains ",work," $userVolumes)) }}
        - name: work
          ephemeral:
            volumeClaimTemplate:
              spec:
                {{- toYaml (required "containerMode.kubernetesModeWorkVolumeClaim is required in kubernetes mode" .Values.containerMode.kubernetesModeWorkVolumeClaim) | nindent 16 }}
        {{- end }}
        {{- if and $tls.runnerMountPath (not (contains ",github-server-tls-cert," $userVolumes)) }}
        - name: github-server-tls-cert
          configMap:
            name: {{ $tls.certificateFrom.configMapKeyRef.name }}
            items:
              - key: {{ $tls.certificateFrom.configMapKeyRef.key }}
                path: {{ $tls.certificateFrom.configMapKeyRef.key }}
        {{- end }}
{{- end }}

{{/* The policy as AutoscalingRunnerSet.spec.policy. */}}
{{- define "gha-autoscaler-scale-set.policy" -}}
{{- $policy := .Values.policy | default (dict) }}
source:
  {{- if or $policy.wasm $policy.wasmBase64 }}
  configMap:
    name: {{ include "gha-autoscaler-scale-set.policyConfigMapName" . }}
    key: policy.wasm
  {{- else }}
  {{- toYaml (default (dict "builtIn" "arc-default") $policy.source) | nindent 2 }}
  {{- end }}
{{- with $policy.config }}
config:
  {{- toYaml . | nindent 2 }}
{{- end }}
failurePolicy: {{ $policy.failurePolicy | default "Fallback" }}
{{- with $policy.limits }}
limits:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $policy.allowWasi }}
allowWasi: true
{{- end }}
{{- with $policy.shadow }}
shadow:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $policy.permissions }}
permissions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The controller's ServiceAccount as YAML {namespace, name}: each from controllerServiceAccount, or else from the
labels of the gha-rs-controller Deployment (ours or ARC's) found at install: the one watching every namespace, or
the one watching this scale set's namespace (flags.watchSingleNamespace). */}}
{{- define "gha-autoscaler-scale-set.controllerServiceAccount" -}}
{{- $given := .Values.controllerServiceAccount | default (dict) }}
{{- $namespace := include "gha-autoscaler-scale-set.namespace" . }}
{{- $found := dict }}
{{- if not (and $given.name $given.namespace) }}
{{- $everyNamespace := list }}
{{- $oneNamespace := dict }}
{{- range (lookup "apps/v1" "Deployment" "" "").items }}
{{- $labels := .metadata.labels | default (dict) }}
{{- if eq (get $labels "app.kubernetes.io/part-of") "gha-rs-controller" }}
{{- if hasKey $labels "actions.github.com/controller-watch-single-namespace" }}
{{- $_ := set $oneNamespace (get $labels "actions.github.com/controller-watch-single-namespace") $labels }}
{{- else }}
{{- $everyNamespace = append $everyNamespace $labels }}
{{- end }}
{{- end }}
{{- end }}
{{- $hint := "set controllerServiceAccount.namespace and controllerServiceAccount.name" }}
{{- if and (eq (len $everyNamespace) 0) (eq (len $oneNamespace) 0) }}
{{- fail (printf "no gha-rs-controller Deployment found (label app.kubernetes.io/part-of=gha-rs-controller); %s" $hint) }}
{{- else if and (gt (len $everyNamespace) 0) (gt (len $oneNamespace) 0) }}
{{- fail (printf "gha-rs-controllers watching every namespace and single namespaces are both installed; %s" $hint) }}
{{- else if gt (len $everyNamespace) 1 }}
{{- fail (printf "%d gha-rs-controllers watch every namespace; %s" (len $everyNamespace) $hint) }}
{{- else if eq (len $everyNamespace) 1 }}
{{- $found = first $everyNamespace }}
{{- else if hasKey $oneNamespace $namespace }}
{{- $found = get $oneNamespace $namespace }}
{{- else }}
{{- fail (printf "no gha-rs-controller watches namespace %s; %s" $namespace $hint) }}
{{- end }}
{{- end }}
{{- /* `helm lint` renders past a `fail`: nothing here may assume a controller was found. */}}
namespace: {{ $given.namespace | default (get $found "actions.github.com/controller-service-account-namespace") | quote }}
name: {{ $given.name | default (get $found "actions.github.com/controller-service-account-name") | quote }}
{{- end }}
