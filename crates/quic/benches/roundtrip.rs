//! Request/reply round trips on loopback: QUIC framed, QUIC stream-per-request and TCP, one at
//! a time and with 64 in flight; and QUIC framed on a multi-thread runtime, to show why the
//! project uses current-thread runtimes. The echo server runs on its own thread and runtime,
//! as a node process would. Each request carries a 64-byte payload (a Ping padded by the value
//! of a Paxos message).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use paxbench_core::message::{Accepted, Message};
use paxbench_core::{Instance, NodeId, ProposalId};
use paxbench_quic::{
    Carrier, Endpoint, EndpointConfig, Envelope, FaultLayer, Identity, Inbound, Inbox, PeerName,
    QuicTransport, TcpAuth, TcpTransport, TlsFiles, Transport, generate_cluster_certs,
};

const SERVER: PeerName = PeerName::Node(NodeId(1));
const CLIENT: PeerName = PeerName::Client(0);

#[derive(Clone, Copy, Debug)]
enum Kind {
    QuicFramed,
    QuicPerRequest,
    Tcp,
}

fn request(n: u64) -> Envelope {
    Envelope::Paxos(Message::Accepted(Accepted {
        instance: Instance::new(n, 0),
        id: ProposalId::new(n, 1),
        value: Bytes::from(vec![1u8; 64]),
        from: NodeId(0),
    }))
}

/// Starts an echo server on its own thread; returns its address.
fn spawn_server(kind: Kind, certs: &std::path::Path) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let files = TlsFiles::in_dir(certs, SERVER);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let localhost = "127.0.0.1:0".parse().unwrap();
            match kind {
                Kind::Tcp => {
                    serve(
                        TcpTransport::bind(localhost, SERVER, TcpAuth::Insecure).unwrap(),
                        tx,
                    )
                    .await
                }
                _ => {
                    let identity = Identity::load(&files).unwrap();
                    serve(
                        QuicTransport::bind(localhost, &identity, SERVER).unwrap(),
                        tx,
                    )
                    .await
                }
            }
        });
    });
    rx.recv().unwrap()
}

async fn serve<T: Transport + std::fmt::Debug>(
    transport: T,
    addr: std::sync::mpsc::Sender<SocketAddr>,
) {
    addr.send(transport.local_addr().unwrap()).unwrap();
    let (endpoint, mut inbox) =
        Endpoint::new(transport, FaultLayer::default(), &EndpointConfig::default());
    endpoint.serve();
    while let Some(Inbound {
        envelope, reply, ..
    }) = inbox.recv().await
    {
        if let Some(reply) = reply.link() {
            reply.send(envelope);
        }
    }
}

struct Client<T: Transport> {
    _endpoint: Endpoint<T>,
    link: paxbench_quic::Link,
    inbox: Inbox,
}

impl<T: Transport + std::fmt::Debug> Client<T> {
    fn new(transport: T, carrier: Carrier, server: SocketAddr) -> Self {
        let config = EndpointConfig {
            carrier,
            ..EndpointConfig::default()
        };
        let (endpoint, inbox) = Endpoint::new(transport, FaultLayer::default(), &config);
        let link = endpoint.dial(server, SERVER);
        Self {
            _endpoint: endpoint,
            link,
            inbox,
        }
    }

    /// Sends `total` requests keeping `window` in flight; records each round trip.
    async fn run(&mut self, total: u64, window: u64, histogram: &mut Histogram<u64>) -> Duration {
        let started = Instant::now();
        let mut sent_at = std::collections::HashMap::new();
        let mut sent = 0;
        let mut received = 0;
        while received < total {
            while sent < total && sent - received < window {
                sent_at.insert(sent, Instant::now());
                self.link.send(request(sent));
                sent += 1;
            }
            let inbound = self.inbox.recv().await.unwrap();
            if let Envelope::Paxos(message) = inbound.envelope {
                let n = message.instance().map_or(u64::MAX, |i| i.key);
                if let Some(at) = sent_at.remove(&n) {
                    histogram.record(at.elapsed().as_nanos() as u64).unwrap();
                    received += 1;
                }
            }
        }
        started.elapsed()
    }
}

fn bench_kind(
    c: &mut Criterion,
    kind: Kind,
    multi_thread: bool,
    certs: &std::path::Path,
    summary: &mut Vec<String>,
) {
    let server = spawn_server(kind, certs);
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let identity = Identity::load(&TlsFiles::in_dir(certs, CLIENT)).unwrap();
    let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let label = format!(
        "{kind:?}{}",
        if multi_thread {
            "-multi-thread-runtime"
        } else {
            ""
        }
    );
    let windows: &[u64] = &[1, 64];
    for &window in windows {
        let mut group = c.benchmark_group(format!("roundtrip/{label}"));
        group.throughput(Throughput::Elements(1));
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let name = if window == 1 {
            "sequential".to_string()
        } else {
            format!("{window}-in-flight")
        };
        macro_rules! run_with {
            ($transport:expr, $carrier:expr) => {{
                let transport = $transport;
                let mut client =
                    runtime.block_on(async { Client::new(transport, $carrier, server) });
                runtime.block_on(client.run(1_000, window, &mut histogram.clone()));
                group.bench_function(&name, |b| {
                    b.iter_custom(|iters| {
                        runtime.block_on(client.run(iters, window, &mut histogram))
                    })
                });
            }};
        }
        match kind {
            Kind::Tcp => run_with!(
                TcpTransport::client(CLIENT, TcpAuth::Insecure),
                Carrier::Framed
            ),
            Kind::QuicFramed => run_with!(
                runtime
                    .block_on(async { QuicTransport::bind(localhost, &identity, CLIENT).unwrap() }),
                Carrier::Framed
            ),
            Kind::QuicPerRequest => run_with!(
                runtime
                    .block_on(async { QuicTransport::bind(localhost, &identity, CLIENT).unwrap() }),
                Carrier::StreamPerRequest
            ),
        }
        group.finish();
        summary.push(format!(
            "{label:<36} {name:<13} p50 {:>7.1} µs  p99 {:>7.1} µs  ({} round trips)",
            histogram.value_at_quantile(0.5) as f64 / 1e3,
            histogram.value_at_quantile(0.99) as f64 / 1e3,
            histogram.len()
        ));
    }
}

/// The floor under every carrier: 80-byte ping-pong on a bare tokio TCP socket, no framing,
/// no tasks between the socket and the loop. What the machine's wake-ups cost.
fn raw_tcp_floor(summary: &mut Vec<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            let mut buf = [0u8; 80];
            while socket.read_exact(&mut buf).await.is_ok() {
                socket.write_all(&buf).await.unwrap();
            }
        });
    });
    let addr = rx.recv().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let histogram = runtime.block_on(async move {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.set_nodelay(true).unwrap();
        let mut buf = [0u8; 80];
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for _ in 0..20_000 {
            let started = Instant::now();
            socket.write_all(&buf).await.unwrap();
            socket.read_exact(&mut buf).await.unwrap();
            histogram
                .record(started.elapsed().as_nanos() as u64)
                .unwrap();
        }
        histogram
    });
    summary.push(format!(
        "{:<36} {:<13} p50 {:>7.1} µs  p99 {:>7.1} µs  ({} round trips)",
        "raw tokio TCP socket (floor)",
        "sequential",
        histogram.value_at_quantile(0.5) as f64 / 1e3,
        histogram.value_at_quantile(0.99) as f64 / 1e3,
        histogram.len()
    ));
}

fn roundtrip(c: &mut Criterion) {
    let certs = tempfile::tempdir().unwrap();
    generate_cluster_certs(certs.path(), &paxbench_quic::CertPlan::new(1, 1)).unwrap();
    let mut summary = Vec::new();
    raw_tcp_floor(&mut summary);
    for kind in [Kind::QuicFramed, Kind::QuicPerRequest, Kind::Tcp] {
        bench_kind(c, kind, false, certs.path(), &mut summary);
    }
    bench_kind(c, Kind::QuicFramed, true, certs.path(), &mut summary);
    println!("\nround-trip percentiles over every request measured:");
    for line in summary {
        println!("  {line}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = roundtrip
}
criterion_main!(benches);
