//! Rate limits: GCRA per client, per header, shared across nodes through Redis, kept across
//! reloads, and each outage mode when Redis goes away.

use crate::common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

fn limited_config(up: &Upstream, limits: &str, route_extra: &str) -> String {
    format!("{}\n{limits}\n[[routes]]\nmatch = \"/echo/**\"\n{route_extra}\n", up.config())
}

async fn get_with(
    gate: &Gate,
    header: Option<(&str, &str)>,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let mut r = req("GET", "/echo/x");
    if let Some((k, v)) = header {
        r = r.header(k, v);
    }
    gate.tls().send(r.body(Full::default()).unwrap()).await
}

#[tokio::test]
async fn a_client_over_its_burst_gets_429_with_retry_after_and_the_upstream_never_sees_it() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &limited_config(
            &up,
            "[rate_limits.per_ip]\nkey = \"ip\"\nrate = \"1/min\"\nburst = 3\n",
            "rate_limit = [\"per_ip\"]",
        ),
    );
    for i in 0..3 {
        assert_eq!(get_with(&gate, None).await.0, 200, "request {i} is within the burst");
    }
    let (status, headers, body) = get_with(&gate, None).await;
    assert_eq!(status, 429);
    let p = json(&body);
    assert_eq!(p["code"], "rate_limited");
    assert!(p["detail"].as_str().unwrap().contains("per_ip"), "{p}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (55..=60).contains(&retry),
        "one request per minute, burst used up: the next slot is a minute away, got {retry}"
    );
    assert_eq!(headers["ratelimit-policy"], "\"per_ip\";q=3;w=60");
    assert!(headers["ratelimit"].to_str().unwrap().starts_with("\"per_ip\";r=0;t="));
    assert_eq!(up.hits(), 3, "refused requests never reach the upstream");
    let m = gate.metrics().await;
    assert!(m.contains("frontgate_rate_limited_total{limit=\"per_ip\"} 1"), "{m}");
    assert!(m.contains("code=\"rate_limited\""), "{m}");
}

#[tokio::test]
async fn a_header_keyed_limit_counts_each_value_apart_and_leaving_the_header_out_does_not_escape() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &limited_config(
            &up,
            "[rate_limits.tenant]\nkey = \"header:x-tenant\"\nrate = \"1/h\"\nburst = 1\n",
            "rate_limit = [\"tenant\"]",
        ),
    );
    assert_eq!(get_with(&gate, Some(("x-tenant", "a"))).await.0, 200);
    assert_eq!(get_with(&gate, Some(("x-tenant", "a"))).await.0, 429);
    assert_eq!(
        get_with(&gate, Some(("x-tenant", "b"))).await.0,
        200,
        "another tenant has its own bucket"
    );
    assert_eq!(get_with(&gate, None).await.0, 200);
    assert_eq!(get_with(&gate, None).await.0, 429, "requests without the header share one bucket");
}

#[tokio::test]
async fn buckets_survive_a_reload_and_a_changed_limit_starts_afresh() {
    let up = Upstream::start().await;
    let gate = start(
        "",
        &limited_config(
            &up,
            "[rate_limits.per_ip]\nkey = \"ip\"\nrate = \"1/h\"\nburst = 1\n",
            "rate_limit = [\"per_ip\"]",
        ),
    );
    assert_eq!(get_with(&gate, None).await.0, 200);
    assert_eq!(get_with(&gate, None).await.0, 429);
    // Same limit, another route added: a reload must not hand out a fresh burst.
    let text = config_text(
        gate.dir.path(),
        "",
        &limited_config(
            &up,
            "[rate_limits.per_ip]\nkey = \"ip\"\nrate = \"1/h\"\nburst = 1\n",
            "rate_limit = [\"per_ip\"]\n[[routes]]\nmatch = \"/other\"",
        ),
    );
    std::fs::write(&gate.config_path, text).unwrap();
    gate.signal("HUP");
    assert!(
        gate.wait_for_log("configuration reloaded", Duration::from_secs(10)),
        "{}",
        gate.logs()
    );
    assert_eq!(get_with(&gate, None).await.0, 429, "the bucket outlived the reload");
    // A different rate is a different limit: it starts full.
    let text = config_text(
        gate.dir.path(),
        "",
        &limited_config(
            &up,
            "[rate_limits.per_ip]\nkey = \"ip\"\nrate = \"2/h\"\nburst = 1\n",
            "rate_limit = [\"per_ip\"]",
        ),
    );
    std::fs::write(&gate.config_path, text).unwrap();
    gate.signal("HUP");
    assert!(
        gate.wait_for_log_count("configuration reloaded", 2, Duration::from_secs(10)).await,
        "{}",
        gate.logs()
    );
    assert_eq!(get_with(&gate, None).await.0, 200);
}

#[tokio::test]
async fn two_nodes_sharing_redis_share_one_budget() {
    let up = Upstream::start().await;
    let shared = format!(
        "[shared]\nredis = \"{}\"\nprefix = \"{}\"\n",
        stores::REDIS_URL,
        stores::redis_prefix()
    );
    let cfg = format!(
        "{shared}\n{}",
        limited_config(
            &up,
            "[rate_limits.per_ip]\nkey = \"ip\"\nrate = \"1/h\"\nburst = 3\n",
            "rate_limit = [\"per_ip\"]"
        )
    );
    let a = start("", &cfg);
    let b = start("", &cfg);
    assert_eq!(get_with(&a, None).await.0, 200);
    assert_eq!(get_with(&b, None).await.0, 200);
    assert_eq!(get_with(&a, None).await.0, 200);
    assert_eq!(
        get_with(&b, None).await.0,
        429,
        "the fourth request, on either node, is over the shared burst"
    );
    assert_eq!(get_with(&a, None).await.0, 429);
    assert_eq!(up.hits(), 3);
}

/// A Redis server of the test's own, on a free port, so the test can take it away.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test.sh installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis { child, url: format!("redis://127.0.0.1:{port}") }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn outage_case(mode: &str) -> (Gate, OwnRedis, Upstream) {
    let redis = OwnRedis::start();
    let up = Upstream::start().await;
    let cfg = format!(
        "[shared]\nredis = \"{}\"\non_outage = {{ rate_limits = \"{mode}\" }}\n[store]\ntimeout = \"300ms\"\n{}",
        redis.url,
        limited_config(
            &up,
            "[rate_limits.per_ip]\nkey = \"ip\"\nrate = \"1/h\"\nburst = 2\n",
            "rate_limit = [\"per_ip\"]"
        )
    );
    let gate = start("", &cfg);
    assert_eq!(get_with(&gate, None).await.0, 200, "counted in Redis while it is up");
    (gate, redis, up)
}

#[tokio::test]
async fn redis_outage_closed_refuses_with_503() {
    let (gate, mut redis, _up) = outage_case("closed").await;
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let (status, _, body) = get_with(&gate, None).await;
    assert_eq!(status, 503);
    assert_eq!(json(&body)["code"], "store_unavailable");
    assert!(
        gate.metrics().await.contains("frontgate_rate_limit_store_errors_total{limit=\"per_ip\"}")
    );
}

#[tokio::test]
async fn redis_outage_local_falls_back_to_this_nodes_buckets() {
    let (gate, mut redis, _up) = outage_case("local").await;
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    // The local buckets start full: two more pass, then this node limits on its own.
    assert_eq!(get_with(&gate, None).await.0, 200);
    assert_eq!(get_with(&gate, None).await.0, 200);
    assert_eq!(get_with(&gate, None).await.0, 429);
}

#[tokio::test]
async fn redis_outage_open_lets_requests_through_unlimited() {
    let (gate, mut redis, up) = outage_case("open").await;
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    for _ in 0..5 {
        assert_eq!(get_with(&gate, None).await.0, 200);
    }
    assert_eq!(up.hits(), 6);
}

/// A `[[routes]]` entry merged into an OpenAPI operation lends it its limits, and a
/// `key = "route"` limit counts under the operation's route name, as every per-route feature
/// keys it (the `route` label of metrics, pow clearances).
#[tokio::test]
async fn a_route_limit_on_an_openapi_operation_counts_under_the_operations_name() {
    let up = Upstream::start().await;
    let rest = format!(
        "{}\n[openapi]\nspec = \"petstore.yaml\"\n[rate_limits.per_route]\nkey = \"route\"\nrate = \"1/h\"\nburst = 2\n\
         [[routes]]\nmatch = \"GET /echo/items/{{id}}\"\nrate_limit = [\"per_route\"]\n",
        up.config()
    );
    let gate = common::openapi::start_with_fixtures("", &rest);
    let c = gate.tls();
    // One bucket for the operation, whatever the path parameter.
    assert_eq!(c.get("/echo/items/5").await.0, 200);
    assert_eq!(c.get("/echo/items/6").await.0, 200);
    let (s, h, b) = c.get("/echo/items/7").await;
    assert_eq!(s, 429, "{}", String::from_utf8_lossy(&b));
    assert_eq!(json(&b)["code"], "rate_limited");
    assert!(h.contains_key("retry-after"));
    // Other operations are not limited.
    assert_eq!(c.get("/echo/items").await.0, 200);
    assert_eq!(up.hits(), 3);
    let m = gate.metrics().await;
    assert!(
        m.contains("route=\"GET /echo/items/{itemId}\"") && m.contains("code=\"rate_limited\""),
        "{m}"
    );
}
