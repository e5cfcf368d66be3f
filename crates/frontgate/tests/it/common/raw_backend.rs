//! A backend that records the exact bytes of every request it receives, over raw TCP: what an
//! adversarial test compares against what the gateway checked (a hyper-based backend would
//! normalize names, join duplicates and hide framing). It answers each request `200 ok`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as it arrived: head bytes (through the blank line) and body bytes (as framed:
/// chunked bodies keep their chunk lines).
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn head_text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    /// The request line.
    pub fn line(&self) -> String {
        self.head_text().split("\r\n").next().unwrap_or("").to_owned()
    }

    /// Field lines as sent, `(name, value)`, names in the case they arrived in.
    pub fn fields(&self) -> Vec<(String, String)> {
        self.head_text()
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':').map(|(n, v)| (n.to_owned(), v.trim().to_owned())))
            .collect()
    }

    /// Every value of the fields named `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }
}

pub struct RawBackend {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<RawRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawBackend {
    pub async fn start() -> RawBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, log.clone()));
            }
        });
        RawBackend { addr, seen, task }
    }

    pub fn config(&self) -> String {
        format!("[upstream]\nurl = \"http://{}\"\n", self.addr)
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// The last request seen, if any.
    pub fn last(&self) -> Option<RawRequest> {
        self.seen.lock().unwrap().last().cloned()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn serve(mut sock: tokio::net::TcpStream, log: Arc<Mutex<Vec<RawRequest>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_until(&mut sock, &mut buf, |b| {
            b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
        })
        .await
        else {
            return;
        };
        let head: Vec<u8> = buf.drain(..end).collect();
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let field = |name: &str| {
            text.split("\r\n").find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let body = if field("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            let Some(end) = read_until(&mut sock, &mut buf, |b| {
                b.windows(5).position(|w| w == b"0\r\n\r\n").map(|p| p + 5)
            })
            .await
            else {
                return;
            };
            buf.drain(..end).collect()
        } else if let Some(n) = field("content-length:").and_then(|v| v.parse::<usize>().ok()) {
            let Some(n) = read_until(&mut sock, &mut buf, |b| (b.len() >= n).then_some(n)).await
            else {
                return;
            };
            buf.drain(..n).collect()
        } else {
            Vec::new()
        };
        log.lock().unwrap().push(RawRequest { head, body });
        if sock
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
            )
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Reads into `buf` until `done` finds an end in it; `None` when the peer closes first or
/// stays silent for 30 s.
async fn read_until(
    sock: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = done(buf) {
            return Some(end);
        }
        match tokio::time::timeout(Duration::from_secs(30), sock.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}
