//! Redis, for what nodes share: a `ConnectionManager` (reconnects by itself) for commands, and
//! one pub/sub subscriber that feeds invalidation messages from other nodes into this process's
//! [`Events`] hub, re-subscribing with backoff after a lost connection.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use super::events::{self, Events, RESYNC};
use super::{StoreError, redact_url};

/// The Redis side of [`crate::state::Services`].
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    /// The channel invalidation events travel on: `<prefix>events`.
    channel: String,
    /// Prefix for every key.
    prefix: String,
}

impl Redis {
    /// Connects (failing clearly when Redis is unreachable) and returns the handle.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Redis, StoreError> {
        let shown = redact_url(url);
        let err = |m: String| StoreError::Connect { url: shown.clone(), message: m };
        let client = redis::Client::open(url).map_err(|e| err(e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn =
            tokio::time::timeout(timeout * 2, client.get_connection_manager_with_config(config))
                .await
                .map_err(|_| err(format!("no answer within {timeout:?}")))?
                .map_err(|e| err(e.to_string()))?;
        Ok(Redis { client, conn, channel: format!("{prefix}events"), prefix: prefix.to_owned() })
    }

    /// A connection for commands (clone it; it multiplexes and reconnects).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Whether Redis answers a `PING` (the admin console's view of the stores).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Redis(e.to_string()))
    }

    /// Publishes an event to every node (this one included).
    pub async fn publish(&self, topic: &str, payload: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(events::encode(topic, payload))
            .query_async::<i64>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Redis(e.to_string()))
    }

    /// Subscribes to the event channel on the current runtime, forever: each message goes to
    /// `hub`; after every (re-)subscription `hub` gets [`RESYNC`], since messages sent while
    /// disconnected are lost.
    pub fn spawn_subscriber(&self, hub: Arc<Events>) {
        let client = self.client.clone();
        let channel = self.channel.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                        Ok(()) => {
                            backoff = Duration::from_millis(100);
                            metrics::counter!(SUBSCRIPTIONS).increment(1);
                            hub.deliver(RESYNC, "");
                            let mut stream = pubsub.on_message();
                            while let Some(msg) = stream.next().await {
                                let Ok(text) = msg.get_payload::<String>() else { continue };
                                if let Some((topic, payload)) = events::decode(&text) {
                                    hub.deliver(topic, payload);
                                }
                            }
                            tracing::warn!(channel = %channel, "redis subscription lost; reconnecting");
                        }
                        Err(e) => tracing::warn!(error = %e, "redis subscribe failed; retrying"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "redis unreachable for the event subscription; retrying")
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }
}

/// Times the event subscription was (re-)established.
pub const SUBSCRIPTIONS: &str = "frontgate_redis_subscriptions_total";
