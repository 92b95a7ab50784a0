//! The client against the fake Actions service over real HTTP on loopback: every endpoint and error path.

use std::sync::Arc;
use std::time::Duration;

use gha_actions_client::model::{RunnerScaleSet, RunnerScaleSetPatch};
use gha_actions_client::{ActionsClient, ClientOptions, Credentials, Error, JobMessage, MessageSession, RetryPolicy};
use gha_actions_fake::{AssignmentMode, FakeActions, FakeApp, FakeOptions, Fault, JobSpec};
use serde_json::json;

const APP_KEY: &str = include_str!("data/test-app-key.pem");
const APP_PUBLIC_KEY: &str = include_str!("data/test-app-key.pub.pem");

fn fast_retries() -> RetryPolicy {
    RetryPolicy { max_retries: 4, min_wait: Duration::from_millis(5), max_wait: Duration::from_millis(50) }
}

fn options() -> FakeOptions {
    FakeOptions { long_poll_hold: Duration::from_millis(200), ..Default::default() }
}

fn client_for(fake: &FakeActions, credentials: Credentials) -> Arc<ActionsClient> {
    let mut options = ClientOptions::new(fake.config_url("acme"), credentials);
    options.retry = fast_retries();
    Arc::new(ActionsClient::new(options).unwrap())
}

fn pat_client(fake: &FakeActions) -> Arc<ActionsClient> {
    client_for(fake, Credentials::Token("ghp_fake".into()))
}

async fn scale_set(client: &ActionsClient, name: &str) -> RunnerScaleSet {
    client
        .create_scale_set(&RunnerScaleSet { name: name.into(), runner_group_id: 1, ..Default::default() })
        .await
        .unwrap()
}

fn job(labels: &[&str]) -> JobSpec {
    JobSpec {
        labels: labels.iter().map(|l| l.to_string()).collect(),
        repository: "acme/app".into(),
        display_name: "build".into(),
        ..Default::default()
    }
}

/// A simulated runner: register with the JIT config, take the job, complete it.
async fn run_one_job(fake: &FakeActions, encoded_jit: &str, result: &str) -> i64 {
    let http = reqwest::Client::new();
    let base = fake.base_url();
    let registered: serde_json::Value = http
        .post(format!("{base}/_runner/register"))
        .json(&json!({"jitConfig": encoded_jit}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["id"].as_i64().unwrap();
    let (_, token) = gha_actions_fake::decode_jit_config(encoded_jit).unwrap();
    let job: serde_json::Value = http
        .get(format!("{base}/_runner/{id}/job?waitMs=2000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = http
        .post(format!("{base}/_runner/{id}/complete"))
        .bearer_auth(&token)
        .json(&json!({"result": result}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    job["runnerRequestId"].as_i64().unwrap()
}

async fn next_jobs(session: &MessageSession, last: &mut i64) -> Vec<JobMessage> {
    next_jobs_with_capacity(session, last, 10).await
}

async fn next_jobs_with_capacity(session: &MessageSession, last: &mut i64, capacity: u32) -> Vec<JobMessage> {
    let message = session.get_message(capacity).await.unwrap().expect("a message");
    *last = message.id;
    session.acknowledge(message.id, &session.id()).await;
    message.jobs
}

#[tokio::test]
async fn a_job_travels_the_whole_protocol() {
    let fake = FakeActions::start(options()).await.unwrap();
    let client = pat_client(&fake);
    let group = client.get_runner_group_by_name("Default").await.unwrap();
    assert!(group.is_default_group);
    let set = scale_set(&client, "linux").await;
    assert_eq!(set.labels[0].name, "linux");
    assert_eq!(client.get_scale_set(1, "linux").await.unwrap().unwrap().id, set.id);
    assert!(client.get_scale_set(1, "windows").await.unwrap().is_none());

    let session = MessageSession::open(client.clone(), set.id, "listener-0").await.unwrap();
    assert_eq!(session.initial_statistics().unwrap().total_assigned_jobs, 0);
    assert!(matches!(client.create_session(set.id, "listener-1").await, Err(Error::SessionConflict(_))));
    assert!(session.get_message(10).await.unwrap().is_none(), "202: nothing within the hold");

    let request_id = fake.enqueue(job(&["linux"]));
    let mut last = 0;
    let assigned = next_jobs(&session, &mut last).await;
    assert!(matches!(&assigned[..], [JobMessage::Assigned(f)] if f.runner_request_id == request_id));

    let jit = client.generate_jit_config(set.id, "linux-abc").await.unwrap();
    assert!(matches!(client.generate_jit_config(set.id, "linux-abc").await, Err(Error::RunnerExists(_))));
    assert_eq!(client.get_runner_by_name("linux-abc").await.unwrap().unwrap().id, jit.runner.id);
    assert_eq!(run_one_job(&fake, &jit.encoded_jit_config, "succeeded").await, request_id);
    let mut events = next_jobs(&session, &mut last).await;
    if events.len() == 1 {
        events.extend(next_jobs(&session, &mut last).await);
    }
    assert!(matches!(&events[0], JobMessage::Started(f) if f.runner_name.as_deref() == Some("linux-abc")));
    assert!(matches!(&events[1], JobMessage::Completed(f) if f.result.as_deref() == Some("succeeded")));
    let job = fake.with_state(|s| s.jobs()).into_iter().find(|j| j.id == request_id).unwrap();
    assert!(job.runner_assign_time.is_some() && job.finish_time.is_some());

    // The runner left after its job; removing it again is fine.
    assert!(client.get_runner(jit.runner.id).await.unwrap().is_none());
    client.remove_runner(jit.runner.id).await.unwrap();

    session.close().await.unwrap();
    MessageSession::open(client.clone(), set.id, "listener-1").await.unwrap();
}

#[tokio::test]
async fn busy_runners_cannot_be_removed() {
    let fake = FakeActions::start(options()).await.unwrap();
    let client = pat_client(&fake);
    let set = scale_set(&client, "busy").await;
    fake.enqueue(job(&[]));
    let jit = client.generate_jit_config(set.id, "busy-1").await.unwrap();
    let (_, token) = gha_actions_fake::decode_jit_config(&jit.encoded_jit_config).unwrap();
    let http = reqwest::Client::new();
    http.post(format!("{}/_runner/register", fake.base_url()))
        .json(&json!({"jitConfig": jit.encoded_jit_config}))
        .send()
        .await
        .unwrap();
    let started = http
        .get(format!("{}/_runner/{}/job?waitMs=1000", fake.base_url(), jit.runner.id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    assert!(matches!(client.remove_runner(jit.runner.id).await, Err(Error::JobStillRunning(_))));
    // A JIT config registers once.
    let again =
        http.post(format!("{}/_runner/register", fake.base_url())).json(&json!({"jitConfig": jit.encoded_jit_config}));
    assert_eq!(again.send().await.unwrap().status(), 409);
}

#[tokio::test]
async fn scale_sets_update_and_disappear() {
    let fake = FakeActions::start(FakeOptions { runner_groups: vec!["gpu".into()], ..options() }).await.unwrap();
    let client = pat_client(&fake);
    let set = scale_set(&client, "old").await;
    let gpu = client.get_runner_group_by_name("gpu").await.unwrap();
    let patch = RunnerScaleSetPatch { name: Some("new".into()), runner_group_id: Some(gpu.id), labels: None };
    let updated = client.update_scale_set(set.id, &patch).await.unwrap();
    assert_eq!((updated.name.as_str(), updated.runner_group_name.as_deref()), ("new", Some("gpu")));
    assert!(matches!(client.get_runner_group_by_name("nope").await, Err(Error::RunnerGroup(_))));

    // GitHub garbage-collects the scale set: every later call says so.
    fake.with_state(|s| s.delete_scale_set(set.id));
    assert!(matches!(client.get_scale_set_by_id(set.id).await, Err(Error::ScaleSetNotFound(_))));
    assert!(matches!(client.create_session(set.id, "x").await, Err(Error::ScaleSetNotFound(_))));
    client.delete_scale_set(set.id).await.unwrap();
}

#[tokio::test]
async fn github_app_credentials_get_an_installation_token() {
    let app = FakeApp { app_id: "12345".into(), installation_id: 77, public_key_pem: APP_PUBLIC_KEY.into() };
    let fake = FakeActions::start(FakeOptions { app: Some(app), pats: vec![], ..options() }).await.unwrap();
    let credentials = Credentials::App { app_id: "12345".into(), installation_id: 77, private_key_pem: APP_KEY.into() };
    let client = client_for(&fake, credentials);
    assert_eq!(client.get_runner_group_by_name("Default").await.unwrap().id, 1);
    let counts = fake.request_counts();
    assert_eq!(counts["POST /api/v3/app/installations/{id}/access_tokens"], 1);

    let wrong_app = Credentials::App { app_id: "999".into(), installation_id: 77, private_key_pem: APP_KEY.into() };
    let err = client_for(&fake, wrong_app).get_runner_group_by_name("Default").await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
}

#[tokio::test]
async fn bad_tokens_are_refused_and_never_logged() {
    let fake = FakeActions::start(options()).await.unwrap();
    let client = client_for(&fake, Credentials::Token("ghp_wrong".into()));
    let err = client.get_runner_group_by_name("Default").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.to_string().contains("ghp_wrong"));
    assert!(!format!("{client:?}").contains("ghp_wrong"));
}

#[tokio::test]
async fn the_admin_token_is_reused_while_fresh_and_refreshed_near_expiry() {
    let fake = FakeActions::start(options()).await.unwrap();
    let client = pat_client(&fake);
    for _ in 0..5 {
        client.get_runner_group_by_name("Default").await.unwrap();
    }
    assert_eq!(fake.request_counts()["POST /api/v3/actions/runner-registration"], 1);

    // Admin tokens that live under the 60 s margin are refreshed before every call.
    let short =
        FakeActions::start(FakeOptions { admin_token_ttl: Duration::from_secs(30), ..options() }).await.unwrap();
    let client = pat_client(&short);
    for _ in 0..3 {
        client.get_runner_group_by_name("Default").await.unwrap();
    }
    assert_eq!(short.request_counts()["POST /api/v3/actions/runner-registration"], 3);
}

#[tokio::test]
async fn transient_failures_are_retried_and_persistent_ones_reported() {
    let fake = FakeActions::start(options()).await.unwrap();
    let client = pat_client(&fake);
    let fault =
        |status, count| Fault { path_contains: "runnergroups".into(), count, status: Some(status), ..Fault::default() };
    fake.inject(fault(503, 2));
    fake.inject(Fault { retry_after_secs: Some(0), ..fault(429, 1) });
    client.get_runner_group_by_name("Default").await.unwrap();
    assert_eq!(fake.request_counts()["GET /_service/_apis/runtime/runnergroups/"], 4);

    fake.inject(fault(502, 5));
    let err = client.get_runner_group_by_name("Default").await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("activity id Some"), "{err}");

    // 501 is not retried.
    fake.inject(fault(501, 1));
    assert_eq!(client.get_runner_group_by_name("Default").await.unwrap_err().status(), Some(501));

    // 401/403 on runner-registration are retried (ARC #3377).
    let fresh = FakeActions::start(options()).await.unwrap();
    fresh.inject(Fault { path_contains: "runner-registration".into(), ..fault(403, 2) });
    pat_client(&fresh).get_runner_group_by_name("Default").await.unwrap();
}

#[tokio::test]
async fn an_expired_queue_token_is_refreshed_once() {
    let fake = FakeActions::start(options()).await.unwrap();
    let client = pat_client(&fake);
    let set = scale_set(&client, "q").await;
    let session = MessageSession::open(client.clone(), set.id, "l").await.unwrap();
    fake.enqueue(job(&[]));
    fake.with_state(|s| s.expire_queue_tokens());
    let message = session.get_message(5).await.unwrap().unwrap();
    assert_eq!(message.jobs.len(), 1);
    fake.with_state(|s| s.expire_queue_tokens());
    session.acknowledge(message.id, &session.id()).await;
    assert_eq!(fake.request_counts()["PATCH /_service/_apis/runtime/runnerscalesets/{id}/sessions/{id}"], 2);

    // A session the service dropped is replaced by a new one.
    let old = session.id();
    fake.with_state(|s| s.drop_sessions_of(set.id));
    assert!(session.get_message(5).await.unwrap().is_none());
    assert_ne!(session.id(), old);
    assert_eq!(fake.with_state(|s| s.sessions()).len(), 1);

    // And when the scale set itself is gone, that is what the caller hears.
    fake.with_state(|s| s.delete_scale_set(set.id));
    assert!(matches!(session.get_message(5).await, Err(Error::ScaleSetNotFound(_))));
}

#[tokio::test]
async fn ghes_jobs_are_acquired_and_capacity_limits_assignment() {
    let fake = FakeActions::start(FakeOptions { mode: AssignmentMode::Ghes, ..options() }).await.unwrap();
    let client = pat_client(&fake);
    let set = scale_set(&client, "ghes").await;
    let session = MessageSession::open(client.clone(), set.id, "l").await.unwrap();
    assert!(session.get_message(2).await.unwrap().is_none(), "advertises capacity 2");
    for _ in 0..5 {
        fake.enqueue(job(&[]));
    }
    let mut last = 0;
    let offered = next_jobs_with_capacity(&session, &mut last, 2).await;
    let ids: Vec<i64> = offered
        .iter()
        .map(|m| match m {
            JobMessage::Available(f) => f.runner_request_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 2, "capacity 2 bounds the offers");
    assert_eq!(session.acquire_jobs(&ids).await.unwrap(), ids);
    let stats = fake.with_state(|s| s.statistics(set.id));
    assert_eq!((stats.total_assigned_jobs, stats.total_available_jobs), (2, 0));
}

/// A scripted Actions service returning what the real one sometimes does.
async fn scripted(body_for_groups: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    scripted_with(move || body_for_groups.to_string()).await
}

async fn scripted_with(
    body_for_groups: impl Fn() -> String + Clone + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::{get, post};
    use base64::Engine;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp": 4102444800}"#);
    let admin = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
    let service = format!("{base}/svc");
    let app = axum::Router::new()
        .route(
            "/api/v3/orgs/acme/actions/runners/registration-token",
            post(|| async {
                (axum::http::StatusCode::CREATED, r#"{"token":"reg","expires_at":"2099-01-01T00:00:00Z"}"#)
            }),
        )
        .route(
            "/api/v3/actions/runner-registration",
            post(move || {
                let body = json!({"url": service, "token": admin}).to_string();
                async move { body }
            }),
        )
        .route(
            "/svc/_apis/runtime/runnergroups/",
            get(move || {
                let body = body_for_groups();
                async move { body }
            }),
        );
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, server)
}

#[tokio::test]
async fn boms_are_stripped_and_garbage_is_a_typed_error() {
    let (base, _server) = scripted("\u{feff}{\"count\":1,\"value\":[{\"id\":3,\"name\":\"Default\"}]}").await;
    let mut options = ClientOptions::new(format!("{base}/acme"), Credentials::Token("t".into()));
    options.retry = fast_retries();
    let client = ActionsClient::new(options.clone()).unwrap();
    assert_eq!(client.get_runner_group_by_name("Default").await.unwrap().id, 3);

    for garbage in ["<html>oops</html>", r#"{"count": 1, "value": [{"name": 5}]}"#, ""] {
        let (base, _server) = scripted(garbage).await;
        options.config_url = format!("{base}/acme");
        let err = ActionsClient::new(options.clone()).unwrap().get_runner_group_by_name("Default").await.unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{garbage}: {err}");
    }

    let (base, _server) = scripted_with(|| "x".repeat(gha_actions_client::MAX_RESPONSE_BYTES + 1)).await;
    options.config_url = format!("{base}/acme");
    let err = ActionsClient::new(options).unwrap().get_runner_group_by_name("Default").await.unwrap_err();
    assert!(err.to_string().contains("response body over"), "{err}");
}

#[test]
fn invalid_options_are_reported_before_any_request() {
    let base = ClientOptions::new("https://github.com/acme", Credentials::Token("t".into()));
    let bad_url = ClientOptions { config_url: "https://github.com".into(), ..base.clone() };
    assert!(matches!(ActionsClient::new(bad_url), Err(Error::InvalidConfigUrl(_))));
    let bad_ca = ClientOptions { root_ca_pem: Some("not a pem".into()), ..base.clone() };
    assert!(matches!(ActionsClient::new(bad_ca), Err(Error::InvalidOption(_))));
    let bad_proxy = ClientOptions { proxy: Some("::not a url".into()), ..base.clone() };
    assert!(matches!(ActionsClient::new(bad_proxy), Err(Error::InvalidOption(_))));
    let proxied = ClientOptions {
        proxy: Some("http://user:pass@127.0.0.1:3128".into()),
        no_proxy: Some("localhost,.internal".into()),
        ..base
    };
    assert!(ActionsClient::new(proxied).is_ok());
}

/// A forward HTTP proxy that requires credentials and counts what it forwards.
async fn forward_proxy() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let forwarded = Arc::new(AtomicUsize::new(0));
    let counter = forwarded.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = reqwest::Client::builder().no_proxy().build().unwrap();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (upstream, counter) = (upstream.clone(), counter.clone());
        async move {
            use axum::response::IntoResponse;
            // "user:pass" in base64.
            if request.headers().get("proxy-authorization").and_then(|v| v.to_str().ok()) != Some("Basic dXNlcjpwYXNz")
            {
                return axum::http::StatusCode::PROXY_AUTHENTICATION_REQUIRED.into_response();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let mut forward = upstream.request(parts.method, parts.uri.to_string()).body(body);
            for (name, value) in &parts.headers {
                if name != "proxy-authorization" && name != "host" {
                    forward = forward.header(name, value);
                }
            }
            let response = forward.send().await.unwrap();
            let status = response.status();
            (status, response.bytes().await.unwrap()).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://user:pass@{addr}"), forwarded)
}

#[tokio::test]
async fn requests_go_through_a_proxy_with_credentials_unless_bypassed() {
    let fake = FakeActions::start(options()).await.unwrap();
    let (proxy, forwarded) = forward_proxy().await;
    let mut options = ClientOptions::new(fake.config_url("acme"), Credentials::Token("ghp_fake".into()));
    options.retry = fast_retries();
    options.proxy = Some(proxy);
    let client = ActionsClient::new(options.clone()).unwrap();
    client.get_runner_group_by_name("Default").await.unwrap();
    assert_eq!(forwarded.load(std::sync::atomic::Ordering::SeqCst), 3, "registration token, admin connection, groups");

    options.no_proxy = Some("127.0.0.1".into());
    ActionsClient::new(options).unwrap().get_runner_group_by_name("Default").await.unwrap();
    assert_eq!(forwarded.load(std::sync::atomic::Ordering::SeqCst), 3, "bypassed");
}
