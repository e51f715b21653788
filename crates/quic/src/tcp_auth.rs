//! How plain TCP knows who a peer is, without TLS: the cluster's members share a secret, the
//! listener sends each new connection a fresh challenge, and the dialler's `Hello` carries
//! HMAC-SHA256(secret, challenge ‖ name). Without a secret a peer is taken at its word, which a
//! node allows only when told `insecure_tcp`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::Error;
use crate::peer::PeerName;

/// Bytes of a listener's challenge.
pub const CHALLENGE_LEN: usize = 32;

/// The file `paxbench-node certs` writes the cluster's TCP secret to, beside the certificates.
pub const TCP_SECRET_FILE: &str = "tcp.secret";

const CONTEXT: &[u8] = b"paxbench tcp hello v1";

/// How a TCP transport names its peers.
#[derive(Clone, Debug)]
pub enum TcpAuth {
    /// Peers prove their name with the cluster's shared secret.
    Secret(TcpSecret),
    /// Peers are taken at their word: any local user can claim to be any member.
    Insecure,
}

/// The cluster's shared TCP secret. Its bytes never reach a log or an error.
#[derive(Clone)]
pub struct TcpSecret(Arc<hmac::Key>);

impl std::fmt::Debug for TcpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TcpSecret(elided)")
    }
}

impl TcpSecret {
    /// The secret in `path` (hex, as [`TcpSecret::generate`] writes it).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bad = |what: &str| Error::Pem {
            path: path.into(),
            what: what.into(),
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::File {
            path: path.into(),
            source,
        })?;
        let bytes = decode_hex(text.trim()).ok_or_else(|| bad("not a hex TCP secret"))?;
        if bytes.len() < 16 {
            return Err(bad("a TCP secret needs at least 16 bytes"));
        }
        Ok(Self(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, &bytes))))
    }

    /// Writes 32 random bytes, in hex, to `path` (mode 0600).
    pub fn generate(path: &Path) -> Result<(), Error> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Pem {
                path: path.into(),
                what: "no randomness for a TCP secret".into(),
            })?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        crate::tls::write_private(path, &format!("{hex}\n"))
    }

    /// What `peer` sends in answer to `challenge`.
    pub fn prove(&self, challenge: &[u8], peer: PeerName) -> Vec<u8> {
        hmac::sign(&self.0, &message(challenge, peer))
            .as_ref()
            .to_vec()
    }

    /// Whether `proof` answers `challenge` for `peer` (compared in constant time).
    pub fn verify(&self, challenge: &[u8], peer: PeerName, proof: &[u8]) -> bool {
        hmac::verify(&self.0, &message(challenge, peer), proof).is_ok()
    }
}

/// A fresh challenge for the peer at `addr`.
pub fn challenge(addr: SocketAddr) -> Result<[u8; CHALLENGE_LEN], Error> {
    let mut bytes = [0u8; CHALLENGE_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::TcpHandshake {
            addr,
            reason: "no randomness for a challenge".into(),
        })?;
    Ok(bytes)
}

fn message(challenge: &[u8], peer: PeerName) -> Vec<u8> {
    let name = peer.to_string();
    [CONTEXT, challenge, name.as_bytes()].concat()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_only_for_its_challenge_name_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TCP_SECRET_FILE);
        TcpSecret::generate(&path).unwrap();
        let secret = TcpSecret::load(&path).unwrap();
        let other = dir.path().join("other");
        TcpSecret::generate(&other).unwrap();
        let other = TcpSecret::load(&other).unwrap();
        let node = PeerName::Node(paxbench_core::NodeId(2));
        let addr = "127.0.0.1:1".parse().unwrap();
        let [c1, c2] = [challenge(addr).unwrap(), challenge(addr).unwrap()];
        let proof = secret.prove(&c1, node);
        assert!(secret.verify(&c1, node, &proof));
        assert!(!secret.verify(&c2, node, &proof), "another challenge");
        assert!(
            !secret.verify(&c1, PeerName::Client(0), &proof),
            "another name"
        );
        assert!(!other.verify(&c1, node, &proof), "another secret");
        assert!(!secret.verify(&c1, node, &[]), "no proof");
        assert!(!format!("{secret:?}").contains(&format!("{:02x}", proof[0])));
        assert!(TcpSecret::load(&dir.path().join("missing")).is_err());
    }
}
