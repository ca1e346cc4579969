//! Errors of actor operations, and how they cross the wire between nodes. The node maps
//! each variant to an HTTP status in one place.

use galilean_proto::wire::WireError;
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

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

impl From<OpError> for WireError {
    fn from(e: OpError) -> WireError {
        match e {
            OpError::NotFound(m) => WireError::NotFound(m),
            OpError::Exists(m) => WireError::Exists(m),
            OpError::BadRequest(m) => WireError::BadRequest(m),
            OpError::Forbidden(m) => WireError::Forbidden(m),
            OpError::Unavailable(m) => WireError::Unavailable(m),
            OpError::Moved(m) => WireError::Moved(m),
            OpError::Store(StoreError::TooLarge(what)) => {
                WireError::BadRequest(format!("{what} too large"))
            }
            OpError::Store(StoreError::Unavailable(m)) => WireError::Unavailable(m),
            // the owner's store stayed overloaded through every retry
            OpError::Store(e) if e.is_retryable() => WireError::Unavailable(e.to_string()),
            other => WireError::Internal(other.to_string()),
        }
    }
}

impl From<WireError> for OpError {
    fn from(e: WireError) -> OpError {
        match e {
            WireError::NotFound(m) => OpError::NotFound(m),
            WireError::Exists(m) => OpError::Exists(m),
            WireError::BadRequest(m) => OpError::BadRequest(m),
            WireError::Forbidden(m) => OpError::Forbidden(m),
            WireError::Unavailable(m) => OpError::Unavailable(m),
            WireError::Moved(m) => OpError::Moved(m),
            WireError::Internal(m) => OpError::Corrupt(m),
        }
    }
}
