//! The control API, for tests and `demo`: jobs in, faults on, state out.
//!
//! - `POST /_control/jobs` (a [`JobSpec`]) → `{"runnerRequestId"}`
//! - `GET /_control/state` → jobs (with timestamps), runners, scale sets (with statistics), sessions, requests
//! - `POST /_control/faults` (a [`Fault`])
//! - `POST /_control/expire-queue-tokens`
//! - `POST /_control/scale-sets/{id}/drop-session`
//! - `POST /_control/scale-sets/{id}/gc` (later calls for it get 404)
//! - `POST /_control/reset`

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::ok_json;
use crate::faults::Fault;
use crate::state::{JobSpec, Refusal};
use crate::{Shared, lock};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_control/jobs", post(enqueue))
        .route("/_control/state", get(state))
        .route("/_control/faults", post(fault))
        .route("/_control/expire-queue-tokens", post(expire_queue_tokens))
        .route("/_control/scale-sets/{id}/drop-session", post(drop_session))
        .route("/_control/scale-sets/{id}/gc", post(gc))
        .route("/_control/reset", post(reset))
}

async fn enqueue(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match serde_json::from_str::<JobSpec>(&body) {
        Ok(spec) => ok_json(&json!({"runnerRequestId": shared.mutate(|s| s.enqueue(spec))})),
        Err(e) => Refusal::BadRequest("ArgumentException", e.to_string()).into_response(),
    }
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let requests = lock(&shared.requests).clone();
    shared.read(|s| {
        ok_json(&json!({
            "jobs": s.jobs(),
            "runners": s.runners(),
            "scaleSets": s.scale_sets(),
            "sessions": s.sessions(),
            "requests": requests,
        }))
    })
}

async fn fault(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match serde_json::from_str::<Fault>(&body) {
        Ok(fault) => {
            lock(&shared.faults).push(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => Refusal::BadRequest("ArgumentException", e.to_string()).into_response(),
    }
}

async fn expire_queue_tokens(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.mutate(|s| s.expire_queue_tokens());
    StatusCode::NO_CONTENT
}

async fn drop_session(State(shared): State<Arc<Shared>>, Path(id): Path<i64>) -> StatusCode {
    shared.mutate(|s| s.drop_sessions_of(id));
    StatusCode::NO_CONTENT
}

async fn gc(State(shared): State<Arc<Shared>>, Path(id): Path<i64>) -> StatusCode {
    shared.mutate(|s| s.delete_scale_set(id));
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.mutate(|s| s.reset());
    lock(&shared.faults).clear();
    lock(&shared.requests).clear();
    StatusCode::NO_CONTENT
}
