//! How late emulated delays come out, measured side by side in one run: the [`DelayLine`]
//! (one thread, a heap) against a tokio task sleeping per message (what the fault layer did
//! before), each with about 10,000 messages in flight on a current-thread runtime, as a node
//! or the load generator runs them. Lateness is the release instant minus the due instant, as
//! seen by the runtime's task that receives the message: what a frame waits beyond its delay.
//!
//!     cargo run --release -p paxbench-quic --example delay_accuracy [IN_FLIGHT] [SECONDS]

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use paxbench_quic::DelayLine;
use tokio::sync::mpsc;

/// Each message's delay: uniform in this range, so that releases interleave.
const DELAY: (Duration, Duration) = (Duration::from_millis(500), Duration::from_millis(1500));

#[derive(Clone, Copy, Debug)]
enum Queue {
    DelayLine,
    SleepPerMessage,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let in_flight: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4.0);
    println!(
        "{in_flight} messages in flight (delays {:?}–{:?}), {seconds} s per queue, ABAB",
        DELAY.0, DELAY.1
    );
    println!("queue               messages  p50 µs  p99 µs  p99.9 µs  max µs");
    for queue in [
        Queue::DelayLine,
        Queue::SleepPerMessage,
        Queue::DelayLine,
        Queue::SleepPerMessage,
    ] {
        let late = measure(queue, in_flight, Duration::from_secs_f64(seconds))?;
        println!(
            "{:<18} {:>9} {:>7} {:>7} {:>9} {:>7}",
            format!("{queue:?}"),
            late.len(),
            late.value_at_quantile(0.5),
            late.value_at_quantile(0.99),
            late.value_at_quantile(0.999),
            late.max()
        );
    }
    Ok(())
}

/// Lateness, µs, of the messages due after the first second (when the queue is full).
fn measure(
    queue: Queue,
    in_flight: u64,
    run: Duration,
) -> Result<Histogram<u64>, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
        let line = {
            let tx = tx.clone();
            DelayLine::new("delay-accuracy", move |due: Instant| {
                let _ = tx.send(due);
            })?
        };
        let mean = (DELAY.0 + DELAY.1) / 2;
        let gap = mean / in_flight as u32;
        let start = Instant::now();
        let measure_from = start + DELAY.1;
        let mut late = Histogram::<u64>::new(3)?;
        let mut next = tokio::time::Instant::now();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut sent = 0u64;
        while start.elapsed() < run + DELAY.1 {
            // Send what is due by now, at the average rate that keeps `in_flight` waiting.
            while start.elapsed() < run && tokio::time::Instant::now() >= next {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let spread = (DELAY.1 - DELAY.0).as_nanos() as u64;
                let delay = DELAY.0 + Duration::from_nanos(seed % spread);
                let due = Instant::now() + delay;
                match queue {
                    Queue::DelayLine => line.push(due, due),
                    Queue::SleepPerMessage => {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep_until(due.into()).await;
                            let _ = tx.send(due);
                        });
                    }
                }
                sent += 1;
                next += gap;
            }
            tokio::select! {
                Some(due) = rx.recv() => {
                    let now = Instant::now();
                    if due >= measure_from {
                        let _ = late.record(now.saturating_duration_since(due).as_micros() as u64);
                    }
                    while let Ok(due) = rx.try_recv() {
                        if due >= measure_from {
                            let _ = late.record(now.saturating_duration_since(due).as_micros() as u64);
                        }
                    }
                }
                () = tokio::time::sleep_until(next) => {}
            }
        }
        let _ = sent;
        Ok(late)
    })
}
