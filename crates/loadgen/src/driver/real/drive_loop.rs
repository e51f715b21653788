//! The drive loop: the I/O shell over the core's proposer host while the run lasts. It sends
//! what the host sends (except across a partition, and after a zone's delay), delivers what
//! the nodes answer, fires the host's timers and the fault schedule, and polls node counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use paxbench_core::message::Message;
use paxbench_core::transmit::{self, Transmit};
use paxbench_core::{NodeId, Time};
use paxbench_quic::{AdminCommand, AdminReply, Envelope, Inbound, Inbox, PeerName, Transport};
use tokio::sync::mpsc;

use super::Driver;
use super::cluster::TargetCluster;

impl<T: Transport + std::fmt::Debug> Driver<'_, T> {
    pub(super) fn now(&self) -> Time {
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
    pub(super) fn flush(&mut self) {
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
                && doomed.request == Some(*request)
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

    /// The loop: apply due faults, fire the host's timers, deliver replies, until the host is
    /// finished, its drain deadline passes, or Ctrl-C. Returns whether it was interrupted.
    pub(super) async fn run(
        &mut self,
        inbox: &mut Inbox,
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
                for link in &self.links {
                    self.control.send(link, AdminCommand::Stats);
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
