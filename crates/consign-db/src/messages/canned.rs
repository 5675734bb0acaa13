//! Canned responses: a brand's saved replies, with placeholders filled from
//! the order they are used on (`{{order.number}}`, `{{customer.name}}`,
//! `{{tracking.url}}`, …; see `consign_domain::messaging::render_template`).

use consign_domain::messaging::{TemplateValues, render_template};
use consign_domain::{BrandId, CannedResponseId, OrderId, OrganizationId, Timestamp};
use serde::Serialize;

use crate::{Db, DbError, DbResult, Scope};

/// A saved reply.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CannedResponse {
    /// Id.
    pub id: CannedResponseId,
    /// The brand.
    pub brand_id: BrandId,
    /// A short name, unique per brand.
    pub name: String,
    /// The text, with placeholders.
    pub body: String,
    /// Created at.
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, brand_id, name, body, created_at";

/// Saves a reply for a brand.
pub async fn create(db: &Db, scope: &Scope, brand_id: BrandId, name: &str, body: &str) -> DbResult<CannedResponse> {
    scope.check_brand(brand_id)?;
    let organization_id: OrganizationId =
        db.read("SELECT organization_id FROM brands WHERE id = $1").bind(brand_id).scalar().await?;
    let id = CannedResponseId::new();
    // A name the brand already uses fails the insert (`Conflict`): nothing
    // is written, and it is answered below as a validation error.
    let result: DbResult<()> = async {
        let mut tx = db.begin().await?;
        tx.query(
            "INSERT INTO canned_responses (id, organization_id, brand_id, name, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(organization_id)
        .bind(brand_id)
        .bind(name.to_owned())
        .bind(body.to_owned())
        .bind(Timestamp::now())
        .execute()
        .await?;
        tx.record_audit(scope.audit(
            organization_id,
            Some(brand_id),
            "canned_response.create",
            "canned_response",
            id.to_string(),
        ))
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Err(DbError::Conflict { .. }) => Err(DbError::invalid("name", "a canned response with this name exists")),
        other => other,
    }?;
    get(db, scope, id).await
}

/// One saved reply.
pub async fn get(db: &Db, scope: &Scope, id: CannedResponseId) -> DbResult<CannedResponse> {
    let row: CannedResponse =
        db.read_built(format!("SELECT {COLUMNS} FROM canned_responses WHERE id = $1")).bind(id).fetch_one().await?;
    scope.check_brand(row.brand_id)?;
    Ok(row)
}

/// A brand's saved replies, by name.
pub async fn list(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<CannedResponse>> {
    scope.check_brand(brand_id)?;
    db.read_built(format!("SELECT {COLUMNS} FROM canned_responses WHERE brand_id = $1 ORDER BY name"))
        .bind(brand_id)
        .fetch_all()
        .await
}

/// A saved reply filled in for one order (same brand).
pub async fn render_for_order(db: &Db, scope: &Scope, id: CannedResponseId, order_id: OrderId) -> DbResult<String> {
    let canned = get(db, scope, id).await?;
    let order = crate::orders::get(db, scope, order_id).await?;
    if order.brand_id != canned.brand_id {
        return Err(DbError::invalid("canned_response_id", "belongs to another brand"));
    }
    let (brand_name, tracking_url): (String, Option<String>) = db
        .read(
            "SELECT b.name, (SELECT s.tracking_url FROM shipments s WHERE s.order_id = $2 AND s.tracking_url IS NOT NULL
                              ORDER BY s.id DESC LIMIT 1)
               FROM brands b WHERE b.id = $1",
        )
        .bind(order.brand_id)
        .bind(order_id)
        .fetch_one()
        .await?;
    let values = TemplateValues {
        order_number: order.number.clone(),
        customer_name: order.customer.name.clone(),
        customer_email: order.customer.email.clone(),
        tracking_url,
        brand_name,
        ..TemplateValues::default()
    };
    Ok(render_template(&canned.body, &values))
}
