//! The network the nodes live on. Where namespaces can be made: one Linux network
//! namespace per node, each joined to a bridge in the harness's namespace by a veth pair,
//! and partitions made in the kernel — a node's bridge port is set down, and every packet
//! to or from it is dropped (for the other nodes and for the clients alike). Elsewhere:
//! nodes on loopback addresses behind the harness's fault-injecting relay
//! ([`crate::relay`]).
//!
//! Everything created here is named after the harness's pid and removed by
//! [`Network::remove`] (also called on drop and when the run is interrupted).

use std::process::Command;

use crate::relay::Relay;

/// Which network a run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Namespaces where they can be made, else the loopback relay.
    Auto,
    Namespaces,
    Loopback,
}

impl Choice {
    pub fn parse(s: &str) -> Option<Choice> {
        match s {
            "auto" => Some(Choice::Auto),
            "netns" => Some(Choice::Namespaces),
            "loopback" => Some(Choice::Loopback),
            _ => None,
        }
    }
}

/// The nodes' network, either kind.
#[derive(Debug)]
pub enum Network {
    Namespaces(Topology),
    Loopback(Relay),
}

impl Network {
    /// Makes the network `choice` asks for, for nodes `1..=nodes` whose node-to-node
    /// traffic uses `ports`. With [`Choice::Auto`] a failure to make namespaces is told
    /// on stderr and the relay is used.
    pub async fn create(choice: Choice, nodes: u32, ports: &[u16]) -> Result<Network, String> {
        let namespaces = match choice {
            Choice::Loopback => None,
            Choice::Namespaces | Choice::Auto => Some(Topology::create(nodes)),
        };
        match namespaces {
            Some(Ok(t)) => Ok(Network::Namespaces(t)),
            Some(Err(e)) if choice == Choice::Namespaces => {
                Err(format!("cannot create network namespaces ({e})"))
            }
            other => {
                if let Some(Err(e)) = other {
                    eprintln!(
                        "network namespaces cannot be created here ({e}); the nodes run on \
                         loopback addresses behind the harness's relay"
                    );
                }
                Relay::create(nodes, ports).await.map(Network::Loopback)
            }
        }
    }

    /// `netns` or `loopback`.
    pub fn name(&self) -> &'static str {
        match self {
            Network::Namespaces(_) => "netns",
            Network::Loopback(_) => "loopback",
        }
    }

    /// Node `id`'s own address: it listens there, and its servers too.
    pub fn node_ip(&self, id: u32) -> String {
        match self {
            Network::Namespaces(t) => t.node_ip(id),
            Network::Loopback(r) => r.node_ip(id),
        }
    }

    /// The address the other nodes reach node `id` at.
    pub fn peer_ip(&self, id: u32) -> String {
        match self {
            Network::Namespaces(t) => t.node_ip(id),
            Network::Loopback(r) => r.front(id),
        }
    }

    /// The command that runs `program` as node `id`.
    pub fn command(&self, id: u32, program: &std::path::Path) -> Command {
        match self {
            Network::Namespaces(t) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &t.namespace(id)]).arg(program);
                c
            }
            Network::Loopback(_) => Command::new(program),
        }
    }

    /// Node `id` runs as `pid` (the relay tells its connections by it).
    pub fn started(&self, id: u32, pid: u32) {
        if let Network::Loopback(r) = self {
            r.started(id, pid);
        }
    }

    /// Cuts node `id` off from the other nodes.
    pub fn cut(&self, id: u32) -> Result<(), String> {
        match self {
            Network::Namespaces(t) => t.cut(id),
            Network::Loopback(r) => {
                r.cut(id);
                Ok(())
            }
        }
    }

    /// Reconnects node `id`.
    pub fn heal(&self, id: u32) -> Result<(), String> {
        match self {
            Network::Namespaces(t) => t.heal(id),
            Network::Loopback(r) => {
                r.heal(id);
                Ok(())
            }
        }
    }

    /// Removes what the network made; safe to call twice.
    pub fn remove(&mut self) {
        match self {
            Network::Namespaces(t) => t.remove(),
            Network::Loopback(r) => r.remove(),
        }
    }
}

/// The namespaces, bridge and links of one run.
#[derive(Debug)]
pub struct Topology {
    tag: u32,
    nodes: u32,
    /// The /24 the nodes live in: `10.213.<subnet>.<node id>`.
    subnet: u8,
    created_bridge: bool,
    created: Vec<u32>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Topology {
    /// Creates a namespace per node (ids `1..=nodes`) and the bridge joining them.
    /// Fails, having removed what it made, when namespaces cannot be created (not root,
    /// no iproute2, a kernel without them).
    pub fn create(nodes: u32) -> Result<Topology, String> {
        let tag = std::process::id();
        let mut t = Topology {
            tag,
            nodes,
            subnet: (tag % 250) as u8,
            created_bridge: false,
            created: Vec::new(),
        };
        if let Err(e) = t.build() {
            t.remove();
            return Err(e);
        }
        Ok(t)
    }

    fn build(&mut self) -> Result<(), String> {
        let bridge = self.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        self.created_bridge = true;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.host_ip()),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for id in 1..=self.nodes {
            let ns = self.namespace(id);
            ip(&["netns", "add", &ns])?;
            self.created.push(id);
            let port = self.port(id);
            ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &port, "master", &bridge])?;
            ip(&["link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.node_ip(id)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn bridge(&self) -> String {
        format!("gcb{}", self.tag % 100_000)
    }

    /// The host side of node `id`'s veth pair (its bridge port).
    fn port(&self, id: u32) -> String {
        format!("gcv{}n{id}", self.tag % 100_000)
    }

    /// Node `id`'s namespace.
    pub fn namespace(&self, id: u32) -> String {
        format!("galilean-chaos-{}-{id}", self.tag)
    }

    /// Node `id`'s address.
    pub fn node_ip(&self, id: u32) -> String {
        format!("10.213.{}.{id}", self.subnet)
    }

    /// The harness's address on the bridge (where clients come from).
    pub fn host_ip(&self) -> String {
        format!("10.213.{}.254", self.subnet)
    }

    /// Cuts node `id` off from everyone.
    pub fn cut(&self, id: u32) -> Result<(), String> {
        ip(&["link", "set", &self.port(id), "down"])
    }

    /// Reconnects node `id`.
    pub fn heal(&self, id: u32) -> Result<(), String> {
        ip(&["link", "set", &self.port(id), "up"])
    }

    /// Removes every namespace and link this topology created; safe to call twice.
    pub fn remove(&mut self) {
        for id in std::mem::take(&mut self.created) {
            let _ = ip(&["link", "del", &self.port(id)]);
            let _ = ip(&["netns", "del", &self.namespace(id)]);
        }
        if std::mem::take(&mut self.created_bridge) {
            let _ = ip(&["link", "del", &self.bridge()]);
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.remove();
    }
}
