//! What a request may ask of the running node itself (§2.3, §2.11): a re-sync of the
//! built-in proxy's route table from the replica (`POST /hub/api/proxy`), and the node's
//! stop (`POST /hub/api/shutdown`), which `start::run` waits for beside the signals.

use std::time::Duration;

use tokio::sync::watch;

/// A stop asked for through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopRequest {
    /// Stop the servers this node runs (`servers` in the request); `None` leaves it to
    /// `hub.cleanup_servers`.
    pub cleanup_servers: Option<bool>,
}

/// The requests handlers make of their node, and the route feed's answers.
#[derive(Debug)]
pub struct NodeControl {
    /// How many re-syncs were asked for.
    resync_asked: watch::Sender<u64>,
    /// The last request the route feed has answered with a rebuilt table.
    resynced: watch::Sender<u64>,
    stop: watch::Sender<Option<StopRequest>>,
}

/// The route feed's side of the re-sync requests.
#[derive(Debug)]
pub struct ResyncRequests {
    pub(crate) asked: watch::Receiver<u64>,
    pub(crate) answered: watch::Sender<u64>,
}

impl ResyncRequests {
    /// The newest request, once there is one the feed has not answered; `None` when the
    /// node is going away.
    pub(crate) async fn next(&mut self) -> Option<u64> {
        self.asked.changed().await.ok()?;
        Some(*self.asked.borrow_and_update())
    }

    /// Tells whoever waits that request `n` (and those before it) got a rebuilt table.
    pub(crate) fn answer(&self, n: u64) {
        self.answered.send_if_modified(|done| {
            let newer = n > *done;
            *done = (*done).max(n);
            newer
        });
    }
}

impl NodeControl {
    /// The control and the route feed's side of it.
    pub fn new() -> (NodeControl, ResyncRequests) {
        let (resync_asked, asked) = watch::channel(0);
        let (resynced, _) = watch::channel(0);
        let requests = ResyncRequests {
            asked,
            answered: resynced.clone(),
        };
        let (stop, _) = watch::channel(None);
        let control = NodeControl {
            resync_asked,
            resynced,
            stop,
        };
        (control, requests)
    }

    /// Asks the route feed to rebuild the proxy's table from the replica and waits, at
    /// most `wait`, until it has published the rebuilt one. False when it did not.
    pub async fn resync_routes(&self, wait: Duration) -> bool {
        let mut answered = self.resynced.subscribe();
        let mut n = 0;
        self.resync_asked.send_modify(|asked| {
            *asked += 1;
            n = *asked;
        });
        let done = tokio::time::timeout(wait, answered.wait_for(|done| *done >= n)).await;
        matches!(done, Ok(Ok(_)))
    }

    /// Asks the node to stop; the first request wins.
    pub fn request_stop(&self, request: StopRequest) {
        self.stop.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(request);
            }
            first
        });
    }

    /// The stop asked for, if any.
    pub fn stop_requested(&self) -> Option<StopRequest> {
        *self.stop.borrow()
    }

    /// Waits until a stop is asked for.
    pub async fn stopping(&self) -> StopRequest {
        let mut rx = self.stop.subscribe();
        loop {
            if let Some(r) = *rx.borrow_and_update() {
                return r;
            }
            if rx.changed().await.is_err() {
                // the sender lives in self: unreachable while we borrow it
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_resync_waits_for_the_feed_to_answer_it() {
        let (control, mut requests) = NodeControl::new();
        let feed = tokio::spawn(async move {
            while let Some(n) = requests.next().await {
                requests.answer(n);
            }
        });
        assert!(control.resync_routes(Duration::from_secs(5)).await);
        assert!(control.resync_routes(Duration::from_secs(5)).await);
        feed.abort();
        let _ = feed.await;
        // nobody answers any more
        assert!(!control.resync_routes(Duration::from_millis(50)).await);
    }

    #[tokio::test]
    async fn the_first_stop_request_wins() {
        let (control, _requests) = NodeControl::new();
        assert_eq!(control.stop_requested(), None);
        let waiting = async { control.stopping().await };
        control.request_stop(StopRequest {
            cleanup_servers: Some(false),
        });
        control.request_stop(StopRequest {
            cleanup_servers: Some(true),
        });
        let got = waiting.await;
        assert_eq!(got.cleanup_servers, Some(false));
        assert_eq!(control.stop_requested(), Some(got));
    }
}
