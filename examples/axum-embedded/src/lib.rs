//! An items API in axum with frontgate's checks in-process: the routes and request bodies the
//! OpenAPI document declares are all the handlers ever see. The handlers hold no validation,
//! routing or rate-limit code; undeclared paths, bad bodies and floods are refused by the layer
//! with the same problem documents the gateway sends.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use frontgate_core::layer::FrontgateLayer;
use serde::{Deserialize, Serialize};

/// One item.
#[derive(Clone, Serialize)]
pub struct Item {
    /// Assigned by the service.
    pub id: u64,
    /// What the client sent (1 to 80 characters: the document says so, the layer checks it).
    pub name: String,
}

#[derive(Deserialize)]
struct NewItem {
    name: String,
}

/// The service's state: the items so far.
#[derive(Clone, Default)]
pub struct Items(Arc<Mutex<Vec<Item>>>);

impl Items {
    /// How many items the handlers stored (what got past the layer).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no item was stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn list(State(items): State<Items>) -> Json<Vec<Item>> {
    Json(items.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

async fn create(State(items): State<Items>, Json(new): Json<NewItem>) -> (StatusCode, Json<Item>) {
    let mut items = items.0.lock().unwrap_or_else(|e| e.into_inner());
    let item = Item { id: items.len() as u64 + 1, name: new.name };
    items.push(item.clone());
    (StatusCode::CREATED, Json(item))
}

/// The service: the handlers behind the layer built from `config` (paths in it are relative
/// to its directory).
pub fn app(config: &Path, items: Items) -> Result<Router, frontgate_core::layer::LayerError> {
    let layer = FrontgateLayer::from_file(config)?;
    Ok(Router::new().route("/api/items", get(list).post(create)).with_state(items).layer(layer))
}
