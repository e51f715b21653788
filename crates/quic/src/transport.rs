//! The transport trait: how a carrier opens and accepts framed byte streams between named
//! peers. QUIC and plain TCP implement it; everything above it (framing, coalescing, faults,
//! reconnection) is shared, so a benchmark compares carriers and nothing else.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::peer::PeerName;
use crate::wire::TransportCounters;

/// Which transport carries the frames.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// QUIC with mutual TLS.
    #[default]
    Quic,
    /// Plain TCP: unauthenticated, loopback only, for measuring what QUIC costs.
    Tcp,
}

impl TransportKind {
    /// Whether a peer's name is proven by a certificate the cluster CA signed. On plain TCP the
    /// name comes from the peer's own `Hello`, so nodes refuse admin commands there.
    pub fn authenticates_peers(self) -> bool {
        self == TransportKind::Quic
    }
}

/// How frames are laid onto streams.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Carrier {
    /// One long-lived stream per peer pair, shared by every proposer and instance, with
    /// coalesced writes.
    #[default]
    Framed,
    /// A new stream for every message (a new connection on TCP), for comparison.
    StreamPerRequest,
}

/// A stream a peer opened to us, once its identity is known.
#[derive(Debug)]
pub struct IncomingStream<R, W> {
    /// Who opened it.
    pub peer: PeerName,
    /// From where.
    pub remote: SocketAddr,
    /// Its receiving half.
    pub reader: R,
    /// Its sending half.
    pub writer: W,
}

/// A way to open and accept byte streams between named, authenticated peers.
pub trait Transport: Clone + Send + Sync + 'static {
    /// The receiving half of a stream.
    type Reader: AsyncRead + Unpin + Send + 'static;
    /// The sending half of a stream.
    type Writer: AsyncWrite + Unpin + Send + 'static;

    /// Which transport this is.
    fn kind(&self) -> TransportKind;

    /// Who we are.
    fn local_peer(&self) -> PeerName;

    /// The address we listen on, if we listen.
    fn local_addr(&self) -> Result<SocketAddr, Error>;

    /// Opens a stream to `peer` at `addr`, reusing a live connection where the transport has one.
    fn open(
        &self,
        addr: SocketAddr,
        peer: PeerName,
    ) -> impl Future<Output = Result<(Self::Reader, Self::Writer), Error>> + Send;

    /// Starts accepting peers: every stream they open arrives on `streams`. Peers that fail
    /// authentication are refused, logged and counted.
    fn listen(&self, streams: mpsc::Sender<IncomingStream<Self::Reader, Self::Writer>>);

    /// Closes every connection gracefully and waits, briefly, for the peers to be told.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;

    /// The counters shared by the transport and its links.
    fn counters(&self) -> &Counters;
}

/// Transport counters, updated without locks.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) malformed_frames: AtomicU64,
    pub(crate) refused_peers: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> TransportCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportCounters {
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            writes: get(&self.writes),
            malformed_frames: get(&self.malformed_frames),
            refused_peers: get(&self.refused_peers),
            connections: get(&self.connections),
            dropped: get(&self.dropped),
        }
    }
}
