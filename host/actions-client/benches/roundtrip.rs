//! `cargo bench -p gha-actions-client`: message round trips (get → ack) between the client and the fake over
//! loopback, requests on the hot path, and the fake's memory with 10,000 queued jobs.

use std::time::{Duration, Instant};

use gha_actions_client::MessageSession;
use gha_actions_fake::{FakeActions, FakeOptions, JobSpec};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let round_trips: usize = std::env::var("BENCH_ROUND_TRIPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let fake = FakeActions::start(FakeOptions { long_poll_hold: Duration::from_secs(1), ..Default::default() })
        .await
        .expect("fake starts");
    let (client, set) = fake.client_with_scale_set("acme", "bench").await.unwrap();
    let session = MessageSession::open(client.clone(), set.id, "bench").await.unwrap();

    let started = Instant::now();
    for _ in 0..round_trips {
        fake.enqueue(JobSpec::default());
        let message = session.get_message(1_000_000).await.unwrap().expect("a message");
        session.acknowledge(message.id, &session.id()).await;
    }
    let elapsed = started.elapsed();
    gha_bench::figure(
        "protocol: message round trips (get -> ack), one listener",
        round_trips as f64 / elapsed.as_secs_f64(),
        "/s",
        Some(">= 2000 /s"),
    );
    let registrations = fake.request_counts().get("POST /api/v3/actions/runner-registration").copied().unwrap_or(0);
    gha_bench::figure(
        "protocol: admin connections made during the run",
        registrations as f64,
        "",
        Some("1 (no refresh)"),
    );

    let queued = FakeActions::start(FakeOptions::default()).await.unwrap();
    let before = rss_kib();
    for i in 0..10_000 {
        queued.enqueue(JobSpec {
            labels: vec!["no-such-scale-set".into()],
            repository: format!("acme/repo-{}", i % 50),
            workflow_ref: "acme/app/.github/workflows/ci.yml@refs/heads/main".into(),
            display_name: format!("job {i}"),
            ..Default::default()
        });
    }
    let after = rss_kib();
    gha_bench::figure(
        "protocol: fake: RSS growth for 10,000 queued jobs",
        (after.saturating_sub(before)) as f64 / 1024.0,
        "MiB",
        None,
    );
    gha_bench::figure(
        "protocol: process RSS (fake + client) with 10,000 queued jobs",
        after as f64 / 1024.0,
        "MiB",
        Some("<= 32 MiB"),
    );
}
