//! Order value types shared by storage and the API: the customer and
//! address snapshots an order keeps, and carriers' tracking URLs.

use serde::{Deserialize, Serialize};

/// Who placed an order, as they gave it at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    /// Full name.
    pub name: String,
    /// Email, lowercased.
    pub email: String,
    /// Phone, as given.
    pub phone: Option<String>,
}

/// Every ISO 3166-1 country as `(alpha-2 code, English name)`, by name:
/// what an address's `country` may be, for the shop's country list.
pub fn countries() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = isocountry::CountryCode::iter().map(|c| (c.alpha2(), c.name())).collect();
    all.sort_by_key(|(_, name)| *name);
    all
}

/// A postal address snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    /// Street and number.
    pub line1: String,
    /// Apartment, suite.
    #[serde(default)]
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// State, province or region.
    #[serde(default)]
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

impl Address {
    /// The whole address on one line, every part that is filled in:
    /// `1 Main St, Apt 4, 62701 Springfield, IL, US`.
    pub fn one_line(&self) -> String {
        let place = format!("{} {}", self.postal_code, self.city);
        [
            Some(self.line1.as_str()),
            self.line2.as_deref(),
            Some(place.trim()),
            self.region.as_deref(),
            Some(&self.country),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Field errors, as (field, message), empty when valid.
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut problems = Vec::new();
        let within = |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max;
        if !within(&self.line1, 200) {
            problems.push(("line1", "must be 1 to 200 characters"));
        }
        if self.line2.as_deref().is_some_and(|l| l.chars().count() > 200) {
            problems.push(("line2", "must be at most 200 characters"));
        }
        if !within(&self.city, 100) {
            problems.push(("city", "must be 1 to 100 characters"));
        }
        if self.region.as_deref().is_some_and(|r| r.chars().count() > 100) {
            problems.push(("region", "must be at most 100 characters"));
        }
        if !within(&self.postal_code, 20) {
            problems.push(("postal_code", "must be 1 to 20 characters"));
        }
        if isocountry::CountryCode::for_alpha2(&self.country).is_err() {
            problems.push(("country", "must be an ISO 3166-1 alpha-2 code such as US"));
        }
        problems
    }
}

/// The tracking page of a known carrier for a tracking number.
pub fn tracking_url(carrier: &str, tracking_number: &str) -> Option<String> {
    let template = match carrier {
        "usps" => "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
        "ups" => "https://www.ups.com/track?tracknum={n}",
        "fedex" => "https://www.fedex.com/fedextrack/?trknbr={n}",
        "dhl" => "https://www.dhl.com/global-en/home/tracking.html?tracking-id={n}",
        "canada_post" => "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={n}",
        "chitchats" => "https://chitchats.com/tracking/{n}",
        _ => return None,
    };
    let encoded: String = tracking_number.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    Some(template.replace("{n}", &encoded))
}

/// The most units of one SKU an order may hold (the storefront's and the
/// item edit's per-line limit; the same SKU on several lines is summed
/// against it too).
pub const MAX_LINE_QUANTITY: i64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_carriers_have_tracking_urls() {
        assert_eq!(
            tracking_url("ups", "1Z999AA10123456784").as_deref(),
            Some("https://www.ups.com/track?tracknum=1Z999AA10123456784")
        );
        assert_eq!(tracking_url("pigeon", "1"), None);
    }

    #[test]
    fn a_tracking_number_cannot_inject_into_the_url() {
        let url = tracking_url("usps", "94001&evil=1#x").unwrap();
        assert!(url.ends_with("tLabels=94001evil1x"));
    }

    #[test]
    fn an_address_is_in_a_real_country_and_the_list_has_every_one() {
        let address = |country: &str| Address {
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            region: Some("IL".into()),
            postal_code: "62701".into(),
            country: country.into(),
        };
        assert!(address("US").problems().is_empty());
        for wrong in ["ZZ", "XX", "us", "USA", ""] {
            assert_eq!(
                address(wrong).problems(),
                [("country", "must be an ISO 3166-1 alpha-2 code such as US")],
                "{wrong}"
            );
        }
        let countries = countries();
        assert!(countries.len() >= 249, "{}", countries.len());
        assert!(countries.contains(&("NO", "Norway")));
        assert!(countries.windows(2).all(|pair| pair[0].1 <= pair[1].1), "by name");
        assert_eq!(address("US").one_line(), "1 Main St, 62701 Springfield, IL, US");
    }
}
