//! Ports for local servers. A port is chosen here and bound later by the server, so it
//! must stay free in between. A port the kernel picked for `bind(0)` comes from the
//! ephemeral range, which every outgoing connection on the host also draws from: during
//! a storm of spawns (a thousand clients, the hub's readiness probes) one of them takes
//! the port before the server binds it, and the server dies with "address in use".
//! So ports come from below the ephemeral range, walked in order from a random start
//! (this node does not hand the same port twice in a row), skipping those handed out in
//! the last minute and those bound now.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

/// The lowest port handed out.
const LOW: u16 = 20_000;
/// A port handed out is not handed again for this long (the server binds it by then,
/// or has failed).
const HELD: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct Ports {
    /// `[low, high)`: empty when the ephemeral range leaves no room below it.
    low: u16,
    high: u16,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next: u16,
    handed: HashMap<u16, Instant>,
}

impl Ports {
    /// Ports below the kernel's ephemeral range (as `/proc/sys/net/ipv4/ip_local_port_range`
    /// says; 32768 if it cannot be read).
    pub(crate) fn new() -> Ports {
        let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(32_768);
        Ports::between(LOW, ephemeral_low)
    }

    fn between(low: u16, high: u16) -> Ports {
        let start = if high > low {
            rand::thread_rng().gen_range(low..high)
        } else {
            low
        };
        Ports {
            low,
            high,
            state: Mutex::new(State {
                next: start,
                handed: HashMap::new(),
            }),
        }
    }

    /// A port of `ip` that is free now and was not handed out in the last minute.
    pub(crate) fn pick(&self, ip: IpAddr) -> std::io::Result<u16> {
        if self.high <= self.low {
            // no room below the ephemeral range: let the kernel choose
            return std::net::TcpListener::bind((ip, 0))?
                .local_addr()
                .map(|a| a.port());
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        st.handed.retain(|_, at| now.duration_since(*at) < HELD);
        let span = self.high - self.low;
        for _ in 0..span {
            let port = st.next;
            st.next = if port + 1 >= self.high {
                self.low
            } else {
                port + 1
            };
            if st.handed.contains_key(&port) {
                continue;
            }
            if std::net::TcpListener::bind((ip, port)).is_ok() {
                st.handed.insert(port, now);
                return Ok(port);
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "every port from {} to {} is in use or was just handed out",
                self.low,
                self.high - 1
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn ports_stay_below_the_ephemeral_range_and_are_not_handed_twice() {
        let ports = Ports::new();
        let ephemeral_low = ports.high;
        let ip = IpAddr::from(Ipv4Addr::LOCALHOST);
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let p = ports.pick(ip).unwrap();
            assert!((LOW..ephemeral_low).contains(&p), "{p}");
            assert!(seen.insert(p), "{p} handed out twice");
        }
    }

    #[test]
    fn a_bound_port_is_skipped_and_a_full_range_is_an_error() {
        let ip = IpAddr::from(Ipv4Addr::LOCALHOST);
        // a range of one port, taken by someone else
        let taken = std::net::TcpListener::bind((ip, 0)).unwrap();
        let t = taken.local_addr().unwrap().port();
        let ports = Ports::between(t, t.saturating_add(1));
        assert_eq!(
            ports.pick(ip).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        drop(taken);
        assert_eq!(ports.pick(ip).unwrap(), t);
        // handed out a moment ago: not again, though nobody bound it
        assert!(ports.pick(ip).is_err());
    }
}
