//! What pages show and how: money, times and statuses in words, refusals
//! in words, flash messages and cookies.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use consign_domain::{Money, Timestamp};

use crate::error::AppError;

/// The cookie that carries a message across a redirect.
pub const FLASH_COOKIE: &str = "consign_flash";

/// A message shown once, on the page after a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// Whether it reports a refusal.
    pub error: bool,
    /// The words.
    pub text: String,
}

impl Flash {
    /// Good news.
    pub fn notice(text: impl Into<String>) -> Self {
        Self { error: false, text: text.into() }
    }

    /// A refusal.
    pub fn error(text: impl Into<String>) -> Self {
        Self { error: true, text: text.into() }
    }

    /// The cookie value: `n.` or `e.` and the percent-encoded text.
    fn encode(&self) -> String {
        format!("{}.{}", if self.error { 'e' } else { 'n' }, percent_encode(&self.text))
    }

    /// Reads the flash cookie of a request, if any.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = cookie(headers, FLASH_COOKIE)?;
        let (kind, text) = value.split_once('.')?;
        let text = percent_decode(text)?;
        if text.is_empty() {
            return None;
        }
        Some(Self { error: kind == "e", text: text.chars().take(500).collect() })
    }
}

/// A 303 to `to` that shows `flash` there.
pub fn redirect_with(to: &str, flash: Flash) -> Response {
    let mut response = Redirect::to(to).into_response();
    set_flash(&mut response, &flash);
    response
}

/// Adds the flash cookie to a response, for the next page to show.
pub fn set_flash(response: &mut Response, flash: &Flash) {
    let cookie = format!("{FLASH_COOKIE}={}; Path=/admin; Max-Age=60; HttpOnly; SameSite=Lax", flash.encode());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The `Set-Cookie` that removes the flash once shown.
pub fn clear_flash() -> HeaderValue {
    HeaderValue::from_static("consign_flash=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A refusal in words, for the flash message or error page.
pub fn describe(error: &AppError) -> String {
    match error {
        AppError::Validation(errors) | AppError::BadRequest { errors, .. } if !errors.is_empty() => {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let field = e.field.rsplit('.').next().unwrap_or(&e.field).replace('_', " ");
                    if field.is_empty() { e.message.clone() } else { format!("{field}: {}", e.message) }
                })
                .collect();
            format!("Please check: {}.", parts.join("; "))
        }
        AppError::InvalidTransition(detail) => format!("Not allowed: {}.", detail.trim_end_matches('.')),
        AppError::InsufficientStock { detail, .. } => detail.clone(),
        AppError::Conflict(detail) => detail.clone(),
        AppError::PreconditionFailed => "This changed while you were looking at it. Reload and try again.".into(),
        AppError::Forbidden => "Your role does not allow this action.".into(),
        AppError::NotFound => "There is nothing here, or you cannot see it.".into(),
        AppError::RateLimited { retry_after_seconds } => {
            format!("Too many attempts. Try again in {retry_after_seconds} seconds.")
        }
        AppError::Unauthenticated(detail) => (*detail).to_owned(),
        AppError::Internal(_) => "Something went wrong on our side; it has been logged.".into(),
        other => other.to_string(),
    }
}

/// Money for people: `$1,234.50`, `€12.00`, `1,200 JPY`.
pub fn money(money: &Money) -> String {
    format_money(money.amount, &money.currency)
}

/// [`money`] from parts.
pub fn format_money(amount: i64, currency: &str) -> String {
    let decimals = match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" => 0,
        _ => 2,
    };
    let negative = amount < 0;
    let amount = amount.unsigned_abs();
    let scale = 10u64.pow(decimals);
    let whole = group_thousands(amount / scale);
    let number =
        if decimals == 0 { whole } else { format!("{whole}.{:0width$}", amount % scale, width = decimals as usize) };
    let sign = if negative { "-" } else { "" };
    match currency {
        "USD" => format!("{sign}${number}"),
        "EUR" => format!("{sign}€{number}"),
        "GBP" => format!("{sign}£{number}"),
        other => format!("{sign}{number} {other}"),
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A time for people, in UTC: `2026-11-22 14:05 UTC` (flash messages,
/// plain text).
pub fn time_text(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time on a page: `<time datetime="2026-11-22T14:05:00Z">2026-11-22
/// 14:05 UTC</time>`. The pages' script `times.js` shows it in
/// the viewer's own time zone, keeping the UTC text as its title; without
/// them it reads in UTC.
#[derive(Clone, Copy, Debug)]
pub struct When(Timestamp);

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<time datetime=\"{}\">{}</time>", self.0, time_text(self.0))
    }
}

/// Its text is a `Timestamp`'s RFC 3339 form and digits, nothing a page
/// must escape.
impl askama::filters::HtmlSafe for When {}

/// A [`When`] for a page.
pub fn time(at: Timestamp) -> When {
    When(at)
}

/// Fewest units a shop still calls "In stock"; at or under it, it says how
/// few are left.
pub const FEW_LEFT: i64 = 5;

/// Stock as a shop shows it: "In stock", "Only 3 left" or "Sold out", never
/// the exact count of a well-stocked shelf.
pub fn stock_words(available: i64) -> String {
    match available {
        ..=0 => "Sold out".to_owned(),
        1..=FEW_LEFT => format!("Only {available} left"),
        _ => "In stock".to_owned(),
    }
}

/// A status code in words: `partially_shipped` → `Partially shipped`.
pub fn words(code: &str) -> String {
    let text = code.replace(['_', '.'], " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Escapes text for HTML (for the few pages written without a template).
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Reverses [`percent_encode`]; `None` for broken input.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// An optional form field: trimmed, `None` when empty.
pub fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The words for who did something (an event's or a stock movement's
/// `actor`), given the names [`consign_db::users::actor_names`] found.
pub fn actor_words(actor: &str, names: &std::collections::HashMap<String, String>) -> String {
    match actor {
        "system" => "Consign".to_owned(),
        "customer" => "The customer".to_owned(),
        other => names.get(other).cloned().unwrap_or_else(|| "A former staff member".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_like_a_price_tag() {
        assert_eq!(format_money(123450, "USD"), "$1,234.50");
        assert_eq!(format_money(5, "EUR"), "€0.05");
        assert_eq!(format_money(-1999, "GBP"), "-£19.99");
        assert_eq!(format_money(1200, "JPY"), "1,200 JPY");
        assert_eq!(format_money(100, "CHF"), "1.00 CHF");
    }

    #[test]
    fn flash_text_survives_the_cookie() {
        let flash = Flash::error("Not allowed: a shipped order cannot be edited; café ✓");
        let mut headers = HeaderMap::new();
        headers
            .insert(header::COOKIE, HeaderValue::from_str(&format!("a=b; {FLASH_COOKIE}={}", flash.encode())).unwrap());
        assert_eq!(Flash::from_headers(&headers), Some(flash));
    }

    #[test]
    fn statuses_read_as_words() {
        assert_eq!(words("partially_shipped"), "Partially shipped");
        assert_eq!(words("order.paid"), "Order paid");
    }
}
