//! The fallback network, for machines where namespaces cannot be made: every node
//! listens on its own loopback address, and the cluster knows each node by another one,
//! where the harness relays TCP to the node. A partition is made in the relay: a
//! connection whose source or destination is cut stops moving bytes (both ways, what it
//! already read is held) until the cut heals, and new connections to or from a cut node
//! are accepted but carry nothing — to the nodes it looks like a link that drops every
//! packet, as a kernel partition does.
//!
//! Every node's outgoing connections come from 127.0.0.1, so the relay learns which node
//! opened a connection from the kernel: the socket whose local end is the connection's
//! peer address (`/proc/net/tcp`) is held by exactly one process, and each node's pid is
//! registered when it starts. A connection no node holds (a client's) is cut only with
//! its destination. Clients reach the nodes' public ports directly, so a partitioned node
//! still answers them: it is cut from its peers, not from the users.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

type Pids = Arc<Mutex<BTreeMap<u32, u32>>>;

/// The relay of one run: a listener per (node, port), and the set of cut nodes.
pub struct Relay {
    subnet: u8,
    cut: watch::Sender<BTreeSet<u32>>,
    pids: Pids,
    listeners: JoinSet<()>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("subnet", &self.subnet)
            .field("cut", &*self.cut.borrow())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether bytes may move from `source` (a node, or `None` for anyone else) to `dest`.
fn allowed(cut: &BTreeSet<u32>, source: Option<u32>, dest: u32) -> bool {
    source == Some(dest) || (!cut.contains(&dest) && source.is_none_or(|s| !cut.contains(&s)))
}

impl Relay {
    /// Relays `ports` of nodes `1..=nodes`: [`Relay::front`]`(id):port` to
    /// [`Relay::node_ip`]`(id):port`. Must be called inside a tokio runtime; the relay
    /// stops when dropped.
    pub async fn create(nodes: u32, ports: &[u16]) -> Result<Relay, String> {
        let subnet = (std::process::id() % 250) as u8;
        let (cut, _) = watch::channel(BTreeSet::new());
        let mut relay = Relay {
            subnet,
            cut,
            pids: Arc::default(),
            listeners: JoinSet::new(),
        };
        for id in 1..=nodes {
            for port in ports {
                let front = format!("{}:{port}", relay.front(id));
                let listener = TcpListener::bind(&front)
                    .await
                    .map_err(|e| format!("the relay cannot listen on {front}: {e}"))?;
                let back = format!("{}:{port}", relay.node_ip(id));
                relay.listeners.spawn(serve(
                    listener,
                    id,
                    back,
                    relay.cut.clone(),
                    relay.pids.clone(),
                ));
            }
        }
        Ok(relay)
    }

    /// Node `id`'s own address (where it listens).
    pub fn node_ip(&self, id: u32) -> String {
        format!("127.213.{}.{id}", self.subnet)
    }

    /// The address the cluster knows node `id` by (the relay's).
    pub fn front(&self, id: u32) -> String {
        format!("127.214.{}.{id}", self.subnet)
    }

    /// Registers node `id`'s process: connections it opens are its.
    pub fn started(&self, id: u32, pid: u32) {
        lock(&self.pids).insert(id, pid);
    }

    /// Cuts node `id` off from the other nodes.
    pub fn cut(&self, id: u32) {
        self.cut.send_modify(|c| {
            c.insert(id);
        });
    }

    /// Reconnects node `id`; held bytes move on.
    pub fn heal(&self, id: u32) {
        self.cut.send_modify(|c| {
            c.remove(&id);
        });
    }

    /// Stops every listener and relayed connection.
    pub fn remove(&mut self) {
        self.listeners.abort_all();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Accepts on `listener` and relays each connection to `back` (node `dest`).
async fn serve(
    listener: TcpListener,
    dest: u32,
    back: String,
    cut: watch::Sender<BTreeSet<u32>>,
    pids: Pids,
) {
    // the connections go when this task is aborted
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((conn, peer)) = accepted else { continue };
                let pids = pids.clone();
                let back = back.clone();
                let rx = cut.subscribe();
                links.spawn(async move {
                    let local = conn.local_addr().ok();
                    let source = match local {
                        Some(local) => tokio::task::spawn_blocking(move || {
                            let pids = lock(&pids).clone();
                            source_of(peer, local, &pids)
                        })
                        .await
                        .ok()
                        .flatten(),
                        None => None,
                    };
                    link(conn, source, dest, &back, rx).await;
                });
            }
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
}

/// One relayed connection from `source` to node `dest`.
async fn link(
    conn: TcpStream,
    source: Option<u32>,
    dest: u32,
    back: &str,
    mut rx: watch::Receiver<BTreeSet<u32>>,
) {
    // a connection to a cut node waits (its client sees no answer, as with dropped SYNs)
    if rx.wait_for(|c| allowed(c, source, dest)).await.is_err() {
        return;
    }
    let Ok(upstream) = TcpStream::connect(back).await else {
        return;
    };
    let _ = conn.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (cr, cw) = conn.into_split();
    let (ur, uw) = upstream.into_split();
    // each way ends at its end of stream (passed on) or error; a half dropped on error
    // closes its side, which ends the other way in turn
    tokio::join!(
        pump(cr, uw, source, dest, rx.clone()),
        pump(ur, cw, source, dest, rx)
    );
}

/// Copies `from` to `to` while the link is allowed, holding what it read while it is
/// not. Returns at end of stream (passing it on) or at an error.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    source: Option<u32>,
    dest: u32,
    mut rx: watch::Receiver<BTreeSet<u32>>,
) where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if rx.wait_for(|c| allowed(c, source, dest)).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if rx.wait_for(|c| allowed(c, source, dest)).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The node whose process holds the socket at `peer` connected to `local`, if any.
pub fn source_of(peer: SocketAddr, local: SocketAddr, pids: &BTreeMap<u32, u32>) -> Option<u32> {
    let (SocketAddr::V4(peer), SocketAddr::V4(local)) = (peer, local) else {
        return None;
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = socket_inode(&table, peer, local)?;
    let wanted = format!("socket:[{inode}]");
    pids.iter().find_map(|(id, pid)| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == &*wanted))
            .then_some(*id)
    })
}

/// The inode of the socket in `/proc/net/tcp`'s `table` whose local end is `local` and
/// remote end `remote`.
fn socket_inode(table: &str, local: SocketAddrV4, remote: SocketAddrV4) -> Option<u64> {
    let want_local = proc_addr(local);
    let want_remote = proc_addr(remote);
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1] == want_local && f[2] == want_remote)
            .then(|| f[9].parse().ok())
            .flatten()
    })
}

/// An address as `/proc/net/tcp` writes it: the IPv4 address as a host-order hex word of
/// its network-order bytes, then the port in hex.
fn proc_addr(a: SocketAddrV4) -> String {
    format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(a.ip().octets()),
        a.port()
    )
}

/// Whether this machine's loopback takes the relay's addresses (all of 127/8 on Linux).
pub fn loopback_usable() -> bool {
    std::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::new(127, 213, 0, 1), 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_table_names_a_socket_by_both_ends() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
             0: 0100007F:D431 01D6D57F:1BBC 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n";
        let local: SocketAddrV4 = "127.0.0.1:54321".parse().unwrap();
        let remote: SocketAddrV4 = "127.213.214.1:7100".parse().unwrap();
        assert_eq!(proc_addr(remote), "01D6D57F:1BBC");
        assert_eq!(socket_inode(table, local, remote), Some(4242));
        assert_eq!(socket_inode(table, remote, local), None);
    }

    #[test]
    fn a_cut_stops_what_goes_to_or_from_the_node_only() {
        let cut = BTreeSet::from([2]);
        assert!(!allowed(&cut, Some(1), 2));
        assert!(!allowed(&cut, Some(2), 1));
        assert!(!allowed(&cut, None, 2));
        assert!(allowed(&cut, Some(2), 2), "a node reaches itself");
        assert!(allowed(&cut, Some(1), 3));
        assert!(allowed(&cut, None, 3));
    }
}
