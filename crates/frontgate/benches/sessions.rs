//! Session lookup cost: what `auth = "session"` adds to a request — find the session by its
//! cookie (SHA-256 of the id, one store read), open it (AES-256-GCM) and decode it — on SQLite
//! and on Redis, run the way the gateway runs it (from a worker's current-thread runtime, hopping
//! to the state runtime). Plain `std::time` rounds, fastest and median reported, as in
//! hot_path.rs. Needs Redis on 127.0.0.1:6379 for the Redis case (skipped when absent).
//! Run with `cargo bench -p frontgate --bench sessions`. Nothing here asserts a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontgate::config::store::StoreConfig;
use frontgate::session::crypto::Sealer;
use frontgate::session::store::Backend;
use frontgate::session::{SessionData, Sessions};
use frontgate::state::Services;
use frontgate::store::Db;
use frontgate::store::redis::Redis;

fn data() -> SessionData {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "alice".into());
    claims.insert("name".into(), "Alice Example".into());
    claims.insert("email".into(), "alice@example.test".into());
    SessionData {
        subject: "alice".into(),
        sid: Some("sid-0123456789".into()),
        claims,
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        access_token: "a".repeat(800),
        access_expires_at: Some(i64::MAX / 2),
        refresh_token: Some("r".repeat(43)),
        id_token: Some("i".repeat(900)),
        created_at: 0,
    }
}

/// (best, median) µs per lookup over 11 rounds of `n` lookups.
fn time_lookups(sessions: &Sessions, token: &str, n: u32) -> (f64, f64) {
    let worker =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("worker runtime");
    let mut rounds: Vec<f64> = (0..11)
        .map(|_| {
            worker.block_on(async {
                let t = Instant::now();
                for _ in 0..n {
                    let s = sessions.load(token).await.expect("lookup").expect("session");
                    std::hint::black_box(s);
                }
                t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
            })
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    (rounds[0], rounds[rounds.len() / 2])
}

fn bench(name: &str, backend: Backend, services: Arc<Services>) {
    let sessions = Sessions::new(
        backend,
        &[7u8; 32],
        services,
        Duration::from_secs(1800),
        Duration::from_secs(12 * 3600),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (token, _) = rt.block_on(sessions.create(&data())).expect("create");
    let (best, median) = time_lookups(&sessions, &token, 2000);
    println!("session lookup, {name:<7} {best:>8.1} µs best  {median:>8.1} µs median");
}

fn main() {
    let services = Arc::new(Services::runtime_only().expect("state runtime"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let db = services
        .block_on(async move { Db::open(&StoreConfig::default(), &path).await })
        .expect("runtime")
        .expect("open sqlite");
    bench("sqlite", Backend::Sql(db), services.clone());
    let prefix = format!("fgbench_{}:", std::process::id());
    match services
        .block_on(async move {
            Redis::connect("redis://127.0.0.1:6379", &prefix, Duration::from_secs(2)).await
        })
        .expect("runtime")
    {
        Ok(r) => bench("redis", Backend::Redis(r), services.clone()),
        Err(e) => println!("session lookup, redis   skipped: {e}"),
    }
    // The crypto alone, for scale.
    let sealer = Sealer::new(&[7u8; 32]);
    let plain = serde_json::to_vec(&data()).expect("json");
    let sealed = sealer.seal(b"k", &plain).expect("seal");
    let t = Instant::now();
    for _ in 0..20000 {
        std::hint::black_box(sealer.open(b"k", &sealed).expect("open"));
    }
    println!(
        "open a sealed session ({} bytes): {:.2} µs",
        sealed.len(),
        t.elapsed().as_secs_f64() * 1e6 / 20000.0
    );
}
