//! The JSON error body of the REST API: exactly `{"status": N, "message": "..."}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub status: u16,
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: Some(message.into()),
        }
    }

    pub fn bare(status: u16) -> ApiError {
        ApiError {
            status,
            message: None,
        }
    }
}
