//! Frame encode and decode for the two messages that dominate a decision: an ACCEPT-REQUEST
//! carrying a 64-byte value, and a PROMISE that piggybacks an accepted 64-byte value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use paxbench_core::message::{AcceptRequest, Message, Promise};
use paxbench_core::{Instance, NodeId, ProposalId, ProposerId};
use paxbench_quic::Envelope;
use paxbench_quic::frame::{DEFAULT_MAX_FRAME, FrameDecoder, encode_frame};

fn messages() -> [(&'static str, Envelope); 2] {
    let value = Bytes::from(vec![7u8; 64]);
    [
        (
            "accept-request-64B",
            Envelope::Paxos(Message::AcceptRequest(AcceptRequest {
                instance: Instance::new(123_456, 3),
                id: ProposalId::new(1_790_000_000_000_000_000, 42),
                value: value.clone(),
                from: ProposerId(42),
            })),
        ),
        (
            "promise-with-accepted-64B",
            Envelope::Paxos(Message::Promise(Promise {
                instance: Instance::new(123_456, 3),
                id: ProposalId::new(1_790_000_000_000_000_001, 7),
                from: NodeId(2),
                accepted: Some((ProposalId::new(1_790_000_000_000_000_000, 42), value)),
            })),
        ),
    ]
}

fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for (name, envelope) in messages() {
        let mut buf = Vec::with_capacity(256);
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                buf.clear();
                encode_frame(black_box(&envelope), &mut buf).unwrap();
            })
        });
        let mut encoded = Vec::new();
        encode_frame(&envelope, &mut encoded).unwrap();
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                decoder.buffer_mut().extend_from_slice(black_box(&encoded));
                black_box(decoder.next_envelope().unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
