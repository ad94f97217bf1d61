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

/// A route's path parameters, like axum's [`Path`](axum::extract::Path), but a path that
/// cannot be decoded (`/v1/jobs/%aa` is not UTF-8) gets the API's JSON error, 400
/// `request.path`, instead of axum's plain text.
pub(crate) struct PathParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for PathParams<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<PathParams<T>, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(params)) => Ok(PathParams(params)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.path",
                rejection.body_text(),
            )),
        }
    }
}

/// A request's body, like [`Bytes`](bytes::Bytes), but a body over `serve.body_limit` gets the
/// API's JSON error, 413 `body.too_large`, and one that cannot be read 400 `body.unreadable`,
/// instead of axum's plain text.
pub(crate) struct Body(pub bytes::Bytes);

impl<S> axum::extract::FromRequest<S> for Body
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body, ApiError> {
        match bytes::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) => {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "body.too_large"
                } else {
                    "body.unreadable"
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}
