//! Revocable API keys (docs/api-keys.md): the key format ([`format`](mod@format)), the stored record and
//! its rules ([`record`]), store queries ([`repo`]), verification with its caches
//! ([`verify`]), management shared by the admin API and the CLI ([`manage`]), and the
//! signed-in users' own keys under `/.frontgate/keys` ([`self_service`]).

pub mod format;
pub mod manage;
pub mod record;
pub mod repo;
pub mod self_service;
pub mod verify;

pub use manage::{KeyAdmin, ManageError, Minted, NewKey};
pub use record::KeyRecord;
pub use verify::{Refusal, Verifier};
