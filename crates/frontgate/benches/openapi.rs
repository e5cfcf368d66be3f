//! In-process costs of OpenAPI validation: µs per validation of a typical 1 KiB JSON body (and
//! of a request's parameters), and the time to load and compile a generated 1,000-operation
//! spec. Plain `std::time` loops, best and median of several rounds (as in hot_path.rs). Run
//! with `cargo bench -p frontgate --bench openapi`.
//!
//! These are not tests: nothing here asserts a time.

mod support;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use support::measure_with;

use bytes::Bytes;
use frontgate::openapi::{Errors, Spec, body, params};
use frontgate::plan::Plan;

const ORDER_SPEC: &str = r##"openapi: 3.1.0
info: { title: bench, version: "1" }
paths:
  /api/orders/{id}:
    put:
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
        - { name: dry_run, in: query, schema: { type: boolean } }
        - { name: X-Tenant, in: header, schema: { type: string, pattern: "^[a-z]{3,12}$" } }
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Order" }
      responses: { "200": { description: ok } }
components:
  schemas:
    Order:
      type: object
      additionalProperties: false
      required: [customer, lines, shipping]
      properties:
        id: { type: integer, readOnly: true }
        customer: { type: string, format: email }
        note: { type: [string, "null"], maxLength: 200 }
        lines:
          type: array
          maxItems: 50
          items:
            type: object
            additionalProperties: false
            required: [sku, quantity, price]
            properties:
              sku: { type: string, pattern: "^[A-Z]{3}-[0-9]{4}$" }
              quantity: { type: integer, minimum: 1, maximum: 1000 }
              price: { type: number, exclusiveMinimum: 0 }
              gift: { type: boolean }
        shipping:
          type: object
          additionalProperties: false
          required: [street, city, country]
          properties:
            street: { type: string, maxLength: 100 }
            city: { type: string, maxLength: 60 }
            zip: { type: string, pattern: "^[0-9]{4,6}$" }
            country: { type: string, enum: [DE, FR, NL, GB, US] }
"##;

/// A 1 KiB order body that passes.
fn order_body() -> String {
    let lines: Vec<String> = (0..15)
        .map(|i| {
            format!(
                r#"{{"sku":"ABC-{:04}","quantity":{},"price":{}.95,"gift":{}}}"#,
                1000 + i,
                i + 1,
                i * 3 + 1,
                i % 2 == 0
            )
        })
        .collect();
    format!(
        r#"{{"customer":"buyer@example.com","note":"leave at the door, please","lines":[{}],"shipping":{{"street":"1 Long Road","city":"Amsterdam","zip":"1011","country":"NL"}}}}"#,
        lines.join(",")
    )
}

/// A spec with `n` operations: n/2 paths with GET (path + query parameters) and PUT (a body
/// referencing shared components).
fn generated_spec(n: usize) -> String {
    let mut s = String::from("openapi: 3.0.3\ninfo: { title: generated, version: '1' }\npaths:\n");
    for i in 0..n / 2 {
        s.push_str(&format!(
            "  /r{i}/items/{{id}}:\n    parameters:\n      - {{ name: id, in: path, required: true, schema: {{ type: integer }} }}\n    get:\n      parameters:\n        - {{ name: limit, in: query, schema: {{ type: integer, minimum: 1, maximum: 100 }} }}\n        - {{ name: q, in: query, schema: {{ type: string, maxLength: 50, pattern: '^[a-z ]*$' }} }}\n      responses:\n        '200': {{ description: ok, content: {{ application/json: {{ schema: {{ $ref: '#/components/schemas/Item' }} }} }} }}\n    put:\n      requestBody:\n        content: {{ application/json: {{ schema: {{ $ref: '#/components/schemas/Item' }} }} }}\n      responses:\n        '200': {{ description: ok, content: {{ application/json: {{ schema: {{ $ref: '#/components/schemas/Item' }} }} }} }}\n"
        ));
    }
    s.push_str("components:\n  schemas:\n    Item:\n      type: object\n      additionalProperties: false\n      required: [name]\n      properties:\n        id: { type: integer, readOnly: true }\n        name: { type: string, maxLength: 100 }\n        price: { type: number, minimum: 0, exclusiveMinimum: true }\n        tags: { type: array, items: { type: string }, maxItems: 10 }\n        note: { type: string, nullable: true }\n");
    s
}

fn load(dir: &Path, spec: &str) -> Plan {
    std::fs::write(dir.join("api.yaml"), spec).expect("write spec");
    let text = "[server]\ntls = \"off\"\n[upstream]\nurl = \"http://127.0.0.1:3000\"\n[openapi]\nspec = \"api.yaml\"\n";
    Plan::parse(text, "<bench>", dir).unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = load(dir.path(), ORDER_SPEC);
    let spec: std::sync::Arc<Spec> = plan.spec.clone().expect("compiled");
    let op = &spec.operations[0];
    let body = Bytes::from(order_body());
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    // Sanity: the body passes, so the figure is for the common case.
    let mut errors = Errors::new(10);
    body::check(op, &spec, &headers, Some(&body), &mut errors).expect("declared type");
    assert!(errors.list.is_empty(), "bench body must be valid: {:?}", errors.list);
    let (parts, _) = http::Request::builder()
        .method("PUT")
        .uri("/api/orders/42?dry_run=true")
        .header("x-tenant", "acme")
        .body(())
        .expect("request")
        .into_parts();

    println!("{:<58} {:>10} {:>12}", "case", "best µs", "median µs");
    println!("{}", "-".repeat(82));
    let (best, median) = measure_with(
        || {
            let mut errors = Errors::new(10);
            let _ =
                black_box(body::check(op, &spec, &headers, Some(black_box(&body)), &mut errors));
            black_box(errors.list.len());
        },
        Duration::from_millis(30),
        15,
    );
    println!(
        "{:<58} {:>10.2} {:>12.2}",
        format!("validate a {} B JSON body (parse + schema)", body.len()),
        best / 1e3,
        median / 1e3
    );
    let (best, median) = measure_with(
        || {
            let mut errors = Errors::new(10);
            params::check(op, &spec, black_box(&parts), &mut errors);
            black_box(errors.list.len());
        },
        Duration::from_millis(30),
        15,
    );
    println!(
        "{:<58} {:>10.2} {:>12.2}",
        "validate path + query + header parameters",
        best / 1e3,
        median / 1e3
    );
    let bytes = body.clone();
    let (best, median) = measure_with(
        || {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).ok());
        },
        Duration::from_millis(30),
        15,
    );
    println!(
        "{:<58} {:>10.2} {:>12.2}",
        "  for scale: serde_json::from_slice of the same body",
        best / 1e3,
        median / 1e3
    );

    let generated = generated_spec(1000);
    let (best, median) = measure_with(
        || {
            let c = load(dir.path(), &generated);
            black_box(c.spec.as_ref().map(|s| s.operations.len()));
        },
        Duration::from_millis(1),
        5,
    );
    let c = load(dir.path(), &generated);
    let ops = c.spec.as_ref().map_or(0, |s| s.operations.len());
    println!(
        "{:<58} {:>10.0} {:>12.0}",
        format!("load + compile a {ops}-operation spec ({} KiB), ms", generated.len() / 1024),
        best / 1e6,
        median / 1e6
    );
}
