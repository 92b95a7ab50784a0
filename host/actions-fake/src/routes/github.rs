//! The GitHub API part: installation tokens, registration tokens, the admin connection.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gha_actions_client::model::{AdminConnection, RegistrationRequest};

use super::{authorization, ok_json};
use crate::Shared;
use crate::state::Refusal;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v3/app/installations/{id}/access_tokens", post(installation_token))
        .route("/api/v3/orgs/{org}/actions/runners/registration-token", post(registration_token))
        .route("/api/v3/repos/{owner}/{repo}/actions/runners/registration-token", post(registration_token))
        .route("/api/v3/enterprises/{enterprise}/actions/runners/registration-token", post(registration_token))
        .route("/api/v3/actions/runner-registration", post(runner_registration))
}

async fn installation_token(State(shared): State<Arc<Shared>>, Path(id): Path<i64>, headers: HeaderMap) -> Response {
    match shared.tokens().installation_token(authorization(&headers), id) {
        Ok(token) => (StatusCode::CREATED, axum::Json(token)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn registration_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match shared.tokens().registration_token(authorization(&headers)) {
        Ok(token) => (StatusCode::CREATED, axum::Json(token)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn runner_registration(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let request: RegistrationRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return Refusal::BadRequest("ArgumentException", e.to_string()).into_response(),
    };
    if request.runner_event != "register" {
        return Refusal::BadRequest("ArgumentException", "runner_event must be register".into()).into_response();
    }
    match shared.tokens().admin_token(authorization(&headers)) {
        Ok(token) => {
            ok_json(&AdminConnection { url: Some(format!("{}/_service/", shared.base_url)), token: Some(token) })
        }
        Err(refusal) => refusal.into_response(),
    }
}
