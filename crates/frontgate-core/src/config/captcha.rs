//! `[captcha.turnstile]`, `[captcha.hcaptcha]`, `[captcha.recaptcha]`: third-party CAPTCHA
//! tokens verified through each provider's siteverify API.

use serde::Deserialize;

use super::values::{Dur, EnvString};

/// `[captcha.<provider>]`: one table per CAPTCHA provider routes may name in `challenge`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptchaConfig {
    /// `[captcha.turnstile]`: Cloudflare Turnstile.
    pub turnstile: Option<CaptchaProvider>,
    /// `[captcha.hcaptcha]`: hCaptcha.
    pub hcaptcha: Option<CaptchaProvider>,
    /// `[captcha.recaptcha]`: Google reCAPTCHA (v2 and v3).
    pub recaptcha: Option<CaptchaProvider>,
}

/// One provider's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptchaProvider {
    /// The provider's secret key; `${VAR}` accepted. Required.
    pub secret: EnvString,
    /// Default: the provider's documented siteverify URL.
    pub verify_url: Option<EnvString>,
    /// Hostnames the token must have been solved on; default: the host of `[server] public_url`
    /// (no check when neither is set).
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// reCAPTCHA v3 (and Turnstile/hCaptcha scores when present): the lowest accepted score.
    pub min_score: Option<f64>,
    /// The action the token must carry (reCAPTCHA v3, Turnstile).
    pub action: Option<String>,
    /// Request header carrying the token.
    #[serde(default = "d_header")]
    pub header: String,
    /// How long to wait for the provider.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,
    /// "closed" (default): a verifier error or timeout refuses the request; "open" lets it through.
    #[serde(default)]
    pub on_error: OnError,
}

/// `on_error`: what a verifier error or timeout does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Refuse the request (the default).
    #[default]
    Closed,
    /// Let the request through.
    Open,
}

fn d_header() -> String {
    "x-frontgate-captcha".to_owned()
}
fn d_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}

/// The providers frontgate speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaKind {
    /// Cloudflare Turnstile.
    Turnstile,
    /// hCaptcha.
    Hcaptcha,
    /// Google reCAPTCHA.
    Recaptcha,
}

impl CaptchaKind {
    /// The provider a `challenge` value names: `turnstile`, `hcaptcha` or `recaptcha`.
    pub fn parse(s: &str) -> Option<CaptchaKind> {
        match s {
            "turnstile" => Some(CaptchaKind::Turnstile),
            "hcaptcha" => Some(CaptchaKind::Hcaptcha),
            "recaptcha" => Some(CaptchaKind::Recaptcha),
            _ => None,
        }
    }

    /// The provider's name in the config, as [`CaptchaKind::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptchaKind::Turnstile => "turnstile",
            CaptchaKind::Hcaptcha => "hcaptcha",
            CaptchaKind::Recaptcha => "recaptcha",
        }
    }

    /// The provider's documented siteverify endpoint.
    pub fn default_verify_url(self) -> &'static str {
        match self {
            CaptchaKind::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            CaptchaKind::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            CaptchaKind::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }
}

impl CaptchaConfig {
    /// The section for `kind`, if configured.
    pub fn provider(&self, kind: CaptchaKind) -> Option<&CaptchaProvider> {
        match kind {
            CaptchaKind::Turnstile => self.turnstile.as_ref(),
            CaptchaKind::Hcaptcha => self.hcaptcha.as_ref(),
            CaptchaKind::Recaptcha => self.recaptcha.as_ref(),
        }
    }

    /// The config errors of the configured providers (empty secret, non-https `verify_url`,
    /// `min_score` outside 0 to 1, bad header name, zero timeout).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in [CaptchaKind::Turnstile, CaptchaKind::Hcaptcha, CaptchaKind::Recaptcha] {
            let Some(p) = self.provider(kind) else { continue };
            let name = kind.as_str();
            if p.secret.0.is_empty() {
                out.push(format!("[captcha.{name}] secret is empty"));
            }
            let url = p.verify_url.as_ref().map_or(kind.default_verify_url(), |u| u.0.as_str());
            if !(url.starts_with("https://")
                || url.starts_with("http://127.")
                || url.starts_with("http://[::1]")
                || url.starts_with("http://localhost"))
            {
                out.push(format!("[captcha.{name}] verify_url must be https:// (http:// only for loopback test servers)"));
            }
            if p.min_score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
                out.push(format!("[captcha.{name}] min_score must be between 0.0 and 1.0"));
            }
            if http::HeaderName::from_bytes(p.header.as_bytes()).is_err() {
                out.push(format!(
                    "[captcha.{name}] header `{}` is not a valid header name",
                    p.header
                ));
            }
            if p.timeout.0.is_zero() {
                out.push(format!("[captcha.{name}] timeout must be longer than 0"));
            }
        }
        out
    }
}
