//! Organization kinds and staff roles.

/// The error for a string that names no known variant.
#[derive(Debug, thiserror::Error)]
#[error("unknown value `{0}`")]
pub struct UnknownVariant(pub String);

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// The stored and wire form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::roles::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, $crate::roles::UnknownVariant> {
                match s { $($text => Ok(Self::$variant),)* other => Err($crate::roles::UnknownVariant(other.to_owned())) }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::roles::UnknownVariant;
            fn try_from(s: String) -> Result<Self, $crate::roles::UnknownVariant> {
                s.parse()
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// What an organization does.
    OrganizationKind {
        /// A third-party logistics warehouse operator fulfilling for brands.
        Threepl = "threepl",
        /// A company selling under its own brands.
        Merchant = "merchant",
    }
}

string_enum! {
    /// A role over a whole organization.
    OrgRole {
        /// Manages the organization, its brands, members and keys.
        OrgAdmin = "org_admin",
        /// Works across the organization's brands.
        OrgMember = "org_member",
    }
}

string_enum! {
    /// A role over one brand, granted to a user directly.
    BrandRole {
        /// Manages the brand, its members and keys.
        BrandAdmin = "brand_admin",
        /// Works within the brand.
        BrandMember = "brand_member",
    }
}
