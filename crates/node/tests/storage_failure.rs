//! A node whose disk fails stops replying at once, and never sends a reply that rests on the
//! failed write; admin stats still say what happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use paxbench_core::acceptor::Record;
use paxbench_core::message::{Message, Prepare};
use paxbench_core::{Instance, NodeId, ProposalId, ProposerId};
use paxbench_node::{CrashPoints, Error, NodeSettings, Storage, run_node};
use paxbench_quic::{
    AdminCommand, AdminReply, Endpoint, EndpointConfig, Envelope, FaultLayer, PeerName,
    TcpTransport, Transport,
};

/// Accepts `remaining` commits, then fails every one, like a disk that filled up.
struct FailingDisk {
    remaining: Arc<AtomicU64>,
}

impl Storage for FailingDisk {
    fn load(&mut self) -> Result<Vec<Record>, Error> {
        Ok(Vec::new())
    }

    fn commit(&mut self, _records: &[Record]) -> Result<(), Error> {
        let left = self.remaining.load(Ordering::SeqCst);
        if left == 0 {
            return Err(Error::Storage {
                path: "/dev/full".into(),
                message: "No space left on device".into(),
            });
        }
        self.remaining.store(left - 1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_failed_commit_silences_the_acceptor() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = NodeSettings {
        id: Some(1),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some("unused".into()),
        transport: Some(paxbench_quic::TransportKind::Tcp),
        stats_interval_ms: Some(0),
        ..NodeSettings::default()
    };
    let config = settings.resolve("test").unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let node = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let transport = TcpTransport::bind(config.listen, PeerName::Node(NodeId(1))).unwrap();
            addr_tx.send(transport.local_addr().unwrap()).unwrap();
            let disk = Box::new(FailingDisk {
                remaining: Arc::new(AtomicU64::new(1)),
            });
            run_node(&config, transport, disk, CrashPoints::default(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
        })
    });
    let addr = addr_rx.recv().unwrap();

    runtime.block_on(async {
        let (client, mut inbox) = Endpoint::new(
            TcpTransport::client(PeerName::Client(0)),
            FaultLayer::default(),
            &EndpointConfig::default(),
        );
        let link = client.dial(addr, PeerName::Node(NodeId(1)));
        let prepare = |key| {
            Envelope::Paxos(Message::Prepare(Prepare {
                instance: Instance::new(key, 0),
                id: ProposalId::new(1, 1),
                from: ProposerId(1),
            }))
        };
        let mut next = async || {
            tokio::time::timeout(Duration::from_millis(500), inbox.recv())
                .await
                .ok()
                .flatten()
                .map(|inbound| inbound.envelope)
        };
        link.send(prepare(1));
        assert!(
            matches!(
                next().await,
                Some(Envelope::Reply {
                    message: Message::Promise(_),
                    ..
                })
            ),
            "the first commit succeeds and is answered"
        );
        link.send(prepare(2));
        assert_eq!(next().await, None, "a failed commit is never answered");
        link.send(prepare(3));
        assert_eq!(next().await, None, "nor is anything after it");
        link.send(Envelope::Admin {
            request: 1,
            command: AdminCommand::Stats,
        });
        match next().await {
            Some(Envelope::AdminReply {
                reply: AdminReply::Stats(stats),
                ..
            }) => {
                assert!(stats.storage_failed);
                assert_eq!(stats.paxos_out, 1);
                assert_eq!(stats.batches, 1);
            }
            other => panic!("expected stats, got {other:?}"),
        }
    });
    stop.send(()).unwrap();
    let stats = node.join().unwrap();
    assert!(stats.storage_failed);
}
