//! A small W3C WebDriver client for the browser tests: it starts Debian's
//! `chromedriver` on a free port, which starts headless `chromium` with a
//! fresh profile, and drives it over HTTP with the testkit's own client.
//!
//! Every wait polls with a deadline; nothing sleeps for a fixed time. When
//! Chromium or its driver is missing the test fails and says how to install
//! them: CI installs them (`.ci/run`), and a browser test that silently
//! passed without a browser would prove nothing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C name of an element reference in responses.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait lasts before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// A headless Chromium under the test's control.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    profile: PathBuf,
}

fn chromium_binary() -> String {
    std::env::var("CONSIGN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn chromedriver_binary() -> String {
    std::env::var("CONSIGN_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned())
}

/// Where the tests save screenshots: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile,
    /// phone- or desktop-sized.
    pub async fn start(width: u32, height: u32) -> Self {
        for (binary, package) in [(chromium_binary(), "chromium"), (chromedriver_binary(), "chromium-driver")] {
            assert!(
                std::path::Path::new(&binary).exists(),
                "browser tests need {binary}: install it with `apt-get install -y chromium chromium-driver` \
                 (.ci/run does this before the tests), or point CONSIGN_CHROMIUM / CONSIGN_CHROMEDRIVER at it \
                 (package {package})"
            );
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("find a free port");
            listener.local_addr().expect("port").port()
        };
        let profile = std::env::temp_dir().join(format!("consign-chromium-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&profile).expect("create the browser profile directory");
        let driver = Command::new(chromedriver_binary())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder().no_proxy().build().expect("webdriver client");
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Self { http, base, session: String::new(), driver, profile };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = browser.http.get(format!("{}/status", browser.base)).send().await;
            if let Ok(response) = ready
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--password-store=basic".to_owned(),
            format!("--user-data-dir={}", browser.profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": chromium_binary(), "args": args}
        }}});
        let created = browser.raw("POST", "/session", Some(capabilities)).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start Chromium: {created}"))
            .to_owned();
        browser
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.base, path);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().await.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let value: Value = response.json().await.unwrap_or(Value::Null);
        value["value"].clone()
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let value = self.raw(method, &format!("/session/{}{}", self.session, path), body).await;
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            panic!("webdriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    /// Opens a URL and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// The address of the current page.
    pub async fn url(&self) -> String {
        self.command("GET", "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs a script in the page (`arguments[i]` are `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command("POST", "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        let value = self.raw("POST", &path, Some(json!({"using": "css selector", "value": css}))).await;
        value.get(ELEMENT_KEY).and_then(Value::as_str).map(str::to_owned)
    }

    /// Waits until an element matching `css` exists, and returns its id.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(id) = self.try_find(css).await {
                return id;
            }
            assert!(Instant::now() < deadline, "no element `{css}` on {} after {WAIT:?}", self.url().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `css` (waits for it).
    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.command("GET", &format!("/element/{id}/text"), None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(id) = self.try_find(css).await {
                let text = self.raw("GET", &format!("/session/{}/element/{id}/text", self.session), None).await;
                if let Some(text) = text.as_str()
                    && text.contains(needle)
                {
                    return text.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` never contained {needle:?} on {} (now: {:?})",
                self.url().await,
                self.execute(
                    "var e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                    vec![json!(css)]
                )
                .await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the current URL contains `needle`; returns the URL.
    pub async fn wait_for_url(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if url.contains(needle) {
                return url;
            }
            assert!(Instant::now() < deadline, "the browser never reached a URL with {needle:?} (at {url})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command("POST", &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    /// Replaces the value of an input with `text`, typed as a user would.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command("POST", &format!("/element/{id}/clear"), Some(json!({}))).await;
        self.command("POST", &format!("/element/{id}/value"), Some(json!({"text": text}))).await;
    }

    /// Chooses the option `value` of the select matching `css`, as a user
    /// picking it would (the page hears `change`).
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css).await;
        let script = "var e = document.querySelector(arguments[0]); e.value = arguments[1]; \
                      e.dispatchEvent(new Event('change', {bubbles: true})); return e.value;";
        let chosen = self.execute(script, vec![json!(css), json!(value)]).await;
        assert_eq!(chosen, json!(value), "{css} has no option {value}");
    }

    /// Saves a PNG of the page as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.command("GET", "/screenshot", None).await;
        let bytes = decode_base64(encoded.as_str().unwrap_or_default());
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write a screenshot");
        path
    }

    /// Resizes the window (to check phone widths).
    pub async fn resize(&self, width: u32, height: u32) {
        self.command("POST", "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// Ends the browser session and the driver.
    pub async fn quit(mut self) {
        let _ = self.raw("DELETE", &format!("/session/{}", self.session), None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A failed test leaves its Chromium behind the killed driver: end the
        // processes started with this test's own profile directory, by pid.
        let marker = self.profile.display().to_string();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
                let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
                if String::from_utf8_lossy(&cmdline).contains(&marker) {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn decode_base64(text: &str) -> Vec<u8> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let Some(v) = value(c) else { continue };
        buffer = (buffer << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::decode_base64("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::decode_base64("YQ=="), b"a");
    }
}
