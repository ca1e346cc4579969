//! The node's HTTP errors and the one place where they become responses: JSON
//! `{"status", "message"}` on the API, an HTML page elsewhere.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use galilean_actors::OpError;
use galilean_proto::ApiError;
use galilean_storage::StoreError;

/// An API error.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: Option<String>,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: Some(message.into()),
        }
    }

    pub fn bare(status: StatusCode) -> HttpError {
        HttpError {
            status,
            message: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<OpError> for HttpError {
    fn from(e: OpError) -> HttpError {
        let status = match &e {
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Exists(_) => StatusCode::CONFLICT,
            OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OpError::Forbidden(_) => StatusCode::FORBIDDEN,
            OpError::Store(StoreError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            OpError::Store(StoreError::Unavailable(_))
            | OpError::Unavailable(_)
            | OpError::Moved(_) => StatusCode::SERVICE_UNAVAILABLE,
            // still conflicting, or too old, after every retry: the store is overloaded
            OpError::Store(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            OpError::Store(_) | OpError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        HttpError::new(status, e.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = ApiError {
            status: self.status.as_u16(),
            message: self.message,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, HttpError>;
