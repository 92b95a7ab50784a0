//! API errors as Kubernetes `Status` bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error with its HTTP code and `Status.reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 404 NotFound.
    NotFound(String),
    /// 409 AlreadyExists.
    AlreadyExists(String),
    /// 409 Conflict (stale resourceVersion, injected fault).
    Conflict(String),
    /// 410 Gone / Expired (resourceVersion too old).
    Gone(String),
    /// 422 Invalid.
    Invalid(String),
    /// 400 BadRequest.
    BadRequest(String),
    /// 405 MethodNotAllowed.
    MethodNotAllowed(String),
    /// 403 Forbidden (injected fault, e.g. an exceeded quota).
    Forbidden(String),
    /// 500 InternalError (injected fault).
    Internal(String),
}

impl ApiError {
    /// HTTP code and reason.
    pub fn code_and_reason(&self) -> (u16, &'static str) {
        match self {
            ApiError::NotFound(_) => (404, "NotFound"),
            ApiError::AlreadyExists(_) => (409, "AlreadyExists"),
            ApiError::Conflict(_) => (409, "Conflict"),
            ApiError::Gone(_) => (410, "Expired"),
            ApiError::Invalid(_) => (422, "Invalid"),
            ApiError::BadRequest(_) => (400, "BadRequest"),
            ApiError::MethodNotAllowed(_) => (405, "MethodNotAllowed"),
            ApiError::Forbidden(_) => (403, "Forbidden"),
            ApiError::Internal(_) => (500, "InternalError"),
        }
    }

    fn message(&self) -> &str {
        match self {
            ApiError::NotFound(m)
            | ApiError::AlreadyExists(m)
            | ApiError::Conflict(m)
            | ApiError::Gone(m)
            | ApiError::Invalid(m)
            | ApiError::BadRequest(m)
            | ApiError::MethodNotAllowed(m)
            | ApiError::Forbidden(m)
            | ApiError::Internal(m) => m,
        }
    }

    /// The `Status` object.
    pub fn status(&self) -> serde_json::Value {
        let (code, reason) = self.code_and_reason();
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message(), "reason": reason, "code": code,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, _) = self.code_and_reason();
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.status())).into_response()
    }
}
