//! A cookie-keeping client for the web pages: signs in through the login
//! form, keeps the session cookie, and posts forms with (or, to test the
//! defence, without) the page's CSRF token.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};

use crate::{TestApp, TestResponse};

/// A browser-like session on the pages of a [`TestApp`].
pub struct PageClient<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
    /// The CSRF token of the signed-in session (empty before login).
    pub csrf: String,
}

/// URL-encodes form fields.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fn encode(text: &str) -> String {
        let mut out = String::new();
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// The value of `name="…" value="…"` or `<meta name="…" content="…">` in a page.
pub fn attribute_after(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let start = html.find(marker)?;
    let rest = &html[start..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let key = format!("{attribute}=\"");
    let at = tag.find(&key)? + key.len();
    let value = &tag[at..];
    Some(value[..value.find('"')?].to_owned())
}

impl<'a> PageClient<'a> {
    /// A client with no cookies.
    pub fn new(app: &'a TestApp) -> Self {
        Self { app, cookies: BTreeMap::new(), csrf: String::new() }
    }

    /// Signs in through the login form; panics unless it works.
    pub async fn signed_in(app: &'a TestApp, email: &str, password: &str) -> Self {
        let mut client = Self::new(app);
        let response = client.login(email, password).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "login failed: {}", response.text);
        let dashboard = client.get("/admin").await;
        assert_eq!(dashboard.status, StatusCode::OK, "dashboard after login: {}", dashboard.text);
        client.csrf = attribute_after(&dashboard.text, "name=\"csrf-token\"", "content").expect("csrf meta");
        client
    }

    /// Fills and sends the login form.
    pub async fn login(&mut self, email: &str, password: &str) -> TestResponse {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, StatusCode::OK, "login form: {}", form.text);
        let token = attribute_after(&form.text, "name=\"_csrf\"", "value").expect("login csrf field");
        self.post_raw("/admin/login", &[("email", email), ("password", password), ("_csrf", &token)]).await
    }

    /// The cookies currently held, as a `Cookie` header.
    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    fn keep_cookies(&mut self, response: &TestResponse) {
        for value in response.headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some((name, rest)) = text.split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or_default();
            let expired = text.to_ascii_lowercase().contains("max-age=0");
            if expired || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// GET a page with the session's cookies.
    pub async fn get(&mut self, path: &str) -> TestResponse {
        let request = self.app.client.get(self.app.url(path)).header(COOKIE, self.cookie_header());
        let response = self.app.send(request).await;
        self.keep_cookies(&response);
        response
    }

    /// GET a page and follow its redirects (at most five), keeping the
    /// cookies they set, as a browser does.
    pub async fn get_following(&mut self, path: &str) -> TestResponse {
        let mut response = self.get(path).await;
        for _ in 0..5 {
            if !response.status.is_redirection() {
                break;
            }
            let location = response.header("location").expect("redirect location").to_owned();
            response = self.get(&location).await;
        }
        response
    }

    /// POST a form exactly as given (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let request = self
            .app
            .client
            .post(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(fields));
        let response = self.app.send(request).await;
        self.keep_cookies(&response);
        response
    }

    /// POST a form with the session's CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("_csrf", &csrf));
        self.post_raw(path, &all).await
    }

    /// POST a form, then follow the redirect and return the page it shows.
    pub async fn post_and_follow(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let response = self.post(path, fields).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{path}: {} {}", response.status, response.text);
        let location = response.header("location").expect("redirect location").to_owned();
        self.get(&location).await
    }
}
