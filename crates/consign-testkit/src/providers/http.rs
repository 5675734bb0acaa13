//! An HTTP server that records every request and answers with what the
//! test chose: Twilio's Messages API and WhatsApp's messages endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
}

impl Recorded {
    /// The body as form fields.
    pub fn form(&self) -> Vec<(String, String)> {
        url_decode(&self.body)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

fn url_decode(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[derive(Clone)]
struct Shared {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    /// Status and body of the next answers; the last one repeats.
    answers: Arc<Mutex<Vec<(u16, String)>>>,
}

/// The running server.
#[derive(Clone)]
pub struct RecordingServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Shared,
}

impl RecordingServer {
    /// Starts a server answering every request with `status` and `body`.
    pub async fn start(status: u16, body: &str) -> Self {
        let shared =
            Shared { recorded: Arc::default(), answers: Arc::new(Mutex::new(vec![(status, body.to_owned())])) };
        let app = axum::Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// Answers the next requests with these, in order (the last repeats).
    pub fn answer_with(&self, answers: Vec<(u16, &str)>) {
        *self.shared.answers.lock().unwrap() = answers.into_iter().map(|(s, b)| (s, b.to_owned())).collect();
    }

    /// Requests so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// Waits (polling, up to 10 s) until `count` requests arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let recorded = self.recorded();
            if recorded.len() >= count || tokio::time::Instant::now() > deadline {
                return recorded;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    shared.recorded.lock().unwrap().push(Recorded { method, path: uri.to_string(), headers, body });
    let (status, body) = {
        let mut answers = shared.answers.lock().unwrap();
        if answers.len() > 1 { answers.remove(0) } else { answers[0].clone() }
    };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), [("content-type", "application/json")], body)
}
