//! The readiness probe, `paxbench-node ready`: it pings the node its config describes, over the
//! node's own transport and under the node's own name, as a Kubernetes exec probe runs it in the
//! node's container. A node answers once it has restored its store, and never after its
//! storage failed (with `on_storage_failure: stay`), so a failed node leaves its Service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use paxbench_quic::{Control, Endpoint, EndpointConfig, FaultLayer, PeerName, Transport};

use crate::config::NodeConfig;
use crate::error::Error;
use crate::server::{node_identity, node_tcp_auth};

/// Pings the node `config` describes; its round trip if it answered within `timeout`.
pub async fn probe(config: &NodeConfig, timeout: Duration) -> Result<Duration, Error> {
    let me = PeerName::Node(config.id);
    let target = local_address(config.listen);
    let any = SocketAddr::new(
        match target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        },
        0,
    );
    match config.transport {
        paxbench_quic::TransportKind::Quic => {
            let identity = node_identity(config)?;
            let transport = paxbench_quic::QuicTransport::bind(any, &identity, me)?;
            ping(transport, target, me, timeout).await
        }
        paxbench_quic::TransportKind::Tcp => {
            let transport = paxbench_quic::TcpTransport::client(me, node_tcp_auth(config)?);
            ping(transport, target, me, timeout).await
        }
    }
}

async fn ping<T: Transport + std::fmt::Debug>(
    transport: T,
    target: SocketAddr,
    me: PeerName,
    timeout: Duration,
) -> Result<Duration, Error> {
    let (endpoint, mut inbox) =
        Endpoint::new(transport, FaultLayer::default(), &EndpointConfig::default());
    let link = endpoint.dial(target, me);
    let answer = Control::new().ping(&link, &mut inbox, timeout).await;
    drop(link);
    endpoint.shutdown().await;
    Ok(answer?.rtt)
}

/// Where a node listening on `listen` is reached from its own host: a wildcard address is
/// reached on loopback.
fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listener_is_probed_on_loopback() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(local_address(at("0.0.0.0:7000")), at("127.0.0.1:7000"));
        assert_eq!(local_address(at("[::]:7000")), at("[::1]:7000"));
        assert_eq!(local_address(at("10.1.2.3:7000")), at("10.1.2.3:7000"));
    }
}
