//! Opaque access tokens, checked by OAuth 2.0 Token Introspection (RFC 7662) at the one issuer
//! configured for it. Answers are cached by the caller for at most `cache_ttl`, never past the
//! token's `exp`.

use std::sync::Arc;

use super::jwks::{Fetcher, IssuerKeys, KeyError};

pub const METRIC_INTROSPECTIONS: &str = "frontgate_jwt_introspections_total";

/// What an active token's introspection said.
pub struct Introspected {
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    pub exp: Option<u64>,
    pub jkt: Option<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("the token is not active")]
    Inactive,
    #[error("the token is for another issuer or audience")]
    Mismatch,
    #[error(transparent)]
    Unreachable(#[from] KeyError),
}

pub struct Introspector {
    /// Configured URL; otherwise from discovery.
    pub url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: Arc<IssuerKeys>,
    pub fetcher: Fetcher,
}

impl Introspector {
    pub async fn introspect(&self, token: &str) -> Result<Introspected, IntrospectError> {
        let url = match &self.url {
            Some(u) => u.clone(),
            None => self.keys.discovered().await?.introspection_endpoint.ok_or_else(|| {
                KeyError::Fetch {
                    url: self.issuer.clone(),
                    reason: "the discovery document has no usable introspection_endpoint".into(),
                }
            })?,
        };
        let result = self
            .fetcher
            .post_form(
                &url,
                &[("token", token), ("token_type_hint", "access_token")],
                &self.client_id,
                &self.client_secret,
            )
            .await;
        let label = match &result {
            Ok(v) if v.get("active") == Some(&serde_json::Value::Bool(true)) => "active",
            Ok(_) => "inactive",
            Err(_) => "error",
        };
        metrics::counter!(METRIC_INTROSPECTIONS, "result" => label).increment(1);
        let doc = result?;
        self.interpret(doc)
    }

    fn interpret(&self, doc: serde_json::Value) -> Result<Introspected, IntrospectError> {
        let serde_json::Value::Object(claims) = doc else { return Err(IntrospectError::Inactive) };
        // Only a literal `true` counts (RFC 7662 §2.2).
        if claims.get("active") != Some(&serde_json::Value::Bool(true)) {
            return Err(IntrospectError::Inactive);
        }
        if let Some(iss) = claims.get("iss")
            && iss.as_str() != Some(self.issuer.as_str())
        {
            return Err(IntrospectError::Mismatch);
        }
        // An audience, when the answer names one, must be one of ours.
        if let Some(aud) = claims.get("aud") {
            let ours = |v: &serde_json::Value| {
                v.as_str().is_some_and(|a| self.audiences.iter().any(|x| x == a))
            };
            let ok = match aud {
                serde_json::Value::Array(list) => list.iter().any(ours),
                v => ours(v),
            };
            if !ok {
                return Err(IntrospectError::Mismatch);
            }
        }
        let exp = claims.get("exp").and_then(|v| v.as_u64());
        if exp.is_some_and(|e| e <= super::jwt::now_secs()) {
            return Err(IntrospectError::Inactive);
        }
        let subject = claims
            .get("sub")
            .or_else(|| claims.get("client_id"))
            .and_then(|v| v.as_str())
            .map(String::from);
        let scopes = super::jwt::scopes_of(&claims);
        let jkt =
            claims.get("cnf").and_then(|c| c.get("jkt")).and_then(|v| v.as_str()).map(String::from);
        Ok(Introspected { subject, scopes, exp, jkt, claims })
    }
}
