//! Node-to-node TLS: every node has a certificate signed by the cluster's own CA and
//! presents it both as a server and as a client (mutual TLS), so a process without a
//! certificate from that CA can neither join nor listen in. The raft RPCs, forwarded
//! writes, snapshots (which carry the cookie secret and the token hashes) and the actor
//! messages all travel inside it.
//!
//! One crypto provider, aws-lc-rs, is named explicitly in every config built here, so
//! nothing depends on a process-wide default.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A node's TLS identity and the CA it trusts, as server and client configs.
#[derive(Clone)]
pub struct NodeTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeTls { .. }")
    }
}

/// Which input a TLS setup problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsInput {
    Cert,
    Key,
    Ca,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    /// The input at fault, so that the caller can name its config key.
    pub input: TlsInput,
    pub message: String,
}

fn err(input: TlsInput, message: impl Into<String>) -> TlsError {
    TlsError {
        input,
        message: message.into(),
    }
}

/// The crypto provider of every config built here.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl NodeTls {
    /// Reads the PEM files: this node's certificate chain, its private key, and the CA
    /// certificate(s) that signed every member's certificate.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<NodeTls, TlsError> {
        let read = |path: &Path, input| {
            std::fs::read(path)
                .map_err(|e| err(input, format!("cannot read {}: {e}", path.display())))
        };
        NodeTls::from_pem(
            &read(cert, TlsInput::Cert)?,
            &read(key, TlsInput::Key)?,
            &read(ca, TlsInput::Ca)?,
        )
    }

    pub fn from_pem(cert: &[u8], key: &[u8], ca: &[u8]) -> Result<NodeTls, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| err(TlsInput::Cert, format!("not a PEM certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(err(TlsInput::Cert, "holds no certificate"));
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| err(TlsInput::Key, format!("not a PEM private key: {e}")))?;
        let mut roots = RootCertStore::empty();
        let mut any = false;
        for c in CertificateDer::pem_slice_iter(ca) {
            let c = c.map_err(|e| err(TlsInput::Ca, format!("not a PEM certificate: {e}")))?;
            roots
                .add(c)
                .map_err(|e| err(TlsInput::Ca, format!("not a usable CA certificate: {e}")))?;
            any = true;
        }
        if !any {
            return Err(err(TlsInput::Ca, "holds no certificate"));
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| err(TlsInput::Ca, format!("cannot verify clients with it: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(TlsInput::Cert, e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| {
                err(
                    TlsInput::Key,
                    format!("does not match the certificate: {e}"),
                )
            })?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(TlsInput::Cert, e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                err(
                    TlsInput::Key,
                    format!("does not match the certificate: {e}"),
                )
            })?;
        Ok(NodeTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.client.clone())
    }
}

/// The name a peer's certificate must carry for `addr` (`host:port`): its IP address or
/// DNS name.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(['[', ']']);
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))
}

/// A certificate authority for a cluster's nodes: `galilean cluster certs` and the tests
/// issue each node's certificate with it.
pub struct Authority {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Authority {
    /// A fresh self-signed CA named `name`.
    pub fn new(name: &str) -> Result<Authority, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(Authority { cert, key })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A certificate for a node reachable at `hosts` (IP addresses or DNS names), good
    /// both as a TLS server and as a TLS client.
    pub fn issue(&self, node_name: &str, hosts: &[String]) -> Result<Issued, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(hosts.to_vec()).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, node_name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(|e| e.to_string())?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
