//! TLS termination with rustls (aws-lc-rs): TLS 1.2 and 1.3 only, AEAD suites only, ALPN h2 and
//! http/1.1, and the server's cipher suite preference wins over the client's (so a client
//! listing a weaker suite first still gets the strongest both support). Certificates come from
//! PEM files or are made into the data dir (`tls = "self-signed"`, valid 90 days, renewed at
//! start or reload when close to expiry); a reload swaps the config for new handshakes while
//! open connections keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// How long a self-signed certificate is valid. Bounded, so a copied key stops being useful on
/// its own and clients are not asked to trust one certificate forever.
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// A start (or reload) that finds less than this left on the self-signed certificate makes a
/// new one: a gateway restarted at least monthly never presents an expired one.
pub const SELF_SIGNED_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// `not_before` is set this far in the past, for clients whose clock is a little behind.
const SELF_SIGNED_BACKDATE: Duration = Duration::from_secs(3600);

/// Makes the self-signed certificate on first start; later starts reuse it while it is for the
/// same names and not close to expiry. The names it was made for are kept beside it
/// (`self-signed.names`), so a start with another public host (or listen address) makes a new
/// one instead of presenting a certificate for the old name. A certificate from before the
/// names were kept is reused, and its names recorded, rather than replaced under clients that
/// already trust it. One that expires within [`SELF_SIGNED_RENEW_BEFORE`], or is valid for longer
/// than [`SELF_SIGNED_VALIDITY`] (older versions made them valid until 4096), is replaced.
pub fn ensure_self_signed(config: &Config) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = self_signed_paths(&config.data_dir);
    let names_path = cert_path.with_extension("names");
    let names = self_signed_names(config);
    let listed = names.join("\n") + "\n";
    let now = time::OffsetDateTime::now_utc();
    if cert_path.exists() && key_path.exists() {
        let same_names = match std::fs::read_to_string(&names_path) {
            Ok(recorded) if recorded == listed => true,
            Ok(recorded) => {
                tracing::info!(was = %recorded.trim_end().replace('\n', ", "), now = %names.join(", "), "the self-signed certificate is for other names; making a new one");
                false
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(TlsError::Read { path: names_path, source: e });
            }
            Err(_) => {
                // Recording is a convenience for the next start: a data dir that cannot take
                // the file (read-only, say) still serves the certificate it has, as before.
                if let Err(e) = std::fs::write(&names_path, &listed) {
                    tracing::warn!(path = %names_path.display(), error = %e, "cannot record the self-signed certificate's names");
                }
                true
            }
        };
        if same_names {
            let pem = std::fs::read(&cert_path)
                .map_err(|e| TlsError::Read { path: cert_path.clone(), source: e })?;
            match renewal_reason(&pem, now) {
                None => return Ok((cert_path, key_path)),
                Some(reason) => {
                    tracing::info!(cert = %cert_path.display(), reason, "renewing the self-signed certificate")
                }
            }
        }
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "frontgate self-signed");
    params.not_before = now - SELF_SIGNED_BACKDATE;
    params.not_after = now + SELF_SIGNED_VALIDITY;
    let cert = params.self_signed(&key).map_err(|e| TlsError::Generate(e.to_string()))?;
    let dir = cert_path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Read { path: dir.to_owned(), source: e })?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem())
        .map_err(|e| TlsError::Read { path: cert_path.clone(), source: e })?;
    std::fs::write(&names_path, &listed)
        .map_err(|e| TlsError::Read { path: names_path.clone(), source: e })?;
    let not_after =
        params.not_after.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    tracing::info!(cert = %cert_path.display(), not_after, "made a self-signed certificate");
    Ok((cert_path, key_path))
}

/// [`server_config`] without writing anything: certificate files are read as for serving; the
/// self-signed mode makes its certificate in memory (what `frontgate check` needs to know is
/// that the TLS settings build).
pub fn server_config_unsaved(config: &Config) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    if !matches!(config.server.tls, TlsSetting::SelfSigned) {
        return server_config(config);
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let params = rcgen::CertificateParams::new(self_signed_names(config))
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| TlsError::Generate(e.to_string()))?;
    let key = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(Some(Arc::new(build(vec![cert.der().clone()], key, config.server.tls_session_resumption)?)))
}

/// Why the stored self-signed certificate (PEM) must be replaced at `now`, or `None` to keep it.
fn renewal_reason(pem: &[u8], now: time::OffsetDateTime) -> Option<&'static str> {
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(pem).next() else {
        return Some("the file holds no certificate");
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Some("the certificate cannot be parsed");
    };
    let (not_before, not_after) =
        (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp());
    let secs = |d: Duration| d.as_secs() as i64;
    if not_after - not_before > secs(SELF_SIGNED_VALIDITY + SELF_SIGNED_BACKDATE) {
        Some("it is valid for longer than 90 days (made by an older frontgate)")
    } else if not_after - now.unix_timestamp() < secs(SELF_SIGNED_RENEW_BEFORE) {
        Some("it expires within 30 days")
    } else {
        None
    }
}

/// What the self-signed certificate is for: localhost, the loopback addresses, the public
/// host, and the listen address when it is a specific one.
fn self_signed_names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let host = config.public_origin().host_port().rsplit_once(':').map_or_else(
        || config.public_origin().host_port().to_owned(),
        |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h.to_owned()
            } else {
                config.public_origin().host_port().to_owned()
            }
        },
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
    let cert_pem = std::fs::read(&cert_path)
        .map_err(|e| TlsError::Read { path: cert_path.clone(), source: e })?;
    let key_pem = std::fs::read(&key_path)
        .map_err(|e| TlsError::Read { path: key_path.clone(), source: e })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCert { path: cert_path.clone(), detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: cert_path,
            detail: "the file has no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::NoKey { path: key_path.clone(), detail: e.to_string() })?;
    Ok(Some(Arc::new(build(certs, key, config.server.tls_session_resumption)?)))
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    resumption: bool,
) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Server cipher order: the provider lists suites strongest first, and a client cannot
    // steer the choice to a weaker one it happens to prefer.
    cfg.ignore_client_order = true;
    if resumption {
        cfg.ticketer = aws_lc_rs::Ticketer::new()?;
    } else {
        // No tickets (TLS 1.3) and no session cache (TLS 1.2): every handshake is a full one.
        cfg.send_tls13_tickets = 0;
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    fn config(dir: &Path) -> Config {
        Config::parse("[upstream]\nurl = \"http://127.0.0.1:3000\"\n", "t.toml", dir).unwrap()
    }

    fn validity(pem: &[u8]) -> (i64, i64) {
        let der = CertificateDer::pem_slice_iter(pem).next().unwrap().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp())
    }

    /// A certificate for the same names as `ensure_self_signed` makes, valid from `from` to
    /// `to` (seconds from now), written where it looks for one.
    fn plant(config: &Config, from: i64, to: i64) -> Vec<u8> {
        let (cert_path, key_path) = self_signed_paths(&config.data_dir);
        let now = time::OffsetDateTime::now_utc();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(self_signed_names(config)).unwrap();
        params.not_before = now + time::Duration::seconds(from);
        params.not_after = now + time::Duration::seconds(to);
        let pem = params.self_signed(&key).unwrap().pem();
        std::fs::create_dir_all(cert_path.parent().unwrap()).unwrap();
        std::fs::write(&cert_path, &pem).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::write(
            cert_path.with_extension("names"),
            self_signed_names(config).join("\n") + "\n",
        )
        .unwrap();
        pem.into_bytes()
    }

    #[test]
    fn a_new_self_signed_certificate_is_valid_for_90_days() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (cert, _) = ensure_self_signed(&config).unwrap();
        let (not_before, not_after) = validity(&std::fs::read(cert).unwrap());
        assert!(
            (now - 3600 - 60..=now - 3600 + 60).contains(&not_before),
            "not_before {not_before}, now {now}"
        );
        assert!(
            (now + 90 * DAY - 60..=now + 90 * DAY + 60).contains(&not_after),
            "not_after {not_after}, now {now}"
        );
    }

    /// The ~2,000-year certificates older versions made, and one about to expire, are replaced
    /// by a 90-day one; one with two months left is kept.
    #[test]
    fn an_expiring_or_everlasting_self_signed_certificate_is_replaced() {
        for (from, to, replaced) in [
            (-50 * 365 * DAY, 2000 * 365 * DAY, true),
            (-80 * DAY, 10 * DAY, true),
            (-100 * DAY, -DAY, true),
            (-30 * DAY, 60 * DAY, false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let config = config(dir.path());
            let planted = plant(&config, from, to);
            let (cert, _) = ensure_self_signed(&config).unwrap();
            let now_pem = std::fs::read(cert).unwrap();
            assert_eq!(now_pem != planted, replaced, "valid from {from}s to {to}s");
            let (not_before, not_after) = validity(&now_pem);
            assert!(not_after - not_before <= 90 * DAY + 3600, "valid from {from}s to {to}s");
        }
    }

    #[test]
    fn a_stored_file_without_a_certificate_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        plant(&config, -DAY, 60 * DAY);
        let (cert_path, _) = self_signed_paths(&config.data_dir);
        std::fs::write(&cert_path, "not a certificate\n").unwrap();
        let (cert, _) = ensure_self_signed(&config).unwrap();
        validity(&std::fs::read(cert).unwrap());
    }
}
