//! The one error type of the transport crate.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::peer::PeerName;

/// Everything that can go wrong while framing, securing or moving messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node did not answer a ping or an admin command in time.
    #[error("{peer} did not answer {what} within {waited:?}")]
    NoReply {
        /// Who was asked.
        peer: PeerName,
        /// What it was asked.
        what: &'static str,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// A frame announced more bytes than the limit allows.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame carried a wire version this build does not speak.
    #[error("frame has wire version {got}, this build speaks version {expected}")]
    FrameVersion {
        /// The version in the frame.
        got: u8,
        /// The version this build writes.
        expected: u8,
    },
    /// A frame's payload did not decode.
    #[error("malformed frame: {0}")]
    MalformedFrame(postcard::Error),
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({0} bytes of it were read)")]
    TruncatedFrame(usize),
    /// A message could not be encoded (never expected for the types we send).
    #[error("cannot encode a message: {0}")]
    Encode(postcard::Error),
    /// A plain-TCP peer failed the shared-secret handshake, or the listener sent no challenge.
    #[error("TCP peer at {addr}: {reason}")]
    TcpHandshake {
        /// The peer's address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// A TCP peer did not introduce itself with a `Hello` frame.
    #[error("peer at {0} sent another frame before Hello")]
    MissingHello(SocketAddr),
    /// A peer name such as `node-3` or `client-0` did not parse.
    #[error("`{0}` is not a peer name (expected node-N, client-N or admin-N)")]
    PeerName(String),
    /// The certificate a peer presented carries no usable peer name.
    #[error("peer at {addr} presented a certificate without a node-N or client-N name")]
    UnnamedPeer {
        /// Where it connected from.
        addr: SocketAddr,
    },
    /// A TLS or certificate file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A PEM file held nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was missing or wrong.
        what: String,
    },
    /// Certificate generation failed.
    #[error("cannot generate certificates: {0}")]
    CertGen(#[from] rcgen::Error),
    /// rustls refused a configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A QUIC connection could not be started.
    #[error("cannot connect to {peer} at {addr}: {source}")]
    Connect {
        /// Who we dialled.
        peer: PeerName,
        /// Where.
        addr: SocketAddr,
        /// Why it failed.
        source: quinn::ConnectError,
    },
    /// A QUIC connection failed or was closed.
    #[error("connection to {peer}: {source}")]
    Connection {
        /// The peer.
        peer: PeerName,
        /// Why it failed.
        source: quinn::ConnectionError,
    },
    /// An address outside 127.0.0.0/8 was given where only loopback is allowed.
    #[error(
        "{0} is not a loopback address; plain TCP is unauthenticated and only binds to 127.0.0.0/8"
    )]
    NotLoopback(SocketAddr),
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The link was closed and the message could not be queued.
    #[error("link to {0} is closed")]
    LinkClosed(PeerName),
    /// A fault setting is out of range.
    #[error("invalid fault setting: {0}")]
    Fault(String),
}

/// A TLS handshake that was refused: retrying cannot help until a certificate or a CA changes,
/// so the dialler reports it at once instead of waiting out a timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The peer refused the certificate we presented (it sent this TLS alert): it is not
    /// signed by the CA the peer trusts, or has expired.
    OurCertificate {
        /// The alert, named.
        alert: String,
    },
    /// The peer's certificate is not signed by the CA we trust.
    PeerNotTrusted {
        /// What verification said.
        detail: String,
    },
    /// The peer's certificate is valid but names another member than the one dialled.
    PeerNameMismatch {
        /// What verification said.
        detail: String,
    },
}

/// The TLS alert a CRYPTO_ERROR code carries (RFC 9001 §4.8), named.
fn alert_name(alert: u8) -> String {
    let name = match alert {
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        48 => "unknown_ca",
        49 => "access_denied",
        51 => "decrypt_error",
        116 => "certificate_required",
        _ => "alert",
    };
    format!("{name} ({alert})")
}

/// The TLS alert of a QUIC CRYPTO_ERROR code, if it is one.
fn crypto_alert(code: quinn_proto::TransportErrorCode) -> Option<u8> {
    let code = u64::from(code);
    (0x100..0x200).contains(&code).then(|| (code - 0x100) as u8)
}

impl Refusal {
    /// The refusal a connection error stands for, if it is one.
    pub fn of_connection(error: &quinn::ConnectionError) -> Option<Self> {
        match error {
            quinn::ConnectionError::TransportError(e) => {
                crypto_alert(e.code)?;
                Some(if e.reason.contains("not valid for name") {
                    Refusal::PeerNameMismatch {
                        detail: e.reason.clone(),
                    }
                } else {
                    Refusal::PeerNotTrusted {
                        detail: e.reason.clone(),
                    }
                })
            }
            quinn::ConnectionError::ConnectionClosed(close) => {
                crypto_alert(close.error_code).map(|alert| Refusal::OurCertificate {
                    alert: alert_name(alert),
                })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OurCertificate { alert } => {
                write!(f, "it refused our client certificate (TLS alert {alert})")
            }
            Refusal::PeerNotTrusted { detail } => {
                write!(f, "its certificate is not signed by our CA ({detail})")
            }
            Refusal::PeerNameMismatch { detail } => {
                write!(f, "its certificate names another member ({detail})")
            }
        }
    }
}

impl Error {
    /// The handshake refusal this error stands for, if it is one.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Error::Connection { source, .. } => Refusal::of_connection(source),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
