//! Multipart bodies against the real binary and a backend that records the raw bytes it gets:
//! each way the old multipart reader let a body the OpenAPI schema refuses reach the backend as
//! a valid one is now refused at the gateway (400 `invalid_body`), and the backend received
//! nothing; a well-formed body that validates arrives byte for byte.

use crate::common;

use bytes::Bytes;
use common::raw_backend::RawBackend;
use common::*;
use http_body_util::Full;

/// An upload whose `bio` must be plain lower-case words; nothing is required (an empty form is
/// valid), files may come as `avatar`.
const SPEC: &str = r#"openapi: 3.0.3
info: { title: uploads, version: "1" }
servers:
  - url: http://localhost/api
paths:
  /profile:
    post:
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              additionalProperties: false
              properties:
                bio: { type: string, pattern: "^[a-z ]*$" }
                avatar: { type: string, format: binary }
                tags: { type: array, items: { type: string, pattern: "^[a-z]+$" } }
      responses:
        "200": { description: ok }
"#;

fn gate(backend: &RawBackend) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
    start_in(dir, "", &format!("{}\n[openapi]\nspec = \"spec.yaml\"\n", backend.config()))
}

async fn post(client: &TlsClient, content_type: &str, body: &str) -> (u16, serde_json::Value) {
    let r = req("POST", "/api/profile")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let (status, _, body) = client.send(r).await;
    (status.as_u16(), serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

const CT: &str = "multipart/form-data; boundary=B0undary";

#[tokio::test]
async fn a_well_formed_body_that_validates_reaches_the_backend_byte_identical() {
    let backend = RawBackend::start().await;
    let gate = gate(&backend);
    let c = gate.tls();
    let body = "--B0undary\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\nhello there\r\n\
                --B0undary\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nred\r\n\
                --B0undary\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nblue\r\n\
                --B0undary\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n\x01<binary>\r\n\
                --B0undary--\r\n";
    let (s, v) = post(&c, CT, body).await;
    assert_eq!(s, 200, "{v}");
    let got = backend.last().expect("the backend got the request");
    assert_eq!(got.body, body.as_bytes());
    assert_eq!(got.all("content-type"), [CT]);
    // The same body with a bio the schema refuses is a validation error, as before.
    let (s, v) = post(&c, CT, &body.replace("hello there", "<script>")).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("validation_failed")), "{v}");
    assert_eq!(backend.count(), 1);
}

#[tokio::test]
async fn the_old_readers_bypasses_are_refused_before_the_backend() {
    let backend = RawBackend::start().await;
    let gate = gate(&backend);
    let c = gate.tls();
    let cases = [
        // 1. `filename=` inside another parameter's quoted value made the old reader take the
        //    part for a file and skip its content; the backend reads a `bio` field.
        (CT.to_owned(), "--B0undary\r\nContent-Disposition: form-data; name=\"bio\"; x=\"filename=y\"\r\n\r\n<script>\r\n--B0undary--\r\n".to_owned()),
        // 2. `boundary` given twice: the old reader used the first (one harmless part, then an
        //    epilogue), common backends the last (the epilogue's parts).
        (
            "multipart/form-data; boundary=AAA; boundary=BBB".to_owned(),
            "--AAA\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\nok\r\n--AAA--\r\n\
             --BBB\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\n<script>\r\n--BBB--\r\n"
                .to_owned(),
        ),
        // 3. A delimiter without a line break before it: the old reader took `x--B0undary--` for
        //    the close delimiter (an empty, valid form); RFC 2046 readers skip it as preamble
        //    and read the part after it.
        (CT.to_owned(), "x--B0undary--\r\n--B0undary\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\n<script>\r\n--B0undary--\r\n".to_owned()),
    ];
    for (i, (content_type, body)) in cases.iter().enumerate() {
        let (s, v) = post(&c, content_type, body).await;
        assert_eq!((s, v["code"].as_str()), (400, Some("invalid_body")), "case {}: {v}", i + 1);
        assert!(v["detail"].as_str().unwrap_or("").contains("multipart"), "case {}: {v}", i + 1);
    }
    // More of what two readers could split differently, each refused the same way.
    let part = |disposition: &str, value: &str| {
        format!("--B0undary\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n")
    };
    let more = [
        format!("{}--B0undary--\r\n", part("form-data; filename=\"a\"", "x")),
        format!("{}--B0undary--\r\n", part("form-data; name=\"bio\"; name=\"tags\"", "x")),
        "--B0undary\r\nContent-Disposition: form-data; name=\"bio\"\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nx\r\n--B0undary--\r\n".to_owned(),
        "--B0undary\r\nContent-Disposition: form-data; name=\"bio\"\r\nContent-Transfer-Encoding: base64\r\n\r\nPHNjcmlwdD4=\r\n--B0undary--\r\n".to_owned(),
        format!("{}--B0undary", part("form-data; name=\"bio\"", "ok")),
        format!("{}--B0undary--\r\n--B0undary\r\n", part("form-data; name=\"bio\"", "ok")),
    ];
    for body in &more {
        let (s, v) = post(&c, CT, body).await;
        assert_eq!((s, v["code"].as_str()), (400, Some("invalid_body")), "{body:?}: {v}");
    }
    assert_eq!(backend.count(), 0, "no refused body reached the backend");
    // Two Content-Type fields: which one a backend takes is its choice, so neither is. The head
    // screen refuses them for every request before the body is looked at.
    let r = req("POST", "/api/profile")
        .header("content-type", CT)
        .header("content-type", "multipart/form-data; boundary=other");
    let (s, _, b) = c
        .send(
            r.body(Full::new(Bytes::from(format!(
                "{}--B0undary--\r\n",
                part("form-data; name=\"bio\"", "ok")
            ))))
            .unwrap(),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("ambiguous_request")), "{v}");
    assert_eq!(backend.count(), 0);
}
