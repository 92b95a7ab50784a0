//! The runner pod of an EphemeralRunner, built as ARC builds it (§1.6 step 8), then passed through the scale
//! set's policy (`mutate-runner-pod`); the controller's own env vars are applied last so no patch can replace
//! the JIT config.

use gha_crds::EphemeralRunner;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, Pod, PodSpec, PodTemplateSpec, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::labels::{hash_of, label};

/// The container that runs the runner.
pub const RUNNER_CONTAINER: &str = "runner";
/// The env var the runner reads its JIT config from.
pub const JIT_ENV: &str = "ACTIONS_RUNNER_INPUT_JITCONFIG";
/// JIT secret keys.
pub mod jit_key {
    /// The encoded JIT config.
    pub const TOKEN: &str = "jitToken";
    /// Runner name.
    pub const RUNNER_NAME: &str = "runnerName";
    /// Runner id.
    pub const RUNNER_ID: &str = "runnerId";
    /// Scale set id.
    pub const SCALE_SET_ID: &str = "scaleSetId";
}
/// Env var of kubernetes container mode: its container-hook pods and secrets are cleaned up with the runner.
pub const CONTAINER_HOOKS_ENV: &str = "ACTIONS_RUNNER_CONTAINER_HOOKS";

/// The pod template before the policy: the ER's labels and annotations, then the template's over them (as ARC).
pub fn template(runner: &EphemeralRunner) -> PodTemplateSpec {
    let mut metadata = runner.spec.metadata.clone().unwrap_or_default();
    let mut labels = runner.labels().clone();
    labels.extend(metadata.labels.take().unwrap_or_default());
    let mut annotations = runner.annotations().clone();
    annotations.extend(metadata.annotations.take().unwrap_or_default());
    metadata.labels = Some(labels);
    metadata.annotations = Some(annotations);
    PodTemplateSpec { metadata: Some(metadata), spec: runner.spec.spec.clone() }
}

fn secret_env(name: &str, secret: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: optional.then_some(true),
            }),
            ..Default::default()
        }),
    }
}

fn set_env(container: &mut Container, var: EnvVar) {
    let env = container.env.get_or_insert_with(Vec::new);
    env.retain(|e| e.name != var.name);
    env.push(var);
}

/// The pod for `runner` from its (possibly mutated) template: name, owner, runner labels, `restartPolicy: Never`
/// unless the template sets one (as ARC), and the `runner` container's env (JIT config, user agent,
/// deprecated-version exit code, proxy). `pod-template-hash` hashes the pod's JSON (ARC hashes its Go structures;
/// the value only tells pods apart).
pub fn pod(runner: &EphemeralRunner, template: PodTemplateSpec, controller_version: &str) -> Pod {
    let name = runner.name_any();
    let mut metadata = template.metadata.unwrap_or_default();
    let mut labels = metadata.labels.take().unwrap_or_default();
    labels.insert(label::EPHEMERAL_RUNNER.into(), "True".into());
    let annotations = metadata.annotations.take().unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    spec.restart_policy.get_or_insert_with(|| "Never".into());
    for container in spec.containers.iter_mut().filter(|c| c.name == RUNNER_CONTAINER) {
        set_env(container, secret_env(JIT_ENV, &name, jit_key::TOKEN, false));
        set_env(
            container,
            EnvVar {
                name: "GITHUB_ACTIONS_RUNNER_EXTRA_USER_AGENT".into(),
                value: Some(format!("gha-autoscaler/{controller_version}")),
                value_from: None,
            },
        );
        set_env(
            container,
            EnvVar {
                name: "ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE".into(),
                value: Some("1".into()),
                value_from: None,
            },
        );
        if let Some(proxy_secret) = &runner.spec.proxy_secret_ref {
            for key in ["http_proxy", "https_proxy", "no_proxy"] {
                set_env(container, secret_env(key, proxy_secret, key, true));
            }
        }
    }
    labels.insert(label::POD_TEMPLATE_HASH.into(), hash_of(&(&labels, &annotations, &spec))[..10].to_string());
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: runner.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: runner.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Whether the runner container runs in kubernetes container mode.
pub fn uses_container_hooks(spec: Option<&PodSpec>) -> bool {
    spec.into_iter()
        .flat_map(|s| s.containers.iter())
        .filter(|c| c.name == RUNNER_CONTAINER)
        .flat_map(|c| c.env.iter().flatten())
        .any(|e| e.name == CONTAINER_HOOKS_ENV)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use gha_crds::EphemeralRunnerSpec;

    fn runner() -> EphemeralRunner {
        let mut runner = EphemeralRunner::new(
            "r-1",
            EphemeralRunnerSpec {
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: RUNNER_CONTAINER.into(),
                        env: Some(vec![EnvVar {
                            name: JIT_ENV.into(),
                            value: Some("stolen".into()),
                            value_from: None,
                        }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                proxy_secret_ref: Some("proxy".into()),
                ..Default::default()
            },
        );
        runner.metadata.namespace = Some("ci".into());
        runner.metadata.uid = Some("u1".into());
        runner.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into()), ("tier".into(), "er".into())]));
        runner.spec.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("tier".into(), "template".into())])),
            ..Default::default()
        });
        runner
    }

    #[test]
    fn the_controller_env_wins_over_the_template() {
        let runner = runner();
        let pod = pod(&runner, template(&runner), "0.1.0");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        let env = spec.containers[0].env.clone().unwrap();
        let jit: Vec<_> = env.iter().filter(|e| e.name == JIT_ENV).collect();
        assert_eq!(jit.len(), 1);
        let key_ref = jit[0].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((key_ref.name.as_str(), key_ref.key.as_str()), ("r-1", jit_key::TOKEN));
        assert!(env.iter().any(|e| e.name == "https_proxy"));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(labels["tier"], "template", "the template's labels win, as in ARC");
        assert_eq!(labels.get(label::EPHEMERAL_RUNNER).map(String::as_str), Some("True"));
        assert!(labels.contains_key(label::POD_TEMPLATE_HASH));
    }

    #[test]
    fn a_restart_policy_of_the_template_is_kept() {
        let mut runner = runner();
        runner.spec.spec.as_mut().unwrap().restart_policy = Some("OnFailure".into());
        let pod = pod(&runner, template(&runner), "0.1.0");
        assert_eq!(pod.spec.unwrap().restart_policy.as_deref(), Some("OnFailure"));
    }
}
