//! The QUIC transport: quinn with rustls (ring) and mutual TLS, tuned for a LAN. One connection
//! per peer pair is kept and reused; streams are opened on it as the carrier asks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls_pki_types::CertificateDer;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::error::{Error, Refusal};
use crate::peer::PeerName;
use crate::tls::{Identity, peer_name_from_certs};
use crate::transport::{Counters, IncomingStream, Transport, TransportKind};

/// Bytes one peer's connection may have in flight toward us, over all its streams.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 16 << 20;

/// Bytes one stream may have in flight toward us.
pub const STREAM_RECEIVE_WINDOW: u32 = 2 << 20;

/// QUIC transport settings for a LAN or loopback cluster. Each setting says why it differs
/// from quinn's default, which is tuned for the internet.
pub fn lan_transport_config() -> quinn::TransportConfig {
    let mut config = quinn::TransportConfig::default();
    // quinn assumes 333 ms before it has measured anything, so a packet lost during the
    // handshake or the first requests would wait about a second for recovery; on a LAN the
    // round trip is tens of microseconds, and 1 ms is still a safe overestimate.
    config.initial_rtt(Duration::from_millis(1));
    // Benchmark links sit idle between scenarios; keep-alives stop them from timing out.
    config.keep_alive_interval(Some(Duration::from_secs(1)));
    // A dead peer is declared after 5 s of silence (five missed keep-alives). This also bounds a
    // connection attempt to a node that is down; a restarted node is reached sooner, by the
    // retransmitted handshake or by a stateless reset.
    config.max_idle_timeout(Some(quinn::VarInt::from_u32(5_000).into()));
    // The stream-per-request carrier opens one stream per message; quinn's default of 100
    // concurrent streams would throttle it to 100 in flight per peer pair.
    config.max_concurrent_bidi_streams(quinn::VarInt::from_u32(16_384));
    config.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    // What one peer can make us buffer, whatever it opens: quinn's connection window is
    // unbounded by default, so streams whose reader waits on a full inbox could hold gigabytes.
    // 16 MiB a connection and 2 MiB a stream stay far above a LAN's bandwidth-delay product.
    config.receive_window(quinn::VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
    config.stream_receive_window(quinn::VarInt::from_u32(STREAM_RECEIVE_WINDOW));
    // The framed carrier puts all traffic of a peer pair on one stream; round-robin fairness
    // across streams buys nothing there and costs scheduling work per packet.
    config.send_fairness(false);
    config
}

type ConnectionSlot = Arc<tokio::sync::Mutex<Option<quinn::Connection>>>;

#[derive(Debug)]
struct Inner {
    endpoint: quinn::Endpoint,
    me: PeerName,
    client_config: quinn::ClientConfig,
    /// One slot per peer; its async lock makes concurrent openers share one handshake.
    connections: Mutex<HashMap<PeerName, ConnectionSlot>>,
    counters: Counters,
}

/// QUIC with mutual TLS. Cloning shares the endpoint.
#[derive(Clone, Debug)]
pub struct QuicTransport {
    inner: Arc<Inner>,
}

impl QuicTransport {
    /// An endpoint on `addr` for member `me`. It can both dial and, once
    /// [`Transport::listen`] is called, accept. Call inside a tokio runtime.
    pub fn bind(addr: SocketAddr, identity: &Identity, me: PeerName) -> Result<Self, Error> {
        let transport_config = Arc::new(lan_transport_config());
        let server_crypto = QuicServerConfig::try_from(identity.server_config()?)
            .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server_config.transport_config(transport_config.clone());
        server_config.migration(false);
        let client_crypto = QuicClientConfig::try_from(identity.client_config()?)
            .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
        client_config.transport_config(transport_config);
        let bind_error = |e| Error::io(format!("cannot bind QUIC endpoint on {addr}"), e);
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
        // Both the reset key and the connection-ID key must survive a restart: quinn answers a
        // packet for an unknown connection with a stateless reset only if its connection ID
        // validates under the endpoint's key.
        let (reset_key, cid_key) = identity.restart_stable_keys();
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
        endpoint_config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        // One reset per 20 ms (the default) is shared by every peer probing the restarted node;
        // a peer whose probe lost that race backs off (its PTO doubles) before probing again.
        // The hashed connection IDs above keep stray packets from drawing resets.
        endpoint_config.min_reset_interval(Duration::from_millis(1));
        let endpoint = quinn::Endpoint::new(
            endpoint_config,
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                me,
                client_config,
                connections: Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
        })
    }

    async fn connection(
        &self,
        addr: SocketAddr,
        peer: PeerName,
    ) -> Result<quinn::Connection, Error> {
        let slot = self.lock_connections().entry(peer).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref()
            && connection.close_reason().is_none()
            && connection.remote_address() == addr
        {
            return Ok(connection.clone());
        }
        // With TLS 1.3 a client's handshake completes before the server has judged the
        // client's certificate; a server that refuses it closes the connection just after.
        // Report that refusal once, to the dialler, rather than redial into it silently.
        if let Some(reason) = slot.take().and_then(|c| c.close_reason())
            && Refusal::of_connection(&reason).is_some()
        {
            return Err(Error::Connection {
                peer,
                source: reason,
            });
        }
        let connecting = self
            .inner
            .endpoint
            .connect_with(self.inner.client_config.clone(), addr, &peer.to_string())
            .map_err(|source| Error::Connect { peer, addr, source })?;
        let connection = connecting
            .await
            .map_err(|source| Error::Connection { peer, source })?;
        Counters::add(&self.inner.counters.connections, 1);
        debug!(%peer, %addr, "connected");
        *slot = Some(connection.clone());
        Ok(connection)
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<PeerName, ConnectionSlot>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Transport for QuicTransport {
    type Reader = quinn::RecvStream;
    type Writer = quinn::SendStream;

    fn kind(&self) -> TransportKind {
        TransportKind::Quic
    }

    fn local_peer(&self) -> PeerName {
        self.inner.me
    }

    fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.inner
            .endpoint
            .local_addr()
            .map_err(|e| Error::io("QUIC local address", e))
    }

    async fn open(
        &self,
        addr: SocketAddr,
        peer: PeerName,
    ) -> Result<(quinn::RecvStream, quinn::SendStream), Error> {
        let connection = self.connection(addr, peer).await?;
        let (send, recv) = connection
            .open_bi()
            .await
            .map_err(|source| Error::Connection { peer, source })?;
        Ok((recv, send))
    }

    fn listen(&self, streams: mpsc::Sender<IncomingStream<quinn::RecvStream, quinn::SendStream>>) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            while let Some(incoming) = inner.endpoint.accept().await {
                let inner = inner.clone();
                let streams = streams.clone();
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    let connection = match incoming.await {
                        Ok(connection) => connection,
                        Err(e) => {
                            warn!(%remote, "refused peer: handshake failed: {e}");
                            Counters::add(&inner.counters.refused_peers, 1);
                            return;
                        }
                    };
                    let peer = connection
                        .peer_identity()
                        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
                        .and_then(|chain| peer_name_from_certs(&chain));
                    let Some(peer) = peer else {
                        warn!(%remote, "refused peer: {}", Error::UnnamedPeer { addr: remote });
                        Counters::add(&inner.counters.refused_peers, 1);
                        connection.close(quinn::VarInt::from_u32(1), b"unnamed certificate");
                        return;
                    };
                    Counters::add(&inner.counters.connections, 1);
                    info!(%peer, %remote, "peer connected");
                    loop {
                        match connection.accept_bi().await {
                            Ok((send, recv)) => {
                                let stream = IncomingStream {
                                    peer,
                                    remote,
                                    reader: recv,
                                    writer: send,
                                };
                                if streams.send(stream).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                debug!(%peer, "connection ended: {e}");
                                return;
                            }
                        }
                    }
                });
            }
        });
    }

    async fn shutdown(&self) {
        self.inner
            .endpoint
            .close(quinn::VarInt::from_u32(0), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
    }

    fn counters(&self) -> &Counters {
        &self.inner.counters
    }
}
