//! Mutual TLS for the cluster: a cluster CA made with rcgen, one certificate per node
//! (`node-N`), client (`client-N`) and admin (`admin-N`), and the rustls configurations (ring provider) that
//! refuse any peer the CA did not sign.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use paxbench_core::NodeId;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;
use crate::peer::PeerName;

/// The ALPN protocol name; a peer speaking anything else fails the handshake.
pub const ALPN: &[u8] = b"paxbench/1";

/// Where one member's TLS material lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster CA certificate (PEM).
    pub ca: PathBuf,
    /// This member's certificate (PEM).
    pub cert: PathBuf,
    /// This member's private key (PEM, mode 0600).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files [`generate_cluster_certs`] wrote for `peer` in `dir`.
    pub fn in_dir(dir: &Path, peer: PeerName) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{peer}.pem")),
            key: dir.join(format!("{peer}.key")),
        }
    }
}

/// What [`generate_cluster_certs`] makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPlan {
    /// Node certificates `node-1 ..= node-N`.
    pub nodes: u32,
    /// Client certificates `client-0 .. client-M`: load generators, which may only propose.
    pub clients: u32,
    /// Admin certificates `admin-0 .. admin-A`: the only identities whose fault and disk
    /// commands a node obeys.
    pub admins: u32,
    /// How long every certificate, the CA's included, is valid from now.
    pub validity_days: u32,
    /// Replace a CA already in the directory. Without it an existing `ca.pem` or `ca.key` is
    /// an error: a new CA would silently cut every running member off from the new ones.
    pub overwrite: bool,
}

impl CertPlan {
    /// Nodes `1..=nodes`, clients `0..clients`, one admin, valid for a year, no overwrite.
    pub fn new(nodes: u32, clients: u32) -> Self {
        Self {
            nodes,
            clients,
            admins: 1,
            validity_days: 365,
            overwrite: false,
        }
    }

    /// Every member the plan names, in order.
    pub fn members(&self) -> Vec<PeerName> {
        (1..=self.nodes)
            .map(|id| PeerName::Node(NodeId(id)))
            .chain((0..self.clients).map(PeerName::Client))
            .chain((0..self.admins).map(PeerName::Admin))
            .collect()
    }
}

/// Makes a cluster CA (limited to signing members directly, `pathlen:0`), a certificate for
/// every member of `plan`, and the members' shared plain-TCP secret (`tcp.secret`) in `out`. Private keys are written with mode 0600. Returns the
/// members, in order.
pub fn generate_cluster_certs(out: &Path, plan: &CertPlan) -> Result<Vec<PeerName>, Error> {
    fs::create_dir_all(out).map_err(|source| Error::File {
        path: out.into(),
        source,
    })?;
    if !plan.overwrite {
        for existing in ["ca.pem", "ca.key"].map(|name| out.join(name)) {
            if existing.exists() {
                return Err(Error::File {
                    path: existing,
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a cluster CA is already here; pass --overwrite to replace it (every \
                         member then needs new certificates)",
                    ),
                });
            }
        }
    }
    let not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let not_after = not_before + time::Duration::days(i64::from(plan.validity_days.max(1)));
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "paxbench cluster CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write_public(&out.join("ca.pem"), &ca_cert.pem())?;
    write_private(&out.join("ca.key"), &ca_key.serialize_pem())?;
    crate::tcp_auth::TcpSecret::generate(&out.join(crate::tcp_auth::TCP_SECRET_FILE))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let members = plan.members();
    for member in &members {
        let name = member.to_string();
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params.distinguished_name.push(DnType::CommonName, &name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &issuer)?;
        let files = TlsFiles::in_dir(out, *member);
        write_public(&files.cert, &cert.pem())?;
        write_private(&files.key, &key.serialize_pem())?;
    }
    Ok(members)
}

fn write_public(path: &Path, pem: &str) -> Result<(), Error> {
    fs::write(path, pem).map_err(|source| Error::File {
        path: path.into(),
        source,
    })
}

pub(crate) fn write_private(path: &Path, pem: &str) -> Result<(), Error> {
    let file_error = |source| Error::File {
        path: path.into(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(file_error)?;
    // `mode` applies only when the file is created; tighten a file that already existed.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(file_error)?;
    }
    file.write_all(pem.as_bytes()).map_err(file_error)
}

/// One member's loaded TLS material.
#[derive(Debug)]
pub struct Identity {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The key that signs QUIC stateless resets and the key of connection IDs, derived from the
    /// private key so they survive a restart: a restarted node answers packets of its old
    /// connections with a reset its peers accept, and they redial at once instead of waiting
    /// out the idle timeout (5 s, measured in the crash campaign). Derived one way, so they
    /// reveal nothing of the private key.
    pub fn restart_stable_keys(&self) -> (ring::hmac::Key, u64) {
        let derive = |label: &[u8]| {
            let mut context = ring::digest::Context::new(&ring::digest::SHA256);
            context.update(label);
            context.update(self.key.secret_der());
            context.finish()
        };
        let reset = derive(b"paxbench stateless reset key v1");
        let cid = derive(b"paxbench connection id key v1");
        let mut cid_key = [0u8; 8];
        cid_key.copy_from_slice(&cid.as_ref()[..8]);
        (
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset.as_ref()),
            u64::from_le_bytes(cid_key),
        )
    }

    /// Loads the CA, certificate and key named by `files`.
    pub fn load(files: &TlsFiles) -> Result<Self, Error> {
        let pem_error = |path: &Path, what: String| Error::Pem {
            path: path.into(),
            what,
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&files.ca)
            .map_err(|e| pem_error(&files.ca, e.to_string()))?
        {
            let cert = cert.map_err(|e| pem_error(&files.ca, e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| pem_error(&files.ca, e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(pem_error(&files.ca, "no CA certificate in file".into()));
        }
        let chain = CertificateDer::pem_file_iter(&files.cert)
            .map_err(|e| pem_error(&files.cert, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(&files.cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(pem_error(&files.cert, "no certificate in file".into()));
        }
        // The key's contents never reach an error message or a log.
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|_| pem_error(&files.key, "no readable private key in file".into()))?;
        Ok(Self {
            roots: Arc::new(roots),
            chain,
            key,
        })
    }

    /// The member name our own certificate carries.
    pub fn name(&self) -> Option<PeerName> {
        peer_name_from_certs(&self.chain)
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Server side: present our certificate, demand one the cluster CA signed.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, Error> {
        let provider = Self::provider();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            self.roots.clone(),
            provider.clone(),
        )
        .build()?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// Client side: trust only the cluster CA, and present our certificate.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, Error> {
        let mut config = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}

/// The member name in a verified peer certificate: its first DNS name that parses as one.
pub fn peer_name_from_certs(chain: &[CertificateDer<'_>]) -> Option<PeerName> {
    let leaf = chain.first()?;
    let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
    cert.valid_dns_names()
        .find_map(|name| name.parse::<PeerName>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certs_load_and_name_their_member() {
        let dir = tempfile::tempdir().unwrap();
        let members = generate_cluster_certs(dir.path(), &CertPlan::new(3, 1)).unwrap();
        assert_eq!(members.len(), 5, "three nodes, a client and an admin");
        assert!(members.contains(&PeerName::Admin(0)));
        for member in members {
            let files = TlsFiles::in_dir(dir.path(), member);
            let identity = Identity::load(&files).unwrap();
            assert_eq!(peer_name_from_certs(&identity.chain), Some(member));
            identity.server_config().unwrap();
            identity.client_config().unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(&files.key).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", files.key.display());
            }
        }
    }

    #[test]
    fn debug_output_and_derived_keys_reveal_nothing_of_the_private_key() {
        let dir = tempfile::tempdir().unwrap();
        generate_cluster_certs(dir.path(), &CertPlan::new(1, 0)).unwrap();
        let files = TlsFiles::in_dir(dir.path(), PeerName::Node(paxbench_core::NodeId(1)));
        let identity = Identity::load(&files).unwrap();
        let shown = format!("{identity:?}");
        let secret = identity.key.secret_der();
        let hex: String = secret[..8].iter().map(|b| format!("{b:02x}")).collect();
        let decimal = format!("{}, {}, {}", secret[0], secret[1], secret[2]);
        assert!(
            !shown.contains(&hex) && !shown.contains(&decimal),
            "{shown}"
        );
        assert!(shown.contains("elided"), "{shown}");
        // The restart-stable keys are the same for the same identity, different for another.
        let (_, cid) = identity.restart_stable_keys();
        let (_, again) = Identity::load(&files).unwrap().restart_stable_keys();
        assert_eq!(cid, again);
        let other_dir = tempfile::tempdir().unwrap();
        generate_cluster_certs(other_dir.path(), &CertPlan::new(2, 0)).unwrap();
        let other = TlsFiles::in_dir(other_dir.path(), PeerName::Node(paxbench_core::NodeId(2)));
        assert_ne!(Identity::load(&other).unwrap().restart_stable_keys().1, cid);
    }

    #[test]
    fn an_existing_ca_is_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        generate_cluster_certs(dir.path(), &CertPlan::new(1, 0)).unwrap();
        let ca = fs::read(dir.path().join("ca.pem")).unwrap();
        let err = generate_cluster_certs(dir.path(), &CertPlan::new(1, 0)).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
        assert_eq!(
            fs::read(dir.path().join("ca.pem")).unwrap(),
            ca,
            "left alone"
        );
        let plan = CertPlan {
            overwrite: true,
            ..CertPlan::new(1, 0)
        };
        generate_cluster_certs(dir.path(), &plan).unwrap();
        assert_ne!(fs::read(dir.path().join("ca.pem")).unwrap(), ca);
    }

    #[test]
    fn missing_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::in_dir(dir.path(), PeerName::Client(0));
        let err = Identity::load(&files).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
    }
}
