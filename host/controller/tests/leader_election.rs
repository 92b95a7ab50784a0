//! Leader election on a Lease in the in-memory API: one holder at a time, renewals keep the others waiting, and
//! a takeover once the holder stops renewing.

use std::time::Duration;

use gha_controller::leader::{Leadership, LeaseTiming};
use gha_sandbox::{CONTROLLER_NAMESPACE, Sandbox, SandboxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_takeover_after_expiry() {
    let sandbox =
        Sandbox::start(SandboxOptions { kubelet: false, in_process_controller: false, ..SandboxOptions::default() })
            .await
            .unwrap();
    let timing = LeaseTiming { lease_seconds: 2, renew_every: Duration::from_millis(400) };
    let client = sandbox.client.clone();
    let first = Leadership::acquire(client.clone(), CONTROLLER_NAMESPACE, "lease", "replica-a", timing).await;
    let keeper = tokio::spawn(first.keep());

    let contender =
        tokio::spawn(Leadership::acquire(client.clone(), CONTROLLER_NAMESPACE, "lease", "replica-b", timing));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!contender.is_finished(), "the lease is renewed, so the second replica waits");

    keeper.abort();
    let second = tokio::time::timeout(Duration::from_secs(10), contender).await.expect("takeover").unwrap();
    let second_keeper = tokio::spawn(second.keep());

    // After the second holder stops too, a third takes over and its renewals keep a fourth waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    second_keeper.abort();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let third = Leadership::acquire(client, CONTROLLER_NAMESPACE, "lease", "replica-c", timing).await;
    let paused = tokio::spawn(third.keep());
    let fourth_client = sandbox.client.clone();
    let fourth = tokio::spawn(Leadership::acquire(fourth_client, CONTROLLER_NAMESPACE, "lease", "replica-d", timing));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!fourth.is_finished() && !paused.is_finished(), "replica-c renews; replica-d waits");
    paused.abort();
    fourth.abort();
    sandbox.stop().await;
}
