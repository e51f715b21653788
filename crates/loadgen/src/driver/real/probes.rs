//! What the driver measures of the nodes around a run, not as part of it: the ping floor and
//! each node's clock offset, the round trip from every zone to every node, the nodes' counters
//! before and after, and the wait for a synchronized start.

use std::time::{Duration, Instant, UNIX_EPOCH};

use paxbench_quic::wire::unix_now_ns;
use paxbench_quic::{
    AdminCommand, Control, Envelope, Inbound, Inbox, Link, LinkFaults, NodeStats, Pong,
};
use tokio::sync::mpsc;
use tracing::warn;

use crate::config::Scenario;
use crate::driver::zones::{ZoneShaper, node_fault_spec};
use crate::driver::{ClockOffset, ZonePing};
use crate::error::Error;
use crate::measure::{Percentiles, latency_histogram, record_ns};
use crate::report;

/// How long a node may take to answer an admin command before or after the run.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The ping floor of each node and, from each node's fastest ping, its clock offset.
pub(super) struct Floor {
    pub(super) floor: Vec<(u32, Percentiles)>,
    pub(super) clock_offsets: Vec<ClockOffset>,
}

/// Pings every node `pings` times.
pub(super) async fn floor(
    links: &[Link],
    node_ids: &[u32],
    inbox: &mut Inbox,
    control: &mut Control,
    pings: u32,
) -> Floor {
    let mut floor = Vec::new();
    let mut clock_offsets = Vec::new();
    for (link, id) in links.iter().zip(node_ids) {
        let mut histogram = latency_histogram();
        let mut best: Option<Pong> = None;
        for _ in 0..pings {
            if let Ok(pong) = control.ping(link, inbox, Duration::from_secs(2)).await {
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
    Floor {
        floor,
        clock_offsets,
    }
}

/// Has every node delay its links to the others as the scenario's zones say, before anything
/// is measured; a node that does not confirm fails the run.
pub(super) async fn set_zone_delays(
    scenario: &Scenario,
    links: &[Link],
    node_ids: &[u32],
    inbox: &mut Inbox,
    control: &mut Control,
) -> Result<(), Error> {
    for (link, id) in links.iter().zip(node_ids) {
        let spec = node_fault_spec(scenario, *id, LinkFaults::default(), Vec::new(), 0);
        let command = AdminCommand::SetFaults(Box::new(spec));
        control
            .call(link, inbox, command, ADMIN_TIMEOUT)
            .await
            .map_err(|e| {
                Error::Scenario(format!("node {id} did not accept its zone delays: {e}"))
            })?;
    }
    Ok(())
}

/// Takes the zone delays off attached nodes, which outlive the run.
pub(super) async fn clear_zone_delays(links: &[Link], inbox: &mut Inbox, control: &mut Control) {
    for link in links {
        let command = AdminCommand::SetFaults(Box::default());
        if let Err(e) = control.call(link, inbox, command, ADMIN_TIMEOUT).await {
            warn!("taking the zone delays off: {e}");
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
pub(super) async fn ping_zones(
    links: &[Link],
    node_ids: &[u32],
    inbox: &mut Inbox,
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

/// Every node's counters; a node that does not answer is left out.
pub(super) async fn node_stats(
    links: &[Link],
    inbox: &mut Inbox,
    control: &mut Control,
) -> Vec<NodeStats> {
    let mut stats = Vec::new();
    for link in links {
        match control.stats(link, inbox, ADMIN_TIMEOUT).await {
            Ok(s) => stats.push(s),
            Err(e) => warn!("{e}"),
        }
    }
    stats
}

/// Waits until the wall clock reads `at` (UNIX nanoseconds); returns how late it woke. A start
/// already past is an error: the generators it was meant to start with have started.
pub(super) async fn wait_until_unix(at: u64) -> Result<Duration, Error> {
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

/// What a node did during the run: its counters after, less those before.
pub(super) fn stats_delta(after: &NodeStats, before: Option<&NodeStats>) -> NodeStats {
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
