//! What an independent implementation of the scale-set protocol showed us doing differently, each pinned
//! against the fake: query values encoded, a revoked admin token replaced, session creation never repeated
//! once the service may have acted, acks of gone messages fine, the real method in errors, the headers and
//! the session body GitHub's own runner client sends.

use std::sync::Arc;
use std::time::Duration;

use gha_actions_client::model::RunnerScaleSet;
use gha_actions_client::{
    ActionsClient, BUILD_COMMIT, ClientOptions, Credentials, Error, Message, MessageSession, RetryPolicy,
};
use gha_actions_fake::{FakeActions, FakeOptions, Fault, JobSpec};

const AWKWARD: &str = "team #1 & co+ops";

async fn fake() -> FakeActions {
    FakeActions::start(FakeOptions {
        long_poll_hold: Duration::from_millis(100),
        runner_groups: vec![AWKWARD.into()],
        ..Default::default()
    })
    .await
    .unwrap()
}

fn client(fake: &FakeActions) -> Arc<ActionsClient> {
    let mut options = ClientOptions::new(fake.config_url("acme"), Credentials::Token("ghp_fake".into()));
    options.retry =
        RetryPolicy { max_retries: 4, min_wait: Duration::from_millis(5), max_wait: Duration::from_millis(20) };
    Arc::new(ActionsClient::new(options).unwrap())
}

async fn scale_set(client: &ActionsClient) -> RunnerScaleSet {
    let set = RunnerScaleSet { name: "s".into(), runner_group_id: 1, ..Default::default() };
    client.create_scale_set(&set).await.unwrap()
}

/// A session on a new scale set, and the message of one job queued for it.
async fn session_with_a_message(fake: &FakeActions, client: &Arc<ActionsClient>) -> (MessageSession, Message) {
    let set = scale_set(client).await;
    let session = MessageSession::open(client.clone(), set.id, "pod").await.unwrap();
    fake.enqueue(JobSpec { labels: vec!["s".into()], ..Default::default() });
    let message = session.get_message(10).await.unwrap().expect("a message");
    (session, message)
}

fn count(fake: &FakeActions, route: &str) -> u64 {
    fake.request_counts().get(route).copied().unwrap_or(0)
}

#[tokio::test]
async fn query_values_with_hash_ampersand_and_plus_are_encoded() {
    let fake = fake().await;
    let client = client(&fake);
    let group = client.get_runner_group_by_name(AWKWARD).await.unwrap();
    assert_eq!(group.name, AWKWARD);
    let created = client
        .create_scale_set(&RunnerScaleSet { name: AWKWARD.into(), runner_group_id: group.id, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(client.get_scale_set(group.id, AWKWARD).await.unwrap().map(|s| s.id), Some(created.id));
    assert!(client.get_runner_by_name(AWKWARD).await.unwrap().is_none());
}

#[tokio::test]
async fn a_revoked_admin_token_is_replaced_and_the_call_sent_once_more() {
    let fake = fake().await;
    let client = client(&fake);
    client.get_runner_group_by_name("Default").await.unwrap();
    fake.revoke_admin_tokens();
    client.get_runner_group_by_name("Default").await.unwrap();
    assert_eq!(count(&fake, "POST /api/v3/actions/runner-registration"), 2, "{:?}", fake.request_counts());
}

#[tokio::test]
async fn session_create_is_not_repeated_once_the_service_may_have_acted() {
    let fake = fake().await;
    let client = client(&fake);
    let set = scale_set(&client).await;
    for status in [503, 429] {
        fake.inject(Fault {
            path_contains: "/sessions".into(),
            method: Some("POST".into()),
            count: 1,
            status: Some(status),
            after_acting: true,
            ..Fault::default()
        });
        let before = count(&fake, "POST /_service/_apis/runtime/runnerscalesets/{id}/sessions");
        let err = client.create_session(set.id, "pod").await.unwrap_err();
        assert_eq!(err.status(), Some(status), "{err}");
        assert_eq!(
            count(&fake, "POST /_service/_apis/runtime/runnerscalesets/{id}/sessions"),
            before + 1,
            "not retried"
        );
        // The service did create it: the orphan is in the way until it ends.
        assert!(matches!(client.create_session(set.id, "pod").await, Err(Error::SessionConflict(_))));
        fake.with_state(|s| s.drop_sessions_of(set.id));
    }
}

#[tokio::test]
async fn session_errors_name_the_method_that_failed() {
    let fake = fake().await;
    let client = client(&fake);
    let set = scale_set(&client).await;
    let session = client.create_session(set.id, "pod").await.unwrap();
    for method in ["PATCH", "DELETE"] {
        fake.inject(Fault {
            path_contains: "/sessions/".into(),
            method: Some(method.into()),
            count: 10,
            status: Some(400),
            ..Fault::default()
        });
        let err = match method {
            "PATCH" => client.refresh_session(set.id, &session.session_id).await.map(drop).unwrap_err(),
            _ => client.delete_session(set.id, &session.session_id).await.unwrap_err(),
        };
        assert!(err.to_string().starts_with(method), "{err}");
        fake.clear_faults();
    }
}

#[tokio::test]
async fn acknowledging_a_message_already_gone_is_fine() {
    let fake = fake().await;
    let client = client(&fake);
    let set = scale_set(&client).await;
    let session = client.create_session(set.id, "pod").await.unwrap();
    fake.with_state(|s| s.drop_sessions_of(set.id));
    fake.inject(Fault {
        path_contains: "/_queue/".into(),
        method: Some("DELETE".into()),
        count: 1,
        status: Some(404),
        ..Fault::default()
    });
    client.delete_message(&session, 7).await.unwrap();
}

#[tokio::test]
async fn requests_carry_json_content_type_github_accept_and_a_versioned_user_agent() {
    let fake = fake().await;
    let client = client(&fake);
    // The session body carries the nil sessionId (the fake refuses one without it, as a reminder).
    let (session, message) = session_with_a_message(&fake, &client).await;
    session.acknowledge(message.id, &session.id()).await;
    session.close().await.unwrap();
    let seen = fake.requests_seen();
    assert!(seen.len() >= 7, "{seen:?}");
    for request in &seen {
        assert_eq!(request.content_type.as_deref(), Some("application/json"), "{request:?}");
        let agent: serde_json::Value = serde_json::from_str(request.user_agent.as_deref().unwrap_or("")).unwrap();
        assert_eq!(agent["version"], env!("CARGO_PKG_VERSION"), "{request:?}");
        assert_eq!(agent["commit_sha"], BUILD_COMMIT, "{request:?}");
    }
    let registration = seen.iter().find(|r| r.uri.contains("registration-token")).unwrap();
    assert_eq!(registration.accept.as_deref(), Some("application/vnd.github+json"));
    assert!(seen.iter().filter(|r| r.uri.starts_with("/_service/")).all(|r| r.uri.contains("api-version=")));
}

#[tokio::test]
async fn a_failed_acknowledgement_is_retried_a_bounded_number_of_times() {
    let fake = fake().await;
    let client = client(&fake);
    let (session, message) = session_with_a_message(&fake, &client).await;
    let refused = |count| Fault {
        path_contains: "/_queue/".into(),
        method: Some("DELETE".into()),
        count,
        status: Some(400),
        ..Fault::default()
    };
    fake.inject(refused(2));
    session.acknowledge(message.id, &session.id()).await;
    assert_eq!(count(&fake, "DELETE /_queue/{id}/{id}"), 3, "two refusals, then acknowledged");
    assert!(session.get_message(10).await.unwrap().is_none(), "acknowledged: not delivered again");

    fake.enqueue(JobSpec { labels: vec!["s".into()], ..Default::default() });
    let message = session.get_message(10).await.unwrap().expect("a message");
    fake.inject(refused(100));
    session.acknowledge(message.id, &session.id()).await;
    assert_eq!(count(&fake, "DELETE /_queue/{id}/{id}"), 7, "given up after four attempts");
    fake.clear_faults();
    assert!(session.get_message(10).await.unwrap().is_none(), "moved past it all the same");
}
