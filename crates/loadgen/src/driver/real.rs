//! The real targets: node processes spawned on 127.0.0.1 (`spawn`) or already running
//! (`attach`), reached over QUIC or TCP. Every proposer is a core state machine multiplexed on
//! one current-thread task; all share one link per node with coalesced writes. Faults of the
//! schedule become process kills and restarts or fault-layer settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use paxbench_core::Protocol;
use paxbench_core::checker::Origins;
use paxbench_core::client::ClientConfig;
use paxbench_core::host::ProposerHost;
use paxbench_core::message::Message;
use paxbench_core::rng::Stream;
use paxbench_core::transmit::{self, Transmit};
use paxbench_core::{NodeId, ProposerId, Time};
use paxbench_node::{LocalCluster, LocalClusterSpec, NodeSettings};
use paxbench_quic::wire::unix_now_ns;
use paxbench_quic::{
    Address, AdminCommand, AdminReply, Endpoint, EndpointConfig, Envelope, FaultLayer, FaultSpec,
    Identity, Inbound, Link, LinkFaults, NodeStats, PeerName, QuicTransport, Refusal, TcpTransport,
    TlsFiles, Transport, TransportKind,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::fault_plan::{FaultPlan, Planned};
use super::nodes::{NodeTally, check_protocol};
use super::{
    ClockOffset, RunOutput, ZonePing, evidence_checker, finish_evidence, proposer_configs,
};
use crate::config::{Scenario, TargetKind};
use crate::driver::topology::Cuts;
use crate::driver::workload::Generator;
use crate::driver::zones::{ZoneShaper, node_fault_spec};
use crate::error::Error;
use crate::measure::resources::ResourceSampler;
use crate::measure::{Percentiles, ProtocolMetrics, latency_histogram, record_ns};
use crate::report;

/// How long nodes may take to answer their first ping.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Proposer ids of client N start at N × this, so several generators never share an id.
pub const PROPOSER_IDS_PER_CLIENT: u32 = 65_536;

/// The nodes a scenario runs against.
pub struct TargetCluster {
    nodes: Vec<(u32, Address)>,
    client_tls: Option<TlsFiles>,
    client: u32,
    spawned: Option<LocalCluster>,
}

impl TargetCluster {
    /// Starts `scenario.nodes` node processes (`exe node run --config …`) in a temporary
    /// directory, with freshly generated certificates.
    pub fn spawn(scenario: &Scenario, exe: &Path) -> Result<Self, Error> {
        let local = LocalCluster::start(LocalClusterSpec {
            nodes: scenario.target.nodes,
            clients: 1,
            shared: NodeSettings {
                storage: Some(scenario.target.storage),
                transport: Some(scenario.target.transport),
                reject_mode: Some(scenario.target.reject_mode),
                learner_fanout: Some(scenario.target.learner_fanout),
                phase2_quorum: Some(scenario.quorums().phase2),
                protocol: Some(scenario.target.protocol),
                leader: (scenario.target.protocol == Protocol::MultiPaxos)
                    .then(|| super::nodes::leader_section(scenario)),
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
        Ok(Self {
            nodes: local
                .nodes()
                .iter()
                .map(|n| (n.id, n.addr.into()))
                .collect(),
            client_tls: Some(local.client_tls(0)),
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
        let client_tls = match (
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
        Ok(Self {
            nodes: attach
                .nodes
                .iter()
                .map(|n| (n.id, n.addr.clone()))
                .collect(),
            client_tls,
            client: attach.client,
            spawned: None,
        })
    }

    fn start_node(&mut self, id: u32) -> Result<(), Error> {
        match &mut self.spawned {
            Some(local) => Ok(local.start_node(id, &[])?),
            None => Err(Error::Scenario(
                "only a spawned cluster can start nodes".into(),
            )),
        }
    }

    fn kill_node(&mut self, id: u32) {
        if let Some(local) = &mut self.spawned {
            local.kill(id);
        }
    }

    /// The log of node `id`, for error messages.
    fn node_log(&self, id: u32) -> String {
        self.spawned
            .as_ref()
            .map(|local| local.log(id))
            .unwrap_or_default()
    }

    /// The data directory of every spawned node, for the audit.
    fn data_dirs(&self) -> Vec<(NodeId, PathBuf)> {
        self.spawned
            .as_ref()
            .map_or_else(Vec::new, LocalCluster::data_dirs)
    }

    /// The generator and every running spawned node, for resource sampling.
    fn processes(&self) -> Vec<(String, u32)> {
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

/// Runs `scenario` against a spawned or attached cluster, streaming the checker's evidence to
/// `evidence` (kept for audited and asked-for runs, removed otherwise).
pub fn run(
    scenario: &Scenario,
    node_exe: &Path,
    evidence: &Path,
    interrupt: &AtomicBool,
    progress: &indicatif::ProgressBar,
) -> Result<RunOutput, Error> {
    let mut cluster = match scenario.target.kind {
        TargetKind::Spawn => TargetCluster::spawn(scenario, node_exe)?,
        TargetKind::Attach => TargetCluster::attach(scenario)?,
        TargetKind::Sim => {
            return Err(Error::Scenario("the simulator is not a real target".into()));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            context: "starting the tokio runtime".into(),
            source: e,
        })?;
    let me = PeerName::Client(cluster.client);
    // Every name must resolve now; links resolve again at each redial.
    let mut first = None;
    for (id, addr) in &cluster.nodes {
        let resolved = runtime.block_on(addr.resolve()).map_err(|e| {
            Error::Scenario(format!("node {id}: cannot resolve its address {addr}: {e}"))
        })?;
        first.get_or_insert(resolved);
    }
    let localhost: SocketAddr = match first {
        Some(addr) if addr.is_ipv6() => {
            "[::]:0".parse().unwrap_or(SocketAddr::from(([0u8; 16], 0)))
        }
        Some(addr) if !addr.ip().is_loopback() => SocketAddr::from(([0, 0, 0, 0], 0)),
        _ => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let (audited, keep_evidence) = evidence_policy(scenario);
    let result = match scenario.target.transport {
        TransportKind::Quic => {
            let files = cluster
                .client_tls
                .clone()
                .ok_or_else(|| Error::Scenario("QUIC needs client TLS files".into()))?;
            let identity = Identity::load(&files)?;
            runtime.block_on(async {
                let transport = QuicTransport::bind(localhost, &identity, me)?;
                drive(
                    scenario,
                    transport,
                    &mut cluster,
                    interrupt,
                    progress,
                    (evidence, keep_evidence),
                )
                .await
            })
        }
        TransportKind::Tcp => runtime.block_on(drive(
            scenario,
            TcpTransport::client(me),
            &mut cluster,
            interrupt,
            progress,
            (evidence, keep_evidence),
        )),
    };
    cluster.stop();
    let mut output = result?;
    if audited {
        let scratch = evidence.parent().unwrap_or(Path::new("."));
        let report = paxbench_node::audit_stores(
            &cluster.data_dirs(),
            cluster.nodes.len(),
            scenario.quorums().phase2,
            Some(evidence),
            scratch,
        )?;
        info!(
            records = report.records,
            chosen = report.chosen_checked,
            acks = report.acks_checked,
            clean = report.is_clean(),
            "audited the nodes' stores"
        );
        output.audit = Some(report);
    }
    Ok(output)
}

/// Whether the run is audited as it ends (spawned durable clusters), and whether it keeps the
/// audit's evidence: always when audited, and for an attached cluster only when the config asks
/// (`measure.evidence`), since the evidence grows with the run.
fn evidence_policy(scenario: &Scenario) -> (bool, bool) {
    let target = &scenario.target;
    let audited = target.kind == TargetKind::Spawn && target.storage.is_durable();
    let attached = target.kind == TargetKind::Attach && scenario.measure.evidence;
    (audited, audited || attached)
}

/// The I/O shell over the core's proposer host: links to the nodes, the wall clock, the fault
/// plan, and the partition filter on each proposer's traffic.
struct Driver<'a, T: Transport> {
    scenario: &'a Scenario,
    started: Instant,
    endpoint: Endpoint<T>,
    links: Vec<Link>,
    node_ids: Vec<u32>,
    host: ProposerHost<Generator>,
    plan: FaultPlan,
    next_fault: usize,
    protocol: ProtocolMetrics,
    keep_acks: bool,
    cuts: Cuts,
    next_request: u64,
    resources: ResourceSampler,
    /// With zones: the delays of proposer traffic.
    zones: Option<ZoneShaper>,
    /// The nodes' own counters, from the once-a-second polls.
    tally: NodeTally,
    /// Multi-Paxos: the node that answered a client last, the leader as far as we know.
    leader: Option<u32>,
    /// Multi-Paxos: killed leaders to restart, and when.
    restarts: Vec<(Time, u32)>,
    /// Multi-Paxos: the leader to kill once its last counters are in.
    doomed: Option<Doomed>,
}

/// A leader about to be killed: its counters are asked for first, so that what it did in its
/// last second is not lost with it.
struct Doomed {
    node: u32,
    /// The stats request whose answer sets it off.
    request: u64,
    answered: bool,
    /// Killed then, answered or not.
    deadline: Time,
    down: Duration,
    label: String,
}

async fn drive<T: Transport + std::fmt::Debug>(
    scenario: &Scenario,
    transport: T,
    cluster: &mut TargetCluster,
    interrupt: &AtomicBool,
    progress: &indicatif::ProgressBar,
    (evidence, keep_evidence): (&Path, bool),
) -> Result<RunOutput, Error> {
    let wall = Instant::now();
    let (endpoint, mut inbox) = Endpoint::new(
        transport,
        FaultLayer::default(),
        &EndpointConfig {
            carrier: scenario.target.carrier,
            ..EndpointConfig::default()
        },
    );
    let links: Vec<Link> = cluster
        .nodes
        .iter()
        .map(|(id, addr)| endpoint.dial(addr.clone(), PeerName::Node(NodeId(*id))))
        .collect();
    let node_ids: Vec<u32> = cluster.nodes.iter().map(|(id, _)| *id).collect();

    // Every node must answer before anything is measured; a refused handshake fails at once.
    for (i, id) in node_ids.iter().enumerate() {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut answered = false;
        while !answered && tokio::time::Instant::now() < deadline {
            answered = ping(&links[i], &mut inbox, 1, Duration::from_millis(300))
                .await
                .is_some();
            if let Some(refusal) = links[i].refusal() {
                return Err(Error::Scenario(refused_message(
                    *id,
                    &cluster.nodes[i].1.to_string(),
                    &refusal,
                    cluster.client_tls.as_ref(),
                )));
            }
        }
        if !answered {
            let log = cluster.node_log(*id);
            return Err(Error::Scenario(format!(
                "node {id} at {} did not answer within {READY_TIMEOUT:?}{}",
                cluster.nodes[i].1,
                if log.is_empty() {
                    String::new()
                } else {
                    format!("; its log:\n{log}")
                }
            )));
        }
    }
    let mut floor = Vec::new();
    let mut clock_offsets = Vec::new();
    for (i, id) in node_ids.iter().enumerate() {
        let mut histogram = latency_histogram();
        let mut best: Option<Pong> = None;
        for _ in 0..scenario.measure.pings.max(1) {
            if let Some(pong) = ping(&links[i], &mut inbox, 1, Duration::from_secs(2)).await {
                record_ns(&mut histogram, pong.rtt.as_nanos() as u64);
                if best.is_none_or(|b| pong.rtt < b.rtt) {
                    best = Some(pong);
                }
            }
        }
        floor.push((*id, Percentiles::of(&histogram)));
        if let Some(best) = best {
            clock_offsets.push(ClockOffset {
                node: *id,
                offset_ns: best.offset_ns,
                bound_ns: best.rtt.as_nanos() as u64 / 2,
            });
        }
    }
    let mut next_request = 1;
    let (mut zones, mut released) = match ZoneShaper::new(scenario)? {
        Some((shaper, released)) => (Some(shaper), Some(released)),
        None => (None, None),
    };
    let mut zone_pings = Vec::new();
    if let (Some(shaper), Some(released)) = (&mut zones, &mut released) {
        // Nodes delay their links to each other before anything is measured.
        for (link, id) in links.iter().zip(&node_ids) {
            let spec = node_fault_spec(scenario, *id, LinkFaults::default(), Vec::new(), 0);
            let command = AdminCommand::SetFaults(Box::new(spec));
            if admin(link, &mut inbox, &mut next_request, command)
                .await
                .is_none()
            {
                return Err(Error::Scenario(format!(
                    "node {id} did not accept its zone delays (an admin command) within 2 s"
                )));
            }
        }
        zone_pings = ping_zones(
            &links,
            &node_ids,
            &mut inbox,
            (shaper, released),
            scenario.measure.pings.max(1),
        )
        .await;
    }
    let stats_before = node_stats(&links, &mut inbox, &mut next_request).await;
    check_protocol(scenario, &stats_before)?;
    let start_late = match scenario.run.start_unix_ns {
        Some(at) => Some(wait_until_unix(at).await?),
        None => None,
    };

    let acceptors = links.len();
    let epoch_ns = unix_now_ns();
    let first_id = ProposerId(cluster.client * PROPOSER_IDS_PER_CLIENT);
    let generator = Generator::new(scenario, first_id);
    let warmup_end = generator.warmup_end();
    let configs = proposer_configs(scenario, acceptors, epoch_ns);
    let multi_paxos = scenario.target.protocol == Protocol::MultiPaxos;
    let mut host = if multi_paxos {
        let nodes: Vec<NodeId> = node_ids.iter().map(|n| NodeId(*n)).collect();
        let initial = scenario.target.leader.initial.map(NodeId);
        let clients = ClientConfig::spread(&configs, &nodes, initial);
        ProposerHost::clients(clients, first_id, scenario.seed, generator)
    } else {
        ProposerHost::new(configs, first_id, scenario.seed, generator)
    }
    .map_err(|e| Error::Scenario(e.to_string()))?;
    *host.checker_mut() = evidence_checker(evidence, keep_evidence)?;
    let count = scenario.workload.proposers as usize;
    if scenario.target.kind == TargetKind::Attach {
        // The cluster may hold other runs' decisions, and other generators may share its keys.
        host.checker_mut().set_origins(Origins {
            run: scenario.run.tag,
            proposers: first_id.0..first_id.0 + count as u32,
        });
    }
    let mut driver = Driver {
        scenario,
        started: Instant::now(),
        endpoint,
        links,
        node_ids,
        host,
        plan: FaultPlan::new(scenario),
        next_fault: 0,
        protocol: ProtocolMetrics::new(count, warmup_end, scenario.measure.livelock_window),
        keep_acks: keep_evidence,
        cuts: Cuts::default(),
        next_request,
        resources: ResourceSampler::new(&cluster.processes(), scenario.workload.warmup),
        zones,
        tally: NodeTally::default(),
        leader: None,
        restarts: Vec::new(),
        doomed: None,
    };
    let now = driver.now();
    driver.host.start(now, &mut driver.protocol);
    driver.flush();
    let interrupted = driver
        .run(&mut inbox, released.as_mut(), cluster, interrupt, progress)
        .await;
    next_request = driver.next_request;
    if scenario.target.zones.is_some() && scenario.target.kind == TargetKind::Attach {
        // Attached nodes outlive the run: take the zone delays off them.
        for link in &driver.links {
            let command = AdminCommand::SetFaults(Box::default());
            let _ = admin(link, &mut inbox, &mut next_request, command).await;
        }
    }
    let stats_after = node_stats(&driver.links, &mut inbox, &mut next_request).await;
    for stats in &stats_after {
        driver.tally.note(stats, true);
    }
    driver.protocol.node_load = driver.tally.node_load(&stats_after);
    let leaders = driver.tally.leaders(multi_paxos);
    let now = driver.now();
    driver.protocol.finish(now);
    let resources = driver
        .resources
        .finish(driver.started.elapsed(), &cluster.processes());
    let (generator, mut checker) = driver.host.into_parts();
    finish_evidence(&mut checker, evidence, keep_evidence)?;
    let mut output = RunOutput::measured(
        generator,
        &checker,
        driver.protocol,
        wall.elapsed(),
        interrupted,
        resources,
        UNIX_EPOCH + Duration::from_nanos(epoch_ns),
    );
    output.node_stats = stats_after
        .iter()
        .map(|after| {
            let before = stats_before.iter().find(|b| b.node == after.node);
            stats_delta(after, before)
        })
        .collect();
    output.node_messages = output.node_stats.iter().fold((0, 0), |(m, b), s| {
        (m + s.paxos_out, b + s.transport.bytes_out)
    });
    output.floor = floor;
    output.clock_offsets = clock_offsets;
    output.start_late = start_late;
    output.zone_pings = zone_pings;
    output.leaders = leaders;
    Ok(output)
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

/// Waits until the wall clock reads `at` (UNIX nanoseconds); returns how late it woke. A start
/// already past is an error: the generators it was meant to start with have started.
async fn wait_until_unix(at: u64) -> Result<Duration, Error> {
    let now = unix_now_ns();
    if now > at {
        let stamp = report::utc_stamp(UNIX_EPOCH + Duration::from_nanos(at), false);
        return Err(Error::Scenario(format!(
            "the synchronized start ({stamp}, from `measure.start_at` or `--start-at`) passed {:.3} s \
             before this generator was ready: give every generator time to start, connect and \
             ping (choose a start a minute or more ahead)",
            (now - at) as f64 / 1e9
        )));
    }
    // tokio's timer has millisecond resolution: it sleeps to within a few milliseconds, and a
    // short blocking sleep (about 60 µs accurate here) does the rest.
    let coarse = Duration::from_nanos(at - now).saturating_sub(Duration::from_millis(3));
    tokio::time::sleep(coarse).await;
    let now = unix_now_ns();
    if at > now {
        std::thread::sleep(Duration::from_nanos(at - now));
    }
    Ok(Duration::from_nanos(unix_now_ns().saturating_sub(at)))
}

fn stats_delta(after: &NodeStats, before: Option<&NodeStats>) -> NodeStats {
    let Some(before) = before else {
        return after.clone();
    };
    let mut delta = after.clone();
    delta.paxos_in -= before.paxos_in.min(delta.paxos_in);
    delta.paxos_out -= before.paxos_out.min(delta.paxos_out);
    delta.batches -= before.batches.min(delta.batches);
    delta.records -= before.records.min(delta.records);
    delta.transport.bytes_out -= before.transport.bytes_out.min(delta.transport.bytes_out);
    delta.transport.bytes_in -= before.transport.bytes_in.min(delta.transport.bytes_in);
    delta.transport.frames_out -= before.transport.frames_out.min(delta.transport.frames_out);
    delta.transport.frames_in -= before.transport.frames_in.min(delta.transport.frames_in);
    delta.transport.writes -= before.transport.writes.min(delta.transport.writes);
    delta
}

/// A ping's answer.
#[derive(Clone, Copy, Debug)]
struct Pong {
    /// The round trip.
    rtt: Duration,
    /// The node's clock minus ours, had the node read it halfway through the round trip.
    offset_ns: i64,
}

/// One ping's round trip and the node's clock, or `None` after `timeout`.
async fn ping(
    link: &Link,
    inbox: &mut mpsc::Receiver<Inbound>,
    nonce: u64,
    timeout: Duration,
) -> Option<Pong> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut sent = Instant::now();
    let mut sent_unix_ns = unix_now_ns();
    link.send(Envelope::Ping { nonce });
    let mut resend = tokio::time::Instant::now() + Duration::from_millis(200);
    loop {
        tokio::select! {
            inbound = inbox.recv() => {
                if let Some(Inbound { envelope: Envelope::Pong { nonce: n, unix_ns }, peer, .. }) = inbound
                    && n == nonce
                    && peer == link.peer()
                {
                    let rtt = sent.elapsed();
                    let midpoint = i128::from(sent_unix_ns) + (rtt.as_nanos() / 2) as i128;
                    let offset_ns = (i128::from(unix_ns) - midpoint)
                        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
                    return Some(Pong { rtt, offset_ns });
                }
            }
            () = tokio::time::sleep_until(resend) => {
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                // A node that is still starting drops early pings; ask again.
                sent = Instant::now();
                sent_unix_ns = unix_now_ns();
                link.send(Envelope::Ping { nonce });
                resend = tokio::time::Instant::now() + Duration::from_millis(200);
            }
        }
    }
}

/// Zone pings' nonces carry this bit, then the round and the pair: other pings' never do.
const ZONE_PING: u64 = 1 << 48;
/// Between rounds of zone pings: every pair is pinged once per round.
const ZONE_PING_GAP: Duration = Duration::from_millis(2);

/// The round trip from every proposer zone to every node, emulated delays included: `pings`
/// rounds, each pinging every pair, 2 ms apart, so that the wait is about one longest round
/// trip however many pairs there are. Each pong waits out its way back in the shaper before it
/// counts, as a reply does.
async fn ping_zones(
    links: &[Link],
    node_ids: &[u32],
    inbox: &mut mpsc::Receiver<Inbound>,
    (shaper, released): (&mut ZoneShaper, &mut mpsc::UnboundedReceiver<Inbound>),
    pings: u32,
) -> Vec<ZonePing> {
    let zones = shaper.geography().zones();
    let pairs: Vec<(usize, usize)> = (0..zones)
        .flat_map(|zone| (0..links.len()).map(move |node| (zone, node)))
        .collect();
    let mut histograms = vec![latency_histogram(); pairs.len()];
    let mut sent_at = std::collections::HashMap::new();
    let expected = pairs.len() as u64 * u64::from(pings);
    let (mut round, mut received) = (0u32, 0u64);
    let mut next_round = tokio::time::Instant::now();
    let mut deadline = None;
    let record = |inbound: Inbound,
                  sent_at: &mut std::collections::HashMap<u64, Instant>,
                  histograms: &mut Vec<_>| {
        if let Envelope::Pong { nonce, .. } = inbound.envelope
            && let Some(sent) = sent_at.remove(&nonce)
        {
            let pair = (nonce & 0xffff) as usize;
            record_ns(&mut histograms[pair], sent.elapsed().as_nanos() as u64);
            return true;
        }
        false
    };
    loop {
        let now = tokio::time::Instant::now();
        if round < pings && now >= next_round {
            for (pair, &(zone, node)) in pairs.iter().enumerate() {
                let nonce = ZONE_PING | (u64::from(round) << 16) | pair as u64;
                let delay = shaper.to_node(zone, node);
                sent_at.insert(nonce, Instant::now());
                links[node].send_delayed(Envelope::Ping { nonce }, delay);
            }
            round += 1;
            next_round += ZONE_PING_GAP;
            if round == pings {
                let longest = shaper.geography().longest_round_trip();
                deadline = Some(now + 2 * longest + Duration::from_secs(2));
            }
        }
        if received == expected || deadline.is_some_and(|end| now >= end) {
            break;
        }
        let wake = if round < pings {
            next_round
        } else {
            deadline.unwrap_or(now)
        };
        tokio::select! {
            inbound = inbox.recv() => {
                let Some(inbound) = inbound else { break };
                if let Envelope::Pong { nonce, .. } = inbound.envelope
                    && nonce & ZONE_PING != 0
                    && let Some(&(zone, node)) = pairs.get((nonce & 0xffff) as usize)
                {
                    let delay = shaper.from_node(node, zone);
                    if let Some(inbound) = shaper.hold(inbound, delay) {
                        received += u64::from(record(inbound, &mut sent_at, &mut histograms));
                    }
                }
            }
            Some(inbound) = released.recv() => {
                received += u64::from(record(inbound, &mut sent_at, &mut histograms));
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    pairs
        .iter()
        .zip(&histograms)
        .map(|(&(zone, node), histogram)| ZonePing {
            zone,
            node: node_ids[node],
            rtt: Percentiles::of(histogram),
        })
        .collect()
}

async fn node_stats(
    links: &[Link],
    inbox: &mut mpsc::Receiver<Inbound>,
    next_request: &mut u64,
) -> Vec<NodeStats> {
    let mut stats = Vec::new();
    for link in links {
        if let Some(AdminReply::Stats(s)) =
            admin(link, inbox, next_request, AdminCommand::Stats).await
        {
            stats.push(*s);
        }
    }
    stats
}

async fn admin(
    link: &Link,
    inbox: &mut mpsc::Receiver<Inbound>,
    next_request: &mut u64,
    command: AdminCommand,
) -> Option<AdminReply> {
    let request = *next_request;
    *next_request += 1;
    link.send(Envelope::Admin { request, command });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, inbox.recv()).await {
            Ok(Some(Inbound {
                envelope: Envelope::AdminReply { request: r, reply },
                ..
            })) if r == request => {
                return Some(reply);
            }
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

impl<T: Transport + std::fmt::Debug> Driver<'_, T> {
    fn now(&self) -> Time {
        Time(self.started.elapsed().as_nanos() as u64)
    }

    fn show_progress(&self, progress: &indicatif::ProgressBar) {
        let generator = self.host.workload();
        let ops = &generator.metrics;
        let now = self.now();
        let phase = if now < generator.warmup_end() {
            "warmup"
        } else {
            "measuring"
        };
        let last = ops.seconds.iter().rev().find(|s| s.completed > 0);
        progress.set_message(format!(
            "{phase} · {} ops ended · last second: {} ops/s, p99 {} µs · {} retries",
            ops.completed(),
            last.map_or(0, |s| s.completed),
            last.map_or(0, |s| s.quantiles().1),
            self.protocol.retries,
        ));
    }

    /// Sends what the host has to send, except across a partition.
    fn flush(&mut self) {
        // One clock read per batch: the messages of a batch leave together.
        let now = self.now();
        while let Some(Transmit { from, to, message }) = self.host.poll_transmit() {
            // A proposer host sends only from its own proposers.
            let Some(from) = (match from {
                transmit::Address::Proposer(id) => self.host.index_of(id),
                transmit::Address::Node(_) => None,
            }) else {
                continue;
            };
            let mut sent = 0;
            let zone = self
                .zones
                .as_ref()
                .map(|z| z.proposer_zone(from.0 as usize));
            for (position, (link, node)) in self.links.iter().zip(&self.node_ids).enumerate() {
                if to.includes(NodeId(*node)) && self.cuts.can_reach(from.0, *node) {
                    let delay = match (&mut self.zones, zone) {
                        (Some(zones), Some(zone)) => zones.to_node(zone, position),
                        _ => Duration::ZERO,
                    };
                    link.send_delayed(Envelope::Paxos(message.clone()), delay);
                    sent += 1;
                }
            }
            self.protocol.on_broadcast(now, &message, sent);
        }
    }

    /// A frame from a node: with zones, a reply waits out its way back to its proposer's zone
    /// first, and comes back through [`Driver::deliver`]. Inlined, so that without zones every
    /// frame goes to `deliver` as directly as it did before there were zones.
    #[inline]
    fn arrive(&mut self, now: Time, inbound: Inbound) {
        if self.zones.is_none() {
            self.deliver(now, inbound);
            return;
        }
        if let (Some(zones), Envelope::Reply { proposer, .. }, PeerName::Node(node)) =
            (&mut self.zones, &inbound.envelope, inbound.peer)
            && let Some(index) = self.host.index_of(*proposer)
            && let Some(position) = self.node_ids.iter().position(|id| *id == node.0)
        {
            let zone = zones.proposer_zone(index.0 as usize);
            let delay = zones.from_node(position, zone);
            if let Some(inbound) = zones.hold(inbound, delay) {
                self.deliver(now, inbound);
            }
            return;
        }
        self.deliver(now, inbound);
    }

    fn deliver(&mut self, now: Time, inbound: Inbound) {
        if let Envelope::AdminReply {
            request,
            reply: AdminReply::Stats(stats),
        } = &inbound.envelope
        {
            if let Some(doomed) = &mut self.doomed
                && doomed.request == *request
            {
                doomed.answered = true;
            }
            // The answer to the once-a-second poll: the node's commits so far.
            self.resources
                .note_fsyncs(&format!("node {}", stats.node), stats.batches);
            let measuring = now >= self.host.workload().warmup_end();
            self.tally.note(stats, measuring);
            if stats.leading.is_some() {
                self.leader = Some(stats.node);
            }
            return;
        }
        if let Envelope::Reply { proposer, message } = inbound.envelope {
            // Whatever happens to it here, the node sent it: its store must back it.
            if self.keep_acks {
                self.host.checker_mut().on_reply(&message);
            }
            let PeerName::Node(node) = inbound.peer else {
                return;
            };
            self.protocol.on_node_reply(now, node.0);
            if let Message::ClientReply(reply) = &message {
                // The host tells the checker what the reply decided; here it names the leader.
                self.leader = Some(reply.from.0);
            }
            // A reply already in flight when a partition began is lost with it.
            if let Some(index) = self.host.index_of(proposer)
                && self.cuts.can_reach(index.0, node.0)
            {
                self.host
                    .handle_reply(now, proposer, &message, &mut self.protocol);
            }
        }
    }

    /// Applies step `index` of the fault plan: a process kill or restart, a clock step, or
    /// fault-layer and disk settings for the generator and (through admin commands) the nodes.
    fn apply_fault(&mut self, index: usize, cluster: &mut TargetCluster) {
        let step = self.plan.steps[index].clone();
        let now = self.now();
        let label = step.label;
        self.protocol.note_fault(now, label.clone());
        info!(at_ns = step.at.0, "fault: {label}");
        match step.action {
            Planned::Kill(node) => cluster.kill_node(node),
            Planned::KillLeader(down) => match self.leader.take() {
                Some(node) => {
                    let request = self.next_request;
                    self.next_request += 1;
                    if let Some(link) = self.link_to(node) {
                        link.send(Envelope::Admin {
                            request,
                            command: AdminCommand::Stats,
                        });
                    }
                    self.doomed = Some(Doomed {
                        node,
                        request,
                        answered: false,
                        deadline: now + Duration::from_millis(200),
                        down,
                        label,
                    });
                }
                None => warn!("kill-leader: no node has answered a client as leader yet; skipped"),
            },
            Planned::Restart(node) => {
                if let Err(e) = cluster.start_node(node) {
                    warn!("restarting node {node}: {e}");
                }
                self.protocol.start_recovery(now, label, vec![node]);
            }
            Planned::Cut(cuts) => {
                self.cuts = cuts;
                for (link, id) in self.links.clone().iter().zip(self.node_ids.clone()) {
                    let partitioned = self
                        .cuts
                        .cut_from(id)
                        .into_iter()
                        .map(|n| PeerName::Node(NodeId(n)).to_string())
                        .collect();
                    let spec =
                        node_fault_spec(self.scenario, id, LinkFaults::default(), partitioned, 0);
                    self.set_node_faults(link, spec);
                }
            }
            Planned::Heal => {
                // Nodes some proposer could not reach must be heard from again; after a link
                // fault, every node.
                let mut concerned: Vec<u32> = self
                    .node_ids
                    .iter()
                    .copied()
                    .filter(|n| {
                        (0..self.scenario.workload.proposers).any(|p| !self.cuts.can_reach(p, *n))
                    })
                    .collect();
                if concerned.is_empty() {
                    concerned = self.node_ids.clone();
                }
                self.cuts = Cuts::default();
                let _ = self.endpoint.faults().set(&FaultSpec::default());
                for (link, id) in self.links.clone().iter().zip(self.node_ids.clone()) {
                    let spec =
                        node_fault_spec(self.scenario, id, LinkFaults::default(), Vec::new(), 0);
                    self.set_node_faults(link, spec);
                }
                self.protocol.start_recovery(now, label, concerned);
            }
            Planned::ClockStep {
                proposers,
                delta_ns,
            } => {
                for proposer in proposers {
                    self.host.step_clock(proposer, delta_ns);
                }
            }
            Planned::DiskFail(disk) => {
                if let Some(link) = self
                    .node_ids
                    .iter()
                    .position(|n| *n == disk.node)
                    .map(|i| self.links[i].clone())
                {
                    let request = self.next_request;
                    self.next_request += 1;
                    link.send(Envelope::Admin {
                        request,
                        command: AdminCommand::SetDiskFault(disk.mode),
                    });
                }
            }
            Planned::Links(all) => {
                let seed = Stream::Faults.seed(self.scenario.seed);
                let spec = FaultSpec {
                    all,
                    seed,
                    ..FaultSpec::default()
                };
                let _ = self.endpoint.faults().set(&spec);
                for (link, id) in self.links.clone().iter().zip(self.node_ids.clone()) {
                    let spec = node_fault_spec(self.scenario, id, all, Vec::new(), seed);
                    self.set_node_faults(link, spec);
                }
            }
        }
    }

    /// The link to node `node`.
    fn link_to(&self, node: u32) -> Option<Link> {
        let position = self.node_ids.iter().position(|n| *n == node)?;
        self.links.get(position).cloned()
    }

    /// Kills the doomed leader once its counters are in (or after 200 ms without them), and
    /// restarts the killed leaders whose time down is over.
    fn restart_due(&mut self, now: Time, cluster: &mut TargetCluster) {
        if let Some(doomed) = self.doomed.take_if(|d| d.answered || now >= d.deadline) {
            info!(
                "killing the leader, node {}, for {:?}",
                doomed.node, doomed.down
            );
            cluster.kill_node(doomed.node);
            self.restarts.push((now + doomed.down, doomed.node));
            self.protocol.start_recovery(now, doomed.label, Vec::new());
        }
        let (due, later): (Vec<_>, Vec<_>) = self.restarts.iter().partition(|(at, _)| *at <= now);
        self.restarts = later;
        for (_, node) in due {
            info!("restarting node {node}, the leader killed earlier");
            self.protocol
                .note_fault(now, format!("restart node {node} (the killed leader)"));
            if let Err(e) = cluster.start_node(node) {
                warn!("restarting node {node}: {e}");
            }
        }
    }

    /// Sends a fault setting without waiting for the answer: replies and Paxos traffic share the
    /// inbox, and the driver loop must keep serving proposers.
    fn set_node_faults(&mut self, link: &Link, spec: FaultSpec) {
        let request = self.next_request;
        self.next_request += 1;
        link.send(Envelope::Admin {
            request,
            command: AdminCommand::SetFaults(Box::new(spec)),
        });
    }

    /// The loop: apply due faults, fire the host's timers, deliver replies, until the host is
    /// finished, its drain deadline passes, or Ctrl-C. Returns whether it was interrupted.
    async fn run(
        &mut self,
        inbox: &mut mpsc::Receiver<Inbound>,
        mut released: Option<&mut mpsc::UnboundedReceiver<Inbound>>,
        cluster: &mut TargetCluster,
        interrupt: &AtomicBool,
        progress: &indicatif::ProgressBar,
    ) -> bool {
        let deadline = self.host.deadline();
        let mut next_progress = Instant::now();
        let mut next_sample = Instant::now() + Duration::from_secs(1);
        loop {
            if Instant::now() >= next_progress {
                next_progress = Instant::now() + Duration::from_millis(250);
                self.show_progress(progress);
            }
            if Instant::now() >= next_sample {
                next_sample += Duration::from_secs(1);
                self.resources
                    .sample(self.started.elapsed(), &cluster.processes());
                // Asked now, answered within the next second: fsyncs per second lag by one.
                for link in self.links.clone() {
                    let request = self.next_request;
                    self.next_request += 1;
                    link.send(Envelope::Admin {
                        request,
                        command: AdminCommand::Stats,
                    });
                }
            }
            let now = self.now();
            while let Some(step) = self.plan.steps.get(self.next_fault)
                && step.at <= now
            {
                self.next_fault += 1;
                self.apply_fault(self.next_fault - 1, cluster);
            }
            self.restart_due(now, cluster);
            if self.host.poll_timeout().is_some_and(|at| at <= now) {
                self.host.handle_timeout(now, &mut self.protocol);
                self.flush();
            }
            if self.host.is_finished() {
                return false;
            }
            if interrupt.load(Ordering::Relaxed) {
                self.host.stop();
                return true;
            }
            if deadline.is_some_and(|end| now >= end) {
                self.host.stop();
                return false;
            }
            let next_fault = self.plan.steps.get(self.next_fault).map(|step| step.at);
            let wake = match (self.host.poll_timeout(), next_fault) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // Wake at least every 50 ms for the progress bar, Ctrl-C and the deadline.
            let wait = wake
                .map_or(Duration::MAX, |at| at.saturating_since(now))
                .min(Duration::from_millis(50));
            // Without zones, the wait is the inbox alone, as it was before there were zones.
            let received = match released.as_deref_mut() {
                None => tokio::time::timeout(wait, inbox.recv())
                    .await
                    .map(|inbound| inbound.map(|i| (i, false))),
                Some(released) => {
                    let either = async {
                        tokio::select! {
                            inbound = inbox.recv() => inbound.map(|i| (i, false)),
                            Some(inbound) = released.recv() => Some((inbound, true)),
                        }
                    };
                    tokio::time::timeout(wait, either).await
                }
            };
            match received {
                Ok(Some((inbound, was_held))) => {
                    // One clock read for everything that arrived together.
                    let now = self.now();
                    if was_held {
                        self.deliver(now, inbound);
                    } else {
                        self.arrive(now, inbound);
                    }
                    while let Ok(inbound) = inbox.try_recv() {
                        self.arrive(now, inbound);
                    }
                    if let Some(released) = released.as_deref_mut() {
                        while let Ok(inbound) = released.try_recv() {
                            self.deliver(now, inbound);
                        }
                    }
                    self.flush();
                }
                Ok(None) => return false,
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::BenchConfig;

    fn scenario(target: &str) -> Scenario {
        let yaml = format!("name: t\ntarget:\n{target}\nworkload:\n  duration_s: 1\n");
        BenchConfig::parse(Path::new("t.yaml"), yaml)
            .unwrap()
            .scenarios[0]
            .clone()
    }

    const ATTACH: &str = "  kind: attach\n  attach:\n    nodes: [{id: 1, addr: 127.0.0.1:7001}]\n    ca: ca.pem\n    cert: c.pem\n    key: c.key";

    #[test]
    fn attached_runs_keep_evidence_only_when_asked() {
        assert_eq!(
            evidence_policy(&scenario("  storage: durable")),
            (true, true)
        );
        assert_eq!(
            evidence_policy(&scenario("  storage: memory")),
            (false, false)
        );
        assert_eq!(evidence_policy(&scenario(ATTACH)), (false, false));
        let mut asked = scenario(ATTACH);
        asked.measure.evidence = true;
        assert_eq!(evidence_policy(&asked), (false, true));
    }
}
