//! Third-party CAPTCHA tokens (`challenge = "turnstile" | "hcaptcha" | "recaptcha"`), verified
//! through the provider's siteverify API.
//!
//! All three take the same documented request: an HTTP POST, form-encoded, with `secret`,
//! `response` (the token) and optionally `remoteip`; and answer JSON with `success`,
//! `error-codes`, `hostname`, and for reCAPTCHA v3 (and Turnstile) `action` and `score`. The
//! call runs on the state runtime. Errors and timeouts refuse the request unless the provider
//! section says `on_error = "open"`. A token is spent in the replay set after it verified, so
//! it cannot be used twice even where the provider would accept it again.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;

use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::captcha::{CaptchaKind, CaptchaProvider, OnError};
use crate::exchange::{Check, Exchange, Outcome, Stage, Verdict};
use crate::problem::{Code, Problem};
use crate::state::Services;
use crate::state::replay::{Inserted, ReplaySet};

/// The longest token accepted (real ones are under 2 KiB; reCAPTCHA's are the longest).
const MAX_TOKEN: usize = 4096;

/// What siteverify answers (the union of the three providers' documented fields).
#[derive(Debug, Deserialize)]
pub struct SiteverifyResponse {
    pub success: bool,
    #[serde(rename = "error-codes", default)]
    pub error_codes: Vec<String>,
    pub hostname: Option<String>,
    pub action: Option<String>,
    pub score: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("the verifier did not answer in time")]
    Timeout,
    #[error("the verifier could not be reached or answered badly: {0}")]
    Transport(String),
}

pub struct CaptchaCheck {
    kind: CaptchaKind,
    secret: String,
    verify_url: String,
    hostnames: Vec<String>,
    min_score: Option<f64>,
    action: Option<String>,
    header: HeaderName,
    timeout: Duration,
    on_error: OnError,
    client: reqwest::Client,
    services: Arc<Services>,
    replay: Arc<dyn ReplaySet>,
}

impl CaptchaCheck {
    /// `default_host`: the host of `[server] public_url`, checked when `hostnames` is empty.
    pub fn new(
        kind: CaptchaKind,
        cfg: &CaptchaProvider,
        default_host: Option<String>,
        services: Arc<Services>,
        replay: Arc<dyn ReplaySet>,
    ) -> CaptchaCheck {
        let hostnames = if cfg.hostnames.is_empty() {
            default_host.into_iter().collect()
        } else {
            cfg.hostnames.clone()
        };
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout.0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        CaptchaCheck {
            kind,
            secret: cfg.secret.0.clone(),
            verify_url: cfg
                .verify_url
                .as_ref()
                .map_or_else(|| kind.default_verify_url().to_owned(), |u| u.0.clone()),
            hostnames,
            min_score: cfg.min_score.or(if kind == CaptchaKind::Recaptcha {
                Some(0.5)
            } else {
                None
            }),
            action: cfg.action.clone(),
            header: HeaderName::from_bytes(cfg.header.as_bytes())
                .unwrap_or(HeaderName::from_static("x-frontgate-captcha")),
            timeout: cfg.timeout.0,
            on_error: cfg.on_error,
            client,
            services,
            replay,
        }
    }

    /// Calls siteverify, on the state runtime.
    async fn siteverify(
        &self,
        token: String,
        remote_ip: String,
    ) -> Result<SiteverifyResponse, VerifierError> {
        let (client, url, secret, timeout) =
            (self.client.clone(), self.verify_url.clone(), self.secret.clone(), self.timeout);
        let call = async move {
            let form = [
                ("secret", secret.as_str()),
                ("response", token.as_str()),
                ("remoteip", remote_ip.as_str()),
            ];
            let resp = client.post(&url).form(&form).send().await.map_err(|e| {
                if e.is_timeout() {
                    VerifierError::Timeout
                } else {
                    VerifierError::Transport(e.to_string())
                }
            })?;
            if !resp.status().is_success() {
                return Err(VerifierError::Transport(format!("HTTP {}", resp.status())));
            }
            let bytes = resp.bytes().await.map_err(|e| {
                if e.is_timeout() {
                    VerifierError::Timeout
                } else {
                    VerifierError::Transport(e.to_string())
                }
            })?;
            serde_json::from_slice::<SiteverifyResponse>(&bytes)
                .map_err(|e| VerifierError::Transport(format!("not a siteverify answer: {e}")))
        };
        // reqwest's own timeout covers the call; this one also covers a stalled state runtime.
        match tokio::time::timeout(timeout + Duration::from_millis(500), self.services.run(call))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(VerifierError::Transport(e.to_string())),
            Err(_) => Err(VerifierError::Timeout),
        }
    }

    /// Judges a siteverify answer against this route's expectations.
    pub fn judge(&self, r: &SiteverifyResponse) -> Result<(), String> {
        if !r.success {
            let codes = if r.error_codes.is_empty() {
                "none given".to_owned()
            } else {
                r.error_codes.join(", ")
            };
            return Err(format!("the provider refused the token ({codes})"));
        }
        if !self.hostnames.is_empty()
            && !r
                .hostname
                .as_ref()
                .is_some_and(|h| self.hostnames.iter().any(|e| e.eq_ignore_ascii_case(h)))
        {
            return Err("the token was solved on another site".to_owned());
        }
        if let Some(action) = &self.action
            && r.action.as_deref() != Some(action.as_str())
        {
            return Err("the token was made for another action".to_owned());
        }
        if let Some(min) = self.min_score {
            match r.score {
                Some(s) if s >= min => {}
                // reCAPTCHA v2 and most Turnstile/hCaptcha answers carry no score: only a
                // configured reCAPTCHA (v3) threshold insists on one.
                None if self.kind != CaptchaKind::Recaptcha || r.action.is_none() => {}
                _ => return Err("the provider's score is below this route's threshold".to_owned()),
            }
        }
        Ok(())
    }
}

fn refuse(detail: impl Into<String>) -> Verdict {
    Verdict::Deny(Problem::new(Code::ChallengeFailed).with_detail(detail))
}

impl Check for CaptchaCheck {
    fn name(&self) -> &'static str {
        "captcha"
    }

    fn stage(&self) -> Stage {
        Stage::Bot
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        let token = match ex.head.headers.get(&self.header).map(|v| v.to_str()) {
            None => {
                let p = Problem::new(Code::ChallengeRequired)
                    .with_detail(format!(
                        "Complete the {} CAPTCHA and send its token in the {} header.",
                        self.kind.as_str(),
                        self.header
                    ))
                    .with_extension("captcha", self.kind.as_str());
                return Outcome::Ready(Verdict::Deny(p));
            }
            Some(Ok(t)) if !t.trim().is_empty() && t.len() <= MAX_TOKEN => t.trim().to_owned(),
            Some(_) => {
                return Outcome::Ready(Verdict::Deny(
                    Problem::new(Code::ChallengeFailed)
                        .with_status(http::StatusCode::BAD_REQUEST)
                        .with_detail("The CAPTCHA token is empty, too long or not text."),
                ));
            }
        };
        let ip = ex.client.ip.to_string();
        Outcome::Pending(Box::pin(async move {
            let kind = self.kind.as_str();
            match self.siteverify(token.clone(), ip).await {
                Ok(answer) => {
                    if let Err(why) = self.judge(&answer) {
                        metrics::counter!("frontgate_captcha_verifications_total", "provider" => kind, "result" => "refused").increment(1);
                        return refuse(format!("The CAPTCHA was refused: {why}."));
                    }
                }
                Err(e) => {
                    metrics::counter!("frontgate_captcha_verifications_total", "provider" => kind, "result" => "error").increment(1);
                    tracing::warn!(provider = kind, error = %e, "captcha verifier failed");
                    return match self.on_error {
                        OnError::Open => Verdict::Continue,
                        OnError::Closed => Verdict::Deny(
                            Problem::new(Code::ChallengeFailed)
                                .with_status(http::StatusCode::SERVICE_UNAVAILABLE)
                                .with_detail(
                                    "The CAPTCHA provider could not be asked; retry shortly.",
                                ),
                        ),
                    };
                }
            }
            // Spent only once it verified; a hash of it, so the set holds no live tokens.
            use sha2::Digest;
            let key = format!(
                "captcha:{kind}:{}",
                super::pow::protocol::hex(&sha2::Sha256::digest(token.as_bytes()))
            );
            match self.replay.insert_once(&key, Duration::from_secs(600)).await {
                Ok(Inserted::Fresh) => {
                    metrics::counter!("frontgate_captcha_verifications_total", "provider" => kind, "result" => "accepted").increment(1);
                    Verdict::Continue
                }
                Ok(Inserted::Replayed) => {
                    metrics::counter!("frontgate_captcha_verifications_total", "provider" => kind, "result" => "replayed").increment(1);
                    refuse("This CAPTCHA token was already used; complete the CAPTCHA again.")
                }
                Err(_) => Verdict::Deny(Problem::new(Code::StoreUnavailable)),
            }
        }))
    }
}

/// One check per configured provider.
pub fn from_config(
    config: &crate::config::Config,
    services: &Arc<Services>,
) -> Vec<(CaptchaKind, Arc<dyn Check>)> {
    let Some(c) = &config.captcha else { return Vec::new() };
    let host = config.server.public_url.as_ref().and_then(|u| {
        let s = u.get_ref().to_string();
        let rest = s.split_once("://").map(|(_, r)| r.to_owned())?;
        Some(rest.split(':').next().unwrap_or(&rest).trim_end_matches('/').to_owned())
    });
    let replay =
        crate::state::replay::for_config(config, services, crate::state::replay::Feature::Captcha);
    [CaptchaKind::Turnstile, CaptchaKind::Hcaptcha, CaptchaKind::Recaptcha]
        .into_iter()
        .filter_map(|k| {
            let p = c.provider(k)?;
            Some((
                k,
                Arc::new(CaptchaCheck::new(k, p, host.clone(), services.clone(), replay.clone()))
                    as Arc<dyn Check>,
            ))
        })
        .collect()
}

/// The CAPTCHA feature: the provider check on routes whose `challenge` names it.
pub struct Captchas(Vec<(CaptchaKind, Arc<dyn Check>)>);

/// `[captcha.*]`: one check per configured provider.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    let checks = from_config(inputs.config, inputs.services);
    Ok((!checks.is_empty()).then(|| Arc::new(Captchas(checks)) as Arc<dyn Feature>))
}

impl Feature for Captchas {
    fn route_checks(&self, route: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        let Some(kind) =
            route.policy.and_then(|r| r.challenge.as_deref()).and_then(CaptchaKind::parse)
        else {
            return;
        };
        checks.extend(self.0.iter().filter(|(k, _)| *k == kind).map(|(_, c)| c.clone()));
    }
}
