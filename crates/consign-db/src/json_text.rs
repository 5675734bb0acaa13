//! JSON kept in a TEXT column, the same on both engines.

use serde::Serialize;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

/// A JSON value read from a TEXT column; serializes as the JSON itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct JsonText(pub serde_json::Value);

impl<DB: Database> Type<DB> for JsonText
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for JsonText
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, DB>>::decode(value)?;
        Ok(Self(serde_json::from_str(&text)?))
    }
}
