//! Links: the framed, coalescing message pipes above any [`Transport`]. An [`Endpoint`] dials
//! peers (reconnecting after they restart) and serves peers that dial it; every frame that
//! arrives lands in one inbox as an [`Inbound`] that carries the link to answer on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::address::Address;
use crate::budget::{
    DEFAULT_INBOX_BYTES, Inbox, InboxBudget, MAX_QUEUED_BYTES, Outbox, OutboxReceiver, WeakOutbox,
};
use crate::delay::DelayLine;
use crate::error::{Error, Refusal};
use crate::fault::{Fate, FaultLayer};
use crate::frame::{DEFAULT_MAX_FRAME, FrameDecoder, encode_frame};
use crate::peer::PeerName;
use crate::transport::{Carrier, Counters, IncomingStream, Transport};
use crate::wire::{Envelope, TransportCounters};

/// A write is flushed once this many bytes are queued, so one slow peer cannot make a writer
/// buffer without bound; below it, everything queued goes out in one write.
const COALESCE_LIMIT: usize = 256 * 1024;

/// How long a stream may make no progress before it is closed: a frame begun waiting for its
/// next bytes, or a write waiting for a peer that does not read.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Frames queued in the inbox before readers stop reading, which pushes back on the peers
/// through the transport's flow control.
pub const DEFAULT_INBOX_CAPACITY: usize = 8192;

/// Redial delays after a failed connection attempt: doubling from the first to the second.
const REDIAL_DELAYS: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(500));

/// One frame that arrived, and where to answer it.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it.
    pub peer: PeerName,
    /// What it holds.
    pub envelope: Envelope,
    /// Where replies go.
    pub reply: Replier,
}

/// The way back to the peer an [`Inbound`] came from. It names the link without holding it
/// open: a receiver that never answers (the load generator, which already holds its links)
/// pays one reference count per frame, not a link's.
#[derive(Clone, Debug)]
pub struct Replier(Arc<ReplyHandle>);

impl Replier {
    /// The link to answer on; `None` once every user of a dialled link has dropped it.
    pub fn link(&self) -> Option<Link> {
        self.0.link()
    }
}

/// A handle to send frames to one peer. Cloning shares the link. Sending never blocks: frames
/// queue for the link's writer, which sends whatever is queued in one write.
#[derive(Clone, Debug)]
pub struct Link {
    peer: PeerName,
    queue: Outbox,
    shared: Arc<Shared>,
    refused: Arc<Mutex<Option<Refusal>>>,
}

impl Link {
    /// The peer at the other end.
    pub fn peer(&self) -> PeerName {
        self.peer
    }

    /// Whether both handles are the same link.
    pub fn same_link(&self, other: &Link) -> bool {
        self.queue.same_channel(&other.queue)
    }

    /// Why the peer's handshake was refused at the last attempt to dial it, if it was: a wrong
    /// certificate or CA, which no redial mends. Cleared when a connection succeeds.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the link's stream is gone (a dialled link never is: it redials).
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Queues `envelope`, through the fault layer (control frames pass it untouched). A frame
    /// for a closed link is dropped and counted: Paxos treats it as lost.
    #[inline]
    pub fn send(&self, envelope: Envelope) {
        self.send_delayed(envelope, Duration::ZERO);
    }

    /// Like [`Link::send`], with `delay` added to whatever the fault layer adds: an emulated
    /// network delay of the sender's choosing (the load generator's per-zone delays). Delayed
    /// frames wait in the endpoint's [`DelayLine`]; an undelayed one is queued at once, by the
    /// same few instructions as before there were delays (it is every frame's path).
    #[inline]
    pub fn send_delayed(&self, envelope: Envelope, delay: Duration) {
        if envelope.is_control() {
            self.enqueue(envelope);
            return;
        }
        match self.shared.faults.outbound(self.peer) {
            Fate::Drop => Counters::add(&self.shared.counters().dropped, 1),
            Fate::Send {
                copies,
                delay: added,
            } if delay.is_zero() && added.is_zero() => {
                if copies == 2 {
                    self.enqueue(envelope.clone());
                }
                self.enqueue(envelope);
            }
            Fate::Send {
                copies,
                delay: added,
            } => self.hold(delay + added, copies, envelope),
        }
    }

    /// Puts `copies` of `envelope` in the delay line, to be queued after `delay`.
    fn hold(&self, delay: Duration, copies: u8, envelope: Envelope) {
        let Some(line) = self.shared.delay_line() else {
            self.enqueue(envelope);
            return;
        };
        let at = Instant::now() + delay;
        if copies == 2 {
            line.push(at, (self.clone(), envelope.clone()));
        }
        line.push(at, (self.clone(), envelope));
    }

    fn enqueue(&self, envelope: Envelope) {
        // A peer that does not read fills its queue; what passes the budget is dropped and
        // counted (Paxos treats it as lost), so it cannot make this process hold more.
        if !self.queue.push(envelope) {
            Counters::add(&self.shared.counters().dropped, 1);
        }
    }
}

/// What every link of an endpoint shares.
#[derive(Debug)]
struct Shared {
    counters: Arc<dyn CountersSource>,
    faults: FaultLayer,
    inbox: mpsc::Sender<(Inbound, usize)>,
    inbox_budget: Arc<InboxBudget>,
    max_frame: usize,
    max_node_frame: usize,
    members: Option<Vec<paxbench_core::NodeId>>,
    stall_timeout: Duration,
    /// Frames waiting out an emulated delay; started at the first such frame. `None` if its
    /// thread could not start, in which case frames go undelayed (and a warning says so).
    delays: OnceLock<Option<DelayLine<(Link, Envelope)>>>,
}

impl Shared {
    fn delay_line(&self) -> Option<&DelayLine<(Link, Envelope)>> {
        self.delays
            .get_or_init(|| {
                DelayLine::new("paxbench-delay", |(link, envelope): (Link, Envelope)| {
                    link.enqueue(envelope);
                })
                .inspect_err(|e| warn!("cannot start the delay thread, frames go undelayed: {e}"))
                .ok()
            })
            .as_ref()
    }

    fn counters(&self) -> &Counters {
        self.counters.counters()
    }
}

/// Lets links reach the transport's counters without being generic over the transport.
trait CountersSource: Send + Sync + std::fmt::Debug {
    fn counters(&self) -> &Counters;
}

#[derive(Debug)]
struct TransportCountersSource<T>(T);

impl<T: Transport + std::fmt::Debug> CountersSource for TransportCountersSource<T> {
    fn counters(&self) -> &Counters {
        self.0.counters()
    }
}

/// Settings of an [`Endpoint`].
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// How frames are laid onto streams when dialling.
    pub carrier: Carrier,
    /// The largest frame accepted from a client or an admin.
    pub max_frame: usize,
    /// The largest frame accepted from a node: Multi-Paxos elections need more than a
    /// client's requests do.
    pub max_node_frame: usize,
    /// The nodes whose frames may be as large as `max_node_frame`; any other node certificate
    /// gets a client's limit. `None`: every node.
    pub members: Option<Vec<paxbench_core::NodeId>>,
    /// Frames buffered in the inbox before reading pauses.
    pub inbox_capacity: usize,
    /// Bytes of frames buffered in the inbox before reading pauses.
    pub inbox_bytes: usize,
    /// How long a stream may make no progress, reading a frame begun or writing to a peer
    /// that does not read, before it is closed.
    pub stall_timeout: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            carrier: Carrier::Framed,
            max_frame: DEFAULT_MAX_FRAME,
            max_node_frame: DEFAULT_MAX_FRAME,
            members: None,
            inbox_capacity: DEFAULT_INBOX_CAPACITY,
            inbox_bytes: DEFAULT_INBOX_BYTES,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

/// Links over one transport, all delivering into one inbox.
#[derive(Clone, Debug)]
pub struct Endpoint<T: Transport> {
    transport: T,
    carrier: Carrier,
    shared: Arc<Shared>,
}

impl<T: Transport + std::fmt::Debug> Endpoint<T> {
    /// An endpoint over `transport`, and the inbox where every arriving frame lands.
    /// Call inside a tokio runtime.
    pub fn new(transport: T, faults: FaultLayer, config: &EndpointConfig) -> (Self, Inbox) {
        let (inbox, inbox_rx) = mpsc::channel(config.inbox_capacity.max(1));
        let shared = Arc::new(Shared {
            counters: Arc::new(TransportCountersSource(transport.clone())),
            faults,
            inbox,
            inbox_budget: InboxBudget::new(config.inbox_bytes),
            max_frame: config.max_frame,
            max_node_frame: config.max_node_frame.max(config.max_frame),
            members: config.members.clone(),
            stall_timeout: config.stall_timeout,
            delays: OnceLock::new(),
        });
        let inbox = Inbox::new(inbox_rx, shared.inbox_budget.clone());
        let endpoint = Self {
            transport,
            carrier: config.carrier,
            shared,
        };
        (endpoint, inbox)
    }

    /// The transport underneath.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The fault layer every link consults.
    pub fn faults(&self) -> &FaultLayer {
        &self.shared.faults
    }

    /// A copy of the transport counters.
    pub fn counters(&self) -> TransportCounters {
        self.shared.counters().snapshot()
    }

    /// Starts serving peers that dial us: each stream they open becomes a link whose frames
    /// arrive in the inbox.
    pub fn serve(&self) {
        let (streams_tx, mut streams) = mpsc::channel(64);
        self.transport.listen(streams_tx);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Some(stream) = streams.recv().await {
                spawn_stream_link(stream, shared.clone());
            }
        });
    }

    /// A link to `peer` at `addr`. It connects in the background, and reconnects when the peer
    /// restarts; frames sent while it is down are dropped and counted. A DNS name is resolved
    /// at every attempt.
    pub fn dial(&self, addr: impl Into<Address>, peer: PeerName) -> Link {
        let addr = addr.into();
        let (queue, rx) = crate::budget::outbox(MAX_QUEUED_BYTES);
        let link = Link {
            peer,
            queue,
            shared: self.shared.clone(),
            refused: Arc::default(),
        };
        let transport = self.transport.clone();
        let reply = ReplyHandle::Weak {
            peer,
            queue: link.queue.downgrade(),
            shared: self.shared.clone(),
            refused: link.refused.clone(),
        };
        match self.carrier {
            Carrier::Framed => {
                tokio::spawn(run_dialled_framed(transport, addr, reply, rx));
            }
            Carrier::StreamPerRequest => {
                tokio::spawn(run_dialled_per_request(transport, addr, reply, rx));
            }
        }
        link
    }

    /// Closes every connection gracefully.
    pub async fn shutdown(&self) {
        self.transport.shutdown().await;
    }
}

fn spawn_stream_link<R, W>(stream: IncomingStream<R, W>, shared: Arc<Shared>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (queue, mut rx) = crate::budget::outbox(MAX_QUEUED_BYTES);
    let link = Link {
        peer: stream.peer,
        queue,
        shared: shared.clone(),
        refused: Arc::default(),
    };
    let (abort_tx, abort_rx) = oneshot::channel();
    // The reader keeps the link alive for as long as the peer keeps its side open.
    tokio::spawn(read_loop(
        stream.reader,
        ReplyHandle::Strong(link),
        Some(abort_tx),
    ));
    let peer = stream.peer;
    tokio::spawn(async move {
        tokio::select! {
            result = write_loop(stream.writer, &mut rx, &shared) => {
                match result {
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        warn!(%peer, "closing the stream of a peer that does not read: {e}");
                    }
                    Err(e) => debug!(%peer, "stream closed: {e}"),
                    Ok(()) => {}
                }
            }
            // A reader that ends normally drops the sender; only a sent signal aborts.
            Ok(()) = abort_rx => debug!(%peer, "stream aborted after a bad frame"),
        }
    });
}

/// How a reader names the link that answers what it read.
#[derive(Clone, Debug)]
enum ReplyHandle {
    /// A served stream: the reader keeps it open.
    Strong(Link),
    /// A dialled link: only its users keep it open; dropping them all ends it.
    Weak {
        peer: PeerName,
        queue: WeakOutbox,
        shared: Arc<Shared>,
        refused: Arc<Mutex<Option<Refusal>>>,
    },
}

impl ReplyHandle {
    fn peer(&self) -> PeerName {
        match self {
            ReplyHandle::Strong(link) => link.peer,
            ReplyHandle::Weak { peer, .. } => *peer,
        }
    }

    /// Notes the outcome of a dial: a refusal, or `None` once connected.
    fn note_dial(&self, refusal: Option<Refusal>) {
        if let ReplyHandle::Weak { refused, .. } = self {
            *refused.lock().unwrap_or_else(PoisonError::into_inner) = refusal;
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        match self {
            ReplyHandle::Strong(link) => &link.shared,
            ReplyHandle::Weak { shared, .. } => shared,
        }
    }

    fn link(&self) -> Option<Link> {
        match self {
            ReplyHandle::Strong(link) => Some(link.clone()),
            ReplyHandle::Weak {
                peer,
                queue,
                shared,
                refused,
            } => Some(Link {
                peer: *peer,
                queue: queue.upgrade()?,
                shared: shared.clone(),
                refused: refused.clone(),
            }),
        }
    }
}

/// Resolves `addr` and opens a stream to `peer` there.
async fn open<T: Transport>(
    transport: &T,
    addr: &Address,
    peer: PeerName,
) -> Result<(T::Reader, T::Writer), Error> {
    let socket = addr
        .resolve()
        .await
        .map_err(|e| Error::io(format!("resolving {addr}"), e))?;
    transport.open(socket, peer).await
}

async fn run_dialled_framed<T: Transport>(
    transport: T,
    addr: Address,
    reply: ReplyHandle,
    mut rx: OutboxReceiver,
) {
    let peer = reply.peer();
    let shared = reply.shared().clone();
    let mut delay = REDIAL_DELAYS.0;
    loop {
        match open(&transport, &addr, peer).await {
            Ok((reader, writer)) => {
                delay = REDIAL_DELAYS.0;
                let (abort_tx, abort_rx) = oneshot::channel();
                let reader_task = tokio::spawn(read_loop(reader, reply.clone(), Some(abort_tx)));
                let outcome = tokio::select! {
                    result = write_loop(writer, &mut rx, &shared) => result,
                    Ok(()) = abort_rx => Err(std::io::Error::other("bad frame from peer")),
                };
                reader_task.abort();
                match outcome {
                    Ok(()) => return,
                    Err(e) => debug!(%peer, %addr, "link lost, redialling: {e}"),
                }
            }
            Err(e) => {
                debug!(%peer, %addr, "dial failed: {e}");
                reply.note_dial(e.refusal());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(REDIAL_DELAYS.1);
                loop {
                    match rx.try_recv() {
                        Ok(_) => Counters::add(&shared.counters().dropped, 1),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
            }
        }
        if rx.is_closed() && rx.is_empty() {
            return;
        }
    }
}

async fn run_dialled_per_request<T: Transport>(
    transport: T,
    addr: Address,
    reply: ReplyHandle,
    mut rx: OutboxReceiver,
) {
    let peer = reply.peer();
    // Resolved once, and again only after an open failed: a lookup per message would be part
    // of what this carrier measures.
    let mut resolved: Option<SocketAddr> = None;
    let stale = Arc::new(AtomicBool::new(false));
    while let Some(envelope) = rx.recv().await {
        if stale.swap(false, Ordering::Relaxed) {
            resolved = None;
        }
        let socket = match resolved {
            Some(socket) => socket,
            None => match addr.resolve().await {
                Ok(socket) => *resolved.insert(socket),
                Err(e) => {
                    debug!(%peer, %addr, "cannot resolve: {e}");
                    Counters::add(&reply.shared().counters().dropped, 1);
                    continue;
                }
            },
        };
        let transport = transport.clone();
        let reply = reply.clone();
        let stale = stale.clone();
        tokio::spawn(async move {
            let shared = reply.shared().clone();
            match transport.open(socket, peer).await {
                Ok((reader, mut writer)) => {
                    let mut buf = Vec::new();
                    if let Err(e) = encode_frame(&envelope, &mut buf) {
                        warn!(%peer, "cannot encode: {e}");
                        return;
                    }
                    let sent = writer.write_all(&buf).await.and(writer.shutdown().await);
                    match sent {
                        Ok(()) => {
                            let counters = shared.counters();
                            Counters::add(&counters.frames_out, 1);
                            Counters::add(&counters.writes, 1);
                            Counters::add(&counters.bytes_out, buf.len() as u64);
                            read_loop(reader, reply, None).await;
                        }
                        Err(e) => {
                            debug!(%peer, "request stream failed: {e}");
                            Counters::add(&shared.counters().dropped, 1);
                        }
                    }
                }
                Err(e) => {
                    debug!(%peer, %socket, "dial failed: {e}");
                    reply.note_dial(e.refusal());
                    stale.store(true, Ordering::Relaxed);
                    Counters::add(&shared.counters().dropped, 1);
                }
            }
        });
    }
}

/// Sends whatever is queued in one write, until every sender is gone (then finishes the
/// stream) or the stream fails.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    rx: &mut OutboxReceiver,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(envelope) = rx.recv().await {
        buf.clear();
        let mut frames = 0u64;
        let mut next = Some(envelope);
        while let Some(envelope) = next.take() {
            match encode_frame(&envelope, &mut buf) {
                Ok(()) => frames += 1,
                Err(e) => warn!(kind = envelope.kind(), "cannot encode a frame: {e}"),
            }
            if buf.len() < COALESCE_LIMIT {
                next = rx.try_recv().ok();
            }
        }
        // A peer that does not read stops the write; its stream is closed rather than held,
        // and what is queued for it is dropped with the stream.
        // The timer is armed only when the write must wait: most writes finish at once.
        let mut write = std::pin::pin!(writer.write_all(&buf));
        let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(written) => written?,
            Poll::Pending => tokio::time::timeout(shared.stall_timeout, write)
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no write progress in {:?}", shared.stall_timeout),
                    )
                })??,
        }
        let counters = shared.counters();
        Counters::add(&counters.frames_out, frames);
        Counters::add(&counters.bytes_out, buf.len() as u64);
        Counters::add(&counters.writes, 1);
    }
    writer.shutdown().await
}

/// Decodes frames into the inbox until the stream ends or a frame is bad; a bad frame is
/// logged, counted, and closes the stream (through `abort`) without touching other peers.
async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    reply: ReplyHandle,
    abort: Option<oneshot::Sender<()>>,
) {
    let shared = reply.shared().clone();
    let peer = reply.peer();
    let replier = Replier(Arc::new(reply));
    let limit = match peer {
        PeerName::Node(id) if shared.members.as_ref().is_none_or(|m| m.contains(&id)) => {
            shared.max_node_frame
        }
        PeerName::Node(_) | PeerName::Client(_) | PeerName::Admin(_) => shared.max_frame,
    };
    let mut decoder = FrameDecoder::new(limit);
    let mut heard = false;
    let bad_frame = |e: Error| {
        warn!(%peer, "closing stream after a bad frame: {e}");
        Counters::add(&shared.counters().malformed_frames, 1);
        if let Some(abort) = abort {
            let _ = abort.send(());
        }
    };
    loop {
        // A frame begun must keep arriving: a peer that stalls mid-frame holds its buffer and
        // its task, so the stream is closed after a while without progress.
        let partial = decoder.buffered();
        let read = reader.read_buf(decoder.buffer_mut());
        let read = if partial > 0 {
            match tokio::time::timeout(shared.stall_timeout, read).await {
                Ok(read) => read,
                Err(_) => {
                    bad_frame(Error::TruncatedFrame(partial));
                    return;
                }
            }
        } else {
            read.await
        };
        match read {
            Ok(0) => {
                if let Err(e) = decoder.finish() {
                    bad_frame(e);
                }
                return;
            }
            Ok(n) => {
                Counters::add(&shared.counters().bytes_in, n as u64);
                if !heard {
                    // A refused client's handshake also completes, until the server's verdict
                    // closes it: only bytes from the peer clear a refusal.
                    heard = true;
                    replier.0.note_dial(None);
                }
            }
            Err(e) => {
                debug!(%peer, "stream read failed: {e}");
                return;
            }
        }
        if replier.link().is_none() {
            // Every user of this dialled link is gone; nobody wants what it reads.
            return;
        }
        loop {
            match decoder.next_envelope() {
                Ok(Some(envelope)) => {
                    Counters::add(&shared.counters().frames_in, 1);
                    if shared.faults.is_partitioned(peer) && !envelope.is_control() {
                        Counters::add(&shared.counters().dropped, 1);
                        continue;
                    }
                    // Its bytes count against the inbox's budget until the loop receives it.
                    let bytes = shared.inbox_budget.take(envelope.encoded_len_bound()).await;
                    let inbound = Inbound {
                        peer,
                        envelope,
                        reply: replier.clone(),
                    };
                    // Waiting only when the inbox is full skips the send future's machinery
                    // for nearly every frame.
                    match shared.inbox.try_send((inbound, bytes)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(frame)) => {
                            if shared.inbox.send(frame).await.is_err() {
                                return;
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    bad_frame(e);
                    return;
                }
            }
        }
    }
}
