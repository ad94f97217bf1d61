//! Error answers: JSON with a stable, machine-readable code and an HTTP status.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::doc::{ErrorBody, ErrorBodyInner};

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An answer with `status`, a stable `code` and a `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The stable code, e.g. `hook.malformed`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 404 `job.not_found`.
    pub fn job_not_found(id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "job.not_found",
            format!("no job {id}"),
        )
    }

    /// 503 `store.unavailable`, or another store error as what it is.
    pub fn store(error: &encore_store::Error) -> ApiError {
        use encore_store::ErrorKind;
        let (status, code) = match error.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "job.not_found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "job.conflict"),
            ErrorKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "request.invalid"),
            ErrorKind::Unavailable | ErrorKind::Busy => {
                (StatusCode::SERVICE_UNAVAILABLE, "store.unavailable")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "store.error"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorBodyInner {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
