//! Byte budgets for the queues between a process's loop and its links. A link's outbox drops
//! what would pass its budget (Paxos treats it as lost), and the shared inbox makes readers wait
//! (the transport's flow control then pushes back on the peers): whatever a peer sends, or fails
//! to read, it cannot make a process hold more than these budgets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};

use crate::link::Inbound;
use crate::wire::Envelope;

/// Bytes of large frames queued for one link's writer, by [`Envelope::encoded_len_bound`]:
/// sixteen of the largest Multi-Paxos batches, far above what a reading peer leaves queued.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Frames queued for one link's writer, whatever their size.
pub const MAX_QUEUED_FRAMES: usize = 16_384;

/// Frames bounded below this (nearly every Paxos message) are bounded by the frame counts
/// alone: 16,384 of them are at most 64 MiB per link, and the inbox's 8,192 at most 32 MiB.
/// Only larger frames are counted against the byte budgets: that count is an atomic shared
/// with another thread, which cost 5–8% of throughput when every frame paid it.
pub const SMALL_FRAME: usize = 4096;

/// What `bytes` costs the byte budgets: nothing for a small frame.
fn weighed(bytes: usize) -> usize {
    if bytes < SMALL_FRAME { 0 } else { bytes }
}

/// Bytes of large decoded frames waiting in an endpoint's inbox before its readers stop reading.
pub const DEFAULT_INBOX_BYTES: usize = 256 << 20;

/// The sending side of a link's outbox.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    frames: mpsc::Sender<(Envelope, usize)>,
    held: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// An [`Outbox`] that does not keep its link open.
#[derive(Clone, Debug)]
pub(crate) struct WeakOutbox {
    frames: mpsc::WeakSender<(Envelope, usize)>,
    held: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The writer's side of a link's outbox.
#[derive(Debug)]
pub(crate) struct OutboxReceiver {
    frames: mpsc::Receiver<(Envelope, usize)>,
    held: Arc<AtomicUsize>,
}

/// An outbox bounded by [`MAX_QUEUED_FRAMES`] and `max_bytes`.
pub(crate) fn outbox(max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED_FRAMES);
    let held = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            frames: tx,
            held: held.clone(),
            max_bytes,
        },
        OutboxReceiver { frames: rx, held },
    )
}

impl Outbox {
    /// Queues `envelope` unless that would pass either bound; `false` if it was dropped.
    pub(crate) fn push(&self, envelope: Envelope) -> bool {
        let weight = weighed(envelope.encoded_len_bound());
        if weight == 0 {
            return self.frames.try_send((envelope, 0)).is_ok();
        }
        let before = self.held.fetch_add(weight, Ordering::Relaxed);
        let fits = before.saturating_add(weight) <= self.max_bytes
            // One frame larger than the whole budget may still go out, alone.
            || before == 0;
        if fits && self.frames.try_send((envelope, weight)).is_ok() {
            return true;
        }
        self.held.fetch_sub(weight, Ordering::Relaxed);
        false
    }

    pub(crate) fn downgrade(&self) -> WeakOutbox {
        WeakOutbox {
            frames: self.frames.downgrade(),
            held: self.held.clone(),
            max_bytes: self.max_bytes,
        }
    }

    pub(crate) fn same_channel(&self, other: &Outbox) -> bool {
        self.frames.same_channel(&other.frames)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.frames.is_closed()
    }

    /// Bytes queued now, by the bound.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl WeakOutbox {
    pub(crate) fn upgrade(&self) -> Option<Outbox> {
        Some(Outbox {
            frames: self.frames.upgrade()?,
            held: self.held.clone(),
            max_bytes: self.max_bytes,
        })
    }
}

impl OutboxReceiver {
    /// The next frame, once one is queued; `None` when every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Envelope> {
        let (envelope, weight) = self.frames.recv().await?;
        if weight > 0 {
            self.held.fetch_sub(weight, Ordering::Relaxed);
        }
        Some(envelope)
    }

    /// The next frame if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Result<Envelope, mpsc::error::TryRecvError> {
        let (envelope, weight) = self.frames.try_recv()?;
        if weight > 0 {
            self.held.fetch_sub(weight, Ordering::Relaxed);
        }
        Ok(envelope)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.frames.is_closed()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// An endpoint's inbox: every frame that arrived on any of its links, in order. A frame's bytes
/// count against the inbox's budget from the moment its reader decoded it until it is received
/// here, so readers stop reading while the node's loop is behind.
#[derive(Debug)]
pub struct Inbox {
    frames: mpsc::Receiver<(Inbound, usize)>,
    budget: Arc<InboxBudget>,
}

impl Inbox {
    pub(crate) fn new(frames: mpsc::Receiver<(Inbound, usize)>, budget: Arc<InboxBudget>) -> Self {
        Self { frames, budget }
    }

    /// The next frame, once one arrives; `None` once the endpoint is gone.
    pub async fn recv(&mut self) -> Option<Inbound> {
        let (inbound, bytes) = self.frames.recv().await?;
        if bytes > 0 {
            self.budget.give_back(bytes);
        }
        Some(inbound)
    }

    /// The next frame if one is waiting.
    pub fn try_recv(&mut self) -> Result<Inbound, mpsc::error::TryRecvError> {
        let (inbound, bytes) = self.frames.try_recv()?;
        if bytes > 0 {
            self.budget.give_back(bytes);
        }
        Ok(inbound)
    }
}

/// The byte budget of an endpoint's inbox, shared by all its readers. Taking and giving back
/// are an atomic each, and no lock: the node's loop gives back for every frame it takes (a
/// semaphore, whose release locks, measured 5–8% slower here).
#[derive(Debug)]
pub(crate) struct InboxBudget {
    held: AtomicUsize,
    max: usize,
    /// Readers waiting for room; bytes given back wake them only if there are any.
    waiting: AtomicUsize,
    room: Notify,
}

impl InboxBudget {
    pub(crate) fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            max: max_bytes.max(1),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        })
    }

    /// Takes `bytes` of the budget (all of it for a frame larger than the whole; nothing for a
    /// [`SMALL_FRAME`]), waiting while frames already in the inbox hold too much of it; returns
    /// what was taken.
    pub(crate) async fn take(&self, bytes: usize) -> usize {
        let bytes = weighed(bytes).min(self.max);
        if bytes == 0 {
            return 0;
        }
        if self.try_take(bytes) {
            return bytes;
        }
        loop {
            // Registered before the check, so bytes given back after it wake us.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let taken = self.try_take(bytes);
            if !taken {
                room.await;
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if taken || self.try_take(bytes) {
                return bytes;
            }
        }
    }

    pub(crate) fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                (held == 0 || held.saturating_add(bytes) <= self.max).then_some(held + bytes)
            })
            .is_ok()
    }

    /// Bytes free now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.max.saturating_sub(self.held.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Envelope;
    use paxbench_core::message::{Accepted, Message};
    use paxbench_core::types::{Instance, NodeId, ProposalId, Value};

    fn accepted(bytes: usize) -> Envelope {
        Envelope::Paxos(Message::Accepted(Accepted {
            instance: Instance { key: 0, slot: 0 },
            id: ProposalId::new(1, 1),
            value: Value::from(vec![0u8; bytes]),
            from: NodeId(1),
        }))
    }

    #[tokio::test]
    async fn an_outbox_drops_what_passes_its_byte_budget_and_frees_what_its_writer_takes() {
        let budget = 4 << 20;
        let (outbox, mut writer) = outbox(budget);
        let one = accepted(512 << 10).encoded_len_bound();
        let mut queued = 0;
        for _ in 0..100 {
            queued += usize::from(outbox.push(accepted(512 << 10)));
        }
        assert_eq!(queued, budget / one, "as many as fit");
        assert!(outbox.held() <= budget);
        writer.recv().await.unwrap();
        assert!(
            outbox.push(accepted(512 << 10)),
            "a frame taken frees its bytes"
        );
        while writer.try_recv().is_ok() {}
        assert_eq!(outbox.held(), 0);
        // A frame larger than the whole budget goes out alone, never behind others.
        assert!(outbox.push(accepted(8 << 20)));
        assert!(!outbox.push(accepted(512 << 10)));
        // Small frames are bounded by the frame count alone.
        let small = (0..MAX_QUEUED_FRAMES + 10)
            .filter(|_| outbox.push(accepted(1)))
            .count();
        assert_eq!(small, MAX_QUEUED_FRAMES - 1);
    }

    #[tokio::test]
    async fn inbox_readers_wait_until_earlier_frames_are_received() {
        let budget = InboxBudget::new(100_000);
        assert_eq!(
            budget.take(100).await,
            0,
            "a small frame is bounded by the frame count"
        );
        let first = budget.take(60_000).await;
        assert_eq!(budget.available(), 40_000);
        let waiting = budget.take(60_000);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut waiting)
                .await
                .is_err(),
            "the second frame waits for room"
        );
        budget.give_back(first);
        let second = waiting.await;
        assert_eq!(budget.available(), 40_000);
        // Larger than the whole budget: it takes all of it, and so goes alone.
        budget.give_back(second);
        let huge = budget.take(500_000).await;
        assert_eq!(budget.available(), 0);
        budget.give_back(huge);
        assert_eq!(budget.available(), 100_000);
    }
}
