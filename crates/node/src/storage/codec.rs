//! The record codec every engine stores: a format byte, then the postcard-encoded instance and
//! acceptor state. A byte the build does not know is refused, never guessed at.

use paxbench_core::Instance;
use paxbench_core::acceptor::{AcceptorState, Record};

/// The record format this build writes and reads.
const RECORD_FORMAT: u8 = 1;

/// Encodes a record as stored, replacing what `out` held.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    out.clear();
    out.push(RECORD_FORMAT);
    let encoded = postcard::to_extend(&(record.instance, &record.state), std::mem::take(out))?;
    *out = encoded;
    Ok(())
}

/// Decodes a stored record.
pub fn decode_record(bytes: &[u8]) -> Result<Record, String> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => {
            let (instance, state): (Instance, AcceptorState) =
                postcard::from_bytes(rest).map_err(|e| e.to_string())?;
            Ok(Record { instance, state })
        }
        Some((format, _)) => Err(format!("unknown record format {format}")),
        None => Err("empty record".into()),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use paxbench_core::ProposalId;

    use super::*;

    #[test]
    fn bad_records_are_reported_not_trusted() {
        let record = Record {
            instance: Instance::new(1, 0),
            state: AcceptorState {
                promised: ProposalId::new(2, 1),
                accepted: Some((ProposalId::new(2, 1), Bytes::from_static(b"v"))),
            },
        };
        assert!(decode_record(&[]).is_err());
        assert!(decode_record(&[9, 1, 2]).is_err());
        let mut bytes = Vec::new();
        encode_record(&record, &mut bytes).unwrap();
        assert_eq!(decode_record(&bytes).unwrap(), record);
        assert!(decode_record(&bytes[..bytes.len() - 1]).is_err());
    }
}
