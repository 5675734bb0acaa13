//! The event feed and the audit log.

use axum::extract::State;
use consign_db::Page;
use consign_db::audit::{self, AuditFilter, AuditRecord};
use consign_db::events::{self, Event, EventFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppQuery, Caller, PageQuery};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events)).routes(routes!(audit_log))
}

/// Filters of `GET /events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Exact type, such as `order.paid`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Events after this event id (follow the feed with the last id seen).
    pub after: Option<String>,
    /// At most this many, 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// Domain events of the brands the caller sees, oldest first.
#[utoipa::path(get, path = "/events", tag = "events", params(EventQuery),
    responses((status = 200, body = Page<Event>), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<EventQuery>,
) -> AppResult<AppJson<Page<Event>>> {
    if caller.scope().customer_order().is_some() {
        return Err(AppError::NotFound);
    }
    let limit = PageQuery { limit: query.limit, cursor: None }.to_request()?.limit;
    let filter = EventFilter { event_type: query.event_type, after: query.after };
    let data = events::feed(&state.db, caller.scope(), &filter, i64::from(limit)).await?;
    let next_cursor = (data.len() == limit as usize).then(|| data.last().map(|e| e.id.to_string())).flatten();
    Ok(AppJson(Page { data, next_cursor }))
}

/// Filters of `GET /audit-log`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// One entity.
    pub entity_id: Option<String>,
    /// One actor.
    pub actor_id: Option<String>,
    /// Rows per page, 1 to 200.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Audited mutations the caller administers, newest first.
#[utoipa::path(get, path = "/audit-log", tag = "events", params(AuditQuery),
    responses((status = 200, body = Page<AuditRecord>), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<AuditQuery>,
) -> AppResult<AppJson<Page<AuditRecord>>> {
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    let filter = AuditFilter { entity_id: query.entity_id, actor_id: query.actor_id };
    Ok(AppJson(audit::list(&state.db, caller.scope(), &filter, &page).await?))
}
