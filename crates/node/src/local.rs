//! A local cluster of node processes on 127.0.0.1: certificates, one typed config file per node,
//! start, kill, SIGTERM, restart, logs and data directories. The load generator's `spawn` target
//! and the node's process-level tests both use it, so a cluster is started one way.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use paxbench_core::NodeId;
use paxbench_quic::{PeerName, TlsFiles, TransportKind};
use tracing::info;

use crate::config::{NodeSettings, PeerAddr, TlsSection};
use crate::error::Error;

/// What to start.
#[derive(Clone, Debug)]
pub struct LocalClusterSpec {
    /// How many nodes, numbered from 1.
    pub nodes: u32,
    /// Client certificates to make (`client-0` …), for generators and tests; `admin-0` is
    /// made as well.
    pub clients: u32,
    /// Node certificates beyond the cluster's (`node-N+1` …), signed by the same CA: what a
    /// node that is not a member may do is tested with them.
    pub extra_node_certs: u32,
    /// Settings every node shares (storage, transport, reject mode, fan-out, faults); the id,
    /// address, peers, data directory and TLS files are filled in per node.
    pub shared: NodeSettings,
    /// The program that runs a node and the arguments before `--config`: `paxbench-node run`,
    /// or `paxbench node run` from the load generator's own binary.
    pub program: PathBuf,
    /// See `program`.
    pub program_args: Vec<OsString>,
    /// The nodes' `RUST_LOG`.
    pub log_filter: String,
}

/// One node of a [`LocalCluster`].
#[derive(Debug)]
pub struct LocalNode {
    /// Its id.
    pub id: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its store.
    pub data_dir: PathBuf,
    /// Its log (stdout and stderr, appended across restarts).
    pub log: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    child: Option<Child>,
}

/// Node processes in a temporary directory, stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct LocalCluster {
    dir: tempfile::TempDir,
    spec: LocalClusterSpec,
    nodes: Vec<LocalNode>,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A port on 127.0.0.1 that is free now, for the transport's socket kind, chosen below the
/// kernel's ephemeral range: a port the kernel handed out and took back could go to the next
/// client socket (a generator's, or another test's) before the node binds it, and the node
/// would then fail with "address in use".
fn free_port(transport: TransportKind) -> Result<SocketAddr, Error> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    const LOW: u16 = 10_000;
    if ephemeral_low <= LOW + 1_000 {
        return ephemeral_port(transport);
    }
    let span = u64::from(ephemeral_low - LOW);
    // Spread the starting points of concurrent clusters: the clock and this process.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    for _ in 0..64 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let port = LOW + ((seed >> 33) % span) as u16;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let free = match transport {
            TransportKind::Quic => UdpSocket::bind(addr).is_ok(),
            TransportKind::Tcp => TcpListener::bind(addr).is_ok(),
        };
        if free {
            return Ok(addr);
        }
    }
    ephemeral_port(transport)
}

/// A port the kernel picks.
fn ephemeral_port(transport: TransportKind) -> Result<SocketAddr, Error> {
    let context = "finding a free port on 127.0.0.1";
    match transport {
        TransportKind::Quic => UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(io(context)),
        TransportKind::Tcp => TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(io(context)),
    }
}

impl LocalCluster {
    /// Makes the certificates, writes each node's config and starts every node.
    pub fn start(spec: LocalClusterSpec) -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("paxbench-cluster-")
            .tempdir()
            .map_err(io("creating the cluster directory"))?;
        let certs = dir.path().join("certs");
        let plan = paxbench_quic::CertPlan::new(
            spec.nodes.saturating_add(spec.extra_node_certs),
            spec.clients,
        );
        paxbench_quic::generate_cluster_certs(&certs, &plan)?;
        let transport = spec.shared.transport.unwrap_or_default();
        let listen = (1..=spec.nodes)
            .map(|id| Ok((id, free_port(transport)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let peers: Vec<PeerAddr> = listen
            .iter()
            .map(|(id, addr)| PeerAddr {
                id: *id,
                addr: (*addr).into(),
            })
            .collect();
        let mut nodes = Vec::with_capacity(peers.len());
        for (me, (_, listen)) in peers.iter().zip(&listen) {
            let files = TlsFiles::in_dir(&certs, PeerName::Node(NodeId(me.id)));
            let settings = NodeSettings {
                id: Some(me.id),
                listen: Some(*listen),
                peers: peers.iter().filter(|p| p.id != me.id).cloned().collect(),
                data_dir: Some(dir.path().join(format!("data-{}", me.id))),
                tls: TlsSection {
                    ca: Some(files.ca),
                    cert: Some(files.cert),
                    key: Some(files.key),
                },
                stats_interval_ms: Some(spec.shared.stats_interval_ms.unwrap_or(0)),
                tcp_secret: (transport == TransportKind::Tcp
                    && spec.shared.insecure_tcp != Some(true))
                .then(|| certs.join(paxbench_quic::TCP_SECRET_FILE)),
                ..spec.shared.clone()
            };
            let config = dir.path().join(format!("node-{}.yaml", me.id));
            let text = serde_saphyr::to_string(&settings).map_err(|e| Error::Config {
                origin: config.display().to_string(),
                message: e.to_string(),
            })?;
            std::fs::write(&config, text).map_err(io(format!("writing {}", config.display())))?;
            nodes.push(LocalNode {
                id: me.id,
                addr: *listen,
                data_dir: settings.data_dir.unwrap_or_default(),
                log: dir.path().join(format!("node-{}.log", me.id)),
                config,
                child: None,
            });
        }
        let mut cluster = Self { dir, spec, nodes };
        for id in 1..=cluster.spec.nodes {
            cluster.start_node(id, &[])?;
        }
        Ok(cluster)
    }

    /// The nodes.
    pub fn nodes(&self) -> &[LocalNode] {
        &self.nodes
    }

    /// The cluster's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The certificates' directory: `ca.pem`, `node-N.*`, `client-N.*`, `admin-0.*`.
    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The TLS files of `client-N`.
    pub fn client_tls(&self, client: u32) -> TlsFiles {
        self.tls(PeerName::Client(client))
    }

    /// How members prove their names over plain TCP: the cluster's shared secret.
    pub fn tcp_auth(&self) -> Result<paxbench_quic::TcpAuth, Error> {
        let secret =
            paxbench_quic::TcpSecret::load(&self.certs().join(paxbench_quic::TCP_SECRET_FILE))?;
        Ok(paxbench_quic::TcpAuth::Secret(secret))
    }

    /// The TLS files of any member (`admin-0`, `node-2`, …).
    pub fn tls(&self, member: PeerName) -> TlsFiles {
        TlsFiles::in_dir(&self.certs(), member)
    }

    /// The process id of every node that is running, by node id.
    pub fn pids(&self) -> Vec<(u32, u32)> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.id, n.child.as_ref()?.id())))
            .collect()
    }

    /// Every node's data directory, for the store audit.
    pub fn data_dirs(&self) -> Vec<(NodeId, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (NodeId(n.id), n.data_dir.clone()))
            .collect()
    }

    fn node_mut(&mut self, id: u32) -> Result<&mut LocalNode, Error> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::Config {
                origin: "local cluster".into(),
                message: format!("there is no node {id}"),
            })
    }

    /// Starts node `id` (again, after a kill), with `extra_args` for this start only.
    pub fn start_node(&mut self, id: u32, extra_args: &[&str]) -> Result<(), Error> {
        let program = self.spec.program.clone();
        let program_args = self.spec.program_args.clone();
        let log_filter = self.spec.log_filter.clone();
        let node = self.node_mut(id)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(io(format!("opening {}", node.log.display())))?;
        let log_err = log.try_clone().map_err(io("cloning a log handle"))?;
        let child = Command::new(&program)
            .args(&program_args)
            .arg("--config")
            .arg(&node.config)
            .args(extra_args)
            .env("RUST_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io(format!("starting node {id} ({})", program.display())))?;
        info!(node = id, addr = %node.addr, pid = child.id(), "node started");
        node.child = Some(child);
        Ok(())
    }

    /// SIGKILL node `id` and wait for it to be gone.
    pub fn kill(&mut self, id: u32) {
        if let Ok(node) = self.node_mut(id)
            && let Some(child) = node.child.take()
        {
            reap(child);
            info!(node = id, "node killed");
        }
    }

    /// SIGTERM node `id` and wait up to `timeout` for its exit status (`None`: it did not exit,
    /// and was killed; or it was not running).
    pub fn terminate(&mut self, id: u32, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.node_mut(id).ok()?.child.take()?;
        sigterm(&child);
        let status = wait_with_timeout(&mut child, timeout);
        if status.is_none() {
            reap(child);
        }
        status
    }

    /// Waits up to `timeout` for node `id` to exit by itself.
    pub fn wait_exit(&mut self, id: u32, timeout: Duration) -> Option<ExitStatus> {
        let node = self.node_mut(id).ok()?;
        let status = wait_with_timeout(node.child.as_mut()?, timeout);
        if status.is_some() {
            node.child = None;
        }
        status
    }

    /// Node `id`'s log so far.
    pub fn log(&self, id: u32) -> String {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| std::fs::read_to_string(&n.log).ok())
            .unwrap_or_default()
    }

    /// Stops every node with SIGTERM, so each finishes its batch and closes its store; a node
    /// still running 10 s later is killed.
    pub fn stop(&mut self) {
        for node in &self.nodes {
            if let Some(child) = &node.child {
                sigterm(child);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = wait_with_timeout(
                    &mut child,
                    deadline.saturating_duration_since(Instant::now()),
                );
                reap(child);
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.take() {
                reap(child);
            }
        }
    }
}

/// SIGKILL, if the process is still running, and wait for it to be gone.
fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM through kill(1): the workspace forbids the unsafe a direct `libc::kill` needs.
fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}
