//! TLS termination: which protocol versions are accepted, ALPN dispatch to HTTP/2 and HTTP/1.1,
//! the plain-HTTP redirect listener, certificate reload on SIGHUP, the self-signed default and
//! its renewal, and an audit of the default settings by testssl.sh. Everything runs against the
//! real binary on loopback.

use crate::common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

// Cipher suites offered in the hand-built ClientHellos: legacy CBC ones a TLS 1.0/1.1 client
// would use, and the TLS 1.2 ECDHE AEAD suites the gateway supports. Every hello offers all of
// them, so the protocol version is the only thing that differs between refused and accepted.
const TLS_RSA_WITH_AES_128_CBC_SHA: u16 = 0x002f;
const TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: u16 = 0xc013;
const TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: u16 = 0xc009;
const TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02b;
const TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02f;
const SUITES: &[u16] = &[
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
    TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    TLS_RSA_WITH_AES_128_CBC_SHA,
];

fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    u16be(out, kind);
    u16be(out, data.len() as u16);
    out.extend_from_slice(data);
}

/// A ClientHello record as an old client sends it: `legacy_version` is the version claimed, and
/// there is no supported_versions extension (so the server must go by `legacy_version`).
fn client_hello(legacy_version: u16, suites: &[u16]) -> Vec<u8> {
    client_hello_for(legacy_version, suites, b"localhost")
}

/// [`client_hello`], naming `host` in its SNI extension.
fn client_hello_for(legacy_version: u16, suites: &[u16], host: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    u16be(&mut body, legacy_version);
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // empty session id
    u16be(&mut body, (suites.len() * 2) as u16);
    for s in suites {
        u16be(&mut body, *s);
    }
    body.extend_from_slice(&[1, 0]); // compression: null only

    let mut ext = Vec::new();
    let mut sni = Vec::new();
    u16be(&mut sni, (host.len() + 3) as u16);
    sni.push(0); // host_name
    u16be(&mut sni, host.len() as u16);
    sni.extend_from_slice(host);
    extension(&mut ext, 0x0000, &sni);
    // supported_groups: x25519, secp256r1, secp384r1
    extension(&mut ext, 0x000a, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    // ec_point_formats: uncompressed
    extension(&mut ext, 0x000b, &[1, 0]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256,
    // ecdsa_secp384r1_sha384, rsa_pkcs1_sha1, ecdsa_sha1
    let algs: [u16; 6] = [0x0403, 0x0804, 0x0401, 0x0503, 0x0201, 0x0203];
    let mut sa = Vec::new();
    u16be(&mut sa, (algs.len() * 2) as u16);
    for a in algs {
        u16be(&mut sa, a);
    }
    extension(&mut ext, 0x000d, &sa);
    u16be(&mut body, ext.len() as u16);
    body.extend_from_slice(&ext);

    let mut hs = vec![1]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![22]; // handshake
    u16be(&mut record, 0x0301); // record-layer version, as real clients send it
    u16be(&mut record, hs.len() as u16);
    record.extend_from_slice(&hs);
    record
}

#[derive(Debug, PartialEq)]
enum FirstRecord {
    Alert { level: u8, description: u8 },
    Handshake { msg_type: u8 },
    Other { content_type: u8 },
    Closed,
}

/// Sends `hello` on a fresh TCP connection and decodes the first TLS record that comes back.
async fn first_record(addr: std::net::SocketAddr, hello: &[u8]) -> FirstRecord {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(hello).await.unwrap();
    let read = async {
        let mut head = [0u8; 5];
        if tcp.read_exact(&mut head).await.is_err() {
            return FirstRecord::Closed;
        }
        let len = u16::from_be_bytes([head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        if tcp.read_exact(&mut payload).await.is_err() || payload.len() < 2 {
            return FirstRecord::Closed;
        }
        match head[0] {
            21 => FirstRecord::Alert { level: payload[0], description: payload[1] },
            22 => FirstRecord::Handshake { msg_type: payload[0] },
            t => FirstRecord::Other { content_type: t },
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("no answer to the ClientHello")
}

/// Downgrade attack / legacy clients: a ClientHello for TLS 1.0 or 1.1 (no supported_versions
/// extension, classic CBC suites on offer) gets a fatal alert, never a ServerHello. The same
/// hello claiming TLS 1.2 gets a ServerHello, which shows the probe itself is sound.
#[tokio::test]
async fn tls_1_0_and_1_1_are_refused_with_an_alert() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    for (name, version) in [("TLS 1.0", 0x0301u16), ("TLS 1.1", 0x0302)] {
        let answer = first_record(gate.addr, &client_hello(version, SUITES)).await;
        match answer {
            FirstRecord::Alert { level, description } => {
                assert_eq!(level, 2, "{name}: the alert must be fatal");
                // 70 = protocol_version, 40 = handshake_failure
                assert!(
                    description == 70 || description == 40,
                    "{name}: unexpected alert {description}"
                );
            }
            other => panic!("{name}: expected a fatal alert, got {other:?}"),
        }
    }
    // Positive control: identical bytes apart from the version.
    let answer = first_record(gate.addr, &client_hello(0x0303, SUITES)).await;
    assert_eq!(
        answer,
        FirstRecord::Handshake { msg_type: 2 },
        "TLS 1.2 hello should get a ServerHello"
    );
    assert_eq!(up.hits(), 0);
}

/// Log flooding: what a client puts in its ClientHello must not buy it a log line per
/// handshake. An IP address as SNI (RFC 6066 forbids it, but wrk and OpenSSL-based clients
/// send it for `https://127.0.0.1`) made rustls log a warning for every handshake; the
/// handshake itself goes on, and nothing is logged.
#[tokio::test]
async fn an_ip_address_as_sni_is_answered_and_not_logged() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    for _ in 0..20 {
        let answer = first_record(gate.addr, &client_hello_for(0x0303, SUITES, b"127.0.0.1")).await;
        assert_eq!(
            answer,
            FirstRecord::Handshake { msg_type: 2 },
            "a hello naming an IP address should get a ServerHello"
        );
    }
    // One request after them, so the gateway has written whatever it was going to log.
    let (status, _, _) = gate.tls().get("/echo/after").await;
    assert_eq!(status, 200);
    let logs = gate.logs();
    assert!(
        !logs.contains("SNI") && !logs.contains("rustls"),
        "client-triggered log lines:\n{logs}"
    );
}

/// Session resumption: by default a client that kept its session resumes it on its next
/// connection, on TLS 1.3 (tickets) and TLS 1.2 (session cache); with
/// `tls_session_resumption = false` every connection is a full handshake.
#[tokio::test]
async fn sessions_resume_unless_resumption_is_off() {
    let up = Upstream::start().await;
    for (server_extra, expected) in [
        ("", rustls::HandshakeKind::Resumed),
        ("tls_session_resumption = false", rustls::HandshakeKind::Full),
    ] {
        let gate =
            start(server_extra, &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
        let client = gate.tls();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            // One config, so both connections share its session store.
            let cfg = client.config(&[b"http/1.1"], &[version]);
            let mut kinds = Vec::new();
            for _ in 0..2 {
                let tls = client.connect_with(cfg.clone()).await.expect("TLS connect");
                kinds.push(tls.get_ref().1.handshake_kind());
                // A response read, so a TLS 1.3 ticket sent after the handshake is taken in.
                let mut s = h1_on(tls).await;
                let (status, _, _) = collect(
                    s.send_request(req("GET", "/echo/r").body(Full::default()).unwrap())
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(status, 200);
            }
            assert_eq!(
                kinds,
                [Some(rustls::HandshakeKind::Full), Some(expected)],
                "{server_extra:?} {version:?}"
            );
        }
    }
}

/// Both supported versions work end to end: a client restricted to TLS 1.2 and one restricted
/// to TLS 1.3 each negotiate that version and get a 200 from a declared route.
#[tokio::test]
async fn tls_1_2_only_and_tls_1_3_only_clients_connect() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let client = gate.tls();
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let tls = client
            .connect_with(client.config(&[b"http/1.1"], &[version]))
            .await
            .expect("TLS connect");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expected));
        let mut s = h1_on(tls).await;
        let (status, _, body) = collect(
            s.send_request(req("GET", "/echo/v").body(Full::default()).unwrap()).await.unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{expected:?}");
        assert_eq!(json(&body)["path"], "/echo/v");
    }
    assert_eq!(up.hits(), 2);
}

/// ALPN picks the protocol: a client offering h2 speaks HTTP/2 end to end (the upstream sees the
/// request), and a client offering only http/1.1, or no ALPN at all, gets HTTP/1.1.
#[tokio::test]
async fn alpn_selects_http2_or_http1() {
    let up = Upstream::start().await;
    let gate = start("", &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()));
    let client = gate.tls();

    let mut h2 = client.h2().await;
    let r = Request::builder()
        .method("GET")
        .uri(format!("https://localhost:{}/echo/h2?x=1", gate.addr.port()));
    let resp =
        h2.send_request(r.body(Full::<Bytes>::default()).unwrap()).await.expect("h2 response");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let (status, _, body) = collect(resp).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["path"], "/echo/h2?x=1");
    assert_eq!(up.hits(), 1);
    let (method, path, _) = up.last.lock().unwrap().clone().unwrap();
    assert_eq!((method.as_str(), path.as_str()), ("GET", "/echo/h2?x=1"));

    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let tls = client
            .connect_with(client.config(alpn, rustls::ALL_VERSIONS))
            .await
            .expect("TLS connect");
        let expected = if alpn.is_empty() { None } else { Some(&b"http/1.1"[..]) };
        assert_eq!(tls.get_ref().1.alpn_protocol(), expected);
        let mut s = h1_on(tls).await;
        let resp =
            s.send_request(req("GET", "/echo/h1").body(Full::default()).unwrap()).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_11);
        assert_eq!(collect(resp).await.0, 200);
    }
    assert_eq!(up.hits(), 3);
}

/// Host-header injection on the redirect listener: whatever Host a client sends, the 308 goes
/// to the configured public origin with the same path and query, never to the client's host.
#[tokio::test]
async fn redirect_listener_targets_the_configured_origin() {
    let up = Upstream::start().await;
    let gate = start(
        "redirect_http = \"127.0.0.1:0\"\npublic_url = \"https://app.example.test:8443\"",
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()),
    );
    let redirect = gate.redirect.expect("the harness captured the redirect listener");
    assert_ne!(redirect, gate.addr);

    let r = Request::builder()
        .method("GET")
        .uri("/path?q=1")
        .header("host", "evil.example")
        .body(Full::<Bytes>::default())
        .unwrap();
    let (status, headers, _) = plain_send(redirect, r).await;
    assert_eq!(status, 308);
    assert_eq!(headers["location"], "https://app.example.test:8443/path?q=1");

    // An absolute-form target naming another host is not believed either.
    let mut tcp = TcpStream::connect(redirect).await.unwrap();
    tcp.write_all(b"GET http://evil.example/x?y=2 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .expect("redirect listener answers and closes")
        .unwrap();
    let out = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(out.starts_with("http/1.1 308"), "{out}");
    assert!(out.contains("\r\nlocation: https://app.example.test:8443/x?y=2\r\n"), "{out}");
    assert!(!out.contains("evil"), "{out}");
    assert_eq!(up.hits(), 0);
}

fn make_cert(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.der().clone())
}

fn presented(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("server certificate")[0].clone().into_owned()
}

/// Certificate rotation without downtime: after the cert/key files are replaced and SIGHUP is
/// sent, new connections get the new certificate while a connection opened before keeps working.
#[tokio::test]
async fn sighup_reloads_the_certificate_for_new_connections() {
    let up = Upstream::start().await;
    let certs = tempfile::tempdir().unwrap();
    let (cert_a, key_a, der_a) = make_cert(certs.path(), "a");
    let (cert_b, key_b, der_b) = make_cert(certs.path(), "b");
    assert_ne!(der_a, der_b);
    let live_cert = certs.path().join("live.crt");
    let live_key = certs.path().join("live.key");
    std::fs::copy(&cert_a, &live_cert).unwrap();
    std::fs::copy(&key_a, &live_key).unwrap();
    // The client trusts both, so the test observes which one is presented.
    let both = certs.path().join("both.pem");
    std::fs::write(
        &both,
        [std::fs::read(&cert_a).unwrap(), std::fs::read(&cert_b).unwrap()].concat(),
    )
    .unwrap();

    let gate = start(
        &format!(
            "tls = {{ cert = {:?}, key = {:?} }}",
            live_cert.display().to_string(),
            live_key.display().to_string()
        ),
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()),
    );
    let client = TlsClient::new(gate.addr, &both);

    let old = client.connect(&[b"http/1.1"]).await;
    assert_eq!(presented(&old), der_a);
    let mut old = h1_on(old).await;
    let (s, _, _) = collect(
        old.send_request(req("GET", "/echo/1").body(Full::default()).unwrap()).await.unwrap(),
    )
    .await;
    assert_eq!(s, 200);

    std::fs::copy(&key_b, &live_key).unwrap();
    std::fs::copy(&cert_b, &live_cert).unwrap();
    gate.signal("HUP");
    assert!(
        gate.wait_for_log_count("configuration reloaded", 1, WAIT).await,
        "no reload logged:\n{}",
        gate.logs()
    );

    let new = client.connect(&[b"http/1.1"]).await;
    assert_eq!(presented(&new), der_b, "a new connection must see the new certificate");
    let mut new = h1_on(new).await;
    let (s, _, _) = collect(
        new.send_request(req("GET", "/echo/2").body(Full::default()).unwrap()).await.unwrap(),
    )
    .await;
    assert_eq!(s, 200);

    // The connection opened before the reload still serves requests.
    let (s, _, _) = collect(
        old.send_request(req("GET", "/echo/3").body(Full::default()).unwrap()).await.unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(up.hits(), 3);
}

/// Secure by default with no set-up: `tls = "self-signed"` makes a certificate (and a private
/// key readable only by its owner) in data_dir/tls on first start, and a restart reuses it rather
/// than minting a new one that clients would have to trust again, until the public host
/// changes: then a certificate for the new name replaces it.
#[tokio::test]
async fn self_signed_certificate_is_made_once_and_reused() {
    let up = Upstream::start().await;
    let rest = format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config());
    let state = tempfile::tempdir().unwrap();
    let cert_path = state.path().join("data/tls/self-signed.crt");
    let key_path = state.path().join("data/tls/self-signed.key");
    assert!(!cert_path.exists());

    let run = |server: &'static str, expect_made: bool| {
        let rest = rest.clone();
        let (state_dir, cert_path) = (state.path().to_owned(), cert_path.clone());
        async move {
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("frontgate.toml");
            std::fs::write(
                &config,
                config_text(&state_dir, &format!("tls = \"self-signed\"\n{server}"), &rest),
            )
            .unwrap();
            let gate = spawn(dir, config, &["serve", "-c"]);
            let client = TlsClient::new(gate.addr, &cert_path);
            let tls = client.connect(&[b"http/1.1"]).await;
            let der = presented(&tls);
            let mut s = h1_on(tls).await;
            let (status, _, _) = collect(
                s.send_request(req("GET", "/echo/x").body(Full::default()).unwrap()).await.unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(
                gate.log_count("made a self-signed certificate") == 1,
                expect_made,
                "{}",
                gate.logs()
            );
            der
        }
    };

    let first = run("", true).await;
    let cert_bytes = std::fs::read(&cert_path).unwrap();
    let key_bytes = std::fs::read(&key_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o077,
            0,
            "private key is readable by others"
        );
    }
    let second = run("", false).await;
    assert_eq!(first, second, "the restart presented a different certificate");
    assert_eq!(std::fs::read(&cert_path).unwrap(), cert_bytes);
    assert_eq!(std::fs::read(&key_path).unwrap(), key_bytes);

    // A new public host: a new certificate, valid for that name (the client checks it).
    let moved = "public_url = \"https://gate.example.test\"";
    let third = run(moved, true).await;
    assert_ne!(third, first, "the old certificate was kept for a new public host");
    let valid_for_new_host = |cert: &CertificateDer<'static>| {
        use rustls::client::danger::ServerCertVerifier;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        let name = rustls_pki_types::ServerName::try_from("gate.example.test").unwrap();
        verifier
            .verify_server_cert(cert, &[], &name, &[], rustls_pki_types::UnixTime::now())
            .is_ok()
    };
    assert!(valid_for_new_host(&third), "the new certificate is not for the new public host");
    assert!(!valid_for_new_host(&first));
    // ... and kept while the host stays.
    assert_eq!(run(moved, false).await, third);
    assert_eq!(up.hits(), 4);
}

/// Upgrade path: a self-signed certificate from an older version (valid for ~2,000 years) is
/// replaced at start by a 90-day one, and the replacement is logged.
#[tokio::test]
async fn an_everlasting_self_signed_certificate_is_renewed_at_start() {
    let state = tempfile::tempdir().unwrap();
    let tls_dir = state.path().join("data/tls");
    std::fs::create_dir_all(&tls_dir).unwrap();
    let old = rcgen::generate_simple_self_signed(vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ])
    .unwrap();
    std::fs::write(tls_dir.join("self-signed.crt"), old.cert.pem()).unwrap();
    std::fs::write(tls_dir.join("self-signed.key"), old.signing_key.serialize_pem()).unwrap();
    std::fs::write(tls_dir.join("self-signed.names"), "localhost\n127.0.0.1\n::1\n").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("frontgate.toml");
    let up = Upstream::start().await;
    std::fs::write(&config, config_text(state.path(), "tls = \"self-signed\"", &up.config()))
        .unwrap();
    let gate = spawn(dir, config, &["serve", "-c"]);
    let tls =
        TlsClient::new(gate.addr, &tls_dir.join("self-signed.crt")).connect(&[b"http/1.1"]).await;
    let der = presented(&tls);
    assert_ne!(&der, old.cert.der(), "the old certificate is still presented");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let days = (cert.validity().not_after.timestamp()
        - std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            as i64)
        / 86400;
    assert!((89..=90).contains(&days), "the new certificate is valid for {days} more days");
    assert_eq!(gate.log_count("renewing the self-signed certificate"), 1, "{}", gate.logs());
}

/// The `testssl` command from Debian's testssl.sh package (scripts/test.sh installs it).
fn testssl_command() -> &'static str {
    for name in ["testssl", "testssl.sh"] {
        if std::process::Command::new(name)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
        {
            return name;
        }
    }
    panic!(
        "testssl.sh is not installed: run scripts/test.sh (it installs the Debian package testssl.sh)"
    );
}

/// An operator's certificate: a CA, and a 90-day leaf for localhost signed by it.
fn ca_and_leaf(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "frontgate test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(365);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::days(90);
    // As a public CA's certificate has it (testssl rates a certificate without CRL or OCSP
    // URI HIGH); nothing fetches it (testssl's --phone-out is off).
    leaf.crl_distribution_points =
        vec![rcgen::CrlDistributionPoint { uris: vec!["http://crl.invalid/test-ca.crl".into()] }];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let (ca_path, cert_path, key_path) =
        (dir.join("ca.crt"), dir.join("leaf.crt"), dir.join("leaf.key"));
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    std::fs::write(&cert_path, leaf_cert.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

/// The default TLS settings pass an outside audit: testssl.sh, run against the gateway with an
/// operator's CA-signed certificate (its CA added to testssl's trust), reports no HIGH or
/// CRITICAL finding (and no FATAL scan error). Among what it checks: protocol versions, cipher
/// categories, server cipher order (rated HIGH when the client's order wins), forward secrecy,
/// certificate validity and chain, and the known TLS vulnerabilities. Time-boxed.
#[tokio::test]
async fn testssl_finds_nothing_high_or_critical() {
    const TIME_BOX: Duration = Duration::from_secs(180);
    let testssl = testssl_command();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf(certs.path());
    let up = Upstream::start().await;
    let gate = start(
        &format!(
            "tls = {{ cert = {:?}, key = {:?} }}",
            cert.display().to_string(),
            key.display().to_string()
        ),
        &format!("{}\n[[routes]]\nmatch = \"/echo/**\"\n", up.config()),
    );
    let report = certs.path().join("testssl.json");
    let mut cmd = tokio::process::Command::new(testssl);
    // Everything a default run does but the client simulations (handshakes replayed from some
    // forty old and new clients, which report nothing rated): the whole default run takes
    // about two minutes on two cores.
    cmd.args([
        "--protocols",
        "--std",
        "--fs",
        "--server-preference",
        "--server-defaults",
        "--headers",
        "--vulnerable",
    ])
    .args([
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "off",
        "--nodns",
        "none",
        "--ip",
        "127.0.0.1",
        "--sneaky",
    ])
    .args(["--connect-timeout", "10", "--openssl-timeout", "10"])
    .arg("--add-ca")
    .arg(&ca)
    .arg("--jsonfile")
    .arg(&report)
    .arg(format!("localhost:{}", gate.addr.port()))
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    // Its own process group, so the time-box can stop the openssl children too.
    .process_group(0)
    .kill_on_drop(true);
    let child = cmd.spawn().expect("start testssl");
    let pid = child.id().expect("testssl pid");
    let out = match tokio::time::timeout(TIME_BOX, child.wait_with_output()).await {
        Ok(out) => out.expect("testssl output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("testssl did not finish within {TIME_BOX:?}");
        }
    };
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "testssl wrote no JSON report ({e}); exit {:?}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("testssl's JSON report: {e}\n{text}"));
    let mut by_severity: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in &findings {
        let severity = f["severity"].as_str().unwrap_or("?").to_owned();
        by_severity.entry(severity).or_default().push(format!(
            "{}: {}",
            f["id"].as_str().unwrap_or("?"),
            f["finding"].as_str().unwrap_or("?")
        ));
    }
    // The whole report in the test output, for the record.
    for (severity, list) in &by_severity {
        eprintln!("== {severity} ({})", list.len());
        for f in list {
            eprintln!("   {f}");
        }
    }
    let bad: Vec<&String> = ["CRITICAL", "HIGH", "FATAL"]
        .iter()
        .filter_map(|s| by_severity.get(*s))
        .flatten()
        .collect();
    assert!(
        bad.is_empty(),
        "testssl findings rated HIGH, CRITICAL or FATAL:\n{}",
        bad.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    // The scan reached the server: it reports the negotiated protocols and the certificate.
    assert!(
        findings
            .iter()
            .any(|f| f["id"] == "TLS1_3"
                && f["finding"].as_str().unwrap_or("").starts_with("offered")),
        "{text}"
    );
    assert!(findings.iter().any(|f| f["id"] == "cipher_order"), "{text}");
}
