//! The frame format: `[u32 little-endian length][version byte][postcard payload]`, where the
//! length covers the version byte and the payload. Decoding is incremental and bounded: a frame
//! longer than the limit is refused from its header, before any of it is buffered.

use bytes::{Buf, BytesMut};

use crate::error::Error;
use crate::wire::Envelope;

/// The wire version this build writes and accepts. Postcard is not self-describing, so any change
/// to an envelope's layout bumps it: 2 added the disk floor to `NodeStats`, 3 its memory and
/// checkpoint counters, 4 the node's clock in `Pong`, 5 the `shape` of a link's jitter, 6 the
/// Multi-Paxos messages, 7 the leader's counters in `NodeStats`, 8 the node's protocol and life there, 9 its
/// refusals and the leader's refused promises.
pub const WIRE_VERSION: u8 = 9;

/// Bytes before the payload: the length and the version.
pub const HEADER_LEN: usize = 5;

/// The default frame limit. Paxos values in benchmarks are small; 1 MiB leaves room for large
/// values while bounding what a hostile peer can make us buffer.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Appends one frame holding `envelope` to `out`.
pub fn encode_frame(envelope: &Envelope, out: &mut Vec<u8>) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    out[start + 4] = WIRE_VERSION;
    let mut out_vec = std::mem::take(out);
    out_vec = postcard::to_extend(envelope, out_vec).map_err(Error::Encode)?;
    *out = out_vec;
    let len = u32::try_from(out.len() - start - 4).map_err(|_| Error::FrameTooLarge {
        len: out.len() - start - 4,
        max: u32::MAX as usize,
    })?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// A decoder's first buffer: a stream that sends little costs little.
const INITIAL_BUFFER: usize = 4 * 1024;

/// Splits a byte stream into envelopes.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max_frame` bytes (version byte and payload).
    pub fn new(max_frame: usize) -> Self {
        Self {
            buffer: BytesMut::with_capacity(INITIAL_BUFFER),
            max_frame,
        }
    }

    /// Where the reader should append bytes it received.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// The next complete envelope, `Ok(None)` when more bytes are needed, or the reason the stream
    /// must be closed.
    pub fn next_envelope(&mut self) -> Result<Option<Envelope>, Error> {
        if self.buffer.len() < 4 {
            return Ok(None);
        }
        let mut len_bytes = [0; 4];
        len_bytes.copy_from_slice(&self.buffer[..4]);
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len > self.max_frame {
            return Err(Error::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        if len == 0 {
            return Err(Error::FrameVersion {
                got: 0,
                expected: WIRE_VERSION,
            });
        }
        if self.buffer.len() < 4 + len {
            // The buffer grows as the bytes arrive, never to what the header declares: a peer
            // that declares the largest frame and sends nothing costs what it sent.
            return Ok(None);
        }
        let version = self.buffer[4];
        if version != WIRE_VERSION {
            return Err(Error::FrameVersion {
                got: version,
                expected: WIRE_VERSION,
            });
        }
        let payload = &self.buffer[HEADER_LEN..4 + len];
        let (envelope, rest) =
            postcard::take_from_bytes::<Envelope>(payload).map_err(Error::MalformedFrame)?;
        if !rest.is_empty() {
            return Err(Error::MalformedFrame(
                postcard::Error::DeserializeBadEncoding,
            ));
        }
        self.buffer.advance(4 + len);
        Ok(Some(envelope))
    }

    /// Bytes received and not yet decoded: part of a frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Call at end of stream: an error if part of a frame is still buffered.
    pub fn finish(&self) -> Result<(), Error> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(Error::TruncatedFrame(self.buffer.len()))
        }
    }
}

/// Decodes exactly one frame from `bytes`, for tests, fuzzing and benchmarks.
pub fn decode_frame(bytes: &[u8], max_frame: usize) -> Result<Envelope, Error> {
    let mut decoder = FrameDecoder::new(max_frame);
    decoder.buffer_mut().extend_from_slice(bytes);
    match decoder.next_envelope()? {
        Some(envelope) => {
            decoder.finish()?;
            Ok(envelope)
        }
        None => Err(Error::TruncatedFrame(bytes.len())),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use paxbench_core::message::{AcceptRequest, Message, Promise};
    use paxbench_core::{Instance, NodeId, ProposalId, ProposerId};

    use super::*;

    fn samples() -> Vec<Envelope> {
        vec![
            Envelope::Ping { nonce: 7 },
            Envelope::Paxos(Message::AcceptRequest(AcceptRequest {
                instance: Instance::new(3, 9),
                id: ProposalId::new(1 << 40, 5),
                value: Bytes::from_static(b"value"),
                from: ProposerId(5),
            })),
            Envelope::Paxos(Message::Promise(Promise {
                instance: Instance::new(1, 0),
                id: ProposalId::new(2, 1),
                from: NodeId(2),
                accepted: Some((ProposalId::new(1, 1), Bytes::from_static(b"old"))),
            })),
        ]
    }

    #[test]
    fn frames_round_trip_one_at_a_time_and_split_anywhere() {
        let mut stream = Vec::new();
        for envelope in samples() {
            let mut one = Vec::new();
            encode_frame(&envelope, &mut one).unwrap();
            assert_eq!(decode_frame(&one, DEFAULT_MAX_FRAME).unwrap(), envelope);
            stream.extend_from_slice(&one);
        }
        for split in 0..stream.len() {
            let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
            let mut got = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                decoder.buffer_mut().extend_from_slice(chunk);
                while let Some(envelope) = decoder.next_envelope().unwrap() {
                    got.push(envelope);
                }
            }
            decoder.finish().unwrap();
            assert_eq!(got, samples(), "split at {split}");
        }
    }

    #[test]
    fn oversized_frames_are_refused_from_the_header() {
        let mut decoder = FrameDecoder::new(64);
        decoder
            .buffer_mut()
            .extend_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            decoder.next_envelope(),
            Err(Error::FrameTooLarge { len: 1000, max: 64 })
        ));
    }

    #[test]
    fn a_declared_length_reserves_nothing_until_its_bytes_arrive() {
        let mut decoder = FrameDecoder::new(64 << 20);
        decoder
            .buffer_mut()
            .extend_from_slice(&(60u32 << 20).to_le_bytes());
        assert!(decoder.next_envelope().unwrap().is_none());
        assert!(decoder.buffer_mut().capacity() <= INITIAL_BUFFER);
    }

    #[test]
    fn bad_version_garbage_and_truncation_are_errors() {
        let mut frame = Vec::new();
        encode_frame(&Envelope::Ping { nonce: 1 }, &mut frame).unwrap();
        let mut wrong_version = frame.clone();
        wrong_version[4] = WIRE_VERSION + 1;
        assert!(matches!(
            decode_frame(&wrong_version, DEFAULT_MAX_FRAME),
            Err(Error::FrameVersion { got, .. }) if got == WIRE_VERSION + 1
        ));
        let garbage = [6, 0, 0, 0, WIRE_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_frame(&garbage, DEFAULT_MAX_FRAME),
            Err(Error::MalformedFrame(_))
        ));
        assert!(matches!(
            decode_frame(&frame[..frame.len() - 1], DEFAULT_MAX_FRAME),
            Err(Error::TruncatedFrame(_))
        ));
        let mut trailing = frame.clone();
        trailing[0] += 1;
        trailing.push(0);
        assert!(matches!(
            decode_frame(&trailing, DEFAULT_MAX_FRAME),
            Err(Error::MalformedFrame(_))
        ));
    }
}
