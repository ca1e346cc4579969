//! Splicing an upgraded connection (WebSocket or any other `Connection: upgrade`).
//!
//! Once the backend has answered `101 Switching Protocols` and that answer has gone back to
//! the client, both HTTP connections become byte pipes; a spawned task copies between them
//! until either side closes. Traffic in either direction counts as activity on the route,
//! recorded at most once per [`ACTIVITY_INTERVAL`], as CHP counts WebSocket data.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::ActivityRecorder;
use super::routes::RouteKey;

/// Upgraded traffic is recorded as activity at most this often per connection.
const ACTIVITY_INTERVAL: Duration = Duration::from_secs(1);

/// Waits for both sides to finish upgrading, then copies bytes both ways until one side
/// closes. Runs as its own task; failures end only this connection and are logged.
pub(super) async fn splice(
    client: OnUpgrade,
    backend: OnUpgrade,
    key: RouteKey,
    target: String,
    activity: ActivityRecorder,
) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(user = %key.user, server = %key.server, %target, %error, "upgrade failed");
            return;
        }
    };
    let mut client = ActivityIo {
        inner: TokioIo::new(client),
        activity,
        key,
        last: None,
    };
    let mut backend = TokioIo::new(backend);
    let key = &client.key;
    tracing::trace!(user = %key.user, server = %key.server, %target, "upgraded connection open");
    let result = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    let key = &client.key;
    match result {
        Ok((to_backend, to_client)) => tracing::debug!(
            user = %key.user, server = %key.server, %target, to_backend, to_client,
            "upgraded connection closed"
        ),
        Err(error) => tracing::debug!(
            user = %key.user, server = %key.server, %target, %error,
            "upgraded connection ended with an error"
        ),
    }
}

/// The client side of a spliced connection, recording activity when bytes move.
struct ActivityIo<T> {
    inner: T,
    activity: ActivityRecorder,
    key: RouteKey,
    last: Option<Instant>,
}

impl<T> ActivityIo<T> {
    fn touch(&mut self) {
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= ACTIVITY_INTERVAL)
        {
            self.last = Some(now);
            self.activity.record(&self.key);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ActivityIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ActivityIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
