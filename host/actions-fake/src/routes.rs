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

async fn count_and_inject(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let activity_id = uuid::Uuid::new_v4().to_string().parse().expect("a uuid is a header value");
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let path_and_query = request.uri().path_and_query().map_or(path.clone(), |p| p.to_string());
    if !path.starts_with("/_control") {
        *lock(&shared.requests).entry(route_key(&method, &path)).or_default() += 1;
        let injection = faults::take(&mut lock(&shared.faults), &method, &path_and_query);
        if let Some(injection) = injection {
            if let Some(delay) = injection.delay {
                tokio::time::sleep(delay).await;
            }
            if let Some(status) = injection.status {
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
