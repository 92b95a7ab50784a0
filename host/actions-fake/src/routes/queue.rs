//! The message queue: long poll (`lastMessageId`, `X-ScaleSetMaxCapacity`, 202 when nothing came) and acks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use gha_actions_client::message::JOB_MESSAGES_TYPE;
use serde_json::json;
use tokio::time::Instant;

use super::authorization;
use crate::Shared;
use crate::state::Envelope;
use crate::tokens::bearer_token;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/_queue/{session}", get(get_message)).route("/_queue/{session}/{message}", delete(ack))
}

fn envelope_json(envelope: &Envelope) -> serde_json::Value {
    let (message_type, body) = match &envelope.raw {
        Some((message_type, body)) => (message_type.clone(), body.clone()),
        None => {
            let body: Vec<serde_json::Value> = envelope.jobs.iter().map(|j| j.to_json()).collect();
            (JOB_MESSAGES_TYPE.to_string(), serde_json::Value::Array(body).to_string())
        }
    };
    json!({"messageId": envelope.id, "messageType": message_type, "statistics": envelope.statistics, "body": body})
}

async fn get_message(
    State(shared): State<Arc<Shared>>,
    Path(session): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = bearer_token(authorization(&headers)).unwrap_or_default();
    if let Err(refusal) = shared.read(|s| s.check_queue_token(&session, &token)) {
        return refusal.into_response();
    }
    let last: i64 = query.get("lastMessageId").and_then(|v| v.parse().ok()).unwrap_or(0);
    if let Some(capacity) = headers.get("X-ScaleSetMaxCapacity").and_then(|v| v.to_str().ok()?.parse().ok()) {
        shared.mutate(|s| s.set_capacity(&session, capacity));
    }
    let deadline = Instant::now() + shared.options.long_poll_hold;
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let next = shared.quietly(|s| {
            s.check_queue_token(&session, &token)?;
            Ok::<_, crate::state::Refusal>(s.next_envelope(&session, last))
        });
        match next {
            Err(refusal) => return refusal.into_response(),
            Ok(Some(envelope)) => return axum::Json(envelope_json(&envelope)).into_response(),
            Ok(None) => {}
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return StatusCode::ACCEPTED.into_response();
        }
    }
}

async fn ack(
    State(shared): State<Arc<Shared>>,
    Path((session, message)): Path<(String, i64)>,
    headers: HeaderMap,
) -> Response {
    let token = bearer_token(authorization(&headers)).unwrap_or_default();
    match shared.read(|s| s.check_queue_token(&session, &token)) {
        Ok(_) => {
            shared.mutate(|s| s.ack(&session, message));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}
