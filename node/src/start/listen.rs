//! The public listener: bound with a deep backlog, answering 503 until the hub is built
//! (the door), and the signals that stop a node.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::front::Front;

/// Connections the kernel completes and queues for the hub before it accepts them (the
/// kernel caps this at `net.core.somaxconn`). std's and tokio's 128 is less than a class
/// connecting at once: a connection past it has its handshake dropped and retried a
/// second later (a storm of 200 starts finished in 1.1 s instead of 0.5 s). nginx and
/// Node (CHP) use 511.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `authority` (`host:port`; a name is resolved and each address tried in
/// turn), with [`LISTEN_BACKLOG`].
pub async fn listen(authority: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(authority).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        let listening = socket.and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(LISTEN_BACKLOG)
        });
        match listening {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{authority} resolves to no address"),
        )
    }))
}

/// The public listener, answering 503 until the hub is built, and the shutdown signal.
pub(crate) struct Door {
    pub(crate) addr: SocketAddr,
    pub(crate) front_tx: watch::Sender<Option<Arc<Front>>>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) shutdown_rx: watch::Receiver<bool>,
    pub(crate) serving: JoinHandle<()>,
}

impl Door {
    pub(crate) fn open(listener: TcpListener) -> std::io::Result<Door> {
        let (front_tx, front_rx) = watch::channel(None);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let addr = listener.local_addr()?;
        let serving = tokio::spawn(crate::http::front::serve(
            listener,
            front_rx,
            shutdown_rx.clone(),
        ));
        Ok(Door {
            addr,
            front_tx,
            shutdown,
            shutdown_rx,
            serving,
        })
    }
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // without signal handlers, only ctrl-c can stop us
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A burst of connections the hub has not accepted yet all complete their handshake
    /// at once; with a backlog of 128, those past it waited a second for a resent SYN.
    #[tokio::test]
    async fn a_burst_of_connections_is_queued_not_dropped() {
        // the kernel queues no more than net.core.somaxconn (4096 on Debian 12)
        let n = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(4096)
            .min(400);
        let listener = super::listen("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..n).map(|_| {
            tokio::spawn(tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr),
            ))
        });
        let mut open = Vec::new();
        for c in connects.collect::<Vec<_>>() {
            if let Ok(Ok(stream)) = c.await.unwrap() {
                open.push(stream);
            }
        }
        assert_eq!(open.len(), n, "connections completed before any accept");
        drop(listener);
    }

    #[tokio::test]
    async fn a_name_is_resolved_and_a_bad_address_named() {
        let listener = super::listen("localhost:0").await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        assert!(super::listen("127.0.0.1:99999").await.is_err());
    }
}
