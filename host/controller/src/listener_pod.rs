//! The listener's objects (§1.7): ServiceAccount, the Role that lets it patch only its own runner set, the
//! RoleBinding, the config secret, and the pod with the user's `listenerTemplate` merged in as ARC merges it.

use std::collections::BTreeMap;

use gha_crds::AutoscalingListener;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, Pod, PodSpec, SecretEnvSource, SecretVolumeSource, ServiceAccount,
    Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::labels::{annotation, hash_of, label};
use crate::options::ControllerOptions;

/// The listener container.
pub const LISTENER_CONTAINER: &str = "listener";
/// Where the config secret is mounted.
pub const CONFIG_DIR: &str = "/etc/gha-listener";
const CONFIG_VOLUME: &str = "listener-config";
/// The volume with the controller's precompiled policy, mounted beside the config directory under its own name
/// (so the path from the config to it is the same in a pod and in the simulated kubelet's volume directory).
const PRECOMPILED_VOLUME: &str = "gha-listener-precompiled";

/// Where the listener config finds the precompiled policy, relative to the config file.
pub fn precompiled_dir_from_config() -> String {
    format!("../{PRECOMPILED_VOLUME}")
}

/// The Secret holding a precompiled policy artifact (shared by every listener of that policy and engine build).
pub fn precompiled_secret_name(artifact_file: &str) -> String {
    format!("gha-policy-{}", hash_of(&artifact_file))
}

/// Name of the config secret.
pub fn config_secret_name(listener: &AutoscalingListener) -> String {
    format!("{}-config", listener.name_any())
}

/// Name of the proxy secret.
pub fn proxy_secret_name(listener: &AutoscalingListener) -> String {
    format!("{}-proxy", listener.name_any())
}

fn meta(
    listener: &AutoscalingListener,
    namespace: &str,
    name: String,
    extra: Option<&gha_crds::ResourceMeta>,
    owned: bool,
) -> ObjectMeta {
    let mut labels = listener.labels().clone();
    labels.insert(label::LISTENER_NAME.into(), listener.name_any());
    labels.insert(label::LISTENER_NAMESPACE.into(), listener.namespace().unwrap_or_default());
    let extra = extra.cloned().unwrap_or_default();
    labels.extend(extra.labels.unwrap_or_default());
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.into()),
        labels: Some(labels),
        annotations: extra.annotations,
        owner_references: owned.then(|| listener.controller_owner_ref(&()).map(|r| vec![r])).flatten(),
        ..Default::default()
    }
}

/// The listener's ServiceAccount (controller namespace, owned by the listener).
pub fn service_account(listener: &AutoscalingListener) -> ServiceAccount {
    let namespace = listener.namespace().unwrap_or_default();
    ServiceAccount {
        metadata: meta(
            listener,
            &namespace,
            listener.name_any(),
            listener.spec.service_account_metadata.as_ref(),
            true,
        ),
        ..Default::default()
    }
}

/// The Role in the runner namespace: read, watch and patch this runner set only (a list or watch is allowed
/// only with a `metadata.name` field selector naming it), patch runners' status, and (for
/// policies with a pod-mutator) label runner pods on job events.
pub fn role(listener: &AutoscalingListener, label_pods: bool) -> Role {
    let spec = &listener.spec;
    let rule = |resources: &[&str], verbs: &[&str], names: Option<Vec<String>>| PolicyRule {
        api_groups: Some(vec![
            if matches!(resources[0], "pods" | "configmaps") { "" } else { "actions.github.com" }.into(),
        ]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        resource_names: names,
        non_resource_urls: None,
    };
    let mut rules = vec![
        rule(
            &["ephemeralrunnersets"],
            &["get", "list", "watch", "patch"],
            Some(vec![spec.ephemeral_runner_set_name.clone()]),
        ),
        rule(&["ephemeralrunners", "ephemeralrunners/status"], &["patch"], None),
        // Its own policy-state ConfigMap, which the controller created.
        rule(&["configmaps"], &["get", "patch"], Some(vec![policy_state_name(&listener.name_any())])),
    ];
    if label_pods {
        rules.push(rule(&["pods"], &["patch"], None));
    }
    Role {
        metadata: meta(
            listener,
            &spec.autoscaling_runner_set_namespace,
            listener.name_any(),
            spec.role_metadata.as_ref(),
            false,
        ),
        rules: Some(rules),
    }
}

/// The ConfigMap (in the scale set's namespace) a listener keeps its policy's state in.
pub fn policy_state_name(listener_name: &str) -> String {
    format!("{listener_name}-policy-state")
}

/// The RoleBinding of [`role`] to the listener's ServiceAccount.
pub fn role_binding(listener: &AutoscalingListener) -> RoleBinding {
    let spec = &listener.spec;
    RoleBinding {
        metadata: meta(
            listener,
            &spec.autoscaling_runner_set_namespace,
            listener.name_any(),
            spec.role_binding_metadata.as_ref(),
            false,
        ),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: listener.name_any(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: listener.name_any(),
            namespace: listener.namespace(),
            api_group: None,
        }]),
    }
}

/// A secret owned by the listener in its namespace.
pub fn secret(
    listener: &AutoscalingListener,
    name: String,
    data: BTreeMap<String, Vec<u8>>,
) -> k8s_openapi::api::core::v1::Secret {
    let namespace = listener.namespace().unwrap_or_default();
    k8s_openapi::api::core::v1::Secret {
        metadata: meta(listener, &namespace, name, listener.spec.config_secret_metadata.as_ref(), true),
        data: Some(data.into_iter().map(|(k, v)| (k, k8s_openapi::ByteString(v))).collect()),
        ..Default::default()
    }
}

/// Merges the template's `listener` container into ours: resources, probes, security context and pull policy
/// override; env, args, ports, volume mounts and envFrom append. Image and command stay ours: a template made for
/// ARC names ARC's listener image (often mirrored for air-gapped clusters), which cannot run our listener.
fn merge_listener_container(ours: &mut Container, theirs: Container) {
    macro_rules! take {
        ($($field:ident),*) => { $( if theirs.$field.is_some() { ours.$field = theirs.$field; } )* };
    }
    macro_rules! append {
        ($($field:ident),*) => { $( if let Some(extra) = theirs.$field { ours.$field.get_or_insert_with(Vec::new).extend(extra); } )* };
    }
    take!(resources, liveness_probe, readiness_probe, startup_probe, security_context, image_pull_policy);
    append!(env, args, ports, volume_mounts, env_from);
}

/// What of the template's `listener` container is not used (`image`, `command`), for an event.
pub fn overridden_template_fields(listener: &AutoscalingListener, options: &ControllerOptions) -> Vec<String> {
    let template = listener.spec.template.as_ref().and_then(|t| t.spec.as_ref());
    let Some(theirs) = template.and_then(|spec| spec.containers.iter().find(|c| c.name == LISTENER_CONTAINER)) else {
        return Vec::new();
    };
    let mut overridden = Vec::new();
    if let Some(image) = theirs.image.as_ref().filter(|image| **image != listener.spec.image) {
        overridden.push(format!("image {image:?} (runs {:?})", listener.spec.image));
    }
    if let Some(command) = theirs.command.as_ref().filter(|c| **c != listener_command(options)) {
        overridden.push(format!("command {command:?} (runs {:?})", listener_command(options)));
    }
    overridden
}

fn listener_command(options: &ControllerOptions) -> Vec<String> {
    vec![options.listener_entrypoint.clone(), "listener".into()]
}

/// The listener pod. `config_hash` covers the config secret, so a new config recreates the pod; `precompiled`
/// names the Secret with the precompiled policy, mounted optionally (without it the listener compiles).
pub fn pod(
    listener: &AutoscalingListener,
    options: &ControllerOptions,
    config_hash: &str,
    precompiled: Option<&str>,
) -> Pod {
    let template = listener.spec.template.clone().unwrap_or_default();
    let mut spec: PodSpec = template.spec.unwrap_or_default();
    let mut ours = Container {
        name: LISTENER_CONTAINER.into(),
        image: Some(listener.spec.image.clone()),
        command: Some(listener_command(options)),
        env: Some(vec![EnvVar {
            name: "LISTENER_CONFIG_PATH".into(),
            value: Some(format!("{CONFIG_DIR}/config.json")),
            value_from: None,
        }]),
        volume_mounts: Some(vec![VolumeMount {
            name: CONFIG_VOLUME.into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        }]),
        ..Default::default()
    };
    if let Some(port) = crate::options::bind_address(&options.listener_metrics_addr)
        .and_then(|addr| addr.rsplit(':').next().and_then(|p| p.parse::<i32>().ok()))
    {
        ours.ports =
            Some(vec![ContainerPort { name: Some("metrics".into()), container_port: port, ..Default::default() }]);
    }
    if listener.spec.proxy.is_some() {
        ours.env_from = Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: proxy_secret_name(listener), optional: None }),
            ..Default::default()
        }]);
    }
    let mut sidecars = Vec::new();
    for container in std::mem::take(&mut spec.containers) {
        if container.name == LISTENER_CONTAINER {
            merge_listener_container(&mut ours, container);
        } else {
            sidecars.push(container);
        }
    }
    spec.containers = std::iter::once(ours).chain(sidecars).collect();
    spec.service_account_name = Some(listener.name_any());
    spec.service_account = None;
    spec.restart_policy = Some("Never".into());
    spec.node_selector.get_or_insert_with(|| BTreeMap::from([("kubernetes.io/os".into(), "linux".into())]));
    spec.termination_grace_period_seconds.get_or_insert(60);
    spec.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: CONFIG_VOLUME.into(),
        secret: Some(SecretVolumeSource { secret_name: Some(config_secret_name(listener)), ..Default::default() }),
        ..Default::default()
    });
    if let Some(secret) = precompiled {
        spec.volumes.get_or_insert_with(Vec::new).push(Volume {
            name: PRECOMPILED_VOLUME.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                optional: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
        spec.containers[0].volume_mounts.get_or_insert_with(Vec::new).push(VolumeMount {
            name: PRECOMPILED_VOLUME.into(),
            mount_path: std::path::Path::new(CONFIG_DIR).with_file_name(PRECOMPILED_VOLUME).display().to_string(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    if let Some(secrets) = &listener.spec.image_pull_secrets {
        spec.image_pull_secrets.get_or_insert_with(Vec::new).extend(secrets.iter().cloned());
    }
    let template_meta = template.metadata.unwrap_or_default();
    let mut labels = listener.labels().clone();
    for (k, v) in template_meta.labels.unwrap_or_default() {
        labels.entry(k).or_insert(v);
    }
    // The controller's watch of listener pods selects on this label.
    labels.insert(label::LISTENER_NAME.into(), listener.name_any());
    labels.insert(label::LISTENER_NAMESPACE.into(), listener.namespace().unwrap_or_default());
    let mut annotations = BTreeMap::new();
    for (k, v) in template_meta.annotations.unwrap_or_default() {
        annotations.entry(k).or_insert(v);
    }
    annotations.insert(annotation::INTEGRITY_HASH.into(), hash_of(&(&spec, &labels, config_hash)));
    Pod {
        metadata: ObjectMeta {
            name: Some(listener.name_any()),
            namespace: listener.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: listener.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gha_crds::AutoscalingListenerSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;

    #[test]
    fn the_template_merges_as_arc_merges_it() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"team": "infra", "app.kubernetes.io/component": "mine"}},
            "spec": {
                "serviceAccountName": "ignored",
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "containers": [
                    {"name": "listener", "image": "mirror.example/gha-runner-scale-set-controller:0.14.2",
                     "command": ["/ghalistener"], "env": [{"name": "EXTRA", "value": "1"}],
                     "resources": {"limits": {"memory": "64Mi"}}},
                    {"name": "sidecar", "image": "proxy:1"}
                ]
            }
        }))
        .unwrap();
        let mut listener = AutoscalingListener::new(
            "ars-abc-listener",
            AutoscalingListenerSpec {
                image: "controller:1".into(),
                template: Some(template),
                ephemeral_runner_set_name: "ars".into(),
                autoscaling_runner_set_namespace: "ci".into(),
                ..Default::default()
            },
        );
        listener.metadata.namespace = Some("arc-systems".into());
        listener.metadata.labels =
            Some(BTreeMap::from([("app.kubernetes.io/component".into(), "runner-scale-set-listener".into())]));
        let pod = pod(&listener, &ControllerOptions::default(), "h", None);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.service_account_name.as_deref(), Some("ars-abc-listener"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.tolerations.unwrap().len(), 1);
        assert_eq!(spec.containers.len(), 2);
        let ours = &spec.containers[0];
        assert_eq!(ours.image.as_deref(), Some("controller:1"), "our image runs our listener");
        assert_eq!(ours.command.as_ref().unwrap(), &["/gha-autoscaler", "listener"]);
        let overridden = overridden_template_fields(&listener, &ControllerOptions::default());
        assert_eq!(overridden.len(), 2, "{overridden:?}");
        let env: Vec<_> = ours.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert_eq!(env, ["LISTENER_CONFIG_PATH", "EXTRA"]);
        assert!(ours.resources.is_some());
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels["team"], "infra");
        assert_eq!(labels["app.kubernetes.io/component"], "runner-scale-set-listener", "ours are not overridden");
        let role = role(&listener, false);
        let rules = role.rules.unwrap();
        assert_eq!(rules[0].resource_names.as_deref(), Some(&["ars".to_string()][..]));
        assert!(rules.iter().all(|r| r.resources.as_ref().unwrap()[0] != "pods"));
    }
}
