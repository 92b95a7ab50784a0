//! HTTP routes: GitHub API, Actions service, message queue, simulated runners, control API; plus the middleware
//! that counts requests and injects faults.

mod control;
mod github;
mod queue;
pub(crate) mod runner;
mod service;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::Refusal;
pub use runner::decode_jit_config;

use crate::{Shared, faults, lock};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(github::routes())
        .merge(service::routes())
        .merge(queue::routes())
        .merge(runner::routes())
        .merge(control::routes())
        .layer(middleware::from_fn_with_state(shared.clone(), count_and_inject))
        .with_state(shared)
}

/// `GET /_service/_apis/runtime/runnerscalesets/105` → `GET /_service/_apis/runtime/runnerscalesets/{id}`.
fn route_key(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| {
            let id = s.starts_with(|c: char| c.is_ascii_digit()) || (s.len() >= 32 && s.contains('-'));
            if id { "{id}" } else { s }
        })
        .collect();
    format!("{method} {}", segments.join("/"))
}

/// How many requests [`SeenRequest`]s are kept.
pub const SEEN_REQUESTS: usize = 1_000;

/// A request as served: what the protocol checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Accept`.
    pub accept: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
}

fn record(shared: &Shared, request: &Request, method: &str, uri: &str) {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let seen = SeenRequest {
        method: method.to_string(),
        uri: uri.to_string(),
        content_type: header("content-type"),
        accept: header("accept"),
        user_agent: header("user-agent"),
    };
    let mut log = lock(&shared.seen);
    if log.len() == SEEN_REQUESTS {
        log.pop_front();
    }
    log.push_back(seen);
}

async fn count_and_inject(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let activity_id = uuid::Uuid::new_v4().to_string().parse().expect("a uuid is a header value");
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let path_and_query = request.uri().path_and_query().map_or(path.clone(), |p| p.to_string());
    if !path.starts_with("/_control") {
        *lock(&shared.requests).entry(route_key(&method, &path)).or_default() += 1;
        record(&shared, &request, &method, &path_and_query);
        // The Actions service refuses a call without its API version (as the real one does).
        let versioned = request.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("api-version=")));
        if path.starts_with("/_service/") && !versioned {
            let body = json!({"typeName": "ArgumentException", "message": "api-version is required"});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        let injection = faults::take(&mut lock(&shared.faults), &method, &path_and_query);
        if let Some(injection) = injection {
            if let Some(delay) = injection.delay {
                tokio::time::sleep(delay).await;
            }
            if let Some(status) = injection.status {
                if injection.after_acting {
                    let _ = next.run(request).await;
                }
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response =
                    (status, axum::Json(json!({"typeName": "FakeInjectedFault", "message": "injected fault"})))
                        .into_response();
                if let Some(secs) = injection.retry_after_secs {
                    response.headers_mut().insert("Retry-After", secs.into());
                }
                response.headers_mut().insert("ActivityId", activity_id);
                return response;
            }
        }
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert("ActivityId", activity_id);
    response
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, type_name, message) = match self {
            Refusal::NotFound(t, m) => (StatusCode::NOT_FOUND, t, m),
            Refusal::Conflict(t, m) => (StatusCode::CONFLICT, t, m),
            Refusal::BadRequest(t, m) => (StatusCode::BAD_REQUEST, t, m),
            Refusal::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "UnauthorizedException", m),
        };
        (status, axum::Json(json!({"typeName": type_name, "message": message}))).into_response()
    }
}

pub(crate) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok())
}

/// 200 with a JSON body.
pub(crate) fn ok_json<T: serde::Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_hide_ids() {
        assert_eq!(
            route_key(
                "GET",
                "/_service/_apis/runtime/runnerscalesets/105/sessions/a1b2c3d4-0000-4000-8000-123456789abc"
            ),
            "GET /_service/_apis/runtime/runnerscalesets/{id}/sessions/{id}"
        );
        assert_eq!(
            route_key("POST", "/api/v3/actions/runner-registration"),
            "POST /api/v3/actions/runner-registration"
        );
    }
}
