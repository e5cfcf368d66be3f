//! Bearer JWT, token introspection and DPoP, from an attacker's view: real tokens from the real
//! `oidc-provider` fixture, and hand-signed tokens for the attacks.
mod common;

use common::oidc::Provider;

/// The fixture itself: discovery, a JWT access token for a resource, introspection of an
/// opaque one. Other suites (OIDC login) rely on it.
#[tokio::test]
async fn oidc_fixture_issues_tokens() {
    let idp = Provider::start();
    let (status, _, body) = common::plain_get(idp.addr, "/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    let discovery = common::json(&body);
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    assert!(discovery["dpop_signing_alg_values_supported"].as_array().is_some_and(|a| !a.is_empty()));

    let jwt = idp.client_credentials("https://api.example.test/", "read", None).await;
    assert_eq!(jwt.split('.').count(), 3, "ES256 JWT access token: {jwt}");
    let opaque = idp.client_credentials("https://api.example.test/opaque", "read", None).await;
    assert_eq!(opaque.split('.').count(), 1);
    let (status, v) = idp.post_form("/token/introspection", &[("token", &opaque)], &[]).await;
    assert_eq!(status, 200);
    assert_eq!(v["active"], true, "{v}");
    let (_, v) = idp.post_form("/token/introspection", &[("token", "not-a-token")], &[]).await;
    assert_eq!(v["active"], false);
}
