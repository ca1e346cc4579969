//! Users' `auth_state` (§2.5): JSON kept encrypted with `JUPYTERHUB_CRYPT_KEY`'s keys
//! (`galilean_actors::crypt`), written through `PATCH /users/{name}` and read back on
//! `GET /users/{name}` by those holding `admin:auth_state`.

use galilean_actors::replica::State;
use serde_json::Value;

use crate::app::AppState;
use crate::config::ENV_CRYPT_KEY;
use crate::error::{ApiResult, HttpError};

/// The largest `auth_state` accepted, as JSON text.
const MAX_AUTH_STATE: usize = 64 * 1024;

/// `state` (an object, or null to clear it) encrypted for the store: `None` clears.
/// 400 when it is neither, too large, or no key is configured.
pub fn sealed(app: &AppState, state: &Value) -> ApiResult<Option<String>> {
    match state {
        Value::Null => Ok(None),
        Value::Object(_) => {
            let Some(keys) = app.config.crypt_keys.as_ref() else {
                return Err(HttpError::bad_request(format!(
                    "auth_state cannot be stored: {ENV_CRYPT_KEY} is not set on this hub \
                     (JupyterHub's auth state encryption key)"
                )));
            };
            let text = state.to_string();
            if text.len() > MAX_AUTH_STATE {
                return Err(HttpError::bad_request(format!(
                    "auth_state is too large (at most {MAX_AUTH_STATE} bytes of JSON)"
                )));
            }
            Ok(Some(keys.encrypt(text.as_bytes())))
        }
        _ => Err(HttpError::bad_request(
            "auth_state must be an object or null",
        )),
    }
}

/// `user`'s `auth_state`, decrypted; null when there is none or it cannot be read (no
/// key, or keys that no longer include the one it was written with: logged).
pub fn opened(app: &AppState, state: &State, user: &str) -> Value {
    let Some(token) = state.auth_states.get(user) else {
        return Value::Null;
    };
    let Some(keys) = app.config.crypt_keys.as_ref() else {
        tracing::warn!(
            user,
            "auth_state is stored but {ENV_CRYPT_KEY} is not set: shown as null"
        );
        return Value::Null;
    };
    match keys.decrypt(token) {
        Ok(plain) => serde_json::from_slice(&plain).unwrap_or(Value::Null),
        Err(e) => {
            tracing::warn!(user, "auth_state shown as null: {e}");
            Value::Null
        }
    }
}
