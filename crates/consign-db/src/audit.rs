//! Reading the audit log. Rows are written by [`crate::Tx::record_audit`]
//! in the transaction of the mutation they describe.

use consign_domain::policy::BrandAccess;
use consign_domain::roles::OrgRole;
use consign_domain::{AuditId, BrandId, OrganizationId, Timestamp};
use serde::Serialize;

use crate::{Db, DbResult, JsonText, Page, PageRequest, Scope};

/// One audited mutation.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Id.
    pub id: AuditId,
    /// Organization.
    pub organization_id: OrganizationId,
    /// Brand, if any.
    pub brand_id: Option<BrandId>,
    /// Who (user id, API key id, `customer` or `system`).
    pub actor_id: String,
    /// Such as `order.cancel`.
    pub action: String,
    /// Such as `order`.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// State before.
    #[sqlx(rename = "before_state")]
    pub before: Option<JsonText>,
    /// State after.
    #[sqlx(rename = "after_state")]
    pub after: Option<JsonText>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// Filters of `GET /audit-log`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// One entity.
    pub entity_id: Option<String>,
    /// One actor.
    pub actor_id: Option<String>,
}

/// Audit rows the caller administers (org admins: their organizations';
/// brand admins: their brands'), newest first.
pub async fn list(db: &Db, scope: &Scope, filter: &AuditFilter, page: &PageRequest) -> DbResult<Page<AuditRecord>> {
    let grants = scope.grants();
    let organizations: Vec<OrganizationId> =
        grants.organizations.iter().filter(|g| g.role == OrgRole::OrgAdmin).map(|g| g.organization_id).collect();
    let brands: Vec<BrandId> =
        grants.brands.iter().filter(|g| g.access == BrandAccess::Admin).map(|g| g.brand_id).collect();
    let mut query = db.read(
        "SELECT id, organization_id, brand_id, actor_id, action, entity_type, entity_id, before_state,
                after_state, ip, user_agent, created_at FROM audit_log WHERE 1 = 1",
    );
    if !grants.platform_admin {
        query.push(" AND (1 = 0");
        if !organizations.is_empty() {
            query.push(" OR ").push_in("organization_id", organizations.iter().copied());
        }
        if !brands.is_empty() {
            query.push(" OR ").push_in("brand_id", brands.iter().copied());
        }
        query.push(")");
    }
    if let Some(entity_id) = &filter.entity_id {
        query.push(" AND entity_id = ").push_bind(entity_id.clone());
    }
    if let Some(actor_id) = &filter.actor_id {
        query.push(" AND actor_id = ").push_bind(actor_id.clone());
    }
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<AuditRecord> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |r| r.id.to_string()))
}
