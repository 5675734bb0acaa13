//! A small SMTP server: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT;
//! no TLS, no AUTH. Keeps each message with its envelope.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message as received.
#[derive(Clone, Debug)]
pub struct ReceivedEmail {
    /// `MAIL FROM` address.
    pub mail_from: String,
    /// `RCPT TO` addresses.
    pub rcpt_to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl ReceivedEmail {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(value) = found.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    value.push(' ');
                    value.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_owned());
            }
        }
        found
    }

    /// The body after the headers, decoded when it is quoted-printable
    /// (RFC 2045 §6.7: `=` at a line end joins lines, `=XX` is a byte).
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        let quoted = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|encoding| encoding.eq_ignore_ascii_case("quoted-printable"));
        if !quoted {
            return raw;
        }
        let joined = raw.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(byte)) => {
                    decoded.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    decoded.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&decoded).into_owned()
    }
}

/// The running server.
#[derive(Clone)]
pub struct SmtpServer {
    /// `smtp://127.0.0.1:PORT`.
    pub url: String,
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
}

impl SmtpServer {
    /// Starts listening on an ephemeral port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let url = format!("smtp://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, store.clone()));
            }
        });
        Self { url, received }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<ReceivedEmail> {
        self.received.lock().unwrap().clone()
    }

    /// Everything received so far, forgotten by the server.
    pub fn take(&self) -> Vec<ReceivedEmail> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }

    /// Waits (polling, up to 10 s) until `count` messages arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedEmail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let received = self.received();
            if received.len() >= count || tokio::time::Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<ReceivedEmail>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 localhost ESMTP test\r\n").await;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = angle(&command[10..]);
            rcpt_to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt_to.push(angle(&command[8..]));
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            mail_from.clear();
            rcpt_to.clear();
            b"250 OK\r\n"
        } else if upper == "DATA" {
            let _ = write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            store.lock().unwrap().push(ReceivedEmail { mail_from: mail_from.clone(), rcpt_to: rcpt_to.clone(), data });
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 Bye\r\n").await;
            return;
        } else {
            b"502 Command not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

fn angle(text: &str) -> String {
    let text = text.trim();
    let end = text.find('>').unwrap_or(text.len());
    text.trim_start_matches('<')[..end.saturating_sub(1).min(text.len().saturating_sub(1))].to_owned()
}
