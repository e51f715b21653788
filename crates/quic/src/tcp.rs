//! The plain-TCP transport: the same frames over tokio TCP, one connection per stream, so a run
//! can show what QUIC costs. It has no TLS: a peer names itself in a `Hello` frame and proves
//! the name with the cluster's shared secret ([`TcpAuth`]); it binds and dials loopback only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::error::Error;
use crate::frame::{HEADER_LEN, decode_frame, encode_frame};
use crate::peer::PeerName;
use crate::tcp_auth::{CHALLENGE_LEN, TcpAuth, challenge};
use crate::transport::{Counters, IncomingStream, Transport, TransportKind};
use crate::wire::Envelope;

/// The longest `Hello` frame accepted, and how long a new connection may take to send it.
const HELLO_LIMIT: (usize, Duration) = (128, Duration::from_secs(5));

#[derive(Debug)]
struct Inner {
    me: PeerName,
    auth: TcpAuth,
    listener: Mutex<Option<TcpListener>>,
    local: Option<SocketAddr>,
    counters: Counters,
}

/// Plain TCP, loopback only. Cloning shares the listener and counters.
#[derive(Clone, Debug)]
pub struct TcpTransport {
    inner: Arc<Inner>,
}

fn require_loopback(addr: SocketAddr) -> Result<(), Error> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(Error::NotLoopback(addr))
    }
}

impl TcpTransport {
    /// A transport for member `me` listening on `addr` (loopback only), naming peers by `auth`.
    /// Call inside a tokio runtime.
    pub fn bind(addr: SocketAddr, me: PeerName, auth: TcpAuth) -> Result<Self, Error> {
        require_loopback(addr)?;
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .map_err(|e| Error::io(format!("cannot listen on TCP {addr}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("TCP local address", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                me,
                auth,
                listener: Mutex::new(Some(listener)),
                local: Some(local),
                counters: Counters::default(),
            }),
        })
    }

    /// A transport for member `me` that only dials, proving its name by `auth`.
    pub fn client(me: PeerName, auth: TcpAuth) -> Self {
        Self {
            inner: Arc::new(Inner {
                me,
                auth,
                listener: Mutex::new(None),
                local: None,
                counters: Counters::default(),
            }),
        }
    }
}

/// Accepts a new connection's peer: sends a challenge when the cluster has a secret, reads the
/// `Hello`, and checks its proof.
async fn accept_peer(
    stream: &mut TcpStream,
    remote: SocketAddr,
    auth: &TcpAuth,
) -> Result<PeerName, Error> {
    let challenge = match auth {
        TcpAuth::Secret(_) => {
            let challenge = challenge(remote)?;
            stream
                .write_all(&challenge)
                .await
                .map_err(|e| Error::io(format!("sending a challenge to {remote}"), e))?;
            Some(challenge)
        }
        TcpAuth::Insecure => None,
    };
    let (peer, proof) = read_hello(stream, remote).await?;
    match (auth, challenge) {
        (TcpAuth::Secret(secret), Some(challenge)) if !secret.verify(&challenge, peer, &proof) => {
            Err(Error::TcpHandshake {
                addr: remote,
                reason: format!(
                    "claims to be {peer} but does not prove it with the cluster's TCP secret"
                ),
            })
        }
        _ => Ok(peer),
    }
}

async fn read_hello(
    stream: &mut TcpStream,
    remote: SocketAddr,
) -> Result<(PeerName, Vec<u8>), Error> {
    let mut header = [0u8; 4];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| Error::io(format!("reading Hello from {remote}"), e))?;
    let len = u32::from_le_bytes(header) as usize;
    if len > HELLO_LIMIT.0 || len < HEADER_LEN - 4 {
        return Err(Error::FrameTooLarge {
            len,
            max: HELLO_LIMIT.0,
        });
    }
    let mut frame = vec![0u8; 4 + len];
    frame[..4].copy_from_slice(&header);
    stream
        .read_exact(&mut frame[4..])
        .await
        .map_err(|e| Error::io(format!("reading Hello from {remote}"), e))?;
    match decode_frame(&frame, HELLO_LIMIT.0)? {
        Envelope::Hello { peer, proof } => Ok((peer, proof)),
        _ => Err(Error::MissingHello(remote)),
    }
}

/// Introduces `me` on a new connection to `addr`: answers the listener's challenge with the
/// shared secret, or, on an insecure cluster, names itself.
async fn introduce(
    stream: &mut TcpStream,
    addr: SocketAddr,
    me: PeerName,
    auth: &TcpAuth,
) -> Result<(), Error> {
    let proof = match auth {
        TcpAuth::Secret(secret) => {
            let mut challenge = [0u8; CHALLENGE_LEN];
            let read = tokio::time::timeout(HELLO_LIMIT.1, stream.read_exact(&mut challenge));
            match read.await {
                Ok(Ok(_)) => secret.prove(&challenge, me),
                Ok(Err(e)) => return Err(Error::io(format!("reading a challenge from {addr}"), e)),
                Err(_) => {
                    return Err(Error::TcpHandshake {
                        addr,
                        reason: format!(
                            "sent no challenge within {:?}: is it a node with `insecure_tcp`?",
                            HELLO_LIMIT.1
                        ),
                    });
                }
            }
        }
        TcpAuth::Insecure => Vec::new(),
    };
    let mut hello = Vec::new();
    encode_frame(&Envelope::Hello { peer: me, proof }, &mut hello)?;
    stream
        .write_all(&hello)
        .await
        .map_err(|e| Error::io(format!("sending Hello to {addr}"), e))
}

impl Transport for TcpTransport {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }

    fn local_peer(&self) -> PeerName {
        self.inner.me
    }

    fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.inner.local.ok_or_else(|| {
            Error::io(
                "TCP local address",
                std::io::Error::other("this transport does not listen"),
            )
        })
    }

    async fn open(
        &self,
        addr: SocketAddr,
        _peer: PeerName,
    ) -> Result<(OwnedReadHalf, OwnedWriteHalf), Error> {
        require_loopback(addr)?;
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::io(format!("cannot connect to TCP {addr}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("TCP_NODELAY", e))?;
        introduce(&mut stream, addr, self.inner.me, &self.inner.auth).await?;
        Counters::add(&self.inner.counters.connections, 1);
        Ok(stream.into_split())
    }

    fn listen(&self, streams: mpsc::Sender<IncomingStream<OwnedReadHalf, OwnedWriteHalf>>) {
        let listener = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(listener) = listener else {
            warn!("TCP transport has no listener (a client, or listen called twice)");
            return;
        };
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, remote) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        warn!("TCP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let inner = inner.clone();
                let streams = streams.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let hello = tokio::time::timeout(
                        HELLO_LIMIT.1,
                        accept_peer(&mut stream, remote, &inner.auth),
                    );
                    let peer = match hello.await {
                        Ok(Ok(peer)) => peer,
                        Ok(Err(e)) => {
                            warn!(%remote, "refused peer: {e}");
                            Counters::add(&inner.counters.refused_peers, 1);
                            if !matches!(e, Error::TcpHandshake { .. }) {
                                Counters::add(&inner.counters.malformed_frames, 1);
                            }
                            return;
                        }
                        Err(_) => {
                            warn!(%remote, "refused peer: no Hello within {:?}", HELLO_LIMIT.1);
                            Counters::add(&inner.counters.refused_peers, 1);
                            return;
                        }
                    };
                    Counters::add(&inner.counters.connections, 1);
                    info!(%peer, %remote, "peer connected over TCP");
                    let (reader, writer) = stream.into_split();
                    let _ = streams
                        .send(IncomingStream {
                            peer,
                            remote,
                            reader,
                            writer,
                        })
                        .await;
                });
            }
        });
    }

    async fn shutdown(&self) {
        self.inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn counters(&self) -> &Counters {
        &self.inner.counters
    }
}
