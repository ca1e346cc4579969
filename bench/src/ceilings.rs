//! The ceiling servers a workload is held against: this program's bare hyper server (W1's
//! ceiling, and with `--sync-file` W2 one by one's), and the tiny single-user server hit
//! directly (W4's).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::load::{once, Call};
use crate::ports::free_port;
use crate::procfs::cpu_time;
use crate::systems::{hub_dir, Paths};

/// A process the bench started for a ceiling (killed when dropped).
pub struct Ceiling {
    pub addr: SocketAddr,
    child: Child,
    /// Where the synced ceiling writes (removed with it).
    _dir: Option<tempfile::TempDir>,
}

impl Ceiling {
    /// This program's bare hyper server answering a fixed body.
    pub async fn hyper(paths: &Paths) -> anyhow::Result<Ceiling> {
        Ceiling::ceiling_server(paths, None).await
    }

    /// The bare hyper server that, for each `POST`, writes the body in place in a
    /// preallocated file and syncs it (`fdatasync`) before it answers 201: what one
    /// durable write per request costs at the least on this machine, W2 one by one's
    /// ceiling. The file is in a directory like the hubs' data, on the same file system.
    pub async fn synced(paths: &Paths) -> anyhow::Result<Ceiling> {
        Ceiling::ceiling_server(paths, Some(hub_dir()?)).await
    }

    /// `galilean-bench ceiling-server`, syncing its writes to a file in `dir` if given.
    async fn ceiling_server(
        paths: &Paths,
        dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Ceiling> {
        let port = free_port()?;
        let mut cmd = Command::new(&paths.me);
        cmd.args(["ceiling-server", "--port", &port.to_string()])
            .stdin(Stdio::null());
        if let Some(dir) = &dir {
            cmd.arg("--sync-file").arg(dir.path().join("writes"));
        }
        let child = cmd.spawn()?;
        Ceiling::wait(child, port, "/", dir).await
    }

    /// The tiny single-user server, alone, under the prefix `prefix`.
    pub async fn tiny(paths: &Paths, prefix: &str) -> anyhow::Result<Ceiling> {
        let port = free_port()?;
        let child = Command::new(&paths.tiny)
            .env(
                "JUPYTERHUB_SERVICE_URL",
                format!("http://127.0.0.1:{port}{prefix}"),
            )
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ceiling::wait(child, port, &format!("{prefix}api"), None).await
    }

    /// CPU time the ceiling server has used so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.child.id())
    }

    async fn wait(
        child: Child,
        port: u16,
        probe: &str,
        dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Ceiling> {
        let c = Ceiling {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            _dir: dir,
        };
        for _ in 0..100 {
            if once(c.addr, &Call::get(probe)).await.is_ok() {
                return Ok(c);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the ceiling server on port {port} did not come up")
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The slots of the synced ceiling's file: a write goes to the next one, in place.
const SYNC_SLOTS: u64 = 1024;
/// Each slot's size (a page), the most of a body it keeps.
const SYNC_SLOT_BYTES: usize = 4096;

/// The synced ceiling's file: preallocated, written through, and synced at start, so
/// that a request's sync has only its own write to make durable (no size change).
struct SyncedFile {
    file: std::fs::File,
    next: u64,
}

impl SyncedFile {
    fn create(path: &Path) -> std::io::Result<SyncedFile> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        let zeros = vec![0u8; SYNC_SLOT_BYTES];
        for _ in 0..SYNC_SLOTS {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
        Ok(SyncedFile { file, next: 0 })
    }

    /// Writes `body` (its first page) in the next slot and syncs it.
    fn write(&mut self, body: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let at = (self.next % SYNC_SLOTS) * SYNC_SLOT_BYTES as u64;
        self.next += 1;
        self.file
            .write_all_at(&body[..body.len().min(SYNC_SLOT_BYTES)], at)?;
        self.file.sync_data()
    }
}

/// The ceiling servers of [`Ceiling::hyper`] and [`Ceiling::synced`], on a
/// multi-threaded runtime: a request answers a fixed 2-byte JSON body; with
/// `sync_file`, a `POST` first writes its body there durably and answers 201.
pub async fn serve_ceiling(port: u16, sync_file: Option<PathBuf>) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use std::sync::{Arc, Mutex};
    type Synced = Option<Arc<Mutex<SyncedFile>>>;
    let synced: Synced = match sync_file {
        Some(path) => Some(Arc::new(Mutex::new(
            SyncedFile::create(&path).with_context(|| format!("{}", path.display()))?,
        ))),
        None => None,
    };
    async fn answer(
        req: http::Request<hyper::body::Incoming>,
        synced: Synced,
    ) -> Result<http::Response<Full<bytes::Bytes>>, std::convert::Infallible> {
        let mut status = http::StatusCode::OK;
        if let (Some(file), &http::Method::POST) = (synced, req.method()) {
            let written = match req.into_body().collect().await {
                // inline, blocking this worker for the sync: no hand-off to another
                // thread, the least a server can do (a hub would not block its workers)
                Ok(body) => file
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .write(&body.to_bytes()),
                Err(e) => Err(std::io::Error::other(e)),
            };
            status = match written {
                Ok(()) => http::StatusCode::CREATED,
                Err(e) => {
                    eprintln!("ceiling-server: {e}");
                    http::StatusCode::INTERNAL_SERVER_ERROR
                }
            };
        }
        Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap_or_default())
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let synced = synced.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, synced.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &'static str) -> Call {
        Call {
            method: http::Method::POST,
            path: "/hub/api/users/x".into(),
            headers: Default::default(),
            body: bytes::Bytes::from_static(body.as_bytes()),
            expect: http::StatusCode::CREATED,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_synced_ceiling_writes_each_post_in_place_before_it_answers() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("writes");
        let port = free_port().expect("a port");
        let server = tokio::spawn(serve_ceiling(port, Some(path.clone())));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut up = false;
        for _ in 0..100 {
            if once(addr, &Call::get("/")).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(up, "the ceiling server did not come up");
        once(addr, &post("first")).await.expect("201 for the first");
        once(addr, &post("second"))
            .await
            .expect("201 for the second");
        // answered only once written: the file holds both, each in its own slot, and
        // has not grown past what was preallocated
        let file = std::fs::read(&path).expect("the file");
        assert_eq!(file.len() as u64, SYNC_SLOTS * SYNC_SLOT_BYTES as u64);
        assert_eq!(&file[..5], b"first");
        let second = SYNC_SLOT_BYTES;
        assert_eq!(&file[second..second + 6], b"second");
        assert!(file[second + 6..2 * SYNC_SLOT_BYTES]
            .iter()
            .all(|b| *b == 0));
        server.abort();
    }
}
