//! The CRDs install into the in-memory API and ARC-shaped objects round-trip through kube.

use gha_crds::{AutoscalingRunnerSet, EphemeralRunnerSet};
use gha_mem_kube::{MemKube, MemKubeOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

#[test]
fn the_yaml_holds_four_crds_with_arc_names_and_columns() {
    let yaml = gha_crds::yaml();
    let docs: Vec<CustomResourceDefinition> =
        serde_yaml::Deserializer::from_str(&yaml).map(|doc| serde::Deserialize::deserialize(doc).unwrap()).collect();
    let names: Vec<&str> = docs.iter().map(|d| d.metadata.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "autoscalingrunnersets.actions.github.com",
            "ephemeralrunnersets.actions.github.com",
            "ephemeralrunners.actions.github.com",
            "autoscalinglisteners.actions.github.com"
        ]
    );
    let ars = &docs[0].spec.versions[0];
    assert_eq!(ars.name, "v1alpha1");
    assert!(ars.subresources.as_ref().unwrap().status.is_some());
    let columns = |doc: &CustomResourceDefinition| -> Vec<String> {
        let version = &doc.spec.versions[0];
        version.additional_printer_columns.iter().flatten().map(|c| c.name.clone()).collect()
    };
    // ARC's columns, in ARC's order (ours adds the acting policy).
    let arc_ars = ["Minimum Runners", "Maximum Runners", "Current Runners", "State", "Pending Runners"];
    let arc_ars = [&arc_ars[..], &["Running Runners", "Finished Runners", "Deleting Runners", "Policy"]].concat();
    assert_eq!(columns(&docs[0]), arc_ars);
    let arc_ers = ["DesiredReplicas", "CurrentReplicas", "Pending Runners", "Running Runners", "Finished Runners"];
    assert_eq!(columns(&docs[1]), [&arc_ers[..], &["Deleting Runners"]].concat());
    let arc_er = ["GitHub Config URL", "RunnerId", "Status", "JobRepository", "JobWorkflowRef", "WorkflowRunId"];
    assert_eq!(columns(&docs[2]), [&arc_er[..], &["JobDisplayName", "JobId", "Message", "Age"]].concat());
    let arc_al = ["GitHub Configure URL", "AutoscalingRunnerSet Namespace", "AutoscalingRunnerSet Name"];
    assert_eq!(columns(&docs[3]), arc_al);
    assert!(yaml.contains("x-kubernetes-preserve-unknown-fields: true"), "policy config is free-form");
    assert!(yaml.contains("patchID") && yaml.contains("githubServerTLS") && yaml.contains("RunnerId"));
}

#[tokio::test]
async fn arc_shaped_objects_round_trip_through_the_api() {
    let kube = MemKube::start(MemKubeOptions::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in gha_crds::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let sets: Api<AutoscalingRunnerSet> = Api::namespaced(client.clone(), "default");
    let ars: AutoscalingRunnerSet = serde_json::from_value(json!({
        "apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
        "metadata": {"name": "arc-runner-set"},
        "spec": {
            "githubConfigUrl": "https://github.com/acme", "githubConfigSecret": "gh-secret",
            "minRunners": 1, "maxRunners": 10,
            "template": {"spec": {"containers": [{"name": "runner", "image": "ghcr.io/actions/actions-runner:latest",
                                                   "command": ["/home/runner/run.sh"]}]}},
            "policy": {"source": {"builtIn": "warm-pool"}, "config": {"scaleFactor": 0.5, "schedules": []},
                       "failurePolicy": "HoldLast", "limits": {"memoryMiB": 32}}
        }
    }))
    .unwrap();
    sets.create(&PostParams::default(), &ars).await.unwrap();
    let read = sets.get("arc-runner-set").await.unwrap();
    let policy = read.spec.policy.as_ref().unwrap();
    assert_eq!(policy.config.as_ref().unwrap()["scaleFactor"], 0.5);
    assert_eq!(policy.limits.as_ref().unwrap().memory_mib, 32);
    assert_eq!(read.spec.template.spec.unwrap().containers[0].name, "runner");

    let status = json!({"status": {"currentRunners": 3, "phase": "Running"}});
    let patched = sets.patch_status("arc-runner-set", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert_eq!(patched.status.unwrap().current_runners, Some(3));

    // The listener's patch: replicas 0 is encoded by deleting the field.
    let runner_sets: Api<EphemeralRunnerSet> = Api::namespaced(client, "default");
    let ers: EphemeralRunnerSet = serde_json::from_value(json!({
        "apiVersion": "actions.github.com/v1alpha1", "kind": "EphemeralRunnerSet",
        "metadata": {"name": "ers"},
        "spec": {"replicas": 2, "patchID": 5, "ephemeralRunnerSpec": {
            "githubConfigUrl": "https://github.com/acme", "githubConfigSecret": "s", "runnerScaleSetId": 1}}
    }))
    .unwrap();
    runner_sets.create(&PostParams::default(), &ers).await.unwrap();
    let zero = json!({"spec": {"replicas": null, "patchID": 0}});
    let patched = runner_sets.patch("ers", &PatchParams::default(), &Patch::Merge(&zero)).await.unwrap();
    assert_eq!((patched.spec.replicas, patched.spec.patch_id), (None, 0));
}
