//! The simulated-runner API: what a runner process does with its JIT config.
//!
//! - `POST /_runner/register` `{"jitConfig": "<encodedJITConfig>"}` → `{"id", "name", "runnerScaleSetId",
//!   "token"}`; a JIT config registers once (409 after). The token authenticates the calls below.
//! - `GET /_runner/{id}/job?waitMs=N` (`Authorization: Bearer <token from the JIT config>`) → the job the runner
//!   runs (200), or 204 when none was assigned within the wait.
//! - `POST /_runner/{id}/complete` `{"result": "succeeded"}` → 204; the runner then leaves (ephemeral).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::{authorization, ok_json};
use crate::Shared;
use crate::state::Refusal;
use crate::tokens::bearer_token;

/// Longest job poll a runner may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_runner/register", post(register))
        .route("/_runner/{id}/job", get(job))
        .route("/_runner/{id}/complete", post(complete))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Register {
    jit_config: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JitContent {
    runner_id: i64,
    token: String,
}

/// Decodes an `encodedJITConfig` into (runner id, token).
pub fn decode_jit_config(encoded: &str) -> Option<(i64, String)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let content: JitContent = serde_json::from_slice(&bytes).ok()?;
    Some((content.runner_id, content.token))
}

async fn register(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let Some((id, token)) = serde_json::from_str::<Register>(&body).ok().and_then(|r| decode_jit_config(&r.jit_config))
    else {
        return Refusal::BadRequest("ArgumentException", "jitConfig is not a JIT config".into()).into_response();
    };
    match shared.mutate(|s| s.register_runner(id, &token)) {
        Ok(runner) => ok_json(&json!({
            "id": runner.id, "name": runner.name, "runnerScaleSetId": runner.runner_scale_set_id, "token": token,
        })),
        Err(refusal) => refusal.into_response(),
    }
}

async fn job(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = bearer_token(authorization(&headers)).unwrap_or_default();
    let wait = query.get("waitMs").and_then(|w| w.parse().ok()).map_or(Duration::ZERO, Duration::from_millis);
    let deadline = Instant::now() + wait.min(MAX_WAIT);
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let taken = shared.quietly(|s| s.check_runner(id, &token).map(|()| s.take_job(id)));
        match taken {
            Err(refusal) => return refusal.into_response(),
            Ok(Some(job)) => {
                // Starting a job queued a JobStarted message: wake the listener's poll.
                shared.changed.notify_waiters();
                return ok_json(&json!({
                    "runnerRequestId": job.id,
                    "displayName": job.spec.display_name,
                    "repository": job.spec.repository,
                    "labels": job.spec.labels,
                    "durationMs": job.spec.duration_ms,
                }));
            }
            Ok(None) => {}
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return StatusCode::NO_CONTENT.into_response();
        }
    }
}

#[derive(Deserialize)]
struct Complete {
    result: String,
}

async fn complete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let token = bearer_token(authorization(&headers)).unwrap_or_default();
    let Ok(request) = serde_json::from_str::<Complete>(&body) else {
        return Refusal::BadRequest("ArgumentException", "expected {\"result\": ...}".into()).into_response();
    };
    let outcome = shared.mutate(|s| s.check_runner(id, &token).and_then(|()| s.complete_job(id, &request.result)));
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}
