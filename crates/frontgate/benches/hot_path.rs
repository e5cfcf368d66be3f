//! In-process costs of the request path's pure steps, in ns per operation: path normalization,
//! route lookup, problem-document rendering and the console's traffic record. Plain `std::time` loops (no criterion): each case
//! is timed over several rounds and the fastest round is reported, which is the figure least
//! disturbed by a shared, noisy machine. Run with `cargo bench -p frontgate --bench hot_path`.
//!
//! These are not tests: nothing here asserts a time.

mod support;
use std::hint::black_box;
use std::path::Path;
use support::measure;

use frontgate::config::Config;
use frontgate::problem::{Code, Problem};
use frontgate::route::{Lookup, RouteTable, normalize_path};
use http::Method;

const CONFIG: &str = r#"
[server]
tls = "off"

[upstream]
url = "http://127.0.0.1:3000"

[[routes]]
match = "GET /api/hello"

[[routes]]
match = "GET,POST /api/items"

[[routes]]
match = "GET /api/items/{id}"

[[routes]]
match = "GET,PUT,DELETE /api/users/{user}/orders/{order}"

[[routes]]
match = "/api/public/**"
"#;

fn main() {
    // `cargo bench` passes `--bench`; a filter word, if any, selects cases by substring.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let config = Config::parse(CONFIG, "<bench>", Path::new("/tmp")).expect("bench config");
    // Leaked so the boxed cases below can borrow it for 'static.
    let table: &'static RouteTable =
        Box::leak(Box::new(RouteTable::build(&config, None).expect("bench routes")));

    type Case = (&'static str, Box<dyn FnMut()>);
    let mut cases: Vec<Case> = Vec::new();
    for (name, path) in [
        ("normalize_path /api/items (canonical)", "/api/items"),
        ("normalize_path /api/users/42/orders/7 (canonical)", "/api/users/42/orders/7"),
        ("normalize_path /api/%61bc/%7Euser (decodes)", "/api/%61bc/%7Euser"),
        ("normalize_path /api/%2e%2e/admin (refused)", "/api/%2e%2e/admin"),
    ] {
        cases.push((
            name,
            Box::new(move || {
                let _ = black_box(normalize_path(black_box(path)));
            }),
        ));
    }
    for (name, method, path) in [
        ("lookup GET /api/items (found)", Method::GET, "/api/items"),
        ("lookup GET /api/users/42/orders/7 (params)", Method::GET, "/api/users/42/orders/7"),
        ("lookup GET /api/public/a/b/c (prefix)", Method::GET, "/api/public/a/b/c"),
        ("lookup GET /api/admin (404)", Method::GET, "/api/admin"),
        ("lookup DELETE /api/items (405 + Allow)", Method::DELETE, "/api/items"),
    ] {
        cases.push((
            name,
            Box::new(move || {
                let r = table.lookup(black_box(&method), black_box(path));
                black_box(matches!(r, Lookup::Found(..)));
            }),
        ));
    }
    let not_found = Problem::new(Code::RouteNotFound);
    cases.push((
        "Problem::to_json route_not_found",
        Box::new(move || {
            black_box(not_found.to_json(black_box("01HZX3K8Q4V9TCD5E2M7N6P0AB")));
        }),
    ));
    let mut validation = Problem::new(Code::BadRequest)
        .with_detail("the request body is not valid JSON: expected `\"` at 1:17");
    validation.errors = vec![
        ("/name".into(), "must be a string".into()),
        ("/tags/3".into(), "must be at most 32 characters".into()),
    ];
    cases.push((
        "Problem::to_json with detail + 2 errors",
        Box::new(move || {
            black_box(validation.to_json(black_box("01HZX3K8Q4V9TCD5E2M7N6P0AB")));
        }),
    ));
    // The console's traffic record: one call per request from the pipeline's record path.
    let client: std::net::IpAddr = "192.0.2.7".parse().expect("ip");
    cases.push((
        "traffic::record (passed)",
        Box::new(move || {
            let now = std::time::Instant::now();
            frontgate::observe::traffic::record(
                black_box(None),
                black_box("/api/items"),
                client,
                None,
                now,
            );
        }),
    ));
    cases.push((
        "traffic::record (refused: ring + top tables)",
        Box::new(move || {
            frontgate::observe::traffic::record(
                black_box(Some(Code::RateLimited)),
                black_box("/api/items"),
                client,
                None,
                std::time::Instant::now(),
            );
        }),
    ));

    println!("{:<52} {:>10} {:>12}", "case", "best ns/op", "median ns/op");
    println!("{}", "-".repeat(76));
    for (name, mut f) in cases {
        if filter.as_deref().is_some_and(|w| !name.contains(w)) {
            continue;
        }
        let (best, median) = measure(&mut f);
        println!("{name:<52} {best:>10.1} {median:>12.1}");
    }
}
