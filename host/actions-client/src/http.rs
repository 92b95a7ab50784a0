//! HTTP with retries: connection errors, 5xx (not 501) and 429 are retried with exponential backoff and jitter,
//! honouring `Retry-After`; response bodies are read whole and a UTF-8 BOM is stripped.

use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};

use crate::error::{Error, Result};
use crate::message::strip_bom;
use crate::model::ErrorBody;

/// Largest response body read; anything longer is refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Retry settings (ARC: 4 retries, waits capped at 30 s).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First wait.
    pub min_wait: Duration,
    /// Longest wait (also caps `Retry-After`).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 4, min_wait: Duration::from_secs(1), max_wait: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): exponential with jitter in [½, 1], or `Retry-After`.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_wait);
        }
        let exponential = self.min_wait.saturating_mul(1 << attempt.min(16)).min(self.max_wait);
        exponential.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// One request.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: String,
    /// The `Authorization` header value. Never logged.
    pub(crate) authorization: Option<String>,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) json: Option<serde_json::Value>,
    /// Which failures are retried.
    pub(crate) retry: RetryOn,
}

/// Which failures of a request are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryOn {
    /// Connection errors, timeouts, 5xx (not 501) and 429.
    Transient,
    /// Those and 401/403 (the runner-registration call, as ARC).
    TransientAndAuth,
    /// Only failures before the request reached the service (a connection that could not be made): for requests
    /// that must not be repeated once the service may have acted on them (session create).
    Unsent,
}

impl Request {
    pub(crate) fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            authorization: None,
            headers: Vec::new(),
            json: None,
            retry: RetryOn::Transient,
        }
    }

    pub(crate) fn auth(mut self, value: String) -> Self {
        self.authorization = Some(value);
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn json(mut self, body: serde_json::Value) -> Self {
        self.json = Some(body);
        self
    }

    pub(crate) fn retry(mut self, retry: RetryOn) -> Self {
        self.retry = retry;
        self
    }
}

/// A response, read whole.
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) text: String,
    activity_id: Option<String>,
    github_request_id: Option<String>,
}

/// The URL without its query (queue URLs may carry tokens).
pub(crate) fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

impl Response {
    /// Decodes a JSON body.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T> {
        serde_json::from_str(&self.text)
            .map_err(|e| Error::InvalidResponse { url: redact(url).to_string(), message: e.to_string() })
    }

    /// The typed error for a failed response: exception names map to their variants, the rest is generic.
    pub(crate) fn error(&self, method: &Method, url: &str) -> Error {
        let body: Option<ErrorBody> = serde_json::from_str(&self.text).ok();
        let (type_name, message) = match &body {
            Some(b) if !b.type_name.is_empty() || !b.message.is_empty() => (b.type_name.as_str(), b.message.clone()),
            _ => ("", self.text.chars().take(512).collect()),
        };
        let detail = if type_name.is_empty() { message.clone() } else { format!("{type_name}: {message}") };
        if type_name.contains("AgentExistsException") {
            return Error::RunnerExists(message);
        }
        if type_name.contains("AgentNotFoundException") {
            return Error::RunnerNotFound(message);
        }
        if type_name.contains("JobStillRunningException") {
            return Error::JobStillRunning(message);
        }
        if type_name.contains("RunnerScaleSetNotFoundException") {
            return Error::ScaleSetNotFound(message);
        }
        Error::Http {
            method: method.to_string(),
            url: redact(url).to_string(),
            status: self.status.as_u16(),
            message: detail,
            activity_id: self.activity_id.clone(),
            github_request_id: self.github_request_id.clone(),
        }
    }
}

fn retryable(status: StatusCode, retry: RetryOn) -> bool {
    match retry {
        RetryOn::Unsent => false,
        RetryOn::Transient | RetryOn::TransientAndAuth => {
            status == StatusCode::TOO_MANY_REQUESTS
                || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
                || (retry == RetryOn::TransientAndAuth
                    && (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN))
        }
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Sends `request`, retrying as the policy says. Non-retryable statuses are returned, not turned into errors.
pub(crate) async fn send(client: &reqwest::Client, retry: &RetryPolicy, request: &Request) -> Result<Response> {
    let mut attempt = 0;
    loop {
        let mut builder = client.request(request.method.clone(), &request.url);
        if let Some(auth) = &request.authorization {
            builder = builder.header(reqwest::header::AUTHORIZATION, auth);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        // Every request says JSON, as GitHub's own runner client does (bodies are JSON or empty).
        builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(body) = &request.json {
            builder = builder.body(body.to_string());
        }
        let result = builder.send().await;
        let retry_with: Option<Option<Duration>> = match &result {
            Ok(response) if retryable(response.status(), request.retry) => Some(retry_after(response)),
            Err(e) if e.is_connect() => Some(None),
            Err(e) if request.retry != RetryOn::Unsent && (e.is_timeout() || e.is_request()) => Some(None),
            _ => None,
        };
        if let Some(after) = retry_with
            && attempt < retry.max_retries
        {
            let wait = retry.wait(attempt, after);
            tracing::debug!(url = redact(&request.url), ?wait, attempt, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
            continue;
        }
        let transport = |source| Error::Transport {
            method: request.method.to_string(),
            url: redact(&request.url).to_string(),
            source,
        };
        let mut response = result.map_err(transport)?;
        let status = response.status();
        let activity_id = header(&response, "ActivityId");
        let github_request_id = header(&response, "X-GitHub-Request-Id");
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::InvalidResponse {
                    url: redact(&request.url).to_string(),
                    message: format!("response body over {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = strip_bom(&String::from_utf8_lossy(&bytes)).to_string();
        return Ok(Response { status, text, activity_id, github_request_id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_exponentially_with_jitter_and_respect_the_cap() {
        let policy =
            RetryPolicy { max_retries: 4, min_wait: Duration::from_secs(1), max_wait: Duration::from_secs(30) };
        for attempt in 0..8 {
            let wait = policy.wait(attempt, None);
            let full = Duration::from_secs(1 << attempt).min(Duration::from_secs(30));
            assert!(wait >= full / 2 && wait <= full, "attempt {attempt}: {wait:?}");
        }
        assert_eq!(policy.wait(0, Some(Duration::from_secs(90))), Duration::from_secs(30));
        assert_eq!(policy.wait(3, Some(Duration::from_secs(2))), Duration::from_secs(2));
    }

    #[test]
    fn retryable_statuses_follow_arc() {
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS, RetryOn::Transient));
        assert!(retryable(StatusCode::BAD_GATEWAY, RetryOn::Transient));
        assert!(!retryable(StatusCode::NOT_IMPLEMENTED, RetryOn::Transient));
        assert!(!retryable(StatusCode::UNAUTHORIZED, RetryOn::Transient));
        assert!(retryable(StatusCode::FORBIDDEN, RetryOn::TransientAndAuth));
        assert!(!retryable(StatusCode::CONFLICT, RetryOn::TransientAndAuth));
    }

    #[test]
    fn requests_the_service_may_have_acted_on_are_never_retried_on_an_answer() {
        for status in [StatusCode::TOO_MANY_REQUESTS, StatusCode::BAD_GATEWAY, StatusCode::SERVICE_UNAVAILABLE] {
            assert!(!retryable(status, RetryOn::Unsent), "{status}");
        }
    }
}
