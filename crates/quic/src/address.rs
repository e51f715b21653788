//! Where a peer is: a socket address, or a DNS name and port (`node-1.paxbench:7000`), which a
//! dialler resolves when it starts and again at every redial, so that a peer that comes back
//! at another IP (a rescheduled Kubernetes pod) is found again.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A peer's address, written `IP:PORT`, `[IPv6]:PORT` or `NAME:PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IP address and port.
    Socket(SocketAddr),
    /// A DNS name and port.
    Name {
        /// The name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl Address {
    /// The socket address: the given one, or the name's first IPv4 address (else its first)
    /// as the resolver answers now.
    pub async fn resolve(&self) -> std::io::Result<SocketAddr> {
        match self {
            Address::Socket(addr) => Ok(*addr),
            Address::Name { host, port } => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
                    .await?
                    .collect();
                found
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(found.first())
                    .copied()
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("{host} has no address"),
                        )
                    })
            }
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Socket(addr)
    }
}

impl FromStr for Address {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Address::Socket(addr));
        }
        let bad = || format!("`{s}` is not an address (expected IP:PORT or NAME:PORT)");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let name = host.strip_suffix('.').unwrap_or(host);
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(Address::Name {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Socket(addr) => addr.fmt(f),
            Address::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Address {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Address".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "IP:PORT, [IPv6]:PORT or DNS-NAME:PORT"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for text in [
            "127.0.0.1:7001",
            "[::1]:7001",
            "node-1.paxbench.default.svc.cluster.local:7000",
            "localhost:9",
        ] {
            let address: Address = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        assert!(matches!(
            "10.0.0.1:1".parse::<Address>(),
            Ok(Address::Socket(_))
        ));
        for bad in [
            "node-1",
            "node-1:",
            "node-1:70000",
            ":7000",
            "bad_name:1",
            "-a:1",
            "a b:1",
        ] {
            let error = bad.parse::<Address>().unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[tokio::test]
    async fn names_resolve_and_sockets_pass_through() {
        let local: Address = "localhost:7001".parse().unwrap();
        assert!(local.resolve().await.unwrap().ip().is_loopback());
        let socket: Address = "127.0.0.2:9".parse().unwrap();
        assert_eq!(
            socket.resolve().await.unwrap(),
            "127.0.0.2:9".parse().unwrap()
        );
        let nowhere: Address = "no-such-host.invalid:1".parse().unwrap();
        assert!(nowhere.resolve().await.is_err());
    }
}
