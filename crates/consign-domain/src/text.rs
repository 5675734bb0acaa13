//! Text fields and their limits, each written once: a shipment's carrier
//! and tracking number, a staff note, a message, a reason, a reference, a
//! name or title, a SKU, a slug, a warehouse code, a variant's options and
//! a search text.
//!
//! Each type has one `parse` constructor: it applies the field's trim rule
//! and limits, and counts characters, not bytes (`é` is one). The API's
//! request rules and the pages' forms both parse with it, so they refuse
//! the same input in the same words: a [`FieldError`] says the limit
//! ("must be 1 to 50 characters"). It does not name the field; the caller
//! does, as its request or form names it.
//!
//! Every type also deserializes from a JSON string through `parse`
//! (`#[serde(try_from = "String")]`) and serializes as that string. The
//! API's request bodies keep their fields as strings all the same, checked
//! by a rule that calls `parse`, so that a 422 still lists every invalid
//! field and still comes where the handler validates, after it has checked
//! the caller. A refusal while deserializing would stop at the first bad
//! field, before the handler runs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// Why a field was refused, in the words a person reads: the rule the
/// value broke, whichever part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Not `min` to `max` characters (after trimming).
    #[error("{}", length_words(*.min, *.max))]
    Length {
        /// The fewest characters allowed (0: it may be empty).
        min: usize,
        /// The most characters allowed.
        max: usize,
    },
    /// Not `min` to `max` characters, or holds a control character.
    #[error("{} without control characters", length_words(*.min, *.max))]
    PlainLength {
        /// The fewest characters allowed.
        min: usize,
        /// The most characters allowed.
        max: usize,
    },
    /// More options than a variant has.
    #[error("at most {} options", VariantOptions::MAX_OPTIONS)]
    TooManyOptions,
    /// An option's name or value out of its limits.
    #[error(
        "option names must be 1 to {} characters, values at most {}",
        VariantOptions::MAX_NAME_CHARS,
        VariantOptions::MAX_VALUE_CHARS
    )]
    OptionText,
    /// Not a slug.
    #[error("must be 2 to 64 letters, digits or inner hyphens")]
    Slug,
    /// Not a warehouse code.
    #[error("must be 1 to 32 letters, digits, - or _")]
    WarehouseCode,
}

fn length_words(min: usize, max: usize) -> String {
    if min == 0 { format!("must be at most {max} characters") } else { format!("must be {min} to {max} characters") }
}

/// `text` if it holds `min` to `max` characters.
fn within(text: &str, min: usize, max: usize) -> Result<&str, FieldError> {
    if (min..=max).contains(&text.chars().count()) { Ok(text) } else { Err(FieldError::Length { min, max }) }
}

/// The boilerplate of a text type: reading, showing, (de)serializing. A
/// `min ..= max` after the name also writes its `parse`, for the common
/// rule: trimmed, then `min` to `max` characters.
macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident: $min:literal ..= $max:literal) => {
        text_type!($(#[$meta])* $name);

        impl $name {
            /// The fewest characters it holds.
            pub const MIN_CHARS: usize = $min;
            /// The most characters it holds.
            pub const MAX_CHARS: usize = $max;

            /// Trims `text` and checks its length in characters.
            pub fn parse(text: &str) -> Result<Self, FieldError> {
                within(text.trim(), Self::MIN_CHARS, Self::MAX_CHARS).map(|text| Self(text.to_owned()))
            }
        }
    };
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// The text, as parsed.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = FieldError;

            fn from_str(text: &str) -> Result<Self, FieldError> {
                Self::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;

            fn try_from(text: String) -> Result<Self, FieldError> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

text_type! {
    /// A shipment's carrier, as a code: `usps`, `ups`, `fedex`, `dhl`,
    /// `canada_post`, `chitchats`, or another carrier's name written the
    /// same way. Parsing trims it, lowercases it and writes spaces and
    /// hyphens as `_` (`Canada Post` is `canada_post`); the code is then 1
    /// to 50 characters.
    Carrier
}

impl Carrier {
    /// The most characters a carrier's code holds.
    pub const MAX_CHARS: usize = 50;

    /// Reads a carrier's name or code.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let code = text.trim().to_lowercase().replace([' ', '-'], "_");
        within(&code, 1, Self::MAX_CHARS)?;
        Ok(Self(code))
    }
}

text_type! {
    /// A shipment's tracking number, as the carrier gave it: 1 to 100
    /// characters, trimmed.
    TrackingNumber: 1 ..= 100
}

text_type! {
    /// A staff note on an order: 1 to 5000 characters, trimmed.
    NoteBody: 1 ..= 5000
}

text_type! {
    /// The text of a message on an order's thread: 1 to 10000 characters,
    /// trimmed.
    MessageBody: 1 ..= 10_000
}

text_type! {
    /// Why an order is cancelled or refunded: 1 to 500 characters, trimmed.
    Reason: 1 ..= 500
}

text_type! {
    /// Why stock was adjusted, for the stock ledger: 1 to 200 characters,
    /// trimmed.
    AdjustmentReason: 1 ..= 200
}

text_type! {
    /// An outside reference, such as a bank reference, a receipt or a count
    /// sheet number: at most 200 characters, trimmed. It may be empty;
    /// callers that store a blank one as none say so.
    Reference: 0 ..= 200
}

text_type! {
    /// The name people know something by: a person's, an organization's, a
    /// brand's, a warehouse's. 1 to 200 characters, trimmed.
    DisplayName: 1 ..= 200
}

text_type! {
    /// A product's or a variant's title: 1 to 200 characters, trimmed.
    Title: 1 ..= 200
}

text_type! {
    /// An API key's label, such as "WMS": 1 to 100 characters, trimmed.
    ApiKeyName: 1 ..= 100
}

text_type! {
    /// What a list is searched for: at most 200 characters, trimmed. It may
    /// be empty, which searches for nothing in particular.
    SearchText: 0 ..= 200
}

text_type! {
    /// A variant's stock keeping unit, unique within its brand: 1 to 100
    /// characters, trimmed, without control characters.
    Sku
}

impl Sku {
    /// The most characters a SKU holds.
    pub const MAX_CHARS: usize = 100;

    /// Reads a SKU, dropping surrounding spaces.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let sku = text.trim();
        let refused = FieldError::PlainLength { min: 1, max: Self::MAX_CHARS };
        let sku = within(sku, 1, Self::MAX_CHARS).map_err(|_| refused)?;
        if sku.chars().any(char::is_control) {
            return Err(refused);
        }
        Ok(Self(sku.to_owned()))
    }
}

text_type! {
    /// A brand's name in URLs: 2 to 64 ASCII letters, digits or inner
    /// hyphens. Any case is read; it is held lower-case (`Acme` is `acme`),
    /// as it is stored and looked up.
    Slug
}

impl Slug {
    /// Reads a slug, trimmed, in any case.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let slug = text.trim().to_ascii_lowercase();
        let valid = (2..=64).contains(&slug.len())
            && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !slug.starts_with('-')
            && !slug.ends_with('-');
        if valid { Ok(Self(slug)) } else { Err(FieldError::Slug) }
    }
}

text_type! {
    /// A warehouse's short code, unique within its organization: 1 to 32
    /// ASCII letters, digits, `-` or `_`. Codes are identifiers people type,
    /// so any case is read; it is held upper-case (`wh-main` is `WH-MAIN`).
    WarehouseCode
}

impl WarehouseCode {
    /// Reads a warehouse code, trimmed, in any case.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let code = text.trim().to_ascii_uppercase();
        let valid = (1..=32).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid { Ok(Self(code)) } else { Err(FieldError::WarehouseCode) }
    }
}

/// A variant's option values by option name, such as `{"size": "L"}`: at
/// most 20 options, each name 1 to 100 characters (trimmed), each value at
/// most 200 characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct VariantOptions(BTreeMap<String, String>);

impl VariantOptions {
    /// The most options a variant has.
    pub const MAX_OPTIONS: usize = 20;
    /// The most characters an option's name holds.
    pub const MAX_NAME_CHARS: usize = 100;
    /// The most characters an option's value holds.
    pub const MAX_VALUE_CHARS: usize = 200;

    /// Checks the options; names lose their surrounding spaces, values are
    /// kept as given.
    pub fn parse(options: BTreeMap<String, String>) -> Result<Self, FieldError> {
        if options.len() > Self::MAX_OPTIONS {
            return Err(FieldError::TooManyOptions);
        }
        let mut checked = BTreeMap::new();
        for (name, value) in options {
            let name = within(name.trim(), 1, Self::MAX_NAME_CHARS).map_err(|_| FieldError::OptionText)?;
            within(&value, 0, Self::MAX_VALUE_CHARS).map_err(|_| FieldError::OptionText)?;
            checked.insert(name.to_owned(), value);
        }
        Ok(Self(checked))
    }

    /// The options by name.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The options by name, owned.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl TryFrom<BTreeMap<String, String>> for VariantOptions {
    type Error = FieldError;

    fn try_from(options: BTreeMap<String, String>) -> Result<Self, FieldError> {
        Self::parse(options)
    }
}

impl Serialize for VariantOptions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the common rule of a trimmed text of `min` to `max`
    /// characters: the boundaries, counted in characters, after trimming.
    fn check_limits<T: FromStr<Err = FieldError> + AsRef<str> + fmt::Debug>(min: usize, max: usize) {
        let refused = Err(FieldError::Length { min, max });
        let parse = |text: &str| text.parse::<T>().map(|value| value.as_ref().to_owned());
        if min == 0 {
            assert_eq!(parse(""), Ok(String::new()));
            assert_eq!(parse("   "), Ok(String::new()));
        } else {
            assert_eq!(parse(""), refused);
            assert_eq!(parse("  \t\n "), refused, "blank is empty");
        }
        assert_eq!(parse(&"x".repeat(max)), Ok("x".repeat(max)));
        assert_eq!(parse(&"x".repeat(max + 1)), refused);
        // Characters, not bytes: two bytes each, four for the crab.
        assert_eq!(parse(&"é".repeat(max)), Ok("é".repeat(max)));
        assert_eq!(parse(&"é".repeat(max + 1)), refused);
        assert_eq!(parse(&"🦀".repeat(max)), Ok("🦀".repeat(max)));
        // Surrounding spaces are dropped before counting.
        assert_eq!(parse(&format!("  {}  ", "x".repeat(max))), Ok("x".repeat(max)));
        assert_eq!(parse(" a b "), Ok("a b".to_owned()));
    }

    #[test]
    fn each_text_type_counts_trimmed_characters_within_its_limits() {
        check_limits::<TrackingNumber>(1, 100);
        check_limits::<NoteBody>(1, 5000);
        check_limits::<MessageBody>(1, 10_000);
        check_limits::<Reason>(1, 500);
        check_limits::<AdjustmentReason>(1, 200);
        check_limits::<Reference>(0, 200);
        check_limits::<DisplayName>(1, 200);
        check_limits::<Title>(1, 200);
        check_limits::<ApiKeyName>(1, 100);
        check_limits::<SearchText>(0, 200);
    }

    #[test]
    fn the_limit_is_said_in_words() {
        assert_eq!(Reason::parse("").unwrap_err().to_string(), "must be 1 to 500 characters");
        assert_eq!(Reference::parse(&"x".repeat(201)).unwrap_err().to_string(), "must be at most 200 characters");
        assert_eq!(Carrier::parse("").unwrap_err().to_string(), "must be 1 to 50 characters");
        assert_eq!(Sku::parse("").unwrap_err().to_string(), "must be 1 to 100 characters without control characters");
        assert_eq!(MessageBody::parse("").unwrap_err().to_string(), "must be 1 to 10000 characters");
    }

    #[test]
    fn a_carrier_is_a_lowercase_code_of_1_to_50_characters() {
        assert_eq!(Carrier::parse("  Canada Post ").unwrap().as_str(), "canada_post");
        assert_eq!(Carrier::parse("DHL-Express").unwrap().as_str(), "dhl_express");
        assert_eq!(Carrier::parse("usps").unwrap().as_str(), "usps");
        let refused = Err(FieldError::Length { min: 1, max: 50 });
        assert_eq!(Carrier::parse(""), refused);
        assert_eq!(Carrier::parse("   "), refused);
        assert!(Carrier::parse(&"x".repeat(50)).is_ok());
        assert_eq!(Carrier::parse(&"x".repeat(51)), refused);
        assert_eq!(Carrier::parse(&"é".repeat(50)).unwrap().as_str(), "é".repeat(50));
        assert_eq!(Carrier::parse(&"É".repeat(51)), refused);
        // The limit is on the code: inner spaces count, as the `_` they become.
        assert!(Carrier::parse(&format!("{} {}", "x".repeat(24), "y".repeat(25))).is_ok());
        assert_eq!(Carrier::parse(&format!("{} {}", "x".repeat(25), "y".repeat(25))), refused);
    }

    #[test]
    fn a_sku_is_1_to_100_characters_without_control_characters() {
        let refused = Err(FieldError::PlainLength { min: 1, max: 100 });
        assert_eq!(Sku::parse("  TENT-2P ").unwrap().as_str(), "TENT-2P");
        assert_eq!(Sku::parse(""), refused);
        assert_eq!(Sku::parse("   "), refused);
        assert!(Sku::parse(&"S".repeat(100)).is_ok());
        assert_eq!(Sku::parse(&"S".repeat(101)), refused);
        assert_eq!(Sku::parse(&"ß".repeat(100)).unwrap().as_str(), "ß".repeat(100));
        assert_eq!(Sku::parse(&"ß".repeat(101)), refused);
        for control in ["TE\u{0}NT", "TE\tNT", "TE\nNT", "TENT\u{7f}x", "x\u{85}y"] {
            assert_eq!(Sku::parse(control), refused, "{control:?}");
        }
    }

    #[test]
    fn a_slug_is_read_in_any_case_and_held_lowercase() {
        assert_eq!(Slug::parse(" Acme-Kids ").unwrap().as_str(), "acme-kids");
        assert!(Slug::parse("ab").is_ok());
        assert!(Slug::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a", "-acme", "acme-", "ac me", "acme_kids", "ácme", &"a".repeat(65)] {
            assert_eq!(Slug::parse(bad), Err(FieldError::Slug), "{bad:?}");
        }
        assert_eq!(FieldError::Slug.to_string(), "must be 2 to 64 letters, digits or inner hyphens");
    }

    #[test]
    fn a_warehouse_code_is_read_in_any_case_and_held_uppercase() {
        assert_eq!(WarehouseCode::parse(" wh-main_2 ").unwrap().as_str(), "WH-MAIN_2");
        assert!(WarehouseCode::parse("E").is_ok());
        assert!(WarehouseCode::parse(&"e".repeat(32)).is_ok());
        for bad in ["", "  ", "W H", "WH.1", "ÉWR", &"e".repeat(33)] {
            assert_eq!(WarehouseCode::parse(bad), Err(FieldError::WarehouseCode), "{bad:?}");
        }
        assert_eq!(FieldError::WarehouseCode.to_string(), "must be 1 to 32 letters, digits, - or _");
    }

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn variant_options_are_at_most_20_with_names_and_values_in_their_limits() {
        let parsed = VariantOptions::parse(options(&[(" size ", "L"), ("colour", "")])).unwrap();
        assert_eq!(parsed.as_map(), &options(&[("size", "L"), ("colour", "")]));
        assert!(VariantOptions::parse(BTreeMap::new()).unwrap().as_map().is_empty());

        let twenty: BTreeMap<String, String> = (0..20).map(|i| (format!("o{i}"), "v".to_owned())).collect();
        assert!(VariantOptions::parse(twenty.clone()).is_ok());
        let mut twenty_one = twenty;
        twenty_one.insert("o20".into(), "v".into());
        assert_eq!(VariantOptions::parse(twenty_one), Err(FieldError::TooManyOptions));

        let name = "n".repeat(100);
        let value = "é".repeat(200);
        assert!(VariantOptions::parse(options(&[(&name, &value)])).is_ok());
        for (name, value) in [("", "x"), ("  ", "x"), (&"n".repeat(101), "x"), ("size", &"é".repeat(201))] {
            assert_eq!(VariantOptions::parse(options(&[(name, value)])), Err(FieldError::OptionText));
        }
        assert_eq!(FieldError::TooManyOptions.to_string(), "at most 20 options");
        assert_eq!(FieldError::OptionText.to_string(), "option names must be 1 to 100 characters, values at most 200");
    }

    #[test]
    fn json_strings_deserialize_through_parse_and_serialize_back() {
        let carrier: Carrier = serde_json::from_str(r#"" Canada Post ""#).unwrap();
        assert_eq!(carrier.as_str(), "canada_post");
        assert_eq!(serde_json::to_string(&carrier).unwrap(), r#""canada_post""#);
        assert_eq!(carrier.to_string(), "canada_post");

        let too_long = serde_json::from_str::<Carrier>(&format!("\"{}\"", "x".repeat(51))).unwrap_err();
        assert!(too_long.to_string().starts_with("must be 1 to 50 characters"), "{too_long}");
        let not_a_string = serde_json::from_str::<Carrier>("12345").unwrap_err();
        assert!(not_a_string.to_string().starts_with("invalid type: integer"), "{not_a_string}");

        #[derive(Debug, Deserialize)]
        struct Request {
            reference: Option<Reference>,
            options: VariantOptions,
        }
        let request: Request = serde_json::from_str(r#"{"reference": null, "options": {" size ": "L"}}"#).unwrap();
        assert_eq!(request.reference, None);
        assert_eq!(request.options.as_map(), &options(&[("size", "L")]));
        assert_eq!(serde_json::to_string(&request.options).unwrap(), r#"{"size":"L"}"#);
        let many = (0..21).map(|i| format!("\"o{i}\": \"v\"")).collect::<Vec<_>>().join(", ");
        let refused = serde_json::from_str::<Request>(&format!(r#"{{"reference": "r", "options": {{{many}}}}}"#));
        assert!(refused.unwrap_err().to_string().starts_with("at most 20 options"));
    }
}
