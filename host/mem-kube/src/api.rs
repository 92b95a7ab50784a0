//! The HTTP API: discovery, get/list/watch, create, replace, patch, delete — one handler that parses the path
//! the way the API server lays it out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::Server;
use crate::error::ApiError;
use crate::path::{self, ObjectPath, Target};
use crate::requests::{self, RequestKind};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{self, EventType, ListOptions};

const VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// Longest watch the server holds open.
const MAX_WATCH: Duration = Duration::from_secs(1800);

type Params = HashMap<String, String>;

pub(crate) async fn handle(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Response {
    let result = match path::parse(uri.path()) {
        Some(Target::Discovery(segments)) => Ok(discovery(&server, &segments)),
        Some(Target::Resources { group, version }) => resource_list(&server, &group, &version),
        Some(Target::Object(target)) => object(&server, &method, &target, &headers, &params, &body).await,
        // No schemas are published (an empty protobuf document is zero bytes): kubectl then validates nothing
        // client-side and falls back to merge patches.
        None if uri.path() == "/openapi/v2" => {
            Ok(([("content-type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")], Bytes::new())
                .into_response())
        }
        None if uri.path() == "/version" => Ok(axum::Json(json!({
            "major": "1", "minor": "34", "gitVersion": "v1.34.0-mem-kube", "platform": "linux/amd64"
        }))
        .into_response()),
        None => Err(ApiError::NotFound("the server could not find the requested resource".into())),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn discovery(server: &Server, segments: &[String]) -> Response {
    let types = server.store().types().to_vec();
    if segments.len() == 1 && segments[0] == "api" {
        return axum::Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}))
            .into_response();
    }
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => versions.push(t.version.clone()),
            Some(_) => {}
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    let group_json = |(name, versions): &(String, Vec<String>)| {
        let versions: Vec<Value> =
            versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
        json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
    };
    match segments.get(1) {
        Some(group) => match groups.iter().find(|(g, _)| g == group) {
            Some(found) => {
                let mut body = group_json(found);
                body["kind"] = "APIGroup".into();
                body["apiVersion"] = "v1".into();
                axum::Json(body).into_response()
            }
            None => ApiError::NotFound(format!("group {group} not found")).into_response(),
        },
        None => {
            let groups: Vec<Value> = groups.iter().map(group_json).collect();
            axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})).into_response()
        }
    }
}

fn resource_list(server: &Server, group: &str, version: &str) -> Result<Response, ApiError> {
    let types: Vec<ResourceType> =
        server.store().types().iter().filter(|t| t.group == group && t.version == version).cloned().collect();
    if types.is_empty() {
        return Err(ApiError::NotFound(format!("no resources in {group}/{version}")));
    }
    let mut resources = Vec::new();
    for t in &types {
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind, "verbs": VERBS,
            "shortNames": t.short_names,
        }));
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = types[0].api_version();
    Ok(axum::Json(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources,
    }))
    .into_response())
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))
}

fn list_options(params: &Params, namespace: Option<String>) -> Result<ListOptions, ApiError> {
    let text = |key: &str| params.get(key).map(String::as_str).unwrap_or_default();
    Ok(ListOptions {
        namespace,
        labels: LabelSelector::parse(text("labelSelector")).map_err(ApiError::BadRequest)?,
        fields: FieldSelector::parse(text("fieldSelector")).map_err(ApiError::BadRequest)?,
        limit: text("limit").parse().unwrap_or(0),
        continue_token: params.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

async fn object(
    server: &Arc<Server>,
    method: &Method,
    target: &ObjectPath,
    headers: &HeaderMap,
    params: &Params,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let rt = server
        .store()
        .resolve(&target.group, &target.version, &target.plural)
        .ok_or_else(|| ApiError::NotFound("the server could not find the requested resource".into()))?;
    let namespace = if rt.namespaced { target.namespace.clone() } else { None };
    let ns = namespace.clone().unwrap_or_default();
    let watching = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
    server.requests().record(RequestKind {
        agent: requests::agent(headers),
        verb: requests::verb(method, target.name.is_some(), watching),
        resource: match &target.subresource {
            Some(sub) => format!("{}/{sub}", rt.plural),
            None => rt.plural.clone(),
        },
    });
    if let (Some("binding"), Some(name), &Method::POST) =
        (target.subresource.as_deref(), target.name.as_deref(), method)
        && rt.plural == "pods"
    {
        let binding = parse_body(body)?;
        let node = binding["target"]["name"].as_str().unwrap_or_default();
        server.store().bind_pod(&ns, name, node)?;
        return Ok((
            StatusCode::CREATED,
            axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        )
            .into_response());
    }
    let status_only = match target.subresource.as_deref() {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some(other) => return Err(ApiError::NotFound(format!("no subresource {other} on {}", rt.plural))),
    };
    let json_ok = |v: Value| Ok(axum::Json(v).into_response());
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, Some(name)) => json_ok(server.store().get(&rt, &ns, name)?),
        (Method::GET, None) if watching => watch(server.clone(), rt, namespace, params),
        (Method::GET, None) => {
            let options = list_options(params, namespace)?;
            let page = server.store().list(&rt, &options);
            json_ok(json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": page.rv.to_string(), "continue": page.continue_token},
                "items": page.items,
            }))
        }
        (Method::POST, None) => {
            let created = server.store().create(&rt, &ns, parse_body(body)?)?;
            Ok((StatusCode::CREATED, axum::Json(created)).into_response())
        }
        (Method::PUT, Some(name)) => json_ok(server.store().update(&rt, &ns, name, parse_body(body)?, status_only)?),
        (Method::PATCH, Some(name)) => {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let patch = parse_body(body)?;
            let mut store = server.store();
            let existing = match store.get(&rt, &ns, name) {
                Ok(existing) => existing,
                Err(ApiError::NotFound(_)) if content_type.starts_with("application/apply-patch") && !status_only => {
                    let mut fresh = store::empty_object();
                    store::merge(&mut fresh, &patch);
                    fresh["metadata"]["name"] = name.into();
                    let created = store.create(&rt, &ns, fresh)?;
                    return Ok((StatusCode::CREATED, axum::Json(created)).into_response());
                }
                Err(e) => return Err(e),
            };
            let mut patched = existing;
            match content_type.split(';').next().unwrap_or_default().trim() {
                "application/json-patch+json" => store::json_patch(&mut patched, &patch)?,
                "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
                | "application/apply-patch+yaml"
                | "application/apply-patch+json" => store::merge(&mut patched, &patch),
                other => return Err(ApiError::BadRequest(format!("unsupported patch type {other:?}"))),
            }
            json_ok(store.update(&rt, &ns, name, patched, status_only)?)
        }
        (Method::DELETE, Some(name)) => {
            // DeleteOptions come in the body (kube-rs) or as a query parameter (kubectl --grace-period).
            let options: Value = if body.is_empty() { Value::Null } else { parse_body(body)? };
            let grace = options["gracePeriodSeconds"]
                .as_i64()
                .or_else(|| params.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
            json_ok(server.store().delete_requested(&rt, &ns, name, grace)?)
        }
        (Method::DELETE, None) => {
            let options = list_options(params, namespace)?;
            let mut store = server.store();
            let page = store.list(&rt, &options);
            let mut deleted = Vec::new();
            for item in page.items {
                let item_ns = item["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
                let name = item["metadata"]["name"].as_str().unwrap_or_default().to_string();
                deleted.push(store.delete(&rt, &item_ns, &name)?);
            }
            json_ok(
                json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": deleted}),
            )
        }
        _ => Err(ApiError::MethodNotAllowed(format!("{method} is not allowed here"))),
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn watch(
    server: Arc<Server>,
    rt: ResourceType,
    namespace: Option<String>,
    params: &Params,
) -> Result<Response, ApiError> {
    let options = list_options(params, namespace.clone())?;
    let since: u64 = params.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let bookmarks = params.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout =
        params.get("timeoutSeconds").and_then(|v| v.parse().ok()).map_or(MAX_WATCH, Duration::from_secs).min(MAX_WATCH);
    let matches = {
        let (key, options) = (rt.key(), options.clone());
        move |event: &crate::store::Event| {
            event.key == key
                && options.namespace.as_ref().is_none_or(|ns| &event.namespace == ns)
                && options.labels.matches(&event.object)
                && options.fields.matches(&event.object)
        }
    };
    let (mut events, initial, mut last, mut cut) = {
        let store = server.store();
        let events = store.subscribe();
        let current = store.resource_version();
        let initial: Vec<Bytes> = if since == 0 {
            let all = ListOptions { limit: 0, continue_token: None, ..options.clone() };
            store.list(&rt, &all).items.iter().map(|o| line(EventType::Added.as_str(), o)).collect()
        } else {
            match store.events_since(since) {
                Ok(backlog) => {
                    backlog.iter().filter(|e| matches(e)).map(|e| line(e.kind.as_str(), &e.object)).collect()
                }
                Err(gone) => vec![line("ERROR", &gone.status())],
            }
        };
        (events, initial, current, server.cut.subscribe())
    };
    let interval = server.bookmark_interval;
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::convert::Infallible>>();
    tokio::spawn(async move {
        for item in initial {
            if tx.unbounded_send(Ok(item)).is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) if event.rv > last && matches(&event) => {
                        last = event.rv;
                        if tx.unbounded_send(Ok(line(event.kind.as_str(), &event.object))).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let object = json!({"kind": rt.kind, "apiVersion": rt.api_version(),
                                        "metadata": {"resourceVersion": last.to_string()}});
                    if tx.unbounded_send(Ok(line("BOOKMARK", &object))).is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = cut.changed() => return,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(rx));
    response.headers_mut().insert("content-type", "application/json".parse().expect("static header"));
    Ok(response)
}
