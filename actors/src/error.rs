//! Errors of actor operations. The node maps each variant to an HTTP status in one place.

use galilean_storage::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OpError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Exists(String),
    /// 400: the request cannot be carried out in the current state or is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// The store refused or failed (503 when unavailable, 500 otherwise).
    #[error("store: {0}")]
    Store(StoreError),
    /// A record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The owning actor could not be reached.
    #[error("actor unavailable: {0}")]
    Unavailable(String),
    /// The user's actors moved to another node (the live set changed): nothing was done,
    /// and the call can go to the new owner (503 if it cannot).
    #[error("moved: {0}")]
    Moved(String),
}
