//! The fuzz harness of the transport, for the cargo-fuzz target `frames` in `fuzz/`. It lives
//! here, beside what it tests, and panics on a bug; `crates/loadgen/tests/fuzz_corpus.rs`
//! replays every saved input through it on stable Rust, so a crash once found stays fixed.

use crate::frame::{FrameDecoder, decode_frame, encode_frame};

/// The frame limit the frame harness uses: small, so oversized frames are common.
const FUZZ_MAX_FRAME: usize = 4096;

/// Frame and message decoding: `data` arrives as a byte stream cut into chunks (the first byte
/// picks their size). Nothing may panic, every envelope decoded must encode within its
/// [`Envelope::encoded_len_bound`](crate::wire::Envelope::encoded_len_bound), and to a frame that
/// decodes and encodes to the same bytes (bytes, not values: a NaN in a fault setting is not
/// equal to itself, and a node must refuse it, not crash).
pub fn frames(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::new(FUZZ_MAX_FRAME);
    let mut frame = Vec::new();
    'stream: for piece in stream.chunks(chunk) {
        decoder.buffer_mut().extend_from_slice(piece);
        loop {
            match decoder.next_envelope() {
                Ok(Some(envelope)) => {
                    frame.clear();
                    if encode_frame(&envelope, &mut frame).is_ok() {
                        assert!(
                            frame.len() <= envelope.encoded_len_bound(),
                            "{envelope:?} encodes to {} bytes, above its bound {}",
                            frame.len(),
                            envelope.encoded_len_bound()
                        );
                        let again = decode_frame(&frame, usize::MAX >> 1);
                        let mut reframed = Vec::new();
                        let encoded = again.map(|e| encode_frame(&e, &mut reframed));
                        assert!(
                            matches!(encoded, Ok(Ok(()))) && reframed == frame,
                            "re-encoding {envelope:?} changed it"
                        );
                    }
                }
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
    let _ = decoder.finish();
    let _ = decode_frame(stream, FUZZ_MAX_FRAME);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_short_stream_decodes_without_a_panic() {
        super::frames(&[3, 1, 2, 3]);
        super::frames(&[]);
    }
}
