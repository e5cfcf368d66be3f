//! Fuzzes what the bearer-token check reads from untrusted bytes: a token
//! (`JwtAuthenticator::verify_uncached`: the header, `kid`/`alg` choice, the signature and
//! claims, against a static key set), a DPoP proof (`DpopVerifier::verify`: its header, the
//! embedded JWK, the signature and claims), and a key set document (`KeySet::parse`, what an
//! issuer's JWKS endpoint sends). Properties: no panic, and nothing the fuzzer makes verifies
//! (it holds no private key). The input is one text; each reader gets all of it.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use frontgate::checks::dpop::DpopVerifier;
use frontgate::checks::jwks::KeySet;
use frontgate::checks::jwt::JwtAuthenticator;
use frontgate::config::jwt::JwtConfig;
use frontgate::state::Services;
use frontgate::state::replay::MemoryReplaySet;
use libfuzzer_sys::fuzz_target;

/// A P-256 public key whose private half was thrown away.
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","alg":"ES256","use":"sig","x":"-Y6716pOugnPnL3I4q4C2blAjY7Qsa0Z0khPnn5lR7I","y":"ChSCyufMOIa1-0q619gXgnEpyWZ1b0hWtcY6ojM1Tj4"}]}"#;

struct World {
    jwt: JwtAuthenticator,
    dpop: DpopVerifier,
    rt: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("frontgate-fuzz-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(&path, JWKS).unwrap();
        let config: JwtConfig = toml::from_str(&format!(
            "[[issuers]]\nissuer = \"https://i.test\"\naudiences = [\"api\"]\njwks_file = {:?}\nalgorithms = [\"ES256\", \"RS256\"]\n",
            path.display().to_string()
        ))
        .unwrap();
        let services = Arc::new(Services::runtime_only().unwrap());
        let jwt = JwtAuthenticator::new(
            &config,
            "https://g.test",
            services,
            Arc::new(MemoryReplaySet::new(1000)),
        )
        .unwrap();
        let dpop = DpopVerifier::new(
            Arc::new(MemoryReplaySet::new(1000)),
            Duration::from_secs(u32::MAX as u64),
            "https://g.test",
        );
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        World { jwt, dpop, rt }
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = KeySet::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let w = world();
    w.rt.block_on(async {
        assert!(w.jwt.verify_uncached(text).await.is_err(), "a forged token verified");
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(text) {
            headers.insert("dpop", v);
        }
        let r =
            w.dpop.verify(&headers, &http::Method::GET, "/x", "token", "no-such-thumbprint").await;
        assert!(r.is_err(), "a forged proof verified");
    });
});
