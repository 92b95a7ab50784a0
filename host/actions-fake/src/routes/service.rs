//! The Actions-service part, behind the admin token: runner groups, scale sets, sessions, jobs, JIT configs,
//! runners.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use gha_actions_client::model::{JitConfig, JitConfigRequest, ListResponse, RunnerScaleSet, RunnerScaleSetPatch};
use serde_json::json;

use super::{authorization, ok_json};
use crate::Shared;
use crate::state::{Outcome, Refusal};
use crate::tokens::bearer_token;

const RUNTIME: &str = "/_service/_apis/runtime";
const AGENTS: &str = "/_service/_apis/distributedtask/pools/0/agents";

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(&format!("{RUNTIME}/runnergroups/"), get(runner_groups))
        .route(&format!("{RUNTIME}/runnergroups"), get(runner_groups))
        .route(&format!("{RUNTIME}/runnerscalesets"), get(find_scale_sets).post(create_scale_set))
        .route(
            &format!("{RUNTIME}/runnerscalesets/{{id}}"),
            get(get_scale_set).patch(update_scale_set).delete(delete_scale_set),
        )
        .route(&format!("{RUNTIME}/runnerscalesets/{{id}}/sessions"), post(create_session))
        .route(
            &format!("{RUNTIME}/runnerscalesets/{{id}}/sessions/{{session}}"),
            axum::routing::patch(refresh_session).delete(delete_session),
        )
        .route(&format!("{RUNTIME}/runnerscalesets/{{id}}/acquirejobs"), post(acquire_jobs))
        .route(&format!("{RUNTIME}/runnerscalesets/{{id}}/generatejitconfig"), post(generate_jit_config))
        .route(AGENTS, get(find_runners))
        .route(&format!("{AGENTS}/{{id}}"), get(get_runner).delete(remove_runner))
}

type Params = Query<HashMap<String, String>>;

fn admin(shared: &Shared, headers: &HeaderMap) -> Outcome<()> {
    shared.tokens().check_admin(authorization(headers))
}

fn respond<T: serde::Serialize>(outcome: Outcome<T>) -> Response {
    match outcome {
        Ok(value) => ok_json(&value),
        Err(refusal) => refusal.into_response(),
    }
}

/// 204 on success.
fn no_content(outcome: Outcome<()>) -> Response {
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Outcome<T> {
    serde_json::from_str(body).map_err(|e| Refusal::BadRequest("ArgumentException", e.to_string()))
}

fn queue_base(shared: &Shared) -> String {
    format!("{}/_queue", shared.base_url)
}

async fn runner_groups(State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(q): Params) -> Response {
    respond(admin(&shared, &headers).map(|()| {
        let name = q.get("groupName").cloned().unwrap_or_default();
        ListResponse::from(shared.read(|s| s.groups_named(&name)))
    }))
}

async fn find_scale_sets(State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(q): Params) -> Response {
    respond(admin(&shared, &headers).map(|()| {
        let group = q.get("runnerGroupId").and_then(|g| g.parse().ok()).unwrap_or(1);
        let name = q.get("name").cloned().unwrap_or_default();
        ListResponse::from(shared.read(|s| s.scale_sets_named(group, &name)))
    }))
}

async fn create_scale_set(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    respond(admin(&shared, &headers).and_then(|()| {
        let scale_set: RunnerScaleSet = parse(&body)?;
        if scale_set.name.trim().is_empty() {
            return Err(Refusal::BadRequest("ArgumentException", "name is required".into()));
        }
        shared.mutate(|s| s.create_scale_set(scale_set))
    }))
}

async fn get_scale_set(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    respond(admin(&shared, &headers).and_then(|()| shared.read(|s| s.scale_set(id))))
}

async fn update_scale_set(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: String,
) -> Response {
    respond(admin(&shared, &headers).and_then(|()| {
        let patch: RunnerScaleSetPatch = parse(&body)?;
        shared.mutate(|s| s.update_scale_set(id, patch))
    }))
}

async fn delete_scale_set(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    no_content(admin(&shared, &headers).map(|()| {
        shared.mutate(|s| s.delete_scale_set(id));
    }))
}

async fn create_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: String,
) -> Response {
    respond(admin(&shared, &headers).and_then(|()| {
        let request: serde_json::Value = parse(&body)?;
        // The shape GitHub's own runner client sends: the (nil) session id beside the owner.
        if request.get("sessionId").and_then(|o| o.as_str()).is_none() {
            return Err(Refusal::BadRequest("ArgumentException", "sessionId is required".into()));
        }
        let owner = request.get("ownerName").and_then(|o| o.as_str()).unwrap_or("unknown").to_string();
        let base = queue_base(&shared);
        shared.mutate(|s| s.create_session(id, &owner, &base))
    }))
}

async fn refresh_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((id, session)): Path<(i64, String)>,
) -> Response {
    respond(admin(&shared, &headers).and_then(|()| {
        let base = queue_base(&shared);
        shared.mutate(|s| s.refresh_session(id, &session, &base))
    }))
}

async fn delete_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((id, session)): Path<(i64, String)>,
) -> Response {
    no_content(admin(&shared, &headers).map(|()| {
        shared.mutate(|s| s.delete_session(id, &session));
    }))
}

/// Authenticated with the message-queue token, as on GitHub.
async fn acquire_jobs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: String,
) -> Response {
    let token = bearer_token(authorization(&headers)).unwrap_or_default();
    respond(shared.read(|s| s.check_scale_set_queue_token(id, &token)).and_then(|()| {
        let ids: Vec<i64> = parse(&body)?;
        Ok(ListResponse::from(shared.mutate(|s| s.acquire(id, &ids))))
    }))
}

async fn generate_jit_config(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: String,
) -> Response {
    respond(admin(&shared, &headers).and_then(|()| {
        let request: JitConfigRequest = parse(&body)?;
        let (runner, token) = shared.mutate(|s| s.create_runner(id, &request.name))?;
        let config = json!({"runnerId": runner.id, "token": token, "url": shared.base_url});
        let encoded = base64::engine::general_purpose::STANDARD.encode(config.to_string());
        Ok(JitConfig { runner, encoded_jit_config: encoded })
    }))
}

async fn find_runners(State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(q): Params) -> Response {
    respond(admin(&shared, &headers).map(|()| {
        let name = q.get("agentName").cloned().unwrap_or_default();
        ListResponse::from(shared.read(|s| s.runners_named(&name)))
    }))
}

async fn get_runner(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    respond(admin(&shared, &headers).and_then(|()| {
        shared.read(|s| s.runner(id)).ok_or_else(|| {
            Refusal::NotFound("GitHub.DistributedTask.WebApi.AgentNotFoundException", format!("No runner {id}"))
        })
    }))
}

async fn remove_runner(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    no_content(admin(&shared, &headers).and_then(|()| shared.mutate(|s| s.remove_runner(id))))
}
