//! The identity provider as frontgate sees it: discovery (cached, re-fetched when a signing key
//! is unknown), the authorization URL, the code and refresh grants, full ID token verification,
//! logout token verification (Back-Channel Logout 1.0) and the RP-initiated logout URL.
//!
//! Everything here does network I/O: callers run it on the state runtime (`services.run`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest, IssuerUrl, JsonWebKey, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
};

use super::http::{IdpClient, IdpHttpError};
use crate::config::OidcConfig;
use crate::config::oidc::ClientAuth;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A fresh PKCE pair (S256): the challenge for [`Provider::authorize_url`] and the verifier to
/// keep until the code is redeemed.
pub fn pkce_pair() -> (PkceCodeChallenge, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (challenge, verifier.secret().clone())
}

/// Signature algorithms accepted for ID and logout tokens: asymmetric only, so the client
/// secret can never be used as a verification key, and never `none`.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Clock skew tolerated on `iat`/`exp`.
const LEEWAY: i64 = 60;
/// A logout token older than this is refused (it should be delivered at once).
const LOGOUT_TOKEN_MAX_AGE: i64 = 300;
/// Discovery (and with it the key set) is re-fetched after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An unknown key id triggers a re-fetch at most this often.
const REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(30);

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("identity provider discovery failed: {0}")]
    Discovery(String),
    #[error("the token endpoint refused or failed: {0}")]
    Token(String),
    #[error("the ID token is invalid: {0}")]
    IdToken(String),
    #[error("the logout token is invalid: {0}")]
    LogoutToken(String),
}

/// What discovery found, with the client built from it.
pub struct Discovered {
    client: Client,
    issuer: String,
    jwks: CoreJsonWebKeySet,
    end_session: Option<String>,
    fetched: Instant,
}

/// Tokens from a code or refresh grant, the ID token verified.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    /// Unix seconds.
    pub access_expires_at: Option<i64>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    /// The verified ID token's claims (empty when a refresh returned no ID token).
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub scopes: Vec<String>,
}

/// A verified logout token: whose sessions end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    pub exp: i64,
}

pub struct Provider {
    config: Arc<OidcConfig>,
    redirect: RedirectUrl,
    http: IdpClient,
    current: ArcSwapOption<Discovered>,
    /// Serializes fetches; holds when the last one started.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

pub use crate::session::now;

impl Provider {
    pub fn new(
        config: Arc<OidcConfig>,
        redirect_uri: String,
    ) -> Result<Provider, super::BuildError> {
        let redirect = RedirectUrl::new(redirect_uri.clone())
            .map_err(|source| super::BuildError::RedirectUri { uri: redirect_uri, source })?;
        Ok(Provider {
            config,
            redirect,
            http: IdpClient::new(),
            current: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    fn http_fn(
        &self,
    ) -> impl Fn(
        HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<openidconnect::HttpResponse, IdpHttpError>> + Send>,
    > + use<> {
        let client = self.http.clone();
        move |req| {
            let client = client.clone();
            Box::pin(async move { client.send(req).await })
        }
    }

    /// The provider's metadata, fetched on first use and after `METADATA_TTL`.
    pub async fn discovered(&self) -> Result<Arc<Discovered>, OidcError> {
        if let Some(d) = self.current.load_full()
            && d.fetched.elapsed() < METADATA_TTL
        {
            return Ok(d);
        }
        self.fetch(false).await
    }

    /// Re-fetches discovery and keys (after an unknown `kid`), at most every
    /// [`REFETCH_MIN_INTERVAL`]; returns what is current either way.
    async fn fetch(&self, forced: bool) -> Result<Arc<Discovered>, OidcError> {
        let mut last = self.fetching.lock().await;
        if let Some(d) = self.current.load_full() {
            let fresh = d.fetched.elapsed() < METADATA_TTL;
            let recent = last.is_some_and(|t| t.elapsed() < REFETCH_MIN_INTERVAL);
            if (fresh && !forced) || (forced && recent) {
                return Ok(d);
            }
        }
        *last = Some(Instant::now());
        let issuer = IssuerUrl::new(self.config.issuer.get_ref().0.clone())
            .map_err(|e| OidcError::Discovery(e.to_string()))?;
        let http = self.http_fn();
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let end_session = metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().to_string());
        let jwks = metadata.jwks().clone();
        let issuer_text = metadata.issuer().as_str().to_owned();
        let secret = self.config.client_secret.as_ref().map(|s| ClientSecret::new(s.0.clone()));
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(self.redirect.clone())
        .set_auth_type(match self.config.client_auth {
            ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
            ClientAuth::ClientSecretPost => AuthType::RequestBody,
        });
        let d = Arc::new(Discovered {
            client,
            issuer: issuer_text,
            jwks,
            end_session,
            fetched: Instant::now(),
        });
        self.current.store(Some(d.clone()));
        metrics::counter!("frontgate_oidc_discovery_total").increment(1);
        Ok(d)
    }

    /// The URL to send the browser to: authorization code flow with PKCE S256, state and nonce.
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        pkce_challenge: PkceCodeChallenge,
    ) -> Result<String, OidcError> {
        let d = self.discovered().await?;
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let mut req = d.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        // OpenID Connect Core 11: offline_access (a refresh token) is granted only with consent.
        if self.config.scopes.iter().any(|s| s == "offline_access") {
            req = req.add_prompt(openidconnect::core::CoreAuthPrompt::Consent);
        }
        let (url, _, _) = req.set_pkce_challenge(pkce_challenge).url();
        Ok(url.to_string())
    }

    /// Redeems an authorization code (with the PKCE verifier) and verifies the ID token fully,
    /// nonce included.
    pub async fn exchange_code(
        &self,
        code: String,
        verifier: String,
        nonce: &str,
    ) -> Result<Tokens, OidcError> {
        let d = self.discovered().await?;
        let http = self.http_fn();
        let resp = d
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Token(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Token(error_chain(&e)))?;
        let id_token = resp
            .id_token()
            .ok_or_else(|| OidcError::IdToken("the token response has no id_token".into()))?;
        let raw = id_token.to_string();
        let expected = Nonce::new(nonce.to_owned());
        self.verify_id_token(&d, &raw, |v| {
            id_token
                .claims(v, &expected)
                .map(|c| c.access_token_hash().cloned())
                .map_err(|e| (is_unknown_key(&e), error_chain(&e)))
        })
        .await
        .and_then(|at_hash| {
            self.check_at_hash(&d, &raw, at_hash.as_ref(), resp.access_token().secret())
        })?;
        let mut claims = self.payload_claims(&raw)?;
        self.add_userinfo_claims(&d, resp.access_token(), &mut claims).await;
        Ok(Tokens {
            access_token: resp.access_token().secret().clone(),
            access_expires_at: resp.expires_in().map(|e| now() + e.as_secs() as i64),
            refresh_token: resp.refresh_token().map(|r| r.secret().clone()),
            id_token: Some(raw),
            claims,
            scopes: resp
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect())
                .unwrap_or_else(|| self.config.scopes.clone()),
        })
    }

    /// Claims the SPA should see that the ID token lacks (providers often put profile and email
    /// only in userinfo), from the userinfo endpoint; its `sub` must match. Best effort: the
    /// login does not fail for them.
    async fn add_userinfo_claims(
        &self,
        d: &Discovered,
        access_token: &openidconnect::AccessToken,
        claims: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        if self.config.session_claims.iter().all(|c| claims.contains_key(c)) {
            return;
        }
        let Some(sub) = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .map(|s| openidconnect::SubjectIdentifier::new(s.to_owned()))
        else {
            return;
        };
        let Ok(request) = d.client.user_info(access_token.clone(), Some(sub)) else { return };
        let http = self.http_fn();
        let info: Result<
            openidconnect::UserInfoClaims<
                openidconnect::EmptyAdditionalClaims,
                openidconnect::core::CoreGenderClaim,
            >,
            _,
        > = request.request_async(&http).await;
        match info.map(|i| serde_json::to_value(&i)) {
            Ok(Ok(serde_json::Value::Object(extra))) => {
                for c in &self.config.session_claims {
                    if !claims.contains_key(c)
                        && let Some(v) = extra.get(c)
                    {
                        claims.insert(c.clone(), v.clone());
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::info!(error = %error_chain(&e), "userinfo not used"),
        }
    }

    /// Runs an ID token check with the provider's current keys; on an unknown key, once more
    /// with freshly fetched ones (key rotation).
    async fn verify_id_token<T>(
        &self,
        d: &Arc<Discovered>,
        _raw: &str,
        check: impl Fn(&openidconnect::core::CoreIdTokenVerifier<'_>) -> Result<T, (bool, String)>,
    ) -> Result<T, OidcError> {
        let first = check(&self.verifier(d));
        match first {
            Ok(v) => Ok(v),
            Err((true, _)) => {
                let fresh = self.fetch(true).await?;
                check(&self.verifier(&fresh)).map_err(|(_, m)| OidcError::IdToken(m))
            }
            Err((false, m)) => Err(OidcError::IdToken(m)),
        }
    }

    fn verifier<'a>(&self, d: &'a Discovered) -> openidconnect::core::CoreIdTokenVerifier<'a> {
        // iss, aud (extra audiences refused), azp, exp and the signature are checked by
        // openidconnect; iat must not be in the future nor older than the absolute session.
        let max_age = self.config.session_absolute.0.as_secs() as i64;
        d.client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS).set_issue_time_verifier_fn(
            move |iat| {
                let iat = iat.timestamp();
                let n = now();
                if iat > n + LEEWAY {
                    Err(format!("iat {iat} is in the future"))
                } else if iat < n - max_age {
                    Err(format!("iat {iat} is too old"))
                } else {
                    Ok(())
                }
            },
        )
    }

    fn check_at_hash(
        &self,
        d: &Discovered,
        raw: &str,
        at_hash: Option<&AccessTokenHash>,
        access_token: &str,
    ) -> Result<(), OidcError> {
        let Some(expected) = at_hash else { return Ok(()) };
        let header = jose_header(raw).map_err(OidcError::IdToken)?;
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(header.get("alg").cloned().unwrap_or_default())
                .map_err(|_| OidcError::IdToken("unknown alg".into()))?;
        let kid = header.get("kid").and_then(|k| k.as_str());
        let key =
            d.jwks.keys().iter().find(|k| kid.is_none() || k.key_id().map(|i| i.as_str()) == kid);
        let Some(key) = key else { return Err(OidcError::IdToken("no key for at_hash".into())) };
        let actual = AccessTokenHash::from_token(
            &openidconnect::AccessToken::new(access_token.to_owned()),
            &alg,
            key,
        )
        .map_err(|e| OidcError::IdToken(e.to_string()))?;
        if &actual != expected {
            return Err(OidcError::IdToken("at_hash does not match the access token".into()));
        }
        Ok(())
    }

    /// The claims of an ID token whose signature and claims were already verified.
    fn payload_claims(
        &self,
        raw: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, OidcError> {
        let claims = jwt_part(raw, 1).map_err(OidcError::IdToken)?;
        // azp: with several audiences it must be present; when present it must be us.
        let many = claims.get("aud").and_then(|a| a.as_array()).is_some_and(|a| a.len() > 1);
        match claims.get("azp").map(|a| a.as_str()) {
            Some(Some(azp)) if azp == self.config.client_id => {}
            None if !many => {}
            _ => return Err(OidcError::IdToken("azp is missing or not this client".into())),
        }
        Ok(claims)
    }

    /// Uses a refresh token. A rotated refresh token replaces the old one; an ID token, when
    /// returned, is verified and must be for the same subject.
    pub async fn refresh(&self, refresh_token: String, subject: &str) -> Result<Tokens, OidcError> {
        let d = self.discovered().await?;
        let http = self.http_fn();
        let rt = RefreshToken::new(refresh_token.clone());
        let resp = d
            .client
            .exchange_refresh_token(&rt)
            .map_err(|e| OidcError::Token(e.to_string()))?
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Token(error_chain(&e)))?;
        metrics::counter!("frontgate_session_refresh_total", "outcome" => "ok").increment(1);
        let mut claims = serde_json::Map::new();
        let mut raw_id = None;
        if let Some(id_token) = resp.id_token() {
            let raw = id_token.to_string();
            // A refreshed ID token carries no new nonce to check.
            self.verify_id_token(&d, &raw, |v| {
                id_token
                    .claims(v, |_: Option<&Nonce>| Ok(()))
                    .map(|_| ())
                    .map_err(|e| (is_unknown_key(&e), error_chain(&e)))
            })
            .await?;
            claims = self.payload_claims(&raw)?;
            if claims.get("sub").and_then(|s| s.as_str()) != Some(subject) {
                return Err(OidcError::IdToken(
                    "the refreshed ID token is for another subject".into(),
                ));
            }
            raw_id = Some(raw);
        }
        Ok(Tokens {
            access_token: resp.access_token().secret().clone(),
            access_expires_at: resp.expires_in().map(|e| now() + e.as_secs() as i64),
            refresh_token: Some(
                resp.refresh_token().map(|r| r.secret().clone()).unwrap_or(refresh_token),
            ),
            id_token: raw_id,
            claims,
            scopes: resp
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        })
    }

    /// Verifies a Back-Channel Logout 1.0 logout token: signature with the provider's keys
    /// (asymmetric algorithms only), iss, aud, iat, exp, jti, the back-channel event, no nonce,
    /// and a sub or sid.
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutClaims, OidcError> {
        let d = self.discovered().await?;
        match self.check_logout_token(&d, token) {
            Err((true, _)) => {
                let fresh = self.fetch(true).await?;
                self.check_logout_token(&fresh, token).map_err(|(_, m)| OidcError::LogoutToken(m))
            }
            other => other.map_err(|(_, m)| OidcError::LogoutToken(m)),
        }
    }

    /// `Err((unknown_key, message))`.
    fn check_logout_token(
        &self,
        d: &Discovered,
        token: &str,
    ) -> Result<LogoutClaims, (bool, String)> {
        let fail = |m: &str| (false, m.to_owned());
        if token.len() > 16 * 1024 {
            return Err(fail("too large"));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, s] = parts.as_slice() else {
            return Err(fail("not a signed JWT (three parts)"));
        };
        let header = jose_header(token).map_err(|m| (false, m))?;
        if header.get("crit").is_some() {
            return Err(fail("crit header is not supported"));
        }
        if let Some(typ) = header.get("typ") {
            let typ = typ.as_str().unwrap_or("").to_ascii_lowercase();
            if !matches!(typ.as_str(), "logout+jwt" | "application/logout+jwt" | "jwt") {
                return Err(fail("typ is not logout+jwt"));
            }
        }
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(header.get("alg").cloned().unwrap_or_default())
                .map_err(|_| fail("unknown alg"))?;
        if !ALLOWED_ALGS.contains(&alg) {
            return Err(fail("alg is not allowed"));
        }
        let signature =
            URL_SAFE_NO_PAD.decode(s).map_err(|_| fail("signature is not base64url"))?;
        let kid = header.get("kid").and_then(|k| k.as_str());
        let candidates: Vec<&CoreJsonWebKey> = d
            .jwks
            .keys()
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.key_id().map(|i| i.as_str()) == Some(kid)))
            .filter(|k| {
                k.key_use().is_none_or(|u| u == &openidconnect::core::CoreJsonWebKeyUse::Signature)
            })
            .collect();
        if candidates.is_empty() {
            return Err((true, "no key of the provider has this kid".into()));
        }
        let message = format!("{h}.{p}");
        if !candidates
            .iter()
            .any(|k| k.verify_signature(&alg, message.as_bytes(), &signature).is_ok())
        {
            return Err(fail("signature does not verify"));
        }
        let claims = jwt_part(token, 1).map_err(|m| (false, m))?;
        let issuer = d.issuer.as_str();
        if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(fail("iss is not the provider"));
        }
        let client_id = self.config.client_id.as_str();
        let aud_ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == client_id,
            Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
            _ => false,
        };
        if !aud_ok {
            return Err(fail("aud is not this client"));
        }
        let n = now();
        let iat =
            claims.get("iat").and_then(|v| v.as_i64()).ok_or_else(|| fail("iat is missing"))?;
        if iat > n + LEEWAY || iat < n - LOGOUT_TOKEN_MAX_AGE {
            return Err(fail("iat is out of range"));
        }
        let exp = match claims.get("exp") {
            Some(v) => v.as_i64().ok_or_else(|| fail("exp is not a number"))?,
            None => iat + LOGOUT_TOKEN_MAX_AGE,
        };
        if exp < n - LEEWAY {
            return Err(fail("expired"));
        }
        let jti = claims
            .get("jti")
            .and_then(|v| v.as_str())
            .filter(|j| !j.is_empty())
            .ok_or_else(|| fail("jti is missing"))?;
        if claims.contains_key("nonce") {
            return Err(fail("a logout token must not carry a nonce"));
        }
        let event_ok = claims
            .get("events")
            .and_then(|e| e.as_object())
            .and_then(|e| e.get(BACKCHANNEL_EVENT))
            .is_some_and(|v| v.is_object());
        if !event_ok {
            return Err(fail("events lacks the back-channel logout event"));
        }
        let text = |k: &str| {
            claims.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        let (sub, sid) = (text("sub"), text("sid"));
        if sub.is_none() && sid.is_none() {
            return Err(fail("neither sub nor sid"));
        }
        Ok(LogoutClaims { sub, sid, jti: jti.to_owned(), exp })
    }

    /// The RP-initiated logout URL, when the provider has an end_session_endpoint.
    pub async fn end_session_url(
        &self,
        id_token_hint: Option<&str>,
        post_logout_redirect: &str,
    ) -> Option<String> {
        let d = self.discovered().await.ok()?;
        let mut url = url_parse(d.end_session.as_deref()?)?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", &self.config.client_id);
            q.append_pair("post_logout_redirect_uri", post_logout_redirect);
        }
        Some(url.to_string())
    }
}

fn url_parse(s: &str) -> Option<openidconnect::url::Url> {
    openidconnect::url::Url::parse(s).ok()
}

fn is_unknown_key(e: &openidconnect::ClaimsVerificationError) -> bool {
    matches!(
        e,
        openidconnect::ClaimsVerificationError::SignatureVerification(
            openidconnect::SignatureVerificationError::NoMatchingKey
        )
    )
}

fn jose_header(token: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    jwt_part(token, 0)
}

/// Part `i` of a compact JWT, decoded as a JSON object.
fn jwt_part(token: &str, i: usize) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let part = token.split('.').nth(i).ok_or("not a JWT")?;
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "not a JSON object".to_owned())
}

/// An error and its causes, one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
