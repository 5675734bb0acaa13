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

use consign_db::fulfillment::{self, NewShipment, Shipment};
use consign_db::orders::{self, Note, Order, changes};
use consign_db::{Db, DbError, Scope};
use consign_domain::order::Address;
use consign_domain::policy::Action;
use consign_domain::status::ShipmentStatus;
use consign_domain::text::{self, Carrier, NoteBody, Reason, Reference, Sku, TrackingNumber};
use consign_domain::{BrandId, FulfillmentOrderId, OrderId, OrderItemId, ShipmentId};

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

    /// The same refusal with every field renamed by `rename`, for an edge
    /// whose form names fields otherwise than the API's paths.
    pub fn renamed_all(self, rename: impl Fn(&str) -> String) -> Self {
        match self {
            Self::Invalid(problems) => Self::Invalid(
                problems
                    .into_iter()
                    .map(|problem| FieldProblem::new(rename(&problem.field), problem.message))
                    .collect(),
            ),
            other => other,
        }
    }

    /// The same refusal with the field `from` called `to`, for an edge that
    /// labels it otherwise (the order page's note is `note`, not `body`).
    pub fn renamed(self, from: &str, to: &str) -> Self {
        self.renamed_all(|field| if field == from { to.to_owned() } else { field.to_owned() })
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
    staff_may(scope, action, order.brand_id)?;
    Ok(order)
}

/// The staff policy on one brand: `NotFound` when the caller does not see
/// the brand, `Forbidden` when its role does not allow `action` there.
pub(crate) fn staff_may(scope: &Scope, action: Action, brand_id: BrandId) -> Result<(), CommandError> {
    let grants = scope.grants();
    if !grants.sees_brand(brand_id) {
        return Err(CommandError::NotFound);
    }
    if !grants.allows_on_brand(action, brand_id) {
        return Err(CommandError::Forbidden);
    }
    Ok(())
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

/// A payment received by hand, as the edge read it.
pub struct ManualPayment<'a> {
    /// Minor units.
    pub amount: i64,
    /// The currency, when the caller named one (it must be the order's).
    pub currency: Option<&'a str>,
    /// How it was paid: only `manual` is recorded by hand; a provider's
    /// payments arrive through its webhooks.
    pub method: &'a str,
    /// A bank reference or receipt number.
    pub reference: Option<&'a str>,
}

/// Records a manual payment; the order is `paid` once payments cover its
/// total, and then gets its fulfillment orders.
pub async fn record_payment(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    payment: ManualPayment<'_>,
) -> Result<Order, CommandError> {
    authorize(db, scope, order_id, Action::EditCommerce).await?;
    if payment.method != "manual" {
        return Err(CommandError::field("method", "must be `manual`"));
    }
    let reference = payment.reference.map(Reference::parse).transpose().map_err(invalid("reference"))?;
    let reference = reference.as_ref().map(Reference::as_str);
    Ok(changes::record_payment(db, scope, order_id, payment.amount, payment.currency, reference).await?)
}

/// Replaces the shipping address of an order that has not shipped;
/// `expected_version`, when given, must be the order's current version.
/// Every refused part of the address is listed.
pub async fn update_shipping_address(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    address: &Address,
    expected_version: Option<i64>,
) -> Result<Order, CommandError> {
    authorize(db, scope, order_id, Action::EditCommerce).await?;
    let problems = address.problems();
    if !problems.is_empty() {
        return Err(CommandError::Invalid(
            problems.into_iter().map(|(field, message)| FieldProblem::new(field, message)).collect(),
        ));
    }
    Ok(changes::update_shipping_address(db, scope, order_id, address, expected_version).await?)
}

/// The most lines an item edit lists.
pub const MAX_ITEM_LINES: usize = 100;
/// The most units one line of an item edit holds.
pub const MAX_LINE_UNITS: i64 = 1000;

/// The problem of a list of `count` entries against `min..=max`, in the
/// words the API has always answered with.
fn length_problem(field: &str, count: usize, min: usize, max: usize) -> Option<FieldProblem> {
    if count < min {
        Some(FieldProblem::new(field, format!("length is lower than {min}")))
    } else if count > max {
        Some(FieldProblem::new(field, format!("length is greater than {max}")))
    } else {
        None
    }
}

/// The problem of a number against `min..=max`, in the API's words.
fn range_problem(field: String, value: i64, min: i64, max: i64) -> Option<FieldProblem> {
    if value < min {
        Some(FieldProblem::new(field, format!("lower than {min}")))
    } else if value > max {
        Some(FieldProblem::new(field, format!("greater than {max}")))
    } else {
        None
    }
}

/// Replaces the order's items with `lines` (SKU as sent, units), each line
/// checked: 1 to [`MAX_ITEM_LINES`] lines, 1 to [`MAX_LINE_UNITS`] units a
/// line, a valid SKU. Every refused line is listed, by its index
/// (`items[2].sku`). Lines of one SKU are added up; stock is held again
/// and the totals recomputed.
pub async fn replace_items(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    lines: &[(String, i64)],
) -> Result<Order, CommandError> {
    authorize(db, scope, order_id, Action::EditCommerce).await?;
    let mut problems: Vec<FieldProblem> = length_problem("items", lines.len(), 1, MAX_ITEM_LINES).into_iter().collect();
    let mut skus = Vec::with_capacity(lines.len());
    for (index, (sku, quantity)) in lines.iter().enumerate() {
        match Sku::parse(sku) {
            Ok(sku) => skus.push(sku),
            Err(error) => problems.push(FieldProblem::new(format!("items[{index}].sku"), error.to_string())),
        }
        problems.extend(range_problem(format!("items[{index}].quantity"), *quantity, 1, MAX_LINE_UNITS));
    }
    if !problems.is_empty() {
        return Err(CommandError::Invalid(problems));
    }
    let mut merged: Vec<(String, i64)> = Vec::new();
    for (sku, (_, quantity)) in skus.into_iter().zip(lines) {
        match merged.iter_mut().find(|(known, _)| known == sku.as_str()) {
            Some((_, total)) => *total += quantity,
            None => merged.push((sku.into_string(), *quantity)),
        }
    }
    Ok(changes::replace_items(db, scope, order_id, &merged).await?)
}

/// The most lines one shipment lists.
pub const MAX_SHIPMENT_LINES: usize = 500;
/// The most units of one line a shipment carries.
pub const MAX_SHIPPED_UNITS: i64 = 100_000;

/// A parcel as the edge read it.
pub struct Parcel<'a> {
    /// (order line, units) pairs.
    pub items: &'a [(OrderItemId, i64)],
    /// The carrier's code or name.
    pub carrier: &'a str,
    /// The carrier's tracking number.
    pub tracking_number: &'a str,
}

/// Ships quantities of a fulfillment order's items (never more than
/// remains); shipping consumes the stock hold. The fields come first, every
/// refused one listed, and then the caller: a customer, or staff who may
/// edit orders on none of their brands, finds no fulfillment order.
/// Storage looks the fulfillment order up in the caller's scope (404 when
/// its brand is not seen), and every brand a caller sees allows
/// `EditCommerce`, so that is the policy on its own brand too.
pub async fn create_shipment(
    db: &Db,
    scope: &Scope,
    fulfillment_order_id: FulfillmentOrderId,
    parcel: Parcel<'_>,
) -> Result<Shipment, CommandError> {
    let mut problems: Vec<FieldProblem> =
        length_problem("items", parcel.items.len(), 1, MAX_SHIPMENT_LINES).into_iter().collect();
    for (index, (_, quantity)) in parcel.items.iter().enumerate() {
        problems.extend(range_problem(format!("items[{index}].quantity"), *quantity, 1, MAX_SHIPPED_UNITS));
    }
    let (carrier, tracking_number) =
        match (Carrier::parse(parcel.carrier), TrackingNumber::parse(parcel.tracking_number)) {
            (Ok(carrier), Ok(tracking_number)) if problems.is_empty() => (carrier, tracking_number),
            (carrier, tracking_number) => {
                problems.extend(carrier.err().map(|error| FieldProblem::new("carrier", error.to_string())));
                problems
                    .extend(tracking_number.err().map(|error| FieldProblem::new("tracking_number", error.to_string())));
                return Err(CommandError::Invalid(problems));
            }
        };
    if scope.customer_order().is_some() {
        return Err(CommandError::NotFound);
    }
    let grants = scope.grants();
    if !grants.platform_admin
        && grants.brands.iter().all(|grant| !grants.allows_on_brand(Action::EditCommerce, grant.brand_id))
    {
        return Err(CommandError::NotFound);
    }
    let shipment = NewShipment {
        items: parcel.items.to_vec(),
        carrier: carrier.into_string(),
        tracking_number: tracking_number.into_string(),
    };
    Ok(fulfillment::create_shipment(db, scope, fulfillment_order_id, shipment).await?)
}

/// Moves a shipment along its lifecycle; the order follows. `on_order` is
/// the order the caller reached the shipment through, when it came that
/// way (the order page): a shipment of another order is not found there.
pub async fn set_shipment_status(
    db: &Db,
    scope: &Scope,
    shipment_id: ShipmentId,
    on_order: Option<OrderId>,
    status: ShipmentStatus,
) -> Result<Shipment, CommandError> {
    let shipment = fulfillment::get_shipment(db, scope, shipment_id).await?;
    if on_order.is_some_and(|order_id| order_id != shipment.order_id) {
        return Err(CommandError::NotFound);
    }
    authorize(db, scope, shipment.order_id, Action::EditCommerce).await?;
    Ok(fulfillment::set_shipment_status(db, scope, shipment_id, status).await?)
}
