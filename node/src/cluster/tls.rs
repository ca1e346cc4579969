//! The cluster's TLS files: `galilean cluster certs` writes a CA and a certificate per
//! node, and a node reads its `[cluster.tls]` files once per start.

use galilean_storage::raft::tls::{NodeTls, TlsInput};

use crate::config::ClusterConfig;

/// A `[cluster.tls]` file that cannot be used, with its key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsConfigError {
    pub key: &'static str,
    pub message: String,
}

/// `galilean cluster certs`: a new CA and a certificate per `ID=host[,host...]` in `out`.
/// Refuses to overwrite. Private keys are written readable by their owner only.
pub fn write_certs(
    out: &std::path::Path,
    nodes: &[String],
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut plan: Vec<(String, String)> = Vec::new();
    let ca = galilean_storage::raft::tls::Authority::new("Galilean cluster CA")
        .map_err(|e| anyhow::anyhow!("cannot create the CA: {e}"))?;
    plan.push(("ca.pem".into(), ca.cert_pem()));
    plan.push(("ca-key.pem".into(), ca.key_pem()));
    for spec in nodes {
        let (id, hosts) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--node {spec}: expected ID=HOST[,HOST...]"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| anyhow::anyhow!("--node {spec}: {id} is not a node id"))?;
        let hosts: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if hosts.is_empty() {
            anyhow::bail!("--node {spec}: no host");
        }
        let issued = ca
            .issue(&format!("galilean node {id}"), &hosts)
            .map_err(|e| anyhow::anyhow!("--node {spec}: {e}"))?;
        plan.push((format!("node{id}.pem"), issued.cert_pem));
        plan.push((format!("node{id}-key.pem"), issued.key_pem));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, _) in &plan {
        let path = out.join(name);
        if path.exists() {
            anyhow::bail!("{} exists; not overwriting certificates", path.display());
        }
    }
    let mut written = Vec::new();
    for (name, pem) in plan {
        let path = out.join(&name);
        let mode = if name.ends_with("-key.pem") {
            0o600
        } else {
            0o644
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(pem.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads `[cluster.tls]`'s files; `None` without TLS.
pub fn load_tls(cluster: &ClusterConfig) -> Result<Option<NodeTls>, TlsConfigError> {
    let Some(t) = &cluster.tls else {
        return Ok(None);
    };
    NodeTls::load(&t.cert, &t.key, &t.ca)
        .map(Some)
        .map_err(|e| TlsConfigError {
            key: match e.input {
                TlsInput::Cert => "cluster.tls.cert",
                TlsInput::Key => "cluster.tls.key",
                TlsInput::Ca => "cluster.tls.ca",
            },
            message: e.message,
        })
}
