//! The unchanged `kube::Client` and kube-runtime against the in-memory API server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use gha_mem_kube::{MemKube, MemKubeOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "test.gha.dev", version = "v1", kind = "Widget", namespaced, status = "WidgetStatus")]
struct WidgetSpec {
    size: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
struct WidgetStatus {
    ready: bool,
}

async fn cluster() -> (MemKube, Client) {
    let options = MemKubeOptions { bookmark_interval: Duration::from_millis(200), ..Default::default() };
    let kube = MemKube::start(options).await.unwrap();
    let config = kube::Config::new(kube.url().parse().unwrap());
    let client = Client::try_from(config).unwrap();
    (kube, client)
}

async fn install_widget_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd()).await.unwrap();
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn pods_are_created_listed_patched_and_conflicts_reported() {
    let (_kube, client) = cluster().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "runner-", "labels": {"app": "runner"}},
        "spec": {"containers": [{"name": "runner", "image": "busybox"}]}
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let name = created.name_any();
    assert!(name.starts_with("runner-"));
    assert_eq!(pods.list(&ListParams::default().labels("app=runner")).await.unwrap().items.len(), 1);
    assert!(pods.list(&ListParams::default().labels("app=other")).await.unwrap().items.is_empty());
    assert_eq!(
        pods.list(&ListParams::default().fields(&format!("metadata.name={name}"))).await.unwrap().items.len(),
        1
    );

    let status = json!({"status": {"phase": "Running"}});
    let running = pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert_eq!(running.status.unwrap().phase.as_deref(), Some("Running"));

    let mut stale = created.clone();
    stale.metadata.labels.get_or_insert_default().insert("x".into(), "y".into());
    let err = pods.replace(&name, &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err}");

    let missing = pods.get("nope").await.unwrap_err();
    assert!(matches!(missing, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"), "{missing}");
    let json_patch: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/metadata/labels/tier", "value": "ci"}])).unwrap();
    let patched = pods.patch(&name, &PatchParams::default(), &Patch::Json::<()>(json_patch)).await.unwrap();
    assert_eq!(patched.labels()["tier"], "ci");
    pods.delete(&name, &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt(&name).await.unwrap().is_none());
}

struct Ctx {
    client: Client,
    reconciles: AtomicUsize,
    cleanups: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(String);

async fn reconcile(widget: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let ns = widget.namespace().unwrap_or_default();
    let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&widgets, "test.gha.dev/cleanup", widget, |event| async {
        let outcome: Result<Action, ReconcileError> = match event {
            Finalizer::Apply(widget) => {
                let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
                let owner = widget.controller_owner_ref(&()).unwrap();
                let map = ConfigMap {
                    metadata: kube::api::ObjectMeta {
                        name: Some(format!("{}-config", widget.name_any())),
                        owner_references: Some(vec![owner]),
                        ..Default::default()
                    },
                    data: Some([("size".to_string(), widget.spec.size.to_string())].into()),
                    ..Default::default()
                };
                maps.patch(&map.name_any(), &PatchParams::apply("test"), &Patch::Apply(&map))
                    .await
                    .map_err(|e| ReconcileError(e.to_string()))?;
                let status = json!({"status": {"ready": true}});
                widgets
                    .patch_status(&widget.name_any(), &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .map_err(|e| ReconcileError(e.to_string()))?;
                Ok(Action::await_change())
            }
            Finalizer::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        };
        outcome
    })
    .await
    .map_err(|e| ReconcileError(e.to_string()))
}

#[tokio::test]
async fn a_kube_runtime_controller_reconciles_owns_finalizes_and_collects_garbage() {
    let (kube, client) = cluster().await;
    install_widget_crd(&client).await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let ctx = Arc::new(Ctx { client: client.clone(), reconciles: AtomicUsize::new(0), cleanups: AtomicUsize::new(0) });
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(maps.clone(), watcher::Config::default())
        .run(reconcile, |_, _, _| Action::requeue(Duration::from_millis(100)), ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("controller: {e:?}");
            }
        });
    let running = tokio::spawn(controller);

    widgets.create(&PostParams::default(), &Widget::new("w1", WidgetSpec { size: 3 })).await.unwrap();
    eventually("status ready", || async {
        widgets.get("w1").await.ok().and_then(|w| w.status).is_some_and(|s| s.ready)
    })
    .await;
    assert_eq!(maps.get("w1-config").await.unwrap().data.unwrap()["size"], "3");

    // A change to an owned object triggers a reconcile of its owner.
    let before = ctx.reconciles.load(Ordering::SeqCst);
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    maps.patch("w1-config", &PatchParams::default(), &Patch::Merge(&label)).await.unwrap();
    eventually("owner reconciled", || async { ctx.reconciles.load(Ordering::SeqCst) > before }).await;

    // Watches survive being cut.
    kube.cut_watches();
    widgets.create(&PostParams::default(), &Widget::new("w2", WidgetSpec { size: 1 })).await.unwrap();
    eventually("w2 reconciled after the cut", || async { maps.get_opt("w2-config").await.unwrap().is_some() }).await;

    // Deletion: the finalizer's cleanup runs, the widget goes, its config map is garbage-collected.
    widgets.delete("w1", &DeleteParams::default()).await.unwrap();
    eventually("w1 gone", || async { widgets.get_opt("w1").await.unwrap().is_none() }).await;
    assert!(ctx.cleanups.load(Ordering::SeqCst) >= 1);
    eventually("w1-config collected", || async { maps.get_opt("w1-config").await.unwrap().is_none() }).await;
    running.abort();
}

#[tokio::test]
async fn watchers_resume_and_faults_surface_as_api_errors() {
    let (kube, client) = cluster().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorder = seen.clone();
    let watching = tokio::spawn(
        watcher(maps.clone(), watcher::Config::default()).default_backoff().applied_objects().for_each(move |m| {
            if let Ok(m) = m {
                recorder.lock().unwrap().push(m.name_any());
            }
            async {}
        }),
    );
    let map = |name: &str| ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        ..Default::default()
    };
    maps.create(&PostParams::default(), &map("a")).await.unwrap();
    eventually("a seen", || async { seen.lock().unwrap().contains(&"a".to_string()) }).await;
    kube.cut_watches();
    maps.create(&PostParams::default(), &map("b")).await.unwrap();
    eventually("b seen after the cut", || async { seen.lock().unwrap().contains(&"b".to_string()) }).await;

    kube.fail_writes("configmaps", 1, 500);
    let err = maps.create(&PostParams::default(), &map("c")).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 500), "{err}");
    maps.create(&PostParams::default(), &map("c")).await.unwrap();
    kube.fail_writes("configmaps", 1, 409);
    let err = maps.create(&PostParams::default(), &map("d")).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err}");
    watching.abort();
}

#[tokio::test]
async fn a_list_read_in_pages_misses_nothing_a_watch_from_its_version_does_not_replay() {
    let kube = MemKube::start(MemKubeOptions::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let map = |name: &str| ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        ..Default::default()
    };
    for name in ["b", "c", "d"] {
        maps.create(&PostParams::default(), &map(name)).await.unwrap();
    }
    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    // Created between the pages, sorting before the page boundary: not in any page.
    maps.create(&PostParams::default(), &map("a")).await.unwrap();
    let token = first.metadata.continue_.clone().expect("a continue token");
    let second = maps.list(&ListParams::default().limit(2).continue_token(&token)).await.unwrap();
    assert_eq!(second.items.iter().map(|m| m.name_any()).collect::<Vec<_>>(), ["d"]);
    let version = second.metadata.resource_version.clone().unwrap();
    assert_eq!(Some(&version), first.metadata.resource_version.as_ref(), "the list's version is its first page's");
    let mut stream = maps.watch(&kube::api::WatchParams::default(), &version).await.unwrap().boxed();
    match stream.next().await {
        Some(Ok(kube::api::WatchEvent::Added(added))) => assert_eq!(added.name_any(), "a"),
        other => panic!("expected the object created between the pages, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_page_and_too_old_watches_are_gone() {
    let kube = MemKube::start(MemKubeOptions { event_log_capacity: 3, ..Default::default() }).await.unwrap();
    let client = Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        let map = ConfigMap {
            metadata: kube::api::ObjectMeta { name: Some(format!("m{i}")), ..Default::default() },
            ..Default::default()
        };
        maps.create(&PostParams::default(), &map).await.unwrap();
    }
    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let second = maps.list(&ListParams::default().limit(2).continue_token(&token)).await.unwrap();
    assert_eq!(second.items.iter().map(|m| m.name_any()).collect::<Vec<_>>(), ["m2", "m3"]);
    let last = maps
        .list(&ListParams::default().limit(2).continue_token(second.metadata.continue_.as_deref().unwrap()))
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert!(last.metadata.continue_.is_none_or(|c| c.is_empty()));

    let mut stream = maps.watch(&kube::api::WatchParams::default(), "1").await.unwrap().boxed();
    match stream.next().await {
        Some(Ok(kube::api::WatchEvent::Error(status))) => assert_eq!(status.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_finds_installed_crds() {
    let (_kube, client) = cluster().await;
    install_widget_crd(&client).await;
    let discovery = kube::discovery::Discovery::new(client).run().await.unwrap();
    assert!(discovery.has_group("test.gha.dev"));
    let (resource, caps) = discovery.get("test.gha.dev").unwrap().recommended_kind("Widget").unwrap();
    assert_eq!(resource.plural, "widgets");
    assert!(caps.supports_operation(kube::discovery::verbs::WATCH));
}
