//! Serves the example on 127.0.0.1:3000 (or the address in the first argument).

use std::net::SocketAddr;
use std::path::Path;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr =
        std::env::args().nth(1).as_deref().unwrap_or("127.0.0.1:3000").parse()?;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("frontgate.toml");
    let app = axum_embedded::app(&config, axum_embedded::Items::default())?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // The layer reads the client's address from this extension (rate limits per client).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
