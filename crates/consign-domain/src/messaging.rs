//! Messaging vocabulary and the pure text rules
//! around it: canned-response placeholders, finding an order number in an
//! inbound message, and cutting the quoted history off an email reply.

use crate::roles::string_enum;

string_enum! {
    /// Where a message came from or goes out on.
    Channel {
        /// Written in Consign (the admin app, the tracking page, the API).
        InApp = "in_app",
        /// Email, through SMTP out and the inbound-email webhook in.
        Email = "email",
        /// The WhatsApp Cloud API.
        Whatsapp = "whatsapp",
        /// SMS, through Twilio.
        Sms = "sms",
    }
}

string_enum! {
    /// Who wrote a message.
    SenderRole {
        /// The order's customer.
        Customer = "customer",
        /// Staff of the brand's organization, or its integration.
        Brand = "brand",
        /// Staff of a 3PL fulfilling for the brand.
        Threepl = "threepl",
        /// A platform administrator.
        Platform = "platform",
        /// Consign itself (order lifecycle messages).
        System = "system",
    }
}

impl SenderRole {
    /// Whether a person on the brand's side wrote it.
    pub fn is_staff(self) -> bool {
        matches!(self, Self::Brand | Self::Threepl | Self::Platform)
    }
}

string_enum! {
    /// A thread is open until staff close it; a new customer message
    /// reopens it.
    ThreadStatus {
        /// Waiting on someone.
        Open = "open",
        /// Resolved.
        Closed = "closed",
    }
}

string_enum! {
    /// Where an outbound message is on its way to the customer.
    DeliveryStatus {
        /// Waiting for the worker.
        Queued = "queued",
        /// Accepted by the provider.
        Sent = "sent",
        /// The provider reports it delivered.
        Delivered = "delivered",
        /// The provider refused it, or every retry failed.
        Failed = "failed",
    }
}

impl DeliveryStatus {
    /// Provider callbacks arrive in any order: a status only moves forward
    /// (`failed` may follow anything but `delivered`).
    pub fn may_become(self, next: DeliveryStatus) -> bool {
        use DeliveryStatus::*;
        match (self, next) {
            (Queued, _) => next != Queued,
            (Sent, Delivered | Failed) => true,
            _ => false,
        }
    }
}

/// The values a canned response or a notification template may mention.
#[derive(Clone, Debug, Default)]
pub struct TemplateValues {
    /// `{{order.number}}`, such as `#1001`.
    pub order_number: String,
    /// `{{customer.name}}`.
    pub customer_name: String,
    /// `{{customer.email}}`.
    pub customer_email: String,
    /// `{{tracking.url}}`: the latest shipment's tracking page, if any.
    pub tracking_url: Option<String>,
    /// `{{brand.name}}`.
    pub brand_name: String,
    /// `{{order.url}}`: the customer's order page, with its access token.
    pub order_url: Option<String>,
    /// `{{message.body}}`: the reply a notification tells about.
    pub message_body: Option<String>,
}

/// Fills the `{{…}}` placeholders of a template. An unknown placeholder is
/// left as written, so a typo shows up in the preview instead of vanishing.
pub fn render_template(template: &str, values: &TemplateValues) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            rest = &rest[start..];
            break;
        };
        let name = rest[start + 2..start + len].trim();
        let value = match name {
            "order.number" => Some(values.order_number.as_str()),
            "customer.name" => Some(values.customer_name.as_str()),
            "customer.email" => Some(values.customer_email.as_str()),
            "tracking.url" | "tracking_link" => Some(values.tracking_url.as_deref().unwrap_or("")),
            "brand.name" => Some(values.brand_name.as_str()),
            "order.url" => Some(values.order_url.as_deref().unwrap_or("")),
            "message.body" => Some(values.message_body.as_deref().unwrap_or("")),
            _ => None,
        };
        match value {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The first order number written as `#1234` (or `order 1234`) in a text.
pub fn find_order_number(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    for marker in ["#", "order ", "order no. ", "order number "] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(marker) {
            let digits: String =
                lower[from + at + marker.len()..].chars().take_while(char::is_ascii_digit).take(12).collect();
            if digits.len() >= 3
                && let Ok(number) = digits.parse()
            {
                return Some(number);
            }
            from += at + marker.len();
        }
    }
    None
}

/// The new part of an email reply: everything before the quoted history
/// (`On … wrote:`, a line of `>` quotes, or an Outlook-style separator).
pub fn strip_quoted_reply(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let starts_quote = trimmed.starts_with('>')
            || (trimmed.starts_with("On ") && trimmed.ends_with("wrote:"))
            || trimmed.starts_with("-----Original Message-----")
            || trimmed.starts_with("________________________________")
            || trimmed.starts_with("From: ") && !kept.is_empty();
        if starts_quote {
            break;
        }
        kept.push(line);
    }
    kept.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let values = TemplateValues {
            order_number: "#1001".into(),
            customer_name: "Ada".into(),
            tracking_url: Some("https://t.example/1".into()),
            ..TemplateValues::default()
        };
        assert_eq!(
            render_template("Hi {{customer.name}}, {{ order.number }} ships: {{tracking.url}} {{nope}}", &values),
            "Hi Ada, #1001 ships: https://t.example/1 {{nope}}"
        );
        assert_eq!(render_template("open {{ end", &values), "open {{ end");
    }

    #[test]
    fn order_numbers_are_found_in_subjects_and_bodies() {
        assert_eq!(find_order_number("Re: Your order #1042 has shipped"), Some(1042));
        assert_eq!(find_order_number("where is order 1007?"), Some(1007));
        assert_eq!(find_order_number("#1 fan here, order #2001"), Some(2001));
        assert_eq!(find_order_number("no number here"), None);
    }

    #[test]
    fn quoted_history_is_cut_from_replies() {
        let reply = "Thanks, that helps!\n\nOn Mon, 2 Nov 2026 at 10:00, Acme <support@acme.example> wrote:\n> Your parcel left";
        assert_eq!(strip_quoted_reply(reply), "Thanks, that helps!");
        assert_eq!(strip_quoted_reply("Line one\n> quoted\nmore"), "Line one");
    }

    #[test]
    fn delivery_status_only_moves_forward() {
        use DeliveryStatus::*;
        assert!(Queued.may_become(Sent));
        assert!(Sent.may_become(Delivered));
        assert!(!Delivered.may_become(Sent));
        assert!(!Delivered.may_become(Failed));
        assert!(!Failed.may_become(Sent));
    }
}
