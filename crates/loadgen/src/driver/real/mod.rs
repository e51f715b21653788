//! The real targets: node processes spawned on 127.0.0.1 (`spawn`) or already running
//! (`attach`), reached over QUIC or TCP. Every proposer is a core state machine multiplexed on
//! one current-thread task; all share one link per node with coalesced writes. Faults of the
//! schedule become process kills and restarts or fault-layer settings.
//!
//! The cluster's lifecycle is in [`cluster`], the measurements around a run in [`probes`], the
//! fault schedule in [`faults`] and the loop itself in [`drive_loop`]; this file sets a run up
//! and collects its output.

mod cluster;
mod drive_loop;
mod faults;
mod probes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, UNIX_EPOCH};

use paxbench_core::checker::Origins;
use paxbench_core::host::{ProposerHost, client_proposers};
use paxbench_core::{NodeId, ProposerId, Time};
use paxbench_quic::wire::unix_now_ns;
use paxbench_quic::{
    Control, Endpoint, EndpointConfig, FaultLayer, Identity, Inbox, Link, PeerName, QuicTransport,
    TcpTransport, Transport, TransportKind,
};
use tracing::info;

pub use cluster::TargetCluster;

use super::fault_plan::FaultPlan;
use super::nodes::NodeTally;
use super::protocol::{check_protocol, protocol_config};
use super::{RunOutput, evidence_checker, finish_evidence, proposer_configs};
use crate::config::{Scenario, TargetKind};
use crate::driver::topology::Cuts;
use crate::driver::workload::Generator;
use crate::driver::zones::ZoneShaper;
use crate::error::Error;
use crate::measure::ProtocolMetrics;
use crate::measure::resources::ResourceSampler;

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
    let me = cluster.me;
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
                .tls
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
            TcpTransport::client(me, cluster.tcp_auth.clone()),
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
    /// Admin requests to the nodes, numbered.
    control: Control,
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
    /// The stats request whose answer sets it off (none when there is no link to it).
    request: Option<u64>,
    answered: bool,
    /// Killed then, answered or not.
    deadline: Time,
    down: Duration,
    label: String,
}

/// Connects, waits for the nodes, measures the floor (and zone round trips), runs, and
/// collects what the run and the nodes measured.
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
    let mut control = Control::new();
    // Every node must answer before anything is measured; a refused handshake fails at once.
    cluster::wait_ready(cluster, &links, &mut inbox, &mut control).await?;
    let pings = scenario.measure.pings.max(1);
    let floor = probes::floor(&links, &node_ids, &mut inbox, &mut control, pings).await;
    let (mut zones, mut released) = match ZoneShaper::new(scenario)? {
        Some((shaper, released)) => (Some(shaper), Some(released)),
        None => (None, None),
    };
    let mut zone_pings = Vec::new();
    if let (Some(shaper), Some(released)) = (&mut zones, &mut released) {
        probes::set_zone_delays(scenario, &links, &node_ids, &mut inbox, &mut control).await?;
        zone_pings =
            probes::ping_zones(&links, &node_ids, &mut inbox, (shaper, released), pings).await;
    }
    let stats_before = probes::node_stats(&links, &mut inbox, &mut control).await;
    check_protocol(scenario, &stats_before)?;
    let start_late = match scenario.run.start_unix_ns {
        Some(at) => Some(probes::wait_until_unix(at).await?),
        None => None,
    };
    let epoch_ns = unix_now_ns();
    let connected = Connected {
        endpoint,
        links,
        node_ids,
        control,
        zones,
    };
    let mut driver = Driver::new(
        scenario,
        connected,
        cluster,
        (evidence, keep_evidence),
        epoch_ns,
    )?;
    let now = driver.now();
    driver.host.start(now, &mut driver.protocol);
    driver.flush();
    let interrupted = driver
        .run(&mut inbox, released.as_mut(), cluster, interrupt, progress)
        .await;
    let mut output = driver
        .finish(
            &mut inbox,
            cluster,
            (evidence, keep_evidence),
            (epoch_ns, wall),
            interrupted,
        )
        .await?;
    output.node_stats = output
        .node_stats
        .iter()
        .map(|after| {
            let before = stats_before.iter().find(|b| b.node == after.node);
            probes::stats_delta(after, before)
        })
        .collect();
    output.node_messages = output.node_stats.iter().fold((0, 0), |(m, b), s| {
        (m + s.paxos_out, b + s.transport.bytes_out)
    });
    output.floor = floor.floor;
    output.clock_offsets = floor.clock_offsets;
    output.start_late = start_late;
    output.zone_pings = zone_pings;
    Ok(output)
}

/// The links a run drives, once every node answered.
struct Connected<T: Transport> {
    endpoint: Endpoint<T>,
    links: Vec<Link>,
    node_ids: Vec<u32>,
    control: Control,
    zones: Option<ZoneShaper>,
}

impl<'a, T: Transport + std::fmt::Debug> Driver<'a, T> {
    /// The proposer host the scenario asks for (proposers, or Multi-Paxos clients), with the
    /// checker streaming its evidence, over the connected links.
    fn new(
        scenario: &'a Scenario,
        connected: Connected<T>,
        cluster: &TargetCluster,
        (evidence, keep_evidence): (&Path, bool),
        epoch_ns: u64,
    ) -> Result<Self, Error> {
        // Nodes take proposals from client N (or admin N) only for its own proposers.
        let first_id = client_proposers(cluster.client)
            .map(|range| ProposerId(range.start))
            .ok_or_else(|| {
                Error::Scenario(format!("attach.client {} is too large", cluster.client))
            })?;
        let generator = Generator::new(scenario, first_id);
        let warmup_end = generator.warmup_end();
        let configs = proposer_configs(scenario, connected.links.len(), epoch_ns);
        let nodes: Vec<NodeId> = connected.node_ids.iter().map(|n| NodeId(*n)).collect();
        let protocol = protocol_config(scenario, &nodes, NodeId);
        let mut host = ProposerHost::for_protocol(
            &protocol,
            configs,
            &nodes,
            first_id,
            scenario.seed,
            generator,
        )
        .map_err(|e| Error::Scenario(e.to_string()))?;
        *host.checker_mut() = evidence_checker(evidence, keep_evidence)?;
        let count = scenario.workload.proposers as usize;
        if scenario.target.kind == TargetKind::Attach {
            // The cluster may hold other runs' decisions, and other generators may share its
            // keys.
            host.checker_mut().set_origins(Origins {
                run: scenario.run.tag,
                proposers: first_id.0..first_id.0 + count as u32,
            });
        }
        Ok(Driver {
            scenario,
            started: Instant::now(),
            endpoint: connected.endpoint,
            links: connected.links,
            node_ids: connected.node_ids,
            host,
            plan: FaultPlan::new(scenario),
            next_fault: 0,
            protocol: ProtocolMetrics::new(count, warmup_end, scenario.measure.livelock_window),
            keep_acks: keep_evidence,
            cuts: Cuts::default(),
            control: connected.control,
            resources: ResourceSampler::new(&cluster.processes(), scenario.workload.warmup),
            zones: connected.zones,
            tally: NodeTally::default(),
            leader: None,
            restarts: Vec::new(),
            doomed: None,
        })
    }

    /// After the loop: the nodes' last counters, the resources, the checker's evidence, and
    /// the run's output; `wall` began before the measurements around the run, the caller's.
    async fn finish(
        mut self,
        inbox: &mut Inbox,
        cluster: &TargetCluster,
        (evidence, keep_evidence): (&Path, bool),
        (epoch_ns, wall): (u64, Instant),
        interrupted: bool,
    ) -> Result<RunOutput, Error> {
        if self.scenario.target.zones.is_some() && self.scenario.target.kind == TargetKind::Attach {
            probes::clear_zone_delays(&self.links, inbox, &mut self.control).await;
        }
        let stats_after = probes::node_stats(&self.links, inbox, &mut self.control).await;
        for stats in &stats_after {
            self.tally.note(stats, true);
        }
        self.protocol.node_load = self.tally.node_load(&stats_after);
        let leaders = self
            .tally
            .leaders(self.scenario.target.protocol.has_leader());
        let now = self.now();
        self.protocol.finish(now);
        let resources = self
            .resources
            .finish(self.started.elapsed(), &cluster.processes());
        let (generator, mut checker) = self.host.into_parts();
        finish_evidence(&mut checker, evidence, keep_evidence)?;
        let mut output = RunOutput::measured(
            generator,
            &checker,
            self.protocol,
            wall.elapsed(),
            interrupted,
            resources,
            UNIX_EPOCH + Duration::from_nanos(epoch_ns),
        );
        output.node_stats = stats_after;
        output.leaders = leaders;
        Ok(output)
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
