//! The loopback relay: bytes move between nodes until one end is cut, are held while it
//! is, and move on when it heals; the relay tells which node opened a connection.

use std::time::Duration;

use cluster_tests::relay::Relay;
use galilean_storage::testing::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// An echo server at `addr`.
async fn echo(listener: TcpListener) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = conn.read(&mut buf).await {
                if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Sends `msg` and reads the echo, or `None` if it does not come within `wait`.
async fn round_trip(conn: &mut TcpStream, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    conn.write_all(msg).await.ok()?;
    read_back(conn, msg.len(), wait).await
}

async fn read_back(conn: &mut TcpStream, len: usize, wait: Duration) -> Option<Vec<u8>> {
    let mut got = vec![0u8; len];
    timeout(wait, conn.read_exact(&mut got)).await.ok()?.ok()?;
    Some(got)
}

const SHORT: Duration = Duration::from_millis(400);
const LONG: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_cut_node_neither_sends_nor_receives_until_it_heals() {
    assert!(
        cluster_tests::relay::loopback_usable(),
        "this machine's loopback does not take 127.213.0.1"
    );
    // node 2's port: any free one on its address
    let probe = Relay::create(3, &[]).await.unwrap();
    let backend = TcpListener::bind((probe.node_ip(2).as_str(), 0))
        .await
        .unwrap();
    let port = backend.local_addr().unwrap().port();
    drop(probe);
    tokio::spawn(echo(backend));
    let relay = Relay::create(3, &[port]).await.unwrap();
    // this process plays node 1: its connections are node 1's
    relay.started(1, std::process::id());
    let front = format!("{}:{port}", relay.front(2));

    let mut conn = TcpStream::connect(&front).await.unwrap();
    assert_eq!(
        round_trip(&mut conn, b"one", LONG).await.as_deref(),
        Some(&b"one"[..])
    );

    // a cut of the source: nothing comes back, and what was sent arrives after healing
    relay.cut(1);
    assert_eq!(round_trip(&mut conn, b"two", SHORT).await, None);
    relay.heal(1);
    assert_eq!(
        read_back(&mut conn, 3, LONG).await.as_deref(),
        Some(&b"two"[..])
    );

    // a cut of the destination, the same
    relay.cut(2);
    assert_eq!(round_trip(&mut conn, b"three", SHORT).await, None);
    relay.heal(2);
    assert_eq!(
        read_back(&mut conn, 5, LONG).await.as_deref(),
        Some(&b"three"[..])
    );

    // another node's cut does not touch the link
    relay.cut(3);
    assert_eq!(
        round_trip(&mut conn, b"four", LONG).await.as_deref(),
        Some(&b"four"[..])
    );

    // a connection opened while the destination is cut carries nothing until it heals
    relay.cut(2);
    let mut late = TcpStream::connect(&front).await.unwrap();
    assert_eq!(round_trip(&mut late, b"five", SHORT).await, None);
    relay.heal(2);
    assert_eq!(
        read_back(&mut late, 4, LONG).await.as_deref(),
        Some(&b"five"[..])
    );

    // dropped, the relay stops listening
    drop(relay);
    eventually(
        "the relay stops listening",
        Duration::from_secs(5),
        || async { TcpStream::connect(&front).await.is_err() },
    )
    .await;
}

#[tokio::test]
async fn the_source_of_a_connection_is_the_process_holding_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    let local = server.local_addr().unwrap();
    let me = std::process::id();
    let pids = std::collections::BTreeMap::from([(4, 1), (7, me)]);
    assert_eq!(cluster_tests::relay::source_of(peer, local, &pids), Some(7));
    let others = std::collections::BTreeMap::from([(4, 1)]);
    assert_eq!(cluster_tests::relay::source_of(peer, local, &others), None);
    drop(client);
}
