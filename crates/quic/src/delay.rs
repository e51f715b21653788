//! The delay line: items held until their release time, for emulated network delay. One thread
//! per line keeps a heap ordered by release time and sleeps until the earliest, so a delayed
//! message costs a heap push (not a task and a timer), memory is bounded by what is in flight,
//! and releases are as precise as a thread's timed wait (tens of microseconds), where tokio's
//! timer rounds up to the next millisecond.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Holds items and hands each to the release function at its time, in time order (items due
/// at the same instant in the order they were pushed).
#[derive(Debug)]
pub struct DelayLine<T> {
    shared: Arc<Shared<T>>,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
}

#[derive(Debug)]
struct State<T> {
    heap: BinaryHeap<Held<T>>,
    pushed: u64,
    closed: bool,
}

#[derive(Debug)]
struct Held<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Held<T> {}

impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Held<T> {
    /// Reversed, so that the max-heap pops the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is a heap of plain items, valid even if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Send + 'static> DelayLine<T> {
    /// A line whose thread, named `name`, calls `release` with each item at its time. Dropping
    /// the line stops the thread and drops what it still holds.
    pub fn new(name: &str, mut release: impl FnMut(T) + Send + 'static) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                heap: BinaryHeap::new(),
                pushed: 0,
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut due = Vec::new();
                let mut state = worker.lock();
                loop {
                    if state.closed {
                        return;
                    }
                    let now = Instant::now();
                    while state.heap.peek().is_some_and(|held| held.at <= now) {
                        if let Some(held) = state.heap.pop() {
                            due.push(held.item);
                        }
                    }
                    if !due.is_empty() {
                        // Released outside the lock, so that senders never wait on a release.
                        drop(state);
                        due.drain(..).for_each(&mut release);
                        state = worker.lock();
                        continue;
                    }
                    state = match state.heap.peek().map(|held| held.at - now) {
                        Some(wait) => {
                            worker
                                .wake
                                .wait_timeout(state, wait)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                        None => worker
                            .wake
                            .wait(state)
                            .unwrap_or_else(PoisonError::into_inner),
                    };
                }
            })?;
        Ok(Self { shared })
    }

    /// Holds `item` until `at`; an instant already past releases it at once.
    pub fn push(&self, at: Instant, item: T) {
        let mut state = self.shared.lock();
        let earliest = state.heap.peek().is_none_or(|held| at < held.at);
        let seq = state.pushed;
        state.pushed += 1;
        state.heap.push(Held { at, seq, item });
        drop(state);
        if earliest {
            self.shared.wake.notify_one();
        }
    }

    /// Items held now.
    pub fn len(&self) -> usize {
        self.shared.lock().heap.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for DelayLine<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.heap.clear();
        drop(state);
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn items_come_out_in_time_order_never_early() {
        let (tx, rx) = mpsc::channel();
        let line = DelayLine::new("test-delay", move |item: (u32, Instant)| {
            let _ = tx.send((item.0, item.1, Instant::now()));
        })
        .unwrap();
        let start = Instant::now();
        // Pushed latest first: each push is the new earliest and must wake the thread.
        for (i, ms) in [(0u32, 40u64), (1, 30), (2, 20), (3, 20), (4, 0)] {
            let at = start + Duration::from_millis(ms);
            line.push(at, (i, at));
        }
        let order: Vec<u32> = (0..5)
            .map(|_| {
                let (i, at, released) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
                assert!(released >= at, "item {i} released early");
                i
            })
            .collect();
        assert_eq!(order, [4, 2, 3, 1, 0]);
        assert!(line.is_empty());
    }

    #[test]
    fn dropping_the_line_drops_what_it_holds() {
        let (tx, rx) = mpsc::channel::<u32>();
        let held = Arc::new(());
        let line = DelayLine::new("test-delay", move |item: (u32, Arc<()>)| {
            let _ = tx.send(item.0);
        })
        .unwrap();
        line.push(
            Instant::now() + Duration::from_secs(3600),
            (1, held.clone()),
        );
        assert_eq!(line.len(), 1);
        drop(line);
        assert_eq!(Arc::strong_count(&held), 1, "the held item was dropped");
        // The thread ends and drops its sender: the channel closes.
        assert!(rx.recv_timeout(Duration::from_secs(10)).is_err());
    }
}
