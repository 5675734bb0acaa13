//! Users, organizations and organization memberships.
//!
//! Users are global (one login across tenants); what they may see comes from
//! their memberships, turned into a [`Scope`] by [`scope_for_session`].

use crate::{Db, DbError, DbResult, Page, PageRequest, Scope, Tx};
use consign_domain::roles::{OrgRole, OrganizationKind};
use consign_domain::{EventType, OrganizationId, SessionId, Timestamp, UserId};
use serde::Serialize;

/// A user as shown to itself and to admins. Never carries the password hash.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Login email, lowercased.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Sees every tenant.
    pub platform_admin: bool,
    /// When created.
    pub created_at: Timestamp,
}

/// An organization.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Organization {
    /// Id.
    pub id: OrganizationId,
    /// Name.
    pub name: String,
    /// `threepl` or `merchant`.
    pub kind: OrganizationKind,
    /// When created.
    pub created_at: Timestamp,
}

/// What login needs to check a password.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Credentials {
    /// The user.
    pub id: UserId,
    /// The argon2id PHC string.
    pub password_hash: String,
}

/// A new user with a new organization it administers (signup).
pub struct NewSignup<'a> {
    /// Lowercased email.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// argon2id PHC string.
    pub password_hash: &'a str,
    /// The organization's name.
    pub organization_name: &'a str,
    /// The organization's kind.
    pub organization_kind: OrganizationKind,
}

/// Inserts a `User` row in the caller's transaction.
async fn insert_user(tx: &mut Tx, user: &User, password_hash: &str) -> DbResult<()> {
    tx.query(
        "INSERT INTO users (id, email, name, password_hash, platform_admin, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(user.id.to_string())
    .bind(user.email.clone())
    .bind(user.name.clone())
    .bind(password_hash.to_owned())
    .bind(user.platform_admin)
    .bind(user.created_at.as_micros())
    .execute()
    .await?;
    Ok(())
}

/// Creates the user, its organization and its `org_admin` membership in one
/// transaction. A taken email is `Conflict`.
pub async fn sign_up(db: &Db, signup: NewSignup<'_>) -> DbResult<(User, Organization)> {
    let now = Timestamp::now();
    let user = User {
        id: UserId::new(),
        email: signup.email.to_owned(),
        name: signup.name.to_owned(),
        platform_admin: false,
        created_at: now,
    };
    let organization = Organization {
        id: OrganizationId::new(),
        name: signup.organization_name.to_owned(),
        kind: signup.organization_kind,
        created_at: now,
    };
    let mut tx = db.begin().await?;
    insert_user(&mut tx, &user, signup.password_hash).await?;
    tx.query("INSERT INTO organizations (id, name, kind, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
        .bind(organization.id.to_string())
        .bind(&organization.name)
        .bind(organization.kind.as_str())
        .bind(now.as_micros())
        .execute()
        .await?;
    tx.query("INSERT INTO org_memberships (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(organization.id.to_string())
        .bind(user.id.to_string())
        .bind(OrgRole::OrgAdmin.as_str())
        .bind(now.as_micros())
        .execute()
        .await?;
    tx.record_audit(crate::AuditEntry {
        organization_id: organization.id,
        brand_id: None,
        actor_id: user.id.to_string(),
        action: "organization.sign_up",
        entity_type: "organization",
        entity_id: organization.id.to_string(),
        before: None,
        after: serde_json::to_value(&organization).ok(),
        ip: None,
        user_agent: None,
    })
    .await?;
    tx.commit().await?;
    Ok((user, organization))
}

/// Creates a user with no memberships (a platform admin, or a member added
/// to a brand). A taken email is `Conflict`.
pub async fn create(db: &Db, email: &str, name: &str, password_hash: &str, platform_admin: bool) -> DbResult<User> {
    let user = User {
        id: UserId::new(),
        email: email.to_owned(),
        name: name.to_owned(),
        platform_admin,
        created_at: Timestamp::now(),
    };
    let mut tx = db.begin().await?;
    insert_user(&mut tx, &user, password_hash).await?;
    tx.commit().await?;
    Ok(user)
}

/// The password hash for a login email, if such a user exists.
pub async fn credentials_by_email(db: &Db, email: &str) -> DbResult<Option<Credentials>> {
    db.read("SELECT id, password_hash FROM users WHERE email = $1").bind(email.to_owned()).fetch_optional().await
}

/// A user by id.
pub async fn get(db: &Db, user_id: UserId) -> DbResult<User> {
    const SQL: &str = "SELECT id, email, name, platform_admin, created_at FROM users WHERE id = $1";
    db.read(SQL).bind(user_id.to_string()).fetch_one().await
}

/// A user by email.
pub async fn get_by_email(db: &Db, email: &str) -> DbResult<Option<User>> {
    const SQL: &str = "SELECT id, email, name, platform_admin, created_at FROM users WHERE email = $1";
    db.read(SQL).bind(email.to_owned()).fetch_optional().await
}

/// Replaces a user's password hash and ends every session it has.
pub async fn set_password(db: &Db, user_id: UserId, password_hash: &str) -> DbResult<()> {
    if replace_password(db, user_id, None, password_hash).await? { Ok(()) } else { Err(DbError::NotFound) }
}

/// Replaces a user's password hash, only while it is still `expected`
/// when given (a reset link is spent once, even by two racing requests),
/// and ends every session it has. Answers whether it was replaced.
pub async fn replace_password(db: &Db, user_id: UserId, expected: Option<&str>, password_hash: &str) -> DbResult<bool> {
    let now = Timestamp::now().as_micros();
    let mut tx = db.begin().await?;
    let updated = tx
        .query(
            "UPDATE users SET password_hash = $1, updated_at = $2
              WHERE id = $3 AND ($4 IS NULL OR password_hash = $4)",
        )
        .bind(password_hash.to_owned())
        .bind(now)
        .bind(user_id.to_string())
        .bind(expected.map(str::to_owned))
        .execute()
        .await?;
    if updated == 0 {
        return Ok(false);
    }
    tx.query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(user_id.to_string())
        .execute()
        .await?;
    // Live sockets of every session end too, on every instance.
    let revoked = crate::access::AccessRevoked { user_id: Some(user_id), ..Default::default() };
    crate::access::record_revoked_of_user(&mut tx, user_id, revoked).await?;
    tx.commit().await?;
    Ok(true)
}

/// A user's email, name and password hash, for the password reset email
/// and its link. System-level.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ResetSubject {
    /// The user.
    pub id: UserId,
    /// Where the link goes.
    pub email: String,
    /// Whom the email greets.
    pub name: String,
    /// The argon2id PHC string the link is bound to.
    pub password_hash: String,
}

/// The [`ResetSubject`] of a user id, if it exists.
pub async fn reset_subject(db: &Db, user_id: UserId) -> DbResult<Option<ResetSubject>> {
    db.read("SELECT id, email, name, password_hash FROM users WHERE id = $1")
        .bind(user_id.to_string())
        .fetch_optional()
        .await
}

/// The people behind `actors` (the `actor` of events and stock movements),
/// by actor: a user's name, or an API key's as `API key "name"`. Actors
/// that are neither (`system`, `customer`) or no longer exist are left
/// out. System-level: the caller passes actors of rows it was allowed to
/// read.
pub async fn actor_names(db: &Db, actors: &[String]) -> DbResult<std::collections::HashMap<String, String>> {
    let mut names = std::collections::HashMap::new();
    let ids: std::collections::BTreeSet<&String> =
        actors.iter().filter(|a| a.as_str() != "system" && a.as_str() != "customer").collect();
    if ids.is_empty() {
        return Ok(names);
    }
    let mut query = db.read("SELECT id, name FROM users WHERE ");
    query.push_in("id", ids.iter().map(|id| (*id).clone()));
    let people: Vec<(String, String)> = query.fetch_all().await?;
    names.extend(people);
    let keys: Vec<String> = ids.into_iter().filter(|id| !names.contains_key(id.as_str())).cloned().collect();
    if !keys.is_empty() {
        let mut query = db.read("SELECT id, name FROM api_keys WHERE ");
        query.push_in("id", keys);
        let found: Vec<(String, String)> = query.fetch_all().await?;
        names.extend(found.into_iter().map(|(id, name)| (id, format!("API key \"{name}\""))));
    }
    Ok(names)
}

/// Makes an existing user a platform admin.
pub async fn grant_platform_admin(db: &Db, user_id: UserId) -> DbResult<()> {
    let mut tx = db.begin().await?;
    tx.query("UPDATE users SET platform_admin = TRUE WHERE id = $1").bind(user_id.to_string()).execute().await?;
    tx.commit().await?;
    Ok(())
}

/// The organizations a user belongs to, with its role in each.
pub async fn organizations_of(db: &Db, user_id: UserId) -> DbResult<Vec<(Organization, OrgRole)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        organization: Organization,
        role: OrgRole,
    }
    let rows: Vec<Row> = db
        .read(
            "SELECT o.id, o.name, o.kind, o.created_at, m.role
               FROM org_memberships m JOIN organizations o ON o.id = m.organization_id
              WHERE m.user_id = $1 ORDER BY o.id",
        )
        .bind(user_id.to_string())
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(|r| (r.organization, r.role)).collect())
}

/// The scope of a live session: fails with `NotFound` when the user is gone
/// or the session was revoked (logout, refresh-token reuse, password reset).
pub async fn scope_for_session(db: &Db, user_id: UserId, session_id: SessionId) -> DbResult<Scope> {
    #[derive(sqlx::FromRow)]
    struct Row {
        platform_admin: bool,
    }
    let row: Option<Row> = db
        .read(
            "SELECT u.platform_admin FROM users u JOIN sessions s ON s.user_id = u.id
              WHERE u.id = $1 AND s.id = $2 AND s.revoked_at IS NULL",
        )
        .bind(user_id.to_string())
        .bind(session_id.to_string())
        .fetch_optional()
        .await?;
    let row = row.ok_or(DbError::NotFound)?;
    Scope::for_user(db, user_id, session_id, row.platform_admin).await
}

/// How many users exist (to tell an empty installation).
pub async fn count(db: &Db) -> DbResult<i64> {
    db.read("SELECT COUNT(*) FROM users").scalar().await
}

/// A member of an organization as listed.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrgMember {
    /// The user.
    pub user_id: UserId,
    /// Their email.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Their role in the organization.
    pub role: OrgRole,
    /// When they joined.
    pub created_at: Timestamp,
}

const ORG_MEMBER_SQL: &str = "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
    FROM org_memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = ";

/// An organization's members, by user id.
pub async fn list_org_members(
    db: &Db,
    scope: &Scope,
    organization_id: OrganizationId,
    page: &PageRequest,
) -> DbResult<Page<OrgMember>> {
    scope.check_organization(organization_id)?;
    let mut query = db.read(ORG_MEMBER_SQL);
    query.push_bind(organization_id.to_string());
    if let Some(after) = &page.after {
        query.push(" AND m.user_id > ").push_bind(after.clone());
    }
    query.push(" ORDER BY m.user_id LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<OrgMember> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |m| m.user_id.to_string()))
}

/// One member of an organization.
pub async fn get_org_member(
    db: &Db,
    scope: &Scope,
    organization_id: OrganizationId,
    user_id: UserId,
) -> DbResult<OrgMember> {
    scope.check_organization(organization_id)?;
    let mut query = db.read(ORG_MEMBER_SQL);
    query.push_bind(organization_id.to_string()).push(" AND m.user_id = ").push_bind(user_id.to_string());
    query.fetch_optional().await?.ok_or(DbError::NotFound)
}

/// What refuses a change to the last org admin of an organization.
pub const LAST_ORG_ADMIN: &str = "last_org_admin";

/// The event that tells the live hub to close a user's sockets: its access
/// shrank (a role change, a removal, an unlinked 3PL), and a reconnect gets
/// the new scope.
pub(crate) fn access_revoked(
    scope: &Scope,
    organization_id: OrganizationId,
    brand_id: Option<consign_domain::BrandId>,
    user_id: UserId,
) -> crate::NewEvent {
    crate::NewEvent {
        organization_id,
        brand_id,
        event_type: EventType::AccessRevoked,
        aggregate_type: "user",
        aggregate_id: user_id.to_string(),
        payload: serde_json::json!({"user_id": user_id}),
        actor: scope.principal().actor_id(),
    }
}

/// Changes a member's role. Demoting the last org admin is
/// `Conflict { constraint: LAST_ORG_ADMIN }`; a user who is no member is
/// `NotFound`. A change records `access.revoked` for the user.
pub async fn set_org_role(
    db: &Db,
    scope: &Scope,
    organization_id: OrganizationId,
    user_id: UserId,
    role: OrgRole,
) -> DbResult<OrgMember> {
    let before = get_org_member(db, scope, organization_id, user_id).await?;
    let mut tx = db.begin().await?;
    // Changes to one organization's memberships queue behind its row,
    // so two admins demoting each other cannot both pass the check.
    let lock = format!("SELECT id FROM organizations WHERE id = $1{}", tx.lock_clause());
    tx.query_built(lock).bind(organization_id.to_string()).execute().await?;
    let current: OrgRole = tx
        .query("SELECT role FROM org_memberships WHERE organization_id = $1 AND user_id = $2")
        .bind(organization_id.to_string())
        .bind(user_id.to_string())
        .scalar_optional()
        .await?
        .ok_or(DbError::NotFound)?;
    if current == OrgRole::OrgAdmin && role != OrgRole::OrgAdmin {
        let admins: i64 = tx
            .query("SELECT COUNT(*) FROM org_memberships WHERE organization_id = $1 AND role = 'org_admin'")
            .bind(organization_id.to_string())
            .scalar()
            .await?;
        if admins <= 1 {
            return Err(DbError::Conflict { constraint: LAST_ORG_ADMIN.into() });
        }
    }
    if current != role {
        tx.query("UPDATE org_memberships SET role = $1 WHERE organization_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(organization_id.to_string())
            .bind(user_id.to_string())
            .execute()
            .await?;
        let mut audit =
            scope.audit(organization_id, None, "organization.member_role_change", "user", user_id.to_string());
        audit.before = Some(serde_json::json!({"role": current}));
        audit.after = Some(serde_json::json!({"role": role}));
        tx.record_audit(audit).await?;
        tx.record_event(access_revoked(scope, organization_id, None, user_id)).await?;
    }
    tx.commit().await?;
    Ok(OrgMember { role, ..before })
}

/// Removes a member from an organization, with every brand membership it
/// has in the organization's brands. Removing the last org admin is
/// `Conflict { constraint: LAST_ORG_ADMIN }`. Records `access.revoked`, and
/// ends the user's sessions when nothing else gives it access to the
/// organization.
pub async fn remove_org_member(
    db: &Db,
    scope: &Scope,
    organization_id: OrganizationId,
    user_id: UserId,
) -> DbResult<()> {
    let before = get_org_member(db, scope, organization_id, user_id).await?;
    let now = Timestamp::now().as_micros();
    let mut tx = db.begin().await?;
    // Changes to one organization's memberships queue behind its row,
    // so two admins demoting each other cannot both pass the check.
    let lock = format!("SELECT id FROM organizations WHERE id = $1{}", tx.lock_clause());
    tx.query_built(lock).bind(organization_id.to_string()).execute().await?;
    let current: OrgRole = tx
        .query("SELECT role FROM org_memberships WHERE organization_id = $1 AND user_id = $2")
        .bind(organization_id.to_string())
        .bind(user_id.to_string())
        .scalar_optional()
        .await?
        .ok_or(DbError::NotFound)?;
    if current == OrgRole::OrgAdmin {
        let admins: i64 = tx
            .query("SELECT COUNT(*) FROM org_memberships WHERE organization_id = $1 AND role = 'org_admin'")
            .bind(organization_id.to_string())
            .scalar()
            .await?;
        if admins <= 1 {
            return Err(DbError::Conflict { constraint: LAST_ORG_ADMIN.into() });
        }
    }
    tx.query("DELETE FROM org_memberships WHERE organization_id = $1 AND user_id = $2")
        .bind(organization_id.to_string())
        .bind(user_id.to_string())
        .execute()
        .await?;
    tx.query("DELETE FROM brand_memberships WHERE organization_id = $1 AND user_id = $2")
        .bind(organization_id.to_string())
        .bind(user_id.to_string())
        .execute()
        .await?;
    let mut audit = scope.audit(organization_id, None, "organization.member_remove", "user", user_id.to_string());
    audit.before = serde_json::to_value(&before).ok();
    tx.record_audit(audit).await?;
    tx.record_event(access_revoked(scope, organization_id, None, user_id)).await?;
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
