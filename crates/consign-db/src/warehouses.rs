//! Warehouses (stock locations) and which of them serve each brand, in
//! allocation priority order.
//!
//! A warehouse belongs to one organization (a 3PL, or a merchant that ships
//! itself). A brand is served by warehouses of its owner organization or of
//! the 3PLs that fulfil for it (`brand_fulfillers`); `brand_warehouses` holds
//! that link with a priority, lowest first.

use std::collections::HashSet;

use consign_domain::{BrandId, EventType, OrganizationId, Timestamp, WarehouseId};
use serde::Serialize;
use serde_json::json;

use crate::{AuditEntry, Db, DbError, DbResult, NewEvent, Page, PageRequest, Scope, brands};

/// A warehouse.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Warehouse {
    /// Id.
    pub id: WarehouseId,
    /// The organization that runs it.
    pub organization_id: OrganizationId,
    /// Display name.
    pub name: String,
    /// Short code, unique within the organization, such as `EWR`.
    pub code: String,
    /// When created.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// A new warehouse.
pub struct NewWarehouse<'a> {
    /// The organization that will run it.
    pub organization_id: OrganizationId,
    /// Name.
    pub name: &'a str,
    /// Code, in any case: it is stored as [`canonical_code`] makes it.
    pub code: &'a str,
}

/// A warehouse code as it is stored and compared. Codes are identifiers
/// people type (`wh-main` and `WH-MAIN` name one warehouse), so
/// they are kept upper-case, which also makes the `(organization_id, code)`
/// unique key case-insensitive.
pub fn canonical_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// Filters for [`list`].
#[derive(Clone, Debug, Default)]
pub struct WarehouseFilter {
    /// Only the warehouse with this code, in any case.
    pub code: Option<String>,
}

/// A warehouse serving a brand, with its allocation priority.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BrandWarehouse {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// The organization that runs it.
    pub organization_id: OrganizationId,
    /// Its name.
    pub name: String,
    /// Its code.
    pub code: String,
    /// Lower is allocated first.
    pub priority: i64,
}

/// One entry of a brand's allocation order.
#[derive(Clone, Copy, Debug)]
pub struct Allocation {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Lower is allocated first.
    pub priority: i64,
}

/// Why a brand's allocation order was refused.
#[derive(Debug, thiserror::Error)]
pub enum AllocationError {
    /// The warehouse at this index of the request does not exist or belongs
    /// neither to the brand's organization nor to one of its fulfillers.
    #[error("warehouse {index} may not serve this brand")]
    Ineligible {
        /// Index in the request.
        index: usize,
    },
    /// Anything else.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for AllocationError {
    fn from(error: sqlx::Error) -> Self {
        AllocationError::Db(error.into())
    }
}

/// Creates a warehouse in an organization the caller belongs to, with its
/// event and audit row. A code the organization already uses is `Conflict`.
pub async fn create(db: &Db, scope: &Scope, new: NewWarehouse<'_>) -> DbResult<Warehouse> {
    scope.check_organization(new.organization_id)?;
    let now = Timestamp::now();
    let warehouse = Warehouse {
        id: WarehouseId::new(),
        organization_id: new.organization_id,
        name: new.name.to_owned(),
        code: canonical_code(new.code),
        created_at: now,
        updated_at: now,
    };
    let snapshot = serde_json::to_value(&warehouse).unwrap_or_default();
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO warehouses (id, organization_id, name, code, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(warehouse.id)
    .bind(warehouse.organization_id)
    .bind(warehouse.name.clone())
    .bind(warehouse.code.clone())
    .bind(now)
    .execute()
    .await?;
    tx.record_event(NewEvent {
        organization_id: warehouse.organization_id,
        brand_id: None,
        event_type: EventType::WarehouseCreated,
        aggregate_type: "warehouse",
        aggregate_id: warehouse.id.to_string(),
        payload: snapshot.clone(),
        actor: scope.principal().actor_id(),
    })
    .await?;
    tx.record_audit(AuditEntry {
        after: Some(snapshot),
        ..scope.audit(warehouse.organization_id, None, "warehouse.create", "warehouse", warehouse.id.to_string())
    })
    .await?;
    tx.commit().await?;
    Ok(warehouse)
}

/// The warehouses the caller sees, newest first: those of its
/// organizations and those serving brands it sees.
pub async fn list(db: &Db, scope: &Scope, filter: &WarehouseFilter, page: &PageRequest) -> DbResult<Page<Warehouse>> {
    let mut query = db.read(
        "SELECT w.id, w.organization_id, w.name, w.code, w.created_at, w.updated_at FROM warehouses w WHERE 1 = 1",
    );
    if !scope.grants().platform_admin {
        query.push(" AND (");
        query.push_in("w.organization_id", scope.grants().organizations.iter().map(|grant| grant.organization_id));
        query.push(" OR w.id IN (SELECT bw.warehouse_id FROM brand_warehouses bw WHERE 1 = 1");
        scope.push_brand_filter(&mut query, "bw.brand_id");
        query.push("))");
    }
    if let Some(code) = &filter.code {
        query.push(" AND w.code = ").push_bind(canonical_code(code));
    }
    if let Some(after) = &page.after {
        query.push(" AND w.id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY w.id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Warehouse> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |w| w.id.to_string()))
}

/// The warehouses serving a brand the caller sees, in allocation order.
pub async fn for_brand(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<BrandWarehouse>> {
    scope.check_brand(brand_id)?;
    db.read(
        "SELECT bw.warehouse_id, w.organization_id, w.name, w.code, bw.priority
           FROM brand_warehouses bw JOIN warehouses w ON w.id = bw.warehouse_id
          WHERE bw.brand_id = $1 ORDER BY bw.priority, bw.warehouse_id",
    )
    .bind(brand_id)
    .fetch_all()
    .await
}

/// The 3PL organizations that fulfil for a brand the caller sees.
pub async fn fulfillers(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<OrganizationId>> {
    scope.check_brand(brand_id)?;
    db.read("SELECT organization_id FROM brand_fulfillers WHERE brand_id = $1 ORDER BY organization_id")
        .bind(brand_id)
        .scalars()
        .await
}

/// Replaces the brand's warehouses and their priorities, in one
/// transaction with its event and audit row. Every warehouse must belong
/// to the brand's organization or to one of its fulfillers, else
/// [`AllocationError::Ineligible`] names the first one that does not. The
/// caller checks duplicates and the policy; the link rows belong to the
/// brand's organization.
pub async fn set_for_brand(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    allocation: &[Allocation],
) -> Result<Vec<BrandWarehouse>, AllocationError> {
    let brand = brands::get(db, scope, brand_id).await?;
    let before = for_brand(db, scope, brand_id).await?;
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    if !allocation.is_empty() {
        let mut query = tx.query("SELECT w.id FROM warehouses w WHERE ");
        query.push_in("w.id", allocation.iter().map(|entry| entry.warehouse_id));
        query.push(" AND (w.organization_id = ").push_bind(brand.organization_id);
        query.push(" OR w.organization_id IN (SELECT f.organization_id FROM brand_fulfillers f WHERE f.brand_id = ");
        query.push_bind(brand_id).push("))");
        let eligible: HashSet<WarehouseId> = query.scalars().await?.into_iter().collect();
        if let Some(index) = allocation.iter().position(|entry| !eligible.contains(&entry.warehouse_id)) {
            return Err(AllocationError::Ineligible { index });
        }
    }
    tx.query("DELETE FROM brand_warehouses WHERE brand_id = $1").bind(brand_id).execute().await?;
    for entry in allocation {
        tx.query(
            "INSERT INTO brand_warehouses (organization_id, brand_id, warehouse_id, priority, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(brand.organization_id)
        .bind(brand_id)
        .bind(entry.warehouse_id)
        .bind(entry.priority)
        .bind(now)
        .execute()
        .await?;
    }
    let after: Vec<serde_json::Value> =
        allocation.iter().map(|a| json!({"warehouse_id": a.warehouse_id, "priority": a.priority})).collect();
    let before = serde_json::to_value(&before).unwrap_or_default();
    tx.record_event(NewEvent {
        organization_id: brand.organization_id,
        brand_id: Some(brand_id),
        event_type: EventType::BrandWarehousesUpdated,
        aggregate_type: "brand",
        aggregate_id: brand_id.to_string(),
        payload: json!({"warehouses": after}),
        actor: scope.principal().actor_id(),
    })
    .await?;
    tx.record_audit(AuditEntry {
        before: Some(before),
        after: Some(json!(after)),
        ..scope.audit(brand.organization_id, Some(brand_id), "brand.set_warehouses", "brand", brand_id.to_string())
    })
    .await?;
    tx.commit().await?;
    Ok(for_brand(db, scope, brand_id).await?)
}
