//! The cluster a real run measures: node processes spawned on 127.0.0.1, or nodes already
//! running that the scenario's `attach` section lists; their lifecycle (start, kill, stop), and
//! the wait until every one answers, with a refused handshake explained.

use std::path::{Path, PathBuf};
use std::time::Duration;

use paxbench_core::NodeId;
use paxbench_node::{LocalCluster, LocalClusterSpec, NodeSettings};
use paxbench_quic::{
    Address, Control, Identity, Inbox, Link, PeerName, Refusal, TcpAuth, TcpSecret, TlsFiles,
    TransportKind,
};

use crate::config::{AttachSpec, FaultAction, Scenario};
use crate::error::Error;

/// The name in an attached generator's certificate: `client-N` or `admin-N` with N the
/// config's `attach.client`, and an admin's when the scenario sends admin commands.
fn attached_identity(
    scenario: &Scenario,
    files: &TlsFiles,
    client: u32,
) -> Result<PeerName, Error> {
    let cert = files.cert.display();
    let name = Identity::load(files)?.name();
    let me = match name {
        Some(PeerName::Client(n) | PeerName::Admin(n)) if n == client => name,
        _ => None,
    };
    let Some(me) = me else {
        let named = name.map_or("no member".to_string(), |n| n.to_string());
        return Err(Error::Scenario(format!(
            "attach.cert: {cert} names {named}; a generator needs client-{client} or \
             admin-{client} (attach.client is {client})"
        )));
    };
    if scenario.needs_admin() && !matches!(me, PeerName::Admin(_)) {
        return Err(Error::Scenario(format!(
            "attach.cert: {cert} names {me}, but this scenario sets faults or zone delays on \
             the nodes, which only an admin may: use admin-{client}'s certificate (made by \
             `paxbench node certs`)"
        )));
    }
    Ok(me)
}

/// How an attached generator proves its name over plain TCP: the secret file, or nothing for
/// nodes run with `insecure_tcp`; one of the two is required.
fn attached_tcp_auth(scenario: &Scenario, attach: &AttachSpec) -> Result<TcpAuth, Error> {
    if scenario.target.transport != TransportKind::Tcp {
        return Ok(TcpAuth::Insecure);
    }
    match (&attach.tcp_secret, attach.insecure_tcp) {
        (Some(path), false) => Ok(TcpAuth::Secret(TcpSecret::load(path)?)),
        (None, true) => Ok(TcpAuth::Insecure),
        (Some(_), true) => Err(Error::Scenario(
            "attach.tcp_secret and attach.insecure_tcp: give one, not both".into(),
        )),
        (None, false) => Err(Error::Scenario(
            "attach.tcp_secret is required with `transport: tcp`: the nodes' shared secret \
             (`tcp.secret` beside the certificates), or attach.insecure_tcp: true for nodes \
             run with `insecure_tcp`"
                .into(),
        )),
    }
}

/// How long nodes may take to answer their first ping.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The nodes a scenario runs against.
pub struct TargetCluster {
    pub(super) nodes: Vec<(u32, Address)>,
    /// The generator's certificate (QUIC).
    pub(super) tls: Option<TlsFiles>,
    /// How the generator proves its name over plain TCP.
    pub(super) tcp_auth: TcpAuth,
    /// Who the generator is to the nodes: `admin-N` when the scenario sets faults or zone
    /// delays on them (admin commands), `client-N` otherwise.
    pub(super) me: PeerName,
    pub(super) client: u32,
    spawned: Option<LocalCluster>,
}

impl TargetCluster {
    /// Starts `scenario.nodes` node processes (`exe node run --config …`) in a temporary
    /// directory, with freshly generated certificates.
    pub fn spawn(scenario: &Scenario, exe: &Path) -> Result<Self, Error> {
        let local = LocalCluster::start(LocalClusterSpec {
            nodes: scenario.target.nodes,
            extra_node_certs: 0,
            clients: 1,
            shared: NodeSettings {
                storage: Some(scenario.target.storage),
                transport: Some(scenario.target.transport),
                reject_mode: Some(scenario.target.reject_mode),
                learner_fanout: Some(scenario.target.learner_fanout),
                phase2_quorum: Some(scenario.quorums().phase2),
                protocol: Some(scenario.target.protocol),
                leader: crate::driver::protocol::node_role(scenario),
                // A node whose disk the scenario fails stays up, silent, until the scenario
                // kills and restarts it (a real node exits, for its supervisor to restart).
                on_storage_failure: scenario
                    .faults
                    .iter()
                    .any(|f| matches!(f.action, FaultAction::DiskFail(_)))
                    .then_some(paxbench_node::StorageFailure::Stay),
                // Unpinned nodes get what this process started with, not the pin the
                // generator holds while it spawns (or restarts) them.
                cpus: if scenario.target.cpus.nodes.is_empty() {
                    paxbench_node::affinity::original()
                } else {
                    scenario.target.cpus.nodes.clone()
                },
                ..NodeSettings::default()
            },
            program: exe.into(),
            program_args: vec!["node".into(), "run".into()],
            log_filter: std::env::var("PAXBENCH_NODE_LOG").unwrap_or_else(|_| "info".into()),
        })?;
        let me = if scenario.needs_admin() {
            PeerName::Admin(0)
        } else {
            PeerName::Client(0)
        };
        Ok(Self {
            nodes: local
                .nodes()
                .iter()
                .map(|n| (n.id, n.addr.into()))
                .collect(),
            tls: Some(local.tls(me)),
            tcp_auth: match scenario.target.transport {
                TransportKind::Tcp => local.tcp_auth()?,
                TransportKind::Quic => TcpAuth::Insecure,
            },
            me,
            client: 0,
            spawned: Some(local),
        })
    }

    /// Running nodes, as the scenario's `attach` section lists them.
    pub fn attach(scenario: &Scenario) -> Result<Self, Error> {
        let attach =
            scenario.target.attach.as_ref().ok_or_else(|| {
                Error::Scenario("attach target without an `attach` section".into())
            })?;
        let tls = match (
            scenario.target.transport,
            &attach.ca,
            &attach.cert,
            &attach.key,
        ) {
            (TransportKind::Quic, Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                cert: attach.client_file(cert),
                key: attach.client_file(key),
            }),
            (TransportKind::Quic, ..) => {
                return Err(Error::Scenario("QUIC attach needs ca, cert and key".into()));
            }
            (TransportKind::Tcp, ..) => None,
        };
        let me = match &tls {
            Some(files) => attached_identity(scenario, files, attach.client)?,
            None if scenario.needs_admin() => PeerName::Admin(attach.client),
            None => PeerName::Client(attach.client),
        };
        Ok(Self {
            nodes: attach
                .nodes
                .iter()
                .map(|n| (n.id, n.addr.clone()))
                .collect(),
            tls,
            tcp_auth: attached_tcp_auth(scenario, attach)?,
            me,
            client: attach.client,
            spawned: None,
        })
    }

    pub(super) fn start_node(&mut self, id: u32) -> Result<(), Error> {
        match &mut self.spawned {
            Some(local) => Ok(local.start_node(id, &[])?),
            None => Err(Error::Scenario(
                "only a spawned cluster can start nodes".into(),
            )),
        }
    }

    pub(super) fn kill_node(&mut self, id: u32) {
        if let Some(local) = &mut self.spawned {
            local.kill(id);
        }
    }

    /// The log of node `id`, for error messages.
    pub(super) fn node_log(&self, id: u32) -> String {
        self.spawned
            .as_ref()
            .map(|local| local.log(id))
            .unwrap_or_default()
    }

    /// The data directory of every spawned node, for the audit.
    pub(super) fn data_dirs(&self) -> Vec<(NodeId, PathBuf)> {
        self.spawned
            .as_ref()
            .map_or_else(Vec::new, LocalCluster::data_dirs)
    }

    /// The generator and every running spawned node, for resource sampling.
    pub(super) fn processes(&self) -> Vec<(String, u32)> {
        let nodes = self
            .spawned
            .as_ref()
            .map(LocalCluster::pids)
            .unwrap_or_default();
        std::iter::once(("generator".to_string(), std::process::id()))
            .chain(
                nodes
                    .into_iter()
                    .map(|(id, pid)| (format!("node {id}"), pid)),
            )
            .collect()
    }

    /// Stops spawned nodes with SIGTERM (SIGKILL after 10 s); attached nodes are left alone.
    pub fn stop(&mut self) {
        if let Some(local) = &mut self.spawned {
            local.stop();
        }
    }
}

/// Waits until every node answers a ping; a refused handshake fails at once, and a node that
/// stays silent fails with its log.
pub(super) async fn wait_ready(
    cluster: &TargetCluster,
    links: &[Link],
    inbox: &mut Inbox,
    control: &mut Control,
) -> Result<(), Error> {
    for (link, (id, addr)) in links.iter().zip(&cluster.nodes) {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut answered = false;
        while !answered && tokio::time::Instant::now() < deadline {
            answered = control
                .ping(link, inbox, Duration::from_millis(300))
                .await
                .is_ok();
            if let Some(refusal) = link.refusal() {
                return Err(Error::Scenario(refused_message(
                    *id,
                    &addr.to_string(),
                    &refusal,
                    cluster.tls.as_ref(),
                )));
            }
        }
        if !answered {
            let log = cluster.node_log(*id);
            return Err(Error::Scenario(format!(
                "node {id} at {addr} did not answer within {READY_TIMEOUT:?}{}",
                if log.is_empty() {
                    String::new()
                } else {
                    format!("; its log:\n{log}")
                }
            )));
        }
    }
    Ok(())
}

/// What to tell the user when node `id` at `addr` refused the handshake or was refused: what
/// was refused, why, and which file to fix.
fn refused_message(id: u32, addr: &str, refusal: &Refusal, tls: Option<&TlsFiles>) -> String {
    let file = |pick: fn(&TlsFiles) -> &Path| {
        tls.map_or_else(|| "?".into(), |t| pick(t).display().to_string())
    };
    match refusal {
        Refusal::OurCertificate { alert } => format!(
            "node {id} at {addr} refused this generator's client certificate {} (TLS alert \
             {alert}). It must be signed by the cluster CA (the one in the nodes' `tls.ca`): point \
             `target.attach.cert` and `key` at a client certificate made with the cluster's \
             certificates (`paxbench-node certs`)",
            file(|t| &t.cert)
        ),
        Refusal::PeerNotTrusted { .. } => format!(
            "node {id} at {addr}: {refusal}. Its certificate was not signed by the CA in {}: \
             point `target.attach.ca` at the cluster's ca.pem",
            file(|t| &t.ca)
        ),
        Refusal::PeerNameMismatch { .. } => format!(
            "the node at {addr} is not node {id}: {refusal}. Fix node {id}'s address in \
             `target.attach.nodes`"
        ),
    }
}
