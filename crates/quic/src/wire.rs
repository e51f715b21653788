//! What travels in a frame: Paxos messages, the transport's own ping, and admin commands.
//! The transport carries [`Envelope::Paxos`] without looking inside.

use paxbench_core::ProposerId;
use paxbench_core::message::Message;
use serde::{Deserialize, Serialize};

use crate::fault::FaultSpec;
use crate::peer::PeerName;

/// One framed message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Envelope {
    /// The first frame on a plain-TCP stream: who is speaking (QUIC peers are named by their
    /// certificate instead), and its proof, which answers the listener's challenge with the
    /// cluster's shared secret (empty on an insecure cluster).
    Hello {
        /// The sender.
        peer: PeerName,
        /// HMAC-SHA256(secret, context ‖ challenge ‖ name).
        proof: Vec<u8>,
    },
    /// A Paxos message, opaque to the transport.
    Paxos(Message),
    /// A node's reply to one proposer. The proposer is named because one generator's link
    /// carries many proposers, several of which may work on the same instance (and, with naive
    /// timestamps, even under the same ID).
    Reply {
        /// The proposer it answers.
        proposer: ProposerId,
        /// The PROMISE, NACK or ACCEPTED.
        message: Message,
    },
    /// Asks for an immediate [`Envelope::Pong`]: the raw transport round trip, the floor that
    /// Paxos latency is compared against.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// The answer to a [`Envelope::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// The answering node's wall clock, in UNIX nanoseconds, read as it answered: with the
        /// round trip it bounds the offset between the node's clock and the sender's.
        unix_ns: u64,
    },
    /// An admin command; only cluster clients may change faults.
    Admin {
        /// Echoed in the reply.
        request: u64,
        /// What to do.
        command: AdminCommand,
    },
    /// The answer to an [`Envelope::Admin`].
    AdminReply {
        /// The request's number.
        request: u64,
        /// The outcome.
        reply: AdminReply,
    },
}

impl Envelope {
    /// Admin commands and their replies: the control plane, which the fault layer lets through,
    /// so a partition or a lossy link can always be healed by the command that heals it.
    pub fn is_control(&self) -> bool {
        matches!(self, Envelope::Admin { .. } | Envelope::AdminReply { .. })
    }

    /// An upper bound on the frame that carries it, header included: what the queues between
    /// a node's loop and its links count against their byte budgets. Control frames are rare
    /// and small, and are sized by encoding them.
    pub fn encoded_len_bound(&self) -> usize {
        const TAG: usize = 5;
        const U64: usize = 10;
        const PEER: usize = 2 * TAG;
        let payload = match self {
            Envelope::Hello { proof, .. } => PEER + U64 + proof.len(),
            Envelope::Paxos(message) => message.encoded_len_bound(),
            Envelope::Reply { message, .. } => TAG + message.encoded_len_bound(),
            Envelope::Ping { .. } => U64,
            Envelope::Pong { .. } => 2 * U64,
            Envelope::Admin { .. } | Envelope::AdminReply { .. } => {
                postcard::to_allocvec(self).map_or(0, |bytes| bytes.len())
            }
        };
        crate::frame::HEADER_LEN + TAG + payload
    }

    /// What the frame carries, for logs and counters: the Paxos message's kind, or the frame's.
    pub fn kind(&self) -> &'static str {
        match self {
            Envelope::Hello { .. } => "hello",
            Envelope::Paxos(message) | Envelope::Reply { message, .. } => message.kind(),
            Envelope::Ping { .. } => "ping",
            Envelope::Pong { .. } => "pong",
            Envelope::Admin { command, .. } => command.name(),
            Envelope::AdminReply { .. } => "admin-reply",
        }
    }
}

/// Commands to a node: counters for clients and admins, faults for admins only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AdminCommand {
    /// Report the node's counters.
    Stats,
    /// Replace the node's fault settings. Boxed: a control frame's payload must not size every
    /// Paxos envelope (postcard encodes a box as its contents: the wire is the same).
    SetFaults(Box<FaultSpec>),
    /// Make the node's disk fail (or stop failing) from its next commit on.
    SetDiskFault(DiskFault),
}

impl AdminCommand {
    /// What it asks for, in a word or two, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            AdminCommand::Stats => "stats",
            AdminCommand::SetFaults(_) => "set-faults",
            AdminCommand::SetDiskFault(_) => "set-disk-fault",
        }
    }
}

/// A disk fault a node injects into its own storage, for the fault campaign.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFault {
    /// The disk works.
    #[default]
    None,
    /// Every write fails before anything reaches the file.
    FailWrite,
    /// Every write reaches the file, but the fsync that would make it durable fails.
    FailFsync,
}

/// A node's answer to an admin command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AdminReply {
    /// The counters (boxed: they outweigh every other reply; postcard encodes a box as its
    /// contents, so the wire is the same).
    Stats(Box<NodeStats>),
    /// The fault settings were applied.
    FaultsSet,
    /// The command was refused.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Counters a node reports in its stats line and to [`AdminCommand::Stats`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// The node's id.
    pub node: u32,
    /// The protocol the node runs.
    pub protocol: paxbench_core::Protocol,
    /// Names this life of the node (when it started, in Unix nanoseconds): a restarted node
    /// reports another, however long each life ran.
    pub life: u64,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// Transport counters.
    pub transport: TransportCounters,
    /// Paxos messages received.
    pub paxos_in: u64,
    /// Paxos messages sent.
    pub paxos_out: u64,
    /// Storage batches committed (one fsync each in durable mode).
    pub batches: u64,
    /// Records written, over all batches.
    pub records: u64,
    /// The largest batch, in records.
    pub max_batch: u64,
    /// Commit latency in microseconds (write and fsync).
    pub commit_us: LatencySummary,
    /// The disk floor measured at start: one small append plus `fdatasync` on the data
    /// directory, in microseconds (no samples: the node keeps nothing on disk).
    pub disk_floor_us: LatencySummary,
    /// Instances this node's learner saw chosen.
    pub chosen: u64,
    /// Acceptor states held in memory now.
    pub held_instances: u64,
    /// The most acceptor states held in memory at once.
    pub most_held: u64,
    /// Acceptor states dropped from memory once checkpointed.
    pub evicted: u64,
    /// Acceptor states read back from the checkpoint for a request.
    pub store_reads: u64,
    /// Checkpoints completed since start.
    pub checkpoints: u64,
    /// Set once storage failed; the acceptor then sends nothing.
    pub storage_failed: bool,
    /// With Multi-Paxos: whether this node leads now, under which ballot.
    pub leading: Option<paxbench_core::ProposalId>,
    /// With Multi-Paxos: what this node's leader role did since it started.
    pub leader: Option<paxbench_core::leader::LeaderStats>,
    /// Messages refused because their sender may not send them, by kind, sender role and
    /// reason. A refused message changed nothing.
    pub refused: Vec<RefusedCount>,
}

/// How many messages of one kind a node refused from one role, for one reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RefusedCount {
    /// The message kind (`prepare-all`, `set-faults`, …).
    pub kind: String,
    /// The sender's role: `node`, `client` or `admin`.
    pub role: String,
    /// Why.
    pub reason: paxbench_core::host::RefusalReason,
    /// How many.
    pub count: u64,
}

impl NodeStats {
    /// Refused messages, over every kind, role and reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().map(|r| r.count).sum()
    }

    /// Refused messages of `kind` from `role`.
    pub fn refused_of(&self, kind: &str, role: &str) -> u64 {
        self.refused
            .iter()
            .filter(|r| r.kind == kind && r.role == role)
            .map(|r| r.count)
            .sum()
    }
}

/// A latency distribution, summarised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
}

/// Counters kept by every link of an endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportCounters {
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received, frame headers included.
    pub bytes_in: u64,
    /// Bytes sent, frame headers included.
    pub bytes_out: u64,
    /// Socket writes; `frames_out / writes` is the coalescing factor.
    pub writes: u64,
    /// Frames that were malformed, truncated or oversized; each closed its stream.
    pub malformed_frames: u64,
    /// Handshakes refused (unknown CA, no certificate, unnamed certificate).
    pub refused_peers: u64,
    /// Connections accepted or dialled.
    pub connections: u64,
    /// Frames dropped by the fault layer or because a link was down.
    pub dropped: u64,
}

/// The wall clock in UNIX nanoseconds, as a [`Envelope::Pong`] carries it (0 before 1970).
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame a proposer or an acceptor sends is moved and queued as an `Envelope`: a
    /// control command's payload growing must not make them all bigger (an 8-byte growth cost
    /// 3–6% of the generator's throughput, measured when a fault-layer field was added).
    #[test]
    fn no_control_payload_sizes_the_paxos_envelope() {
        let paxos = std::mem::size_of::<Message>() + std::mem::size_of::<u64>();
        assert!(
            std::mem::size_of::<Envelope>() <= paxos,
            "Envelope is {} bytes, a Paxos message and its tag {paxos}",
            std::mem::size_of::<Envelope>()
        );
    }

    /// Every kind at its longest varints and with a value in each place one goes: the bound
    /// the byte budgets count must hold for each (the frame fuzzer checks it on all it decodes).
    #[test]
    fn every_message_encodes_within_its_bound() {
        use paxbench_core::message::*;
        use paxbench_core::types::{Instance, NodeId, ProposalId, ProposerId, Value};
        let id = ProposalId::new(u64::MAX, u32::MAX);
        let at = Instance {
            key: u64::MAX,
            slot: u64::MAX,
        };
        let value = Value::from(vec![7u8; 300]);
        let node = NodeId(u32::MAX);
        let client = ProposerId(u32::MAX);
        let pairs = vec![(u64::MAX, u64::MAX); 3];
        let messages: Vec<Message> = vec![
            Prepare {
                instance: at,
                id,
                from: client,
            }
            .into(),
            Promise {
                instance: at,
                id,
                from: node,
                accepted: Some((id, value.clone())),
            }
            .into(),
            Nack {
                instance: at,
                id,
                promised: id,
                from: node,
            }
            .into(),
            AcceptRequest {
                instance: at,
                id,
                value: value.clone(),
                from: client,
            }
            .into(),
            Accepted {
                instance: at,
                id,
                value: value.clone(),
                from: node,
            }
            .into(),
            ClientRequest {
                key: u64::MAX,
                value: value.clone(),
                client,
                via: Some(node),
            }
            .into(),
            Redirect {
                key: u64::MAX,
                value: value.clone(),
                leader: Some(node),
                from: node,
            }
            .into(),
            ClientReply {
                instance: at,
                value: value.clone(),
                from: node,
            }
            .into(),
            PrepareAll {
                ballot: id,
                from: node,
                known: pairs.clone(),
            }
            .into(),
            PromiseAll {
                ballot: id,
                from: node,
                accepted: vec![(at, id, value.clone()); 3],
                high_slots: pairs.clone(),
                chosen_through: pairs.clone(),
                answers: u64::MAX,
            }
            .into(),
            AcceptBatch {
                ballot: id,
                from: node,
                entries: vec![(at, value.clone()); 3],
                commits: vec![at; 3],
            }
            .into(),
            AcceptedBatch {
                ballot: id,
                from: node,
                instances: vec![at; 3],
            }
            .into(),
            Heartbeat {
                ballot: id,
                from: node,
                commits: vec![at; 3],
                chosen_through: pairs,
            }
            .into(),
            Refused {
                ballot: id,
                promised: id,
                from: node,
            }
            .into(),
        ];
        let mut envelopes: Vec<Envelope> = Vec::new();
        for message in messages {
            envelopes.push(Envelope::Reply {
                proposer: client,
                message: message.clone(),
            });
            envelopes.push(Envelope::Paxos(message));
        }
        envelopes.push(Envelope::Hello {
            peer: PeerName::Admin(u32::MAX),
            proof: vec![1; 32],
        });
        envelopes.push(Envelope::Ping { nonce: u64::MAX });
        envelopes.push(Envelope::Pong {
            nonce: u64::MAX,
            unix_ns: u64::MAX,
        });
        envelopes.push(Envelope::Admin {
            request: u64::MAX,
            command: AdminCommand::Stats,
        });
        for envelope in envelopes {
            let mut frame = Vec::new();
            crate::frame::encode_frame(&envelope, &mut frame).unwrap();
            assert!(
                frame.len() <= envelope.encoded_len_bound(),
                "{} encodes to {} bytes, above its bound {}",
                envelope.kind(),
                frame.len(),
                envelope.encoded_len_bound()
            );
            // A bound, not a guess: within a small constant of the truth for small messages,
            // and dominated by the values for large ones.
            assert!(
                envelope.encoded_len_bound() <= frame.len() * 2 + 64,
                "{}",
                envelope.kind()
            );
        }
    }
}
