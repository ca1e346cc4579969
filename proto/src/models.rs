//! JupyterHub's REST API models, with every key JupyterHub emits. Which keys a requester
//! sees depends on its scopes; the node removes the keys it may not see.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /hub/api/` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootModel {
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerModel {
    pub name: String,
    pub display_name: String,
    pub full_name: String,
    pub last_activity: Option<String>,
    pub started: Option<String>,
    pub pending: Option<String>,
    pub ready: bool,
    pub stopped: bool,
    pub url: String,
    pub user_options: Value,
    pub progress_url: String,
    pub full_url: Option<String>,
    pub full_progress_url: Option<String>,
    /// Present only with `admin:server_state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserModel {
    pub kind: String,
    pub name: String,
    pub admin: bool,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub server: Option<String>,
    pub pending: Option<String>,
    pub created: String,
    pub last_activity: Option<String>,
    pub servers: serde_json::Map<String, Value>,
    pub auth_state: Option<Value>,
    pub user_info: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenModel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub id: String,
    pub kind: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub created: String,
    pub last_activity: Option<String>,
    pub expires_at: Option<String>,
    pub note: String,
    pub session_id: Option<String>,
    pub oauth_client: String,
    /// The secret: only in the reply that created the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// One progress event of a spawn (`data: {...}` on the SSE stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub progress: u8,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ProgressEvent {
    pub fn step(progress: u8, message: impl Into<String>) -> ProgressEvent {
        ProgressEvent {
            progress,
            message: message.into(),
            html_message: None,
            ready: None,
            failed: None,
            url: None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.ready == Some(true) || self.failed == Some(true)
    }
}
