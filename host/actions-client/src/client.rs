//! The Actions-service client: credentials → registration token → admin connection, then every endpoint.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::auth::{Credentials, jwt_expiry};
use crate::config::GitHubConfig;
use crate::error::{Error, Result};
use crate::http::{self, Request, Response, RetryOn, RetryPolicy, redact};
use crate::message::{self, Message};
use crate::model::*;

/// The commit this build comes from (or "unknown"), sent in the User-Agent.
pub const BUILD_COMMIT: &str = env!("GHA_AUTOSCALER_COMMIT");

/// The Actions service API version every request carries.
pub const API_VERSION: &str = "6.0-preview";
/// Refresh the admin token when it expires within this.
const ADMIN_TOKEN_MARGIN: TimeDelta = TimeDelta::seconds(60);
/// Long polls are held up to ~50 s by the service; this bounds a whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The JSON `User-Agent` ARC sends.
#[derive(Debug, Clone, Serialize)]
pub struct UserAgent {
    /// `gha-autoscaler`.
    pub system: String,
    /// Our version.
    pub version: String,
    /// Build commit.
    pub commit_sha: String,
    /// `controller` or `listener`.
    pub subsystem: String,
}

impl Default for UserAgent {
    fn default() -> Self {
        UserAgent {
            system: "gha-autoscaler".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            commit_sha: BUILD_COMMIT.into(),
            subsystem: "client".into(),
        }
    }
}

/// How to build a client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `githubConfigUrl`.
    pub config_url: String,
    /// PAT or GitHub App.
    pub credentials: Credentials,
    /// Treat the host as GHES whatever it is (`GITHUB_ACTIONS_FORCE_GHES`).
    pub force_ghes: bool,
    /// Extra root CAs (PEM bundle) for GHES with a private CA.
    pub root_ca_pem: Option<String>,
    /// Proxy for http and https (`http://user:pass@proxy:3128`); None = the `*_proxy` environment variables.
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy (`no_proxy` syntax).
    pub no_proxy: Option<String>,
    /// Retry settings.
    pub retry: RetryPolicy,
    /// User-Agent fields.
    pub user_agent: UserAgent,
}

impl ClientOptions {
    /// Options with defaults for everything but the URL and credentials.
    pub fn new(config_url: impl Into<String>, credentials: Credentials) -> Self {
        ClientOptions {
            config_url: config_url.into(),
            credentials,
            force_ghes: false,
            root_ca_pem: None,
            proxy: None,
            no_proxy: None,
            retry: RetryPolicy::default(),
            user_agent: UserAgent::default(),
        }
    }
}

#[derive(Clone)]
struct AdminToken {
    service_url: String,
    token: String,
    expires_at: DateTime<Utc>,
}

/// A client for one GitHub config URL.
pub struct ActionsClient {
    config: GitHubConfig,
    credentials: Credentials,
    http: reqwest::Client,
    retry: RetryPolicy,
    user_agent: UserAgent,
    scale_set_id: AtomicI64,
    admin: Mutex<Option<AdminToken>>,
}

impl std::fmt::Debug for ActionsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionsClient").field("config", &self.config).field("credentials", &self.credentials).finish()
    }
}

impl ActionsClient {
    /// Builds a client. No request is made.
    ///
    /// # Errors
    /// Invalid URL, credentials, CA bundle or proxy.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let config = GitHubConfig::parse(&options.config_url, options.force_ghes)?;
        options.credentials.validate()?;
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).connect_timeout(Duration::from_secs(30));
        if let Some(pem) = &options.root_ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| Error::InvalidOption(format!("root CA bundle: {e}")))?;
            if certificates.is_empty() {
                return Err(Error::InvalidOption("root CA bundle holds no certificate".into()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(proxy) = &options.proxy {
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|e| Error::InvalidOption(format!("proxy: {e}")))?
                .no_proxy(options.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string));
            builder = builder.proxy(proxy);
        }
        let http = builder.build().map_err(|e| Error::InvalidOption(format!("HTTP client: {e}")))?;
        Ok(ActionsClient {
            config,
            credentials: options.credentials,
            http,
            retry: options.retry,
            user_agent: options.user_agent,
            scale_set_id: AtomicI64::new(0),
            admin: Mutex::new(None),
        })
    }

    /// The parsed config URL.
    pub fn config(&self) -> &GitHubConfig {
        &self.config
    }

    /// Records the scale set id for the User-Agent once known.
    pub fn set_scale_set_id(&self, id: i64) {
        self.scale_set_id.store(id, Ordering::Relaxed);
    }

    fn user_agent(&self) -> String {
        let mut ua = serde_json::to_value(&self.user_agent).unwrap_or_default();
        ua["scale_set_id"] = self.scale_set_id.load(Ordering::Relaxed).into();
        ua["kind"] = "scaleset".into();
        ua.to_string()
    }

    async fn send(&self, request: Request) -> Result<Response> {
        let request = request.header("User-Agent", self.user_agent());
        http::send(&self.http, &self.retry, &request).await
    }

    /// A token for the GitHub API: the PAT, or a fresh installation token.
    async fn github_token(&self) -> Result<String> {
        match &self.credentials {
            Credentials::Token(token) => Ok(token.clone()),
            Credentials::App { installation_id, .. } => {
                let jwt = self.credentials.app_jwt(Utc::now())?;
                let url = format!("{}/app/installations/{installation_id}/access_tokens", self.config.api_base);
                let request = Request::new(Method::POST, &url)
                    .auth(format!("Bearer {jwt}"))
                    .header("Accept", "application/vnd.github+json".into());
                let response = self.send(request).await?;
                if response.status != StatusCode::CREATED {
                    return Err(response.error(&Method::POST, &url));
                }
                Ok(response.json::<TokenResponse>(&url)?.token)
            }
        }
    }

    /// Registration token → admin connection.
    async fn connect(&self) -> Result<AdminToken> {
        let github_token = self.github_token().await?;
        let url = format!("{}{}", self.config.api_base, self.config.registration_token_path());
        let request = Request::new(Method::POST, &url)
            .auth(format!("Bearer {github_token}"))
            .header("Accept", "application/vnd.github+json".into());
        let response = self.send(request).await?;
        if response.status != StatusCode::CREATED {
            return Err(response.error(&Method::POST, &url));
        }
        let registration: TokenResponse = response.json(&url)?;

        let url = format!("{}/actions/runner-registration", self.config.api_base);
        let request = Request::new(Method::POST, &url)
            .auth(format!("RemoteAuth {}", registration.token))
            .json(json!({"url": self.config.url, "runner_event": "register"}))
            .retry(RetryOn::TransientAndAuth);
        let response = self.send(request).await?;
        if !response.status.is_success() {
            return Err(response.error(&Method::POST, &url));
        }
        let connection: AdminConnection = response.json(&url)?;
        let invalid = |message: &str| Error::InvalidResponse { url: url.clone(), message: message.into() };
        let service_url = connection.url.filter(|u| !u.is_empty()).ok_or_else(|| invalid("no Actions service url"))?;
        let token = connection.token.filter(|t| !t.is_empty()).ok_or_else(|| invalid("no admin token"))?;
        let expires_at = jwt_expiry(&token).ok_or_else(|| invalid("the admin token is not a JWT with an exp claim"))?;
        tracing::debug!(service = redact(&service_url), %expires_at, "connected to the Actions service");
        Ok(AdminToken { service_url, token, expires_at })
    }

    /// The admin connection, refreshed when it expires within 60 s. No request while it is fresh.
    async fn admin(&self) -> Result<AdminToken> {
        let mut admin = self.admin.lock().await;
        if let Some(current) = admin.as_ref()
            && current.expires_at - Utc::now() > ADMIN_TOKEN_MARGIN
        {
            return Ok(current.clone());
        }
        let fresh = self.connect().await?;
        *admin = Some(fresh.clone());
        Ok(fresh)
    }

    /// `<service>/<path>?<query>&api-version=…`, every query value encoded (names may hold `#`, `&`, `+`).
    fn service_url(admin: &AdminToken, path: &str, query: &[(&str, &str)]) -> Result<String> {
        let base = format!("{}/{}", admin.service_url.trim_end_matches('/'), path.trim_start_matches('/'));
        let mut url = url::Url::parse(&base).map_err(|e| Error::InvalidResponse {
            url: redact(&base).to_string(),
            message: format!("service URL: {e}"),
        })?;
        url.query_pairs_mut().extend_pairs(query).append_pair("api-version", API_VERSION);
        Ok(url.into())
    }

    /// An admin-authenticated Actions-service request; returns the response and the URL for errors. A 401 means
    /// the service no longer accepts our admin token (revoked before its expiry): it is dropped, a new one is
    /// fetched and the request is sent once more.
    async fn service(&self, call: ServiceCall<'_>) -> Result<(Response, String)> {
        let mut admin = self.admin().await?;
        let url = Self::service_url(&admin, call.path, call.query)?;
        for attempt in 0..2 {
            let mut request =
                Request::new(call.method.clone(), &url).auth(format!("Bearer {}", admin.token)).retry(call.retry);
            request.json = call.body.clone();
            let response = self.send(request).await?;
            if response.status != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok((response, url));
            }
            tracing::info!(url = redact(&url), "the Actions service refused our admin token; fetching a new one");
            admin = self.replace_admin(&admin).await?;
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Drops `rejected` (unless another caller already replaced it) and connects again.
    async fn replace_admin(&self, rejected: &AdminToken) -> Result<AdminToken> {
        let mut admin = self.admin.lock().await;
        if let Some(current) = admin.as_ref()
            && current.token != rejected.token
        {
            return Ok(current.clone());
        }
        *admin = None;
        let fresh = self.connect().await?;
        *admin = Some(fresh.clone());
        Ok(fresh)
    }

    async fn expect_json<T: serde::de::DeserializeOwned>(&self, call: ServiceCall<'_>) -> Result<T> {
        let method = call.method.clone();
        let (response, url) = self.service(call).await?;
        if !response.status.is_success() {
            return Err(response.error(&method, &url));
        }
        response.json(&url)
    }

    /// The id of a runner group by name (`Default` for the default group).
    ///
    /// # Errors
    /// [`Error::RunnerGroup`] when none or several match.
    pub async fn get_runner_group_by_name(&self, name: &str) -> Result<RunnerGroup> {
        let query = [("groupName", name)];
        let list: ListResponse<RunnerGroup> =
            self.expect_json(ServiceCall::get("_apis/runtime/runnergroups/").query(&query)).await?;
        let mut groups = list.value;
        match groups.len() {
            1 => Ok(groups.remove(0)),
            0 => Err(Error::RunnerGroup(format!("no runner group named {name:?}"))),
            n => Err(Error::RunnerGroup(format!("{n} runner groups named {name:?}"))),
        }
    }

    /// A scale set by group and name; None when there is none.
    ///
    /// # Errors
    /// HTTP errors; more than one match.
    pub async fn get_scale_set(&self, runner_group_id: i64, name: &str) -> Result<Option<RunnerScaleSet>> {
        let group = runner_group_id.to_string();
        let path = "_apis/runtime/runnerscalesets";
        let query = [("runnerGroupId", group.as_str()), ("name", name)];
        let list: ListResponse<RunnerScaleSet> = self.expect_json(ServiceCall::get(path).query(&query)).await?;
        let mut sets = list.value;
        match sets.len() {
            0 => Ok(None),
            1 => Ok(Some(sets.remove(0))),
            n => Err(Error::InvalidResponse { url: path.into(), message: format!("{n} scale sets named {name:?}") }),
        }
    }

    /// A scale set by id.
    ///
    /// # Errors
    /// [`Error::ScaleSetNotFound`] when GitHub no longer has it.
    pub async fn get_scale_set_by_id(&self, id: i64) -> Result<RunnerScaleSet> {
        let path = format!("_apis/runtime/runnerscalesets/{id}");
        let (response, url) = self.service(ServiceCall::get(&path)).await?;
        match response.status {
            StatusCode::OK => response.json(&url),
            StatusCode::NOT_FOUND => Err(Error::ScaleSetNotFound(format!("scale set {id}"))),
            _ => Err(response.error(&Method::GET, &url)),
        }
    }

    /// Creates a scale set. Labels default to the scale set's name as a `System` label.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn create_scale_set(&self, scale_set: &RunnerScaleSet) -> Result<RunnerScaleSet> {
        let mut scale_set = scale_set.clone();
        if scale_set.labels.is_empty() {
            scale_set.labels = vec![Label::system(&scale_set.name)];
        }
        let body = serde_json::to_value(&scale_set).unwrap_or_default();
        self.expect_json(ServiceCall::new(Method::POST, "_apis/runtime/runnerscalesets").body(body)).await
    }

    /// Renames, moves or relabels a scale set.
    ///
    /// # Errors
    /// [`Error::ScaleSetNotFound`], HTTP errors.
    pub async fn update_scale_set(&self, id: i64, patch: &RunnerScaleSetPatch) -> Result<RunnerScaleSet> {
        let body = serde_json::to_value(patch).unwrap_or_default();
        let path = format!("_apis/runtime/runnerscalesets/{id}");
        self.expect_json(ServiceCall::new(Method::PATCH, &path).body(body)).await
    }

    /// Deletes a scale set; an absent one is fine.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn delete_scale_set(&self, id: i64) -> Result<()> {
        let path = format!("_apis/runtime/runnerscalesets/{id}");
        let (response, url) = self.service(ServiceCall::new(Method::DELETE, &path)).await?;
        match response.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(response.error(&Method::DELETE, &url)),
        }
    }

    /// Opens a message session. Sent once: a create the service may have acted on (an answered 5xx/429, a
    /// timeout) is not repeated here, since a repeat would conflict with the session it created and we hold no
    /// token for; the caller decides (see the listener's standby).
    ///
    /// # Errors
    /// [`Error::SessionConflict`] (409) when another listener holds it; [`Error::ScaleSetNotFound`] (404).
    pub async fn create_session(&self, scale_set_id: i64, owner: &str) -> Result<Session> {
        let path = format!("_apis/runtime/runnerscalesets/{scale_set_id}/sessions");
        // The nil session id beside the owner, as GitHub's own runner client sends it.
        let body = json!({"sessionId": uuid::Uuid::nil(), "ownerName": owner});
        let call = ServiceCall::new(Method::POST, &path).body(body).retry(RetryOn::Unsent);
        let (response, url) = self.service(call).await?;
        Self::session_response(response, &Method::POST, &url, scale_set_id)
    }

    /// A 404 on creating a session means the scale set is gone; on refreshing one it means the session is (the
    /// service expired it), unless the service names the scale set as what is missing.
    fn session_response(response: Response, method: &Method, url: &str, scale_set_id: i64) -> Result<Session> {
        match response.status {
            StatusCode::OK | StatusCode::CREATED => response.json(url),
            StatusCode::CONFLICT => Err(Error::SessionConflict(response.error(method, url).to_string())),
            StatusCode::NOT_FOUND if *method == Method::POST => {
                Err(Error::ScaleSetNotFound(format!("scale set {scale_set_id}")))
            }
            StatusCode::NOT_FOUND => match response.error(method, url) {
                gone @ Error::ScaleSetNotFound(_) => Err(gone),
                other => Err(Error::SessionNotFound(other.to_string())),
            },
            _ => Err(response.error(method, url)),
        }
    }

    /// Refreshes a session (a new queue token).
    ///
    /// # Errors
    /// HTTP errors; [`Error::ScaleSetNotFound`].
    pub async fn refresh_session(&self, scale_set_id: i64, session_id: &str) -> Result<Session> {
        let path = format!("_apis/runtime/runnerscalesets/{scale_set_id}/sessions/{session_id}");
        let (response, url) = self.service(ServiceCall::new(Method::PATCH, &path)).await?;
        Self::session_response(response, &Method::PATCH, &url, scale_set_id)
    }

    /// Deletes a session; an absent one is fine.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn delete_session(&self, scale_set_id: i64, session_id: &str) -> Result<()> {
        let path = format!("_apis/runtime/runnerscalesets/{scale_set_id}/sessions/{session_id}");
        let (response, url) = self.service(ServiceCall::new(Method::DELETE, &path)).await?;
        match response.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(response.error(&Method::DELETE, &url)),
        }
    }

    /// Long-polls for a message. None on 202 (nothing within the hold time).
    ///
    /// # Errors
    /// [`Error::MessageQueueTokenExpired`] on 401; decoding errors for garbage.
    pub async fn get_message(
        &self,
        session: &Session,
        last_message_id: i64,
        max_capacity: u32,
    ) -> Result<Option<Message>> {
        let mut url = queue_url(session)?;
        if last_message_id > 0 {
            url.query_pairs_mut().append_pair("lastMessageId", &last_message_id.to_string());
        }
        let url = String::from(url);
        let request = Request::new(Method::GET, &url)
            .auth(format!("Bearer {}", session.message_queue_access_token))
            .header("Accept", format!("application/json; api-version={API_VERSION}"))
            .header("X-ScaleSetMaxCapacity", max_capacity.to_string());
        let response = self.send(request).await?;
        match response.status {
            StatusCode::OK => message::decode(redact(&url), &response.text).map(Some),
            StatusCode::ACCEPTED => Ok(None),
            StatusCode::UNAUTHORIZED => Err(Error::MessageQueueTokenExpired),
            StatusCode::NOT_FOUND => Err(Error::SessionNotFound(response.error(&Method::GET, &url).to_string())),
            _ => Err(response.error(&Method::GET, &url)),
        }
    }

    /// Acknowledges (deletes) a message. A 404 means it is already gone (acknowledged before, or its session
    /// expired): nothing is left to do, and the next poll tells whether the session lives.
    ///
    /// # Errors
    /// [`Error::MessageQueueTokenExpired`] on 401.
    pub async fn delete_message(&self, session: &Session, message_id: i64) -> Result<()> {
        let mut url = queue_url(session)?;
        let not_a_base = Error::InvalidResponse { url: redact(url.as_str()).into(), message: "not a base URL".into() };
        url.path_segments_mut().map_err(|()| not_a_base)?.pop_if_empty().push(&message_id.to_string());
        let url = String::from(url);
        let request = Request::new(Method::DELETE, &url).auth(format!("Bearer {}", session.message_queue_access_token));
        let response = self.send(request).await?;
        match response.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            StatusCode::UNAUTHORIZED => Err(Error::MessageQueueTokenExpired),
            _ => Err(response.error(&Method::DELETE, &url)),
        }
    }

    /// Acquires `JobAvailable` jobs; returns the ids acquired.
    ///
    /// # Errors
    /// [`Error::MessageQueueTokenExpired`] on 401.
    pub async fn acquire_jobs(&self, scale_set_id: i64, queue_token: &str, request_ids: &[i64]) -> Result<Vec<i64>> {
        let admin = self.admin().await?;
        let url = Self::service_url(&admin, &format!("_apis/runtime/runnerscalesets/{scale_set_id}/acquirejobs"), &[])?;
        let request = Request::new(Method::POST, &url).auth(format!("Bearer {queue_token}")).json(json!(request_ids));
        let response = self.send(request).await?;
        match response.status {
            StatusCode::OK => Ok(response.json::<ListResponse<i64>>(&url)?.value),
            StatusCode::UNAUTHORIZED => Err(Error::MessageQueueTokenExpired),
            _ => Err(response.error(&Method::POST, &url)),
        }
    }

    /// A just-in-time runner config.
    ///
    /// # Errors
    /// [`Error::RunnerExists`] when the name is taken.
    pub async fn generate_jit_config(&self, scale_set_id: i64, name: &str) -> Result<JitConfig> {
        let path = format!("_apis/runtime/runnerscalesets/{scale_set_id}/generatejitconfig");
        let body = json!({"name": name, "workFolder": "_work"});
        self.expect_json(ServiceCall::new(Method::POST, &path).body(body)).await
    }

    /// A runner by id; None when absent.
    ///
    /// # Errors
    /// HTTP errors.
    pub async fn get_runner(&self, runner_id: i64) -> Result<Option<RunnerReference>> {
        let path = format!("_apis/distributedtask/pools/0/agents/{runner_id}");
        let (response, url) = self.service(ServiceCall::get(&path)).await?;
        match response.status {
            StatusCode::OK => response.json(&url).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => match response.error(&Method::GET, &url) {
                Error::RunnerNotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// A runner by name; None when absent.
    ///
    /// # Errors
    /// HTTP errors; more than one match.
    pub async fn get_runner_by_name(&self, name: &str) -> Result<Option<RunnerReference>> {
        let path = "_apis/distributedtask/pools/0/agents";
        let list: ListResponse<RunnerReference> =
            self.expect_json(ServiceCall::get(path).query(&[("agentName", name)])).await?;
        let mut runners = list.value;
        match runners.len() {
            0 => Ok(None),
            1 => Ok(Some(runners.remove(0))),
            n => Err(Error::InvalidResponse { url: path.into(), message: format!("{n} runners named {name:?}") }),
        }
    }

    /// Removes a runner; an absent one is fine.
    ///
    /// # Errors
    /// [`Error::JobStillRunning`] when the runner has a job.
    pub async fn remove_runner(&self, runner_id: i64) -> Result<()> {
        let path = format!("_apis/distributedtask/pools/0/agents/{runner_id}");
        let (response, url) = self.service(ServiceCall::new(Method::DELETE, &path)).await?;
        match response.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => match response.error(&Method::DELETE, &url) {
                Error::RunnerNotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// One admin-authenticated Actions-service request.
struct ServiceCall<'a> {
    method: Method,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    body: Option<serde_json::Value>,
    retry: RetryOn,
}

impl<'a> ServiceCall<'a> {
    fn new(method: Method, path: &'a str) -> Self {
        ServiceCall { method, path, query: &[], body: None, retry: RetryOn::Transient }
    }

    fn get(path: &'a str) -> Self {
        Self::new(Method::GET, path)
    }

    fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    fn body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    fn retry(mut self, retry: RetryOn) -> Self {
        self.retry = retry;
        self
    }
}

/// The session's message queue URL (as the service gave it, query included).
fn queue_url(session: &Session) -> Result<url::Url> {
    url::Url::parse(&session.message_queue_url).map_err(|e| Error::InvalidResponse {
        url: redact(&session.message_queue_url).to_string(),
        message: format!("message queue URL: {e}"),
    })
}
