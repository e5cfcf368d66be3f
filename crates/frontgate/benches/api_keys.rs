//! API-key verification costs with 1,000,000 keys in the store, on SQLite and on PostgreSQL:
//! cached verification (the steady state: checksum, HMAC, cache hit, rules), a malformed key
//! (refused before any lookup), and uncached verification (a key not seen before: one indexed
//! store lookup through the state runtime). Each case reports p50/p99/max of single calls.
//!
//! `cargo bench -p frontgate --bench api_keys` (both backends) or `... -- sqlite` / `-- postgres`.
//! PostgreSQL: the local server at 127.0.0.1:5432 (user postgres); a scratch database is made
//! and dropped. Seeding uses multi-row inserts (1,000 rows a statement). Not a test: nothing
//! here asserts a time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use frontgate::config::Config;
use frontgate::keys::format::{self, Hasher};
use frontgate::keys::{KeyRecord, Verifier, repo};
use frontgate::state::Services;
use futures_util::FutureExt;

const KEYS: usize = 1_000_000;
const SAMPLE: usize = 20_000;
const SECRET: &str = "bench-hash-secret-0123456789abcdef0123";

fn percentiles(mut ns: Vec<u64>) -> (f64, f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    (at(0.50), at(0.99), *ns.last().unwrap_or(&0) as f64 / 1000.0)
}

fn record(i: usize, key: &str, hasher: &Hasher) -> KeyRecord {
    KeyRecord {
        id: format!("key_bench{i:011}"),
        digest: hasher.digest(key),
        hint: format::hint("fgk_", key),
        name: format!("bench {i}"),
        subject: format!("client-{i}"),
        scopes: vec!["items:read".into()],
        origins: vec![],
        cidrs: vec![],
        expires_at: None,
        rate_limit: None,
        uses_remaining: None,
        metadata: serde_json::json!({}),
        created_at: 0,
        last_used_at: None,
        revoked_at: None,
        revoked_reason: None,
        rotated_from: None,
        replaced_by: None,
    }
}

fn pg_admin(sql: String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.expect("admin SQL");
    });
}

fn run(backend: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pg_name = format!("fgbench_{}", std::process::id());
    let store = match backend {
        "sqlite" => "[store]\nurl = \"sqlite://bench.db\"\n".to_owned(),
        _ => {
            pg_admin(format!("CREATE DATABASE {pg_name}"));
            format!("[store]\nurl = \"postgres://postgres@127.0.0.1:5432/{pg_name}\"\n")
        }
    };
    let text = format!(
        "data_dir = {:?}\n[upstream]\nurl = \"http://127.0.0.1:1\"\n{store}[api_keys]\nhash_secret = \"{SECRET}\"\ncache_ttl = \"5m\"\ncache_capacity = 1000000\nlast_used_flush = \"1h\"\n",
        dir.path().display().to_string()
    );
    let config = Config::parse(&text, "<bench>", dir.path()).expect("bench config");
    let services = Arc::new(Services::start(&config).expect("store"));
    let db = services.db().expect("db").clone();

    // Seed: 1,000,000 keys; keep a sample of the full keys to present.
    let hasher = Hasher::new(SECRET.as_bytes());
    let t = Instant::now();
    let mut sample = Vec::with_capacity(SAMPLE);
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..KEYS {
        let key = format::generate("fgk_");
        batch.push(record(i, &key, &hasher));
        if i % (KEYS / SAMPLE) == 0 {
            sample.push(key);
        }
        if batch.len() == 10_000 || i == KEYS - 1 {
            let (d, b) = (db.clone(), std::mem::take(&mut batch));
            services
                .block_on(async move { repo::insert_many(&d, &b).await })
                .expect("runtime")
                .expect("seed");
        }
    }
    println!("[{backend}] seeded {KEYS} keys in {:.1} s", t.elapsed().as_secs_f64());
    let verifier = Verifier::new(config.api_keys.as_ref().expect("api_keys"), &services);
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    // A worker's runtime: the uncached path hops to the state runtime and back, as in the gateway.
    let worker =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    // Uncached: each sampled key presented for the first time.
    let mut uncached = Vec::with_capacity(sample.len());
    for key in &sample {
        let t = Instant::now();
        let r = worker.block_on(verifier.verify(key, ip, None));
        uncached.push(t.elapsed().as_nanos() as u64);
        assert!(r.is_ok(), "sampled key refused: {r:?}");
    }
    // Cached: the same keys again, many times; the cached path never awaits I/O.
    let mut cached = Vec::with_capacity(sample.len() * 20);
    for _ in 0..20 {
        for key in &sample {
            let t = Instant::now();
            let r = verifier.verify(key, ip, None).now_or_never();
            cached.push(t.elapsed().as_nanos() as u64);
            assert!(matches!(r, Some(Ok(_))), "cached verification awaited or failed");
        }
    }
    let malformed = "fgk_thisisnotakeythisisnotakeythisisnotakey";
    let mut refused = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let t = Instant::now();
        let r = verifier.verify(std::hint::black_box(malformed), ip, None).now_or_never();
        refused.push(t.elapsed().as_nanos() as u64);
        assert!(matches!(r, Some(Err(_))));
    }
    for (name, ns) in [
        ("cached verification", cached),
        ("uncached verification (store lookup)", uncached),
        ("malformed key (no lookup)", refused),
    ] {
        let n = ns.len();
        let (p50, p99, max) = percentiles(ns);
        println!(
            "[{backend}] {name:<40} n={n:<8} p50 {p50:>9.2} µs  p99 {p99:>9.2} µs  max {max:>10.2} µs"
        );
    }
    drop(verifier);
    let d = db.clone();
    let _ = services.block_on(async move { d.close().await });
    drop(services);
    if backend != "sqlite" {
        pg_admin(format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"));
    }
    std::thread::sleep(Duration::from_millis(10));
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for backend in ["sqlite", "postgres"] {
        if filter.as_deref().is_none_or(|f| backend.contains(f)) {
            run(backend);
        }
    }
}
