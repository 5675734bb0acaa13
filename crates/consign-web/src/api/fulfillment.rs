//! Shipping: shipments from fulfillment orders and their status changes.

use axum::extract::State;
use axum::http::StatusCode;
use consign_app::order_commands::{self, Parcel};
use consign_db::fulfillment::Shipment;
use consign_domain::status::ShipmentStatus;
use consign_domain::{FulfillmentOrderId, OrderItemId, ShipmentId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppResult, Problem};
use crate::extract::{AppJson, AppPath, Caller};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_shipment)).routes(routes!(set_status))
}

/// Units of one order line to ship.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ShipmentLine {
    /// The order line.
    pub order_item_id: OrderItemId,
    /// Units.
    pub quantity: i64,
}

/// `POST /fulfillment-orders/{id}/shipments`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateShipment {
    /// What goes in the parcel.
    pub items: Vec<ShipmentLine>,
    /// `usps`, `ups`, `fedex`, `dhl`, `canada_post`, `chitchats`, or another carrier's name.
    pub carrier: String,
    /// The carrier's tracking number.
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
    let items: Vec<(OrderItemId, i64)> = request.items.iter().map(|line| (line.order_item_id, line.quantity)).collect();
    let parcel = Parcel { items: &items, carrier: &request.carrier, tracking_number: &request.tracking_number };
    let shipment = order_commands::create_shipment(&state.db, caller.scope(), fulfillment_order_id, parcel).await?;
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
    let scope = caller.scope();
    Ok(AppJson(order_commands::set_shipment_status(&state.db, scope, shipment_id, None, request.status).await?))
}
