//! Ports for the servers a run starts: free on 127.0.0.1, below the kernel's ephemeral
//! range, and none handed out twice in a run.

/// The lowest port of the kernel's ephemeral range.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// Ports this run has handed out: none is handed out twice. A port is only checked free,
/// not held, until its server binds it, and the servers of a system are started after
/// all its ports are chosen: two choices falling on one port would start one server
/// that cannot listen.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// `n` consecutive free ports on 127.0.0.1 (a moment ago), none handed out before in
/// this run, from below the ephemeral range: a port inside it could be taken, before the
/// hub binds it, as the local port of one of the many outgoing connections a run makes.
fn free_ports(n: u16) -> anyhow::Result<u16> {
    let top = ephemeral_low().max(10_000 + n + 1) - n;
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let p = rand::Rng::gen_range(&mut rand::thread_rng(), 10_000..top);
        if (p..p + n).all(|p| !handed_out.contains(&p) && free(p)) {
            handed_out.extend(p..p + n);
            return Ok(p);
        }
    }
    anyhow::bail!("no {n} free consecutive ports on 127.0.0.1 below {top}")
}

/// A free port on 127.0.0.1 (a moment ago).
pub fn free_port() -> anyhow::Result<u16> {
    free_ports(1)
}

/// A free port `p` on 127.0.0.1 with `p + 1` free too (a node's cluster port and the
/// actor port after it).
pub fn free_port_pair() -> anyhow::Result<u16> {
    free_ports(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_port_is_handed_out_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let p = free_port_pair().unwrap();
            assert!(seen.insert(p) && seen.insert(p + 1), "{p} again");
        }
    }

    #[test]
    fn chosen_ports_are_free_and_below_the_ephemeral_range() {
        for _ in 0..20 {
            let p = free_port_pair().unwrap();
            assert!(p >= 10_000 && p + 1 < ephemeral_low(), "{p}");
            let _a = std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
            let _b = std::net::TcpListener::bind(("127.0.0.1", p + 1)).unwrap();
        }
    }
}
