//! The shared state layer against the real engines: the SQL store opens, migrates (twice, as a
//! restart does), takes audit events on SQLite and PostgreSQL; an unreachable store is a clear
//! start error; Redis events published by one process's services reach another's.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::stores::{self, BACKENDS, Backend};
use frontgate::config::Config;
use frontgate::state::Services;
use frontgate::store::audit::{self, AuditEvent};
use frontgate::store::events::Hook;

fn config(dir: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        "data_dir = {:?}\n[upstream]\nurl = \"http://127.0.0.1:1\"\n{extra}",
        dir.join("data").display().to_string()
    );
    Config::parse(&text, "test.toml", dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn store_opens_migrates_and_records_audit_events_on_both_backends() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let (section, _pg) = stores::store_section(backend);
        let cfg = config(dir.path(), &section);
        for round in 0..2 {
            // The second start finds the schema in place and applies nothing twice.
            let services = Services::start(&cfg).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
            let db = services.db().expect("store opened").clone();
            assert_eq!(
                db.backend(),
                if backend == Backend::Sqlite { "sqlite" } else { "postgres" }
            );
            let d = db.clone();
            services
                .block_on(async move {
                    audit::record(
                        &d,
                        &AuditEvent::now(
                            "test",
                            "thing.create",
                            &format!("t{round}"),
                            serde_json::json!({"n": round}),
                        ),
                    )
                    .await
                })
                .unwrap()
                .unwrap();
            let events = services
                .block_on(async move { audit::recent(&db, None, 10).await })
                .unwrap()
                .unwrap();
            assert_eq!(events.len(), round + 1, "{backend:?}");
            assert_eq!(events[0].target, format!("t{round}"));
            assert_eq!(events[0].detail["n"], round);
        }
        if backend == Backend::Sqlite {
            let file = dir.path().join("data/frontgate.db");
            assert!(file.is_file(), "SQLite file created in the data dir");
        }
    }
}

#[test]
fn unreachable_stores_are_clear_start_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1; the password must not appear in the message.
    let cfg = config(
        dir.path(),
        "[store]\nurl = \"postgres://u:hunter2@127.0.0.1:1/x\"\ntimeout = \"1s\"\n",
    );
    let e = Services::start(&cfg).err().expect("refused").to_string();
    assert!(e.contains("cannot open the store at postgres://u:***@127.0.0.1:1/x"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let cfg = config(dir.path(), "[shared]\nredis = \"redis://127.0.0.1:1\"\n");
    let e = Services::start(&cfg).err().expect("refused").to_string();
    assert!(e.contains("redis://127.0.0.1:1"), "{e}");
}

#[test]
fn events_reach_another_nodes_services_through_redis() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = stores::redis_prefix();
    let cfg = config(
        dir.path(),
        &format!("[shared]\nredis = \"{}\"\nprefix = \"{prefix}\"\n", stores::REDIS_URL),
    );
    let a = Services::start(&cfg).unwrap();
    let b = Arc::new(Services::start(&cfg).unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let hook: Arc<Hook> = Arc::new(move |topic, payload| {
        if topic == "test.ping" && payload == "hello" {
            s2.fetch_add(1, Ordering::SeqCst);
        }
    });
    b.events().subscribe(&hook);
    // The subscription is up once B has seen its first resync; publish until B hears one
    // message (bounded), since a message published before B subscribed is lost by design.
    let deadline = Instant::now() + Duration::from_secs(10);
    let a = Arc::new(a);
    while seen.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        let a2 = a.clone();
        a.block_on(async move { a2.publish("test.ping", "hello").await }).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.load(Ordering::SeqCst) >= 1, "B never received A's event");
}

/// A logout that races a refresh wins, on every session store: the refresh read the session,
/// the session was deleted (RP-initiated logout by key, back-channel logout by `sid`), and the
/// refresh's write-back must not bring it back. Without a logout, the write-back replaces the
/// record and keeps its deadlines.
#[test]
fn a_refresh_write_back_never_resurrects_a_logged_out_session() {
    use frontgate::session::store::{Backend as Sessions, Row};
    let mut stores = Vec::new();
    let mut guards = Vec::new();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let (section, pg) = stores::store_section(backend);
        let services = Services::start(&config(dir.path(), &section))
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        stores.push((
            format!("{backend:?}"),
            Sessions::Sql(services.db().unwrap().clone()),
            services,
        ));
        guards.push((dir, pg));
    }
    let dir = tempfile::tempdir().unwrap();
    let shared = format!(
        "[shared]\nredis = \"{}\"\nprefix = \"{}\"\n",
        stores::REDIS_URL,
        stores::redis_prefix()
    );
    let services = Services::start(&config(dir.path(), &shared)).unwrap();
    stores.push(("Redis".into(), Sessions::Redis(services.redis().unwrap().clone()), services));

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    for (name, store, services) in &stores {
        let row = move |key: &str, sealed: &[u8]| Row {
            key: key.into(),
            subject: "alice".into(),
            sid: Some(format!("sid-{key}")),
            absolute_expires_at: now + 3600,
            idle_expires_at: now + 600,
            sealed: sealed.to_vec(),
        };
        let s = store.clone();
        services
            .block_on(async move {
                // RP-initiated logout between the refresh's read and its write.
                s.put(&row("a", b"v1"), now).await.unwrap();
                let read = s.get("a", now).await.unwrap().expect("stored");
                assert!(s.delete("a").await.unwrap());
                assert!(
                    !s.update(&Row { sealed: b"v2".to_vec(), ..read }).await.unwrap(),
                    "the write-back reports the session gone"
                );
                assert!(s.get("a", now).await.unwrap().is_none(), "the logout stands");
                // Back-channel logout (by sid) between read and write.
                s.put(&row("b", b"v1"), now).await.unwrap();
                let read = s.get("b", now).await.unwrap().expect("stored");
                assert_eq!(s.delete_matching(None, Some("sid-b")).await.unwrap(), 1);
                assert!(!s.update(&Row { sealed: b"v2".to_vec(), ..read }).await.unwrap());
                assert!(s.get("b", now).await.unwrap().is_none());
                // No logout: the refreshed record replaces the old one, deadlines kept.
                s.put(&row("c", b"v1"), now).await.unwrap();
                let read = s.get("c", now).await.unwrap().expect("stored");
                assert!(s.update(&Row { sealed: b"v2".to_vec(), ..read }).await.unwrap());
                let after = s.get("c", now).await.unwrap().expect("still there");
                assert_eq!(after.sealed, b"v2");
                assert_eq!(after.absolute_expires_at, now + 3600);
                assert!(
                    (now + 590..=now + 600).contains(&after.idle_expires_at),
                    "{}",
                    after.idle_expires_at
                );
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
