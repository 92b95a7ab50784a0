//! `cargo bench -p gha-mem-kube`: 5,000 objects created through `kube::Client` and seen by 3 watchers; RSS with
//! 10,000 objects stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use gha_mem_kube::{MemKube, MemKubeOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0.0, |pages| (pages * 4096) as f64 / (1024.0 * 1024.0))
}

fn config_map(i: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("cm-{i}")),
            labels: Some([("app".to_string(), "bench".to_string())].into()),
            ..Default::default()
        },
        data: Some([("index".to_string(), i.to_string()), ("payload".to_string(), "x".repeat(200))].into()),
        ..Default::default()
    }
}

async fn create(api: &Api<ConfigMap>, range: std::ops::Range<usize>) {
    futures::stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &config_map(i)).await }
        })
        .buffer_unordered(32)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("creates succeed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let kube = MemKube::start(MemKubeOptions::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(kube.url().parse().unwrap())).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    const OBJECTS: usize = 5000;
    let seen: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    for counter in &seen {
        let (api, counter) = (api.clone(), counter.clone());
        let mut stream = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
        tokio::spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                if let WatchEvent::Added(_) = event {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let started = Instant::now();
    create(&api, 0..OBJECTS).await;
    while seen.iter().any(|c| c.load(Ordering::Relaxed) < OBJECTS) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    gha_bench::figure(
        "mem-kube: 5,000 objects created through kube::Client, seen by 3 watchers",
        elapsed.as_secs_f64(),
        "s",
        Some("<= 2 s"),
    );
    create(&api, OBJECTS..2 * OBJECTS).await;
    gha_bench::figure(
        "mem-kube: process RSS with 10,000 objects (server + client)",
        rss_mib(),
        "MiB",
        Some("<= 64 MiB"),
    );
}
