//! What `galilean cluster` does from the command line (status, add, remove, drain,
//! certs), and the TLS files a node of a cluster reads.

pub mod ops;
pub mod tls;

pub use ops::{change_members, drain, print_status};
pub use tls::{load_tls, write_certs, TlsConfigError};
