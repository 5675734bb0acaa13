//! Shipping: shipments from fulfillment orders and their status changes.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::fulfillment::{self, NewShipment, Shipment};
use consign_domain::policy::Action;
use consign_domain::status::ShipmentStatus;
use consign_domain::text::{Carrier, TrackingNumber};
use consign_domain::{FulfillmentOrderId, OrderItemId, ShipmentId};
use garde::Validate;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppPath, Caller};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_shipment)).routes(routes!(set_status))
}

/// Units of one order line to ship.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct ShipmentLine {
    /// The order line.
    #[garde(skip)]
    pub order_item_id: OrderItemId,
    /// Units.
    #[garde(range(min = 1, max = 100000))]
    pub quantity: i64,
}

/// `POST /fulfillment-orders/{id}/shipments`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CreateShipment {
    /// What goes in the parcel.
    #[garde(length(min = 1, max = 500), dive)]
    pub items: Vec<ShipmentLine>,
    /// `usps`, `ups`, `fedex`, `dhl`, `canada_post`, `chitchats`, or another carrier's name.
    #[garde(custom(text_rule::<Carrier>))]
    pub carrier: String,
    /// The carrier's tracking number.
    #[garde(custom(text_rule::<TrackingNumber>))]
    pub tracking_number: String,
}

/// Ships quantities of a fulfillment order's items (never more than
/// remains). Shipping consumes the stock hold.
#[utoipa::path(post, path = "/fulfillment-orders/{id}/shipments", tag = "fulfillment", request_body = CreateShipment,
    params(("id" = String, Path, description = "Fulfillment order id")),
    responses((status = 201, body = Shipment), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn create_shipment(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(fulfillment_order_id): AppPath<FulfillmentOrderId>,
    AppJson(request): AppJson<CreateShipment>,
) -> AppResult<(StatusCode, AppJson<Shipment>)> {
    request.validate()?;
    if caller.scope().customer_order().is_some() {
        return Err(AppError::NotFound);
    }
    let grants = caller.scope().grants();
    if !grants.platform_admin && grants.brands.iter().all(|g| !grants.allows_on_brand(Action::EditCommerce, g.brand_id))
    {
        return Err(AppError::NotFound);
    }
    let shipment = NewShipment {
        items: request.items.iter().map(|l| (l.order_item_id, l.quantity)).collect(),
        carrier: Carrier::parse(&request.carrier).map_err(AppError::invalid("carrier"))?.into_string(),
        tracking_number: TrackingNumber::parse(&request.tracking_number)
            .map_err(AppError::invalid("tracking_number"))?
            .into_string(),
    };
    let shipment = fulfillment::create_shipment(&state.db, caller.scope(), fulfillment_order_id, shipment).await?;
    Ok((StatusCode::CREATED, AppJson(shipment)))
}

/// `POST /shipments/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusRequest {
    /// `in_transit`, `delivered` or `exception`.
    pub status: ShipmentStatus,
}

/// Moves a shipment along its lifecycle; the order follows.
#[utoipa::path(post, path = "/shipments/{id}/status", tag = "fulfillment", request_body = StatusRequest,
    params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = Shipment), (status = 404, body = Problem), (status = 409, description = "invalid_transition", body = Problem)),
    security(("bearer" = [])))]
async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(shipment_id): AppPath<ShipmentId>,
    AppJson(request): AppJson<StatusRequest>,
) -> AppResult<AppJson<Shipment>> {
    let shipment = fulfillment::get_shipment(&state.db, caller.scope(), shipment_id).await?;
    let order = consign_db::orders::get(&state.db, caller.scope(), shipment.order_id).await?;
    caller.authorize_brand(Action::EditCommerce, order.brand_id)?;
    Ok(AppJson(fulfillment::set_shipment_status(&state.db, caller.scope(), shipment_id, request.status).await?))
}
