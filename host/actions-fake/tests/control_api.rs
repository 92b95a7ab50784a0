//! The control API over HTTP, as `demo` and out-of-process tests use it.

use std::time::Duration;

use gha_actions_fake::{FakeActions, FakeOptions};
use serde_json::{Value, json};

#[tokio::test]
async fn jobs_faults_and_state_over_http() {
    let fake = FakeActions::start(FakeOptions { long_poll_hold: Duration::from_millis(50), ..Default::default() })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = fake.base_url();

    let enqueued: Value = http
        .post(format!("{base}/_control/jobs"))
        .json(&json!({"labels": ["linux"], "repository": "acme/app", "displayName": "test", "durationMs": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = enqueued["runnerRequestId"].as_i64().unwrap();

    let bad = http.post(format!("{base}/_control/jobs")).body("{\"labels\": 5}").send().await.unwrap();
    assert_eq!(bad.status(), 400);

    let fault = json!({"pathContains": "registration-token", "count": 1, "status": 500});
    assert_eq!(http.post(format!("{base}/_control/faults")).json(&fault).send().await.unwrap().status(), 204);
    let hit = http
        .post(format!("{base}/api/v3/orgs/acme/actions/runners/registration-token"))
        .bearer_auth("ghp_fake")
        .send()
        .await
        .unwrap();
    assert_eq!(hit.status(), 500);
    let served = http
        .post(format!("{base}/api/v3/orgs/acme/actions/runners/registration-token"))
        .bearer_auth("ghp_fake")
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 201);

    let state: Value = http.get(format!("{base}/_control/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["jobs"][0]["id"].as_i64(), Some(id));
    assert_eq!(state["jobs"][0]["state"], "queued");
    assert_eq!(state["requests"]["POST /api/v3/orgs/acme/actions/runners/registration-token"], 2);

    assert_eq!(http.post(format!("{base}/_control/reset")).send().await.unwrap().status(), 204);
    let state: Value = http.get(format!("{base}/_control/state")).send().await.unwrap().json().await.unwrap();
    assert!(state["jobs"].as_array().unwrap().is_empty());
}
