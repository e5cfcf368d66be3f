//! `frontgate keys create|list|show|revoke|rotate`: key management from the command line,
//! against the store the config file names (the same one the running gateways use). Changes
//! are audited (actor `cli`) and published to other nodes through Redis when `[shared] redis`
//! is set. Output is JSON on stdout; the full key appears only in `create` and `rotate`.

use std::sync::Arc;

use clap::Subcommand;

use crate::config::Config;
use crate::keys::{KeyAdmin, ManageError, NewKey};
use crate::state::Services;

const ACTOR: &str = "cli";

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; prints it once (store it now: only its hash is kept).
    Create {
        #[arg(long)]
        name: String,
        /// Who the key belongs to, sent upstream in a header (default: the name when it is
        /// printable ASCII, otherwise the key's id).
        #[arg(long)]
        subject: Option<String>,
        /// Comma-separated scopes.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Comma-separated browser origins the key may be used from.
        #[arg(long, value_delimiter = ',')]
        origins: Vec<String>,
        /// Comma-separated client CIDRs the key may be used from.
        #[arg(long, value_delimiter = ',')]
        cidrs: Vec<String>,
        /// Lifetime, e.g. 90d.
        #[arg(long)]
        expires_in: Option<String>,
        /// Per-key rate limit, e.g. 10/s.
        #[arg(long)]
        rate_limit: Option<String>,
        /// Total requests allowed.
        #[arg(long)]
        uses: Option<i64>,
        /// Free-form JSON object.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one key.
    Show { id: String },
    /// Revoke a key: refused by every node within a second (Redis) or `[api_keys] cache_ttl`.
    Revoke {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Issue a successor; the old key keeps working for --grace.
    Rotate {
        id: String,
        #[arg(long, default_value = "24h")]
        grace: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Manage(#[from] ManageError),
}

/// Runs one command; returns the JSON to print.
pub fn run(
    config_path: &std::path::Path,
    command: KeysCommand,
) -> Result<serde_json::Value, CliError> {
    let config = Config::load(config_path).map_err(|e| CliError::Config(e.to_string()))?;
    let Some(keys) = config.api_keys.clone() else {
        return Err(CliError::Config(format!("{}: no [api_keys] section", config_path.display())));
    };
    let services = Arc::new(Services::start(&config).map_err(|e| CliError::Config(e.to_string()))?);
    let admin = KeyAdmin::new(&keys, &services).map_err(|e| CliError::Config(e.to_string()))?;
    let stopped = |_| CliError::Config("the state runtime stopped".into());
    let out = match command {
        KeysCommand::Create {
            name,
            subject,
            scopes,
            origins,
            cidrs,
            expires_in,
            rate_limit,
            uses,
            metadata,
        } => {
            let metadata = match metadata {
                None => None,
                Some(m) => Some(serde_json::from_str(&m).map_err(|e| {
                    ManageError::Invalid(format!("--metadata must be a JSON object: {e}"))
                })?),
            };
            let req = NewKey {
                name,
                subject,
                scopes,
                origins,
                cidrs,
                expires_in,
                rate_limit,
                uses,
                metadata,
            };
            let minted = services
                .block_on(async move { admin.create(req, ACTOR).await })
                .map_err(stopped)??;
            serde_json::to_value(&minted).unwrap_or_default()
        }
        KeysCommand::List { limit, after } => {
            let list = services
                .block_on(async move { admin.list(after.as_deref(), limit).await })
                .map_err(stopped)??;
            serde_json::json!({ "keys": list })
        }
        KeysCommand::Show { id } => {
            let k = services.block_on(async move { admin.get(&id).await }).map_err(stopped)??;
            serde_json::to_value(&k).unwrap_or_default()
        }
        KeysCommand::Revoke { id, reason } => {
            let k = services
                .block_on(async move { admin.revoke(&id, reason.as_deref(), ACTOR).await })
                .map_err(stopped)??;
            serde_json::to_value(&k).unwrap_or_default()
        }
        KeysCommand::Rotate { id, grace } => {
            let grace = humantime::parse_duration(grace.trim()).map_err(|_| {
                ManageError::Invalid(format!("--grace `{grace}` is not a duration"))
            })?;
            let (minted, old) = services
                .block_on(async move { admin.rotate(&id, grace, ACTOR).await })
                .map_err(stopped)??;
            let mut v = serde_json::to_value(&minted).unwrap_or_default();
            v["previous"] = serde_json::to_value(&old).unwrap_or_default();
            v
        }
    };
    Ok(out)
}
