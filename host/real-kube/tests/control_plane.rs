//! The harness brings up a working control plane: RBAC enforced per identity, ServiceAccount tokens, garbage
//! collection and namespace deletion by kube-controller-manager, watches cut by an API server restart.

use std::time::Duration;

use futures::StreamExt;
use gha_real_kube::{RealKube, RealKubeOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).unwrap()
}

async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for _ in 0..300 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} was never removed");
}

#[tokio::test]
async fn service_accounts_get_tokens_and_rbac_denies_what_is_not_granted_on_a_real_api_server() {
    let cluster = RealKube::start(RealKubeOptions::default()).await.unwrap();
    let admin = cluster.admin_client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.create(&PostParams::default(), &object(json!({"metadata": {"name": "team"}}))).await.unwrap();

    let account: Client = cluster.service_account_client("team", "reader").await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(account, "team");
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("a ServiceAccount without a Role listed secrets: {other:?}"),
    }
}

#[tokio::test]
async fn owners_take_their_objects_along_and_namespaces_are_emptied_on_a_real_api_server() {
    let cluster = RealKube::start(RealKubeOptions::default()).await.unwrap();
    let admin = cluster.admin_client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.create(&PostParams::default(), &object(json!({"metadata": {"name": "team"}}))).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), "team");
    let owner = maps.create(&PostParams::default(), &object(json!({"metadata": {"name": "owner"}}))).await.unwrap();
    let owned = json!({"metadata": {"name": "owned", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}]}});
    maps.create(&PostParams::default(), &object(owned)).await.unwrap();

    maps.delete("owner", &DeleteParams::background()).await.unwrap();
    wait_gone(&maps, "owned").await;

    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    wait_gone(&namespaces, "team").await;
}

#[tokio::test]
async fn watches_resume_after_a_restart_of_a_real_api_server() {
    let mut cluster = RealKube::start(RealKubeOptions { controller_manager: false }).await.unwrap();
    let admin = cluster.admin_client().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), "default");
    let mut events = watcher(maps.clone(), watcher::Config::default()).boxed();
    maps.create(&PostParams::default(), &object(json!({"metadata": {"name": "before"}}))).await.unwrap();
    let seen = |event: &watcher::Event<ConfigMap>, name: &str| match event {
        watcher::Event::Apply(map) | watcher::Event::InitApply(map) => map.metadata.name.as_deref() == Some(name),
        _ => false,
    };
    loop {
        if seen(&events.next().await.unwrap().unwrap(), "before") {
            break;
        }
    }
    cluster.restart_apiserver().await.unwrap();
    let admin = cluster.admin_client().await.unwrap();
    Api::<ConfigMap>::namespaced(admin, "default")
        .create(&PostParams::default(), &object(json!({"metadata": {"name": "after"}})))
        .await
        .unwrap();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = events.next().await {
            match event {
                Ok(event) if seen(&event, "after") => return true,
                Ok(_) | Err(_) => {}
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the watch resumed after the restart");
}
