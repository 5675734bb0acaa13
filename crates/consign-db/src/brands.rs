//! Brands (stores), their members and their fulfilment partners, the staff
//! who can see a brand, and each brand's look on its customer pages
//! (`themes.rs`).

use crate::{Db, DbError, DbResult, Page, PageRequest, Scope};
use consign_domain::roles::{BrandRole, OrganizationKind};
use consign_domain::{BrandId, OrganizationId, Timestamp, UserId};
use serde::Serialize;

mod themes;

pub use themes::{BrandTheme, set_theme, theme};

/// A brand.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Brand {
    /// Id.
    pub id: BrandId,
    /// The owning organization.
    pub organization_id: OrganizationId,
    /// Display name.
    pub name: String,
    /// URL name, unique across the installation.
    pub slug: String,
    /// ISO 4217 currency of its prices.
    pub currency: String,
    /// How long checkout holds stock for an unpaid order paid through a
    /// card provider (Stripe, Razorpay, PayPal).
    pub reservation_ttl_seconds: i64,
    /// How long checkout holds stock for an unpaid order paid by bank
    /// transfer (`manual`): days, since a transfer takes that long.
    pub manual_reservation_ttl_seconds: i64,
    /// What a customer paying by bank transfer needs (account holder,
    /// account or IBAN, bank), shown in the payment instructions.
    pub bank_details: Option<String>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When created.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// How long a bank-transfer order holds its stock unless the brand says
/// otherwise: three days (the column's default).
pub const DEFAULT_MANUAL_RESERVATION_TTL_SECONDS: i64 = 3 * 24 * 60 * 60;

const BRAND_COLUMNS: &str = "id, organization_id, name, slug, currency, reservation_ttl_seconds, manual_reservation_ttl_seconds, bank_details, version, created_at, updated_at";

/// A new brand.
pub struct NewBrand<'a> {
    /// The organization that will own it.
    pub organization_id: OrganizationId,
    /// Name.
    pub name: &'a str,
    /// Slug.
    pub slug: &'a str,
    /// Currency.
    pub currency: &'a str,
}

/// Changes to a brand; `None` leaves a field as it is.
#[derive(Default)]
pub struct BrandChanges<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New currency.
    pub currency: Option<&'a str>,
    /// New reservation TTL.
    pub reservation_ttl_seconds: Option<i64>,
    /// New reservation TTL for bank transfers.
    pub manual_reservation_ttl_seconds: Option<i64>,
    /// The bank transfer details; `Some("")` removes them.
    pub bank_details: Option<&'a str>,
}

/// Creates a brand in an organization the caller belongs to. A taken slug
/// is `Conflict`.
pub async fn create(db: &Db, scope: &Scope, brand: NewBrand<'_>) -> DbResult<Brand> {
    scope.check_organization(brand.organization_id)?;
    let now = Timestamp::now();
    let brand = Brand {
        id: BrandId::new(),
        organization_id: brand.organization_id,
        name: brand.name.to_owned(),
        slug: brand.slug.to_owned(),
        currency: brand.currency.to_owned(),
        reservation_ttl_seconds: 900,
        manual_reservation_ttl_seconds: DEFAULT_MANUAL_RESERVATION_TTL_SECONDS,
        bank_details: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO brands (id, organization_id, name, slug, currency, reservation_ttl_seconds, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
    )
    .bind(brand.id.to_string())
    .bind(brand.organization_id.to_string())
    .bind(brand.name.clone())
    .bind(brand.slug.clone())
    .bind(brand.currency.clone())
    .bind(brand.reservation_ttl_seconds)
    .bind(now.as_micros())
    .execute()
    .await?;
    let mut audit = scope.audit(brand.organization_id, Some(brand.id), "brand.create", "brand", brand.id.to_string());
    audit.after = serde_json::to_value(&brand).ok();
    tx.record_audit(audit).await?;
    tx.commit().await?;
    Ok(brand)
}

/// The brands the caller sees, newest first.
pub async fn list(db: &Db, scope: &Scope, page: &PageRequest) -> DbResult<Page<Brand>> {
    let mut query = db.read_built(format!("SELECT {BRAND_COLUMNS} FROM brands WHERE 1 = 1"));
    scope.push_brand_filter(&mut query, "id");
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Brand> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |b| b.id.to_string()))
}

/// One brand the caller sees.
pub async fn get(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Brand> {
    scope.check_brand(brand_id)?;
    db.read_built(format!("SELECT {BRAND_COLUMNS} FROM brands WHERE id = $1"))
        .bind(brand_id.to_string())
        .fetch_one()
        .await
}

/// Applies changes when the brand is at `expected_version` (if given).
/// A stale version is `VersionMismatch`.
pub async fn update(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    changes: BrandChanges<'_>,
    expected_version: Option<i64>,
) -> DbResult<Brand> {
    let current = get(db, scope, brand_id).await?;
    if expected_version.is_some_and(|v| v != current.version) {
        return Err(DbError::VersionMismatch);
    }
    let sql = format!(
        "UPDATE brands SET name = $1, currency = $2, reservation_ttl_seconds = $3,
                           manual_reservation_ttl_seconds = $7, bank_details = $8, version = version + 1, updated_at = $4
          WHERE id = $5 AND version = $6
      RETURNING {BRAND_COLUMNS}"
    );
    let bank_details = match changes.bank_details {
        Some(text) => Some(text.trim()).filter(|text| !text.is_empty()).map(str::to_owned),
        None => current.bank_details.clone(),
    };
    let mut tx = db.begin().await?;
    let updated: Option<Brand> = tx
        .query_built(sql)
        .bind(changes.name.unwrap_or(&current.name).to_owned())
        .bind(changes.currency.unwrap_or(&current.currency).to_owned())
        .bind(changes.reservation_ttl_seconds.unwrap_or(current.reservation_ttl_seconds))
        .bind(Timestamp::now().as_micros())
        .bind(brand_id.to_string())
        .bind(current.version)
        .bind(changes.manual_reservation_ttl_seconds.unwrap_or(current.manual_reservation_ttl_seconds))
        .bind(bank_details)
        .fetch_optional()
        .await?;
    if let Some(brand) = &updated {
        let mut audit =
            scope.audit(brand.organization_id, Some(brand.id), "brand.update", "brand", brand.id.to_string());
        audit.before = serde_json::to_value(&current).ok();
        audit.after = serde_json::to_value(brand).ok();
        tx.record_audit(audit).await?;
    }
    tx.commit().await?;
    // Nothing updated means someone else changed it between our read and
    // our write: the caller's view is stale either way.
    updated.ok_or(DbError::VersionMismatch)
}

/// A brand membership as listed.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BrandMember {
    /// The user.
    pub user_id: UserId,
    /// Their email.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Their role in the brand.
    pub role: BrandRole,
    /// When added.
    pub created_at: Timestamp,
}

/// A brand's members, all of them (the settings page).
pub async fn list_members(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<BrandMember>> {
    scope.check_brand(brand_id)?;
    db.read(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
           FROM brand_memberships m JOIN users u ON u.id = m.user_id
          WHERE m.brand_id = $1 ORDER BY m.created_at, u.id",
    )
    .bind(brand_id.to_string())
    .fetch_all()
    .await
}

/// A staff member a thread can be assigned to.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StaffMember {
    /// The user.
    pub id: UserId,
    /// Their name.
    pub name: String,
    /// Their email.
    pub email: String,
}

/// The staff who can see a brand (its members, its organization's members
/// and those of the 3PLs fulfilling for it): the choices of the order
/// page's "assign" form, the same people `messages::threads::assign`
/// accepts.
pub async fn staff_of_brand(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<StaffMember>> {
    scope.check_brand(brand_id)?;
    db.read(
        "SELECT u.id, u.name, u.email FROM users u WHERE u.id IN (
             SELECT user_id FROM brand_memberships WHERE brand_id = $1
             UNION SELECT m.user_id FROM org_memberships m JOIN brands b ON b.organization_id = m.organization_id
              WHERE b.id = $1
             UNION SELECT m.user_id FROM org_memberships m JOIN brand_fulfillers f ON f.organization_id = m.organization_id
              WHERE f.brand_id = $1)
         ORDER BY u.name, u.email LIMIT 200",
    )
    .bind(brand_id)
    .fetch_all()
    .await
}

/// Lets a 3PL organization fulfil for the brand. Answers `NotFound` when
/// the organization does not exist and `Conflict` when it is no 3PL.
pub async fn add_fulfiller(db: &Db, scope: &Scope, brand_id: BrandId, threepl: OrganizationId) -> DbResult<()> {
    scope.check_brand(brand_id)?;
    let kind: Option<String> =
        db.read("SELECT kind FROM organizations WHERE id = $1").bind(threepl.to_string()).scalar_optional().await?;
    match kind.as_deref().map(str::parse::<OrganizationKind>) {
        None => return Err(DbError::NotFound),
        Some(Ok(OrganizationKind::Threepl)) => {}
        Some(_) => return Err(DbError::Conflict { constraint: "organization_kind".into() }),
    }
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO brand_fulfillers (organization_id, brand_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (brand_id, organization_id) DO NOTHING",
    )
    .bind(threepl.to_string())
    .bind(brand_id.to_string())
    .bind(Timestamp::now().as_micros())
    .execute()
    .await?;
    let owner: OrganizationId =
        tx.query("SELECT organization_id FROM brands WHERE id = $1").bind(brand_id).scalar().await?;
    let mut audit = scope.audit(owner, Some(brand_id), "brand.add_fulfiller", "organization", threepl.to_string());
    audit.after = Some(serde_json::json!({"fulfiller": threepl}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    Ok(())
}

/// A page of a brand's members, by user id.
pub async fn list_members_page(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    page: &PageRequest,
) -> DbResult<Page<BrandMember>> {
    scope.check_brand(brand_id)?;
    let mut query = db.read(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
           FROM brand_memberships m JOIN users u ON u.id = m.user_id WHERE m.brand_id = ",
    );
    query.push_bind(brand_id.to_string());
    if let Some(after) = &page.after {
        query.push(" AND m.user_id > ").push_bind(after.clone());
    }
    query.push(" ORDER BY m.user_id LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<BrandMember> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |m| m.user_id.to_string()))
}

async fn get_member(db: &Db, scope: &Scope, brand_id: BrandId, user_id: UserId) -> DbResult<BrandMember> {
    list_members(db, scope, brand_id).await?.into_iter().find(|m| m.user_id == user_id).ok_or(DbError::NotFound)
}

/// Changes a brand member's role (`NotFound` for a user who is no member).
/// A change records `access.revoked` for the user, so its live sockets
/// reconnect with the new scope.
pub async fn set_member_role(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    user_id: UserId,
    role: BrandRole,
) -> DbResult<BrandMember> {
    let before = get_member(db, scope, brand_id, user_id).await?;
    let organization_id = get(db, scope, brand_id).await?.organization_id;
    if before.role != role {
        let mut tx = db.begin().await?;
        let changed = tx
            .query("UPDATE brand_memberships SET role = $1 WHERE brand_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(brand_id.to_string())
            .bind(user_id.to_string())
            .execute()
            .await?;
        if changed == 0 {
            return Err(DbError::NotFound);
        }
        let mut audit =
            scope.audit(organization_id, Some(brand_id), "brand.member_role_change", "user", user_id.to_string());
        audit.before = Some(serde_json::json!({"role": before.role}));
        audit.after = Some(serde_json::json!({"role": role}));
        tx.record_audit(audit).await?;
        tx.record_event(crate::users::access_revoked(scope, organization_id, Some(brand_id), user_id)).await?;
        tx.commit().await?;
    }
    Ok(BrandMember { role, ..before })
}

/// Removes a brand member. Records `access.revoked`, and ends the user's
/// sessions when nothing else gives it access to the brand's organization.
pub async fn remove_member(db: &Db, scope: &Scope, brand_id: BrandId, user_id: UserId) -> DbResult<()> {
    let before = get_member(db, scope, brand_id, user_id).await?;
    let organization_id = get(db, scope, brand_id).await?.organization_id;
    let now = Timestamp::now().as_micros();
    let mut tx = db.begin().await?;
    let removed = tx
        .query("DELETE FROM brand_memberships WHERE brand_id = $1 AND user_id = $2")
        .bind(brand_id.to_string())
        .bind(user_id.to_string())
        .execute()
        .await?;
    if removed == 0 {
        return Err(DbError::NotFound);
    }
    let mut audit = scope.audit(organization_id, Some(brand_id), "brand.member_remove", "user", user_id.to_string());
    audit.before = serde_json::to_value(&before).ok();
    tx.record_audit(audit).await?;
    tx.record_event(crate::users::access_revoked(scope, organization_id, Some(brand_id), user_id)).await?;
    let remaining: i64 = tx
        .query(crate::sessions::REMAINING_ACCESS_SQL)
        .bind(user_id.to_string())
        .bind(organization_id.to_string())
        .scalar()
        .await?;
    if remaining == 0 {
        tx.query(crate::sessions::REVOKE_ALL_OF_USER_SQL).bind(now).bind(user_id.to_string()).execute().await?;
        tx.query(crate::sessions::DELETE_PAGE_SESSIONS_OF_USER_SQL).bind(user_id.to_string()).execute().await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A 3PL organization linked to a brand.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Fulfiller {
    /// The 3PL organization.
    pub organization_id: OrganizationId,
    /// Its name.
    pub name: String,
    /// When it was linked.
    pub created_at: Timestamp,
}

/// The 3PL organizations that fulfil for a brand, by organization id.
pub async fn list_fulfillers(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    page: &PageRequest,
) -> DbResult<Page<Fulfiller>> {
    scope.check_brand(brand_id)?;
    let mut query = db.read(
        "SELECT f.organization_id, o.name, f.created_at
           FROM brand_fulfillers f JOIN organizations o ON o.id = f.organization_id WHERE f.brand_id = ",
    );
    query.push_bind(brand_id.to_string());
    if let Some(after) = &page.after {
        query.push(" AND f.organization_id > ").push_bind(after.clone());
    }
    query.push(" ORDER BY f.organization_id LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Fulfiller> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |f| f.organization_id.to_string()))
}

/// Unlinks a 3PL from a brand (`NotFound` when it is not linked): its staff
/// stop seeing the brand at their next request. Each of them gets an
/// `access.revoked` event, so their live sockets reconnect with the smaller
/// scope; their sessions stay, since they still belong to their own
/// organization.
pub async fn remove_fulfiller(db: &Db, scope: &Scope, brand_id: BrandId, threepl: OrganizationId) -> DbResult<()> {
    let owner = get(db, scope, brand_id).await?.organization_id;
    let mut tx = db.begin().await?;
    let removed = tx
        .query("DELETE FROM brand_fulfillers WHERE brand_id = $1 AND organization_id = $2")
        .bind(brand_id.to_string())
        .bind(threepl.to_string())
        .execute()
        .await?;
    if removed == 0 {
        return Err(DbError::NotFound);
    }
    let mut audit = scope.audit(owner, Some(brand_id), "brand.remove_fulfiller", "organization", threepl.to_string());
    audit.before = Some(serde_json::json!({"fulfiller": threepl}));
    tx.record_audit(audit).await?;
    let staff: Vec<UserId> = tx
        .query("SELECT user_id FROM org_memberships WHERE organization_id = $1")
        .bind(threepl.to_string())
        .scalars()
        .await?;
    for user_id in staff {
        tx.record_event(crate::users::access_revoked(scope, owner, Some(brand_id), user_id)).await?;
    }
    tx.commit().await?;
    Ok(())
}
