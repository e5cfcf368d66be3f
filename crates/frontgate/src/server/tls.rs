//! TLS termination with rustls (aws-lc-rs): TLS 1.2 and 1.3 only, AEAD suites only, ALPN h2 and
//! http/1.1. Certificates come from PEM files or are made once into the data dir
//! (`tls = "self-signed"`); a reload swaps the config for new handshakes while open
//! connections keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, TlsSetting};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: no PEM certificate found ({detail})")]
    NoCert { path: PathBuf, detail: String },
    #[error("{path}: no PEM private key found ({detail})")]
    NoKey { path: PathBuf, detail: String },
    #[error("the certificate and key do not form a usable pair: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("making a self-signed certificate: {0}")]
    Generate(String),
}

/// Paths of the self-signed certificate and key in the data dir.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("self-signed.crt"), dir.join("self-signed.key"))
}

/// Makes the self-signed certificate on first start; later starts reuse it while it is for the
/// same names. The names it was made for are kept beside it (`self-signed.names`), so a start
/// with another public host (or listen address) makes a new one instead of presenting a
/// certificate for the old name. A certificate from before the names were kept is reused, and
/// its names recorded, rather than replaced under clients that already trust it.
pub fn ensure_self_signed(config: &Config) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = self_signed_paths(&config.data_dir);
    let names_path = cert_path.with_extension("names");
    let names = self_signed_names(config);
    let listed = names.join("\n") + "\n";
    if cert_path.exists() && key_path.exists() {
        match std::fs::read_to_string(&names_path) {
            Ok(recorded) if recorded == listed => return Ok((cert_path, key_path)),
            Ok(recorded) => {
                tracing::info!(was = %recorded.trim_end().replace('\n', ", "), now = %names.join(", "), "the self-signed certificate is for other names; making a new one");
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(TlsError::Read { path: names_path, source: e }),
            Err(_) => {
                // Recording is a convenience for the next start: a data dir that cannot take
                // the file (read-only, say) still serves the certificate it has, as before.
                if let Err(e) = std::fs::write(&names_path, &listed) {
                    tracing::warn!(path = %names_path.display(), error = %e, "cannot record the self-signed certificate's names");
                }
                return Ok((cert_path, key_path));
            }
        }
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "frontgate self-signed");
    let cert = params.self_signed(&key).map_err(|e| TlsError::Generate(e.to_string()))?;
    let dir = cert_path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Read { path: dir.to_owned(), source: e })?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem()).map_err(|e| TlsError::Read { path: cert_path.clone(), source: e })?;
    std::fs::write(&names_path, &listed).map_err(|e| TlsError::Read { path: names_path.clone(), source: e })?;
    tracing::info!(cert = %cert_path.display(), "made a self-signed certificate");
    Ok((cert_path, key_path))
}

/// What the self-signed certificate is for: localhost, the loopback addresses, the public
/// host, and the listen address when it is a specific one.
fn self_signed_names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let host = config.public_origin().host_port().rsplit_once(':').map_or_else(
        || config.public_origin().host_port().to_owned(),
        |(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h.to_owned() } else { config.public_origin().host_port().to_owned() },
    );
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    for n in [host, config.server.listen.0.ip().to_string()] {
        if !names.contains(&n) && !n.is_empty() && n != "0.0.0.0" && n != "::" {
            names.push(n);
        }
    }
    names
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(|e| TlsError::Read { path: path.to_owned(), source: e })?;
    f.write_all(data).map_err(|e| TlsError::Read { path: path.to_owned(), source: e })
}

/// Builds the rustls server config for a gateway config; `None` when TLS is off.
pub fn server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let (cert_path, key_path) = match &config.server.tls {
        TlsSetting::Off => return Ok(None),
        TlsSetting::SelfSigned => ensure_self_signed(config)?,
        TlsSetting::Files { cert, key } => (cert.clone(), key.clone()),
    };
    let cert_pem = std::fs::read(&cert_path).map_err(|e| TlsError::Read { path: cert_path.clone(), source: e })?;
    let key_pem = std::fs::read(&key_path).map_err(|e| TlsError::Read { path: key_path.clone(), source: e })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCert { path: cert_path.clone(), detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert { path: cert_path, detail: "the file has no CERTIFICATE block".into() });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey { path: key_path.clone(), detail: e.to_string() })?;
    Ok(Some(Arc::new(build(certs, key, config.server.tls_session_resumption)?)))
}

fn build(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, resumption: bool) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if resumption {
        cfg.ticketer = aws_lc_rs::Ticketer::new()?;
    } else {
        // No tickets (TLS 1.3) and no session cache (TLS 1.2): every handshake is a full one.
        cfg.send_tls13_tickets = 0;
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    }
    Ok(cfg)
}
