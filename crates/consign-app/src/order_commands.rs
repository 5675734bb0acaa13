//! The staff commands on an order, one function each, shared by the API
//! and the order page: cancel, add a note, record a payment, edit the
//! shipping address or the items, create a shipment and move it along.
//!
//! Each command checks the caller first ([`authorize`]: the order seen
//! through the caller's scope and the policy's `Action` on its brand), then
//! the fields' rules (the `consign_domain::text` types, the limits of a
//! list), then calls storage. The edge parses its own shape (a JSON body, a
//! form's "12.50") before it calls, and keeps what is its own: idempotency,
//! rate limits, the answer's shape. A refused field is named as the API
//! names it; a page that labels the field otherwise renames it
//! ([`CommandError::renamed`]).

use consign_db::orders::{self, Note, Order, changes};
use consign_db::{Db, DbError, Scope};
use consign_domain::OrderId;
use consign_domain::policy::Action;
use consign_domain::text::{self, NoteBody, Reason};

/// One refused field: its path in the request (`items[0].sku`) and what is
/// wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's path, as the API names it.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldProblem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Why a command was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No such order (or shipment), or one the caller cannot see.
    #[error("not found")]
    NotFound,
    /// The caller sees the order but its role does not allow the command.
    #[error("forbidden")]
    Forbidden,
    /// Fields the rules refuse; every one of them where the rules run
    /// together.
    #[error("invalid fields")]
    Invalid(Vec<FieldProblem>),
    /// Storage refused (a transition, stock, a version) or failed.
    #[error(transparent)]
    Db(DbError),
}

impl CommandError {
    /// One refused field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldProblem::new(field, message)])
    }

    /// The same refusal with the field `from` called `to`, for an edge that
    /// labels it otherwise (the order page's note is `note`, not `body`).
    pub fn renamed(self, from: &str, to: &str) -> Self {
        match self {
            Self::Invalid(problems) => Self::Invalid(
                problems
                    .into_iter()
                    .map(|problem| if problem.field == from { FieldProblem::new(to, problem.message) } else { problem })
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Storage's refusals of a field and of an unseen row are the command's
/// own, so an edge renames and answers them like the command's.
impl From<DbError> for CommandError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound => CommandError::NotFound,
            DbError::Invalid { field, message } => CommandError::field(field, message),
            other => CommandError::Db(other),
        }
    }
}

/// A text field its domain type refuses, under `field`.
fn invalid(field: &'static str) -> impl FnOnce(text::FieldError) -> CommandError {
    move |error| CommandError::field(field, error.to_string())
}

/// Loads an order the caller sees and checks the staff policy for `action`
/// on its brand: `NotFound` when the order is invisible (or the caller is a
/// customer, whose token reads its order but commands nothing), `Forbidden`
/// when the caller's role does not allow the action.
pub async fn authorize(db: &Db, scope: &Scope, order_id: OrderId, action: Action) -> Result<Order, CommandError> {
    let order = orders::get(db, scope, order_id).await?;
    if scope.customer_order().is_some() {
        return Err(CommandError::NotFound);
    }
    let grants = scope.grants();
    if !grants.sees_brand(order.brand_id) {
        return Err(CommandError::NotFound);
    }
    if !grants.allows_on_brand(action, order.brand_id) {
        return Err(CommandError::Forbidden);
    }
    Ok(order)
}

/// Cancels the order for `reason`: its stock is released, and a paid order
/// gets a refund due (see `changes::cancel`).
pub async fn cancel(db: &Db, scope: &Scope, order_id: OrderId, reason: &str) -> Result<Order, CommandError> {
    authorize(db, scope, order_id, Action::EditCommerce).await?;
    let reason = Reason::parse(reason).map_err(invalid("reason"))?;
    Ok(changes::cancel(db, scope, order_id, reason.as_str()).await?)
}

/// Adds a staff note to the order.
pub async fn add_note(db: &Db, scope: &Scope, order_id: OrderId, body: &str) -> Result<Note, CommandError> {
    authorize(db, scope, order_id, Action::EditCommerce).await?;
    let body = NoteBody::parse(body).map_err(invalid("body"))?;
    Ok(orders::add_note(db, scope, order_id, body.as_str()).await?)
}
