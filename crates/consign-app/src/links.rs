//! The addresses Consign puts in what it sends: the customer's order page in
//! a notification, the staff order page in a digest, the status callback a
//! provider calls back. Each is built here only, from the instance's public
//! base URL, so a route that moves changes in one place beside the router.

/// The customer's order page: `{base}/shop/{slug}/orders/{id}?token=…`.
pub fn order_page(base: &str, brand_slug: &str, order_id: &str, token: &str) -> String {
    format!("{}/shop/{brand_slug}/orders/{order_id}?token={token}", base.trim_end_matches('/'))
}

/// The staff page of an order: `{base}/admin/orders/{id}`.
pub fn staff_order(base: &str, order_id: &str) -> String {
    format!("{}/admin/orders/{order_id}", base.trim_end_matches('/'))
}

/// A staff invitation: `{base}/admin/invitations/{token}`.
pub fn invitation(base: &str, token: &str) -> String {
    format!("{}/admin/invitations/{token}", base.trim_end_matches('/'))
}

/// A password reset link: `{base}/admin/reset-password/{token}`.
pub fn password_reset(base: &str, token: &str) -> String {
    format!("{}/admin/reset-password/{token}", base.trim_end_matches('/'))
}

/// Where Twilio reports an SMS's delivery status for a brand:
/// `{base}/api/v1/webhooks/sms/twilio/{slug}/status`.
pub fn twilio_status_callback(base: &str, brand_slug: &str) -> String {
    format!("{}/api/v1/webhooks/sms/twilio/{brand_slug}/status", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_slash_on_the_base_makes_no_double_slash() {
        assert_eq!(staff_order("https://c.example/", "o1"), "https://c.example/admin/orders/o1");
        assert_eq!(
            order_page("https://c.example", "acme", "o1", "cot_x"),
            "https://c.example/shop/acme/orders/o1?token=cot_x"
        );
        assert_eq!(
            twilio_status_callback("https://c.example/", "acme"),
            "https://c.example/api/v1/webhooks/sms/twilio/acme/status"
        );
    }
}
