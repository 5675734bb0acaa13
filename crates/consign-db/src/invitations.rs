//! Invitations to join an organization or one of its brands.
//!
//! Inviting never reveals whether a user with the email exists: every
//! invitation is the same pending row with a one-time token (its SHA-256
//! is stored, the token itself is shown once to whoever invited). The
//! invitee accepts with the token: a new user is created then, an existing
//! one proves it is that user with its password (checked by the caller),
//! and the membership is added in the same transaction that spends the
//! invitation.

use crate::users::User;
use crate::{Db, DbError, DbResult, Page, PageRequest, Scope};
use consign_domain::roles::{BrandRole, OrgRole};
use consign_domain::{BrandId, InvitationId, OrganizationId, Timestamp, UserId};
use serde::Serialize;

/// How long an invitation can be accepted.
pub const INVITATION_TTL_SECONDS: i64 = 7 * 24 * 60 * 60;

/// An invitation as listed.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Invitation {
    /// Id.
    pub id: InvitationId,
    /// The organization the invitee joins (or whose brand it joins).
    pub organization_id: OrganizationId,
    /// The brand, for a brand invitation; `null` for the organization.
    pub brand_id: Option<BrandId>,
    /// Who is invited, lowercased.
    pub email: String,
    /// `org_admin`, `org_member` (organization) or `brand_admin`,
    /// `brand_member` (brand).
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    /// Who invited (a user id).
    pub invited_by: String,
    /// Until when it can be accepted.
    pub expires_at: Timestamp,
    /// When created.
    pub created_at: Timestamp,
}

const INVITATION_COLUMNS: &str = "id, organization_id, brand_id, email, role,
    CASE WHEN accepted_at IS NOT NULL THEN 'accepted'
         WHEN revoked_at IS NOT NULL THEN 'revoked'
         WHEN expires_at <= $1 THEN 'expired'
         ELSE 'pending' END AS status,
    invited_by, expires_at, created_at";

/// The role an invitation grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitedRole {
    /// A role over the whole organization.
    Organization(OrgRole),
    /// A role over one brand.
    Brand(BrandId, BrandRole),
}

/// A new invitation.
pub struct NewInvitation<'a> {
    /// Its id, chosen by the caller (the token is derived from it).
    pub id: InvitationId,
    /// The organization, or the owner of the brand of a brand role.
    pub organization_id: OrganizationId,
    /// What it grants.
    pub role: InvitedRole,
    /// Lowercased email.
    pub email: &'a str,
    /// SHA-256 of the token.
    pub token_hash: &'a str,
}

/// Records an invitation. The caller has checked the policy; the scope must
/// see the organization or the brand.
pub async fn create(db: &Db, scope: &Scope, invitation: NewInvitation<'_>) -> DbResult<Invitation> {
    let (brand_id, role) = match invitation.role {
        InvitedRole::Organization(role) => {
            scope.check_organization(invitation.organization_id)?;
            (None, role.as_str())
        }
        InvitedRole::Brand(brand_id, role) => {
            scope.check_brand(brand_id)?;
            (Some(brand_id), role.as_str())
        }
    };
    let now = Timestamp::now();
    let created = Invitation {
        id: invitation.id,
        organization_id: invitation.organization_id,
        brand_id,
        email: invitation.email.to_owned(),
        role: role.to_owned(),
        status: "pending".to_owned(),
        invited_by: scope.principal().actor_id(),
        expires_at: now.plus_seconds(INVITATION_TTL_SECONDS),
        created_at: now,
    };
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO invitations (id, organization_id, brand_id, email, role, token_hash, invited_by,
                                  expires_at, accepted_at, revoked_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)",
    )
    .bind(created.id)
    .bind(created.organization_id)
    .bind(created.brand_id)
    .bind(created.email.clone())
    .bind(created.role.clone())
    .bind(invitation.token_hash.to_owned())
    .bind(created.invited_by.clone())
    .bind(created.expires_at)
    .bind(now)
    .execute()
    .await?;
    let mut audit = scope.audit(
        created.organization_id,
        created.brand_id,
        "invitation.create",
        "invitation",
        created.id.to_string(),
    );
    audit.after = serde_json::to_value(&created).ok();
    tx.record_audit(audit).await?;
    tx.enqueue(&crate::jobs::kinds::EmailInvitation { invitation_id: created.id }).await?;
    tx.commit().await?;
    Ok(created)
}

/// The pending invitations of an organization (`brand_id` `None`) or of one
/// of its brands, newest first.
pub async fn list_pending(
    db: &Db,
    scope: &Scope,
    organization_id: OrganizationId,
    brand_id: Option<BrandId>,
    page: &PageRequest,
) -> DbResult<Page<Invitation>> {
    match brand_id {
        Some(brand_id) => scope.check_brand(brand_id)?,
        None => scope.check_organization(organization_id)?,
    }
    let now = Timestamp::now();
    // The column list's `$1` is the current time.
    let (head, tail) = INVITATION_COLUMNS.split_once("$1").unwrap_or((INVITATION_COLUMNS, ""));
    let mut query = db.read("SELECT ");
    query.push(head).push_bind(now).push(tail);
    query.push(" FROM invitations WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ");
    query.push_bind(now);
    query.push(" AND organization_id = ").push_bind(organization_id.to_string());
    match brand_id {
        Some(brand_id) => query.push(" AND brand_id = ").push_bind(brand_id.to_string()),
        None => query.push(" AND brand_id IS NULL"),
    };
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Invitation> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |i| i.id.to_string()))
}

/// One invitation the caller can see (through its organization or brand).
pub async fn get(db: &Db, scope: &Scope, invitation_id: InvitationId) -> DbResult<Invitation> {
    let invitation: Invitation = db
        .read_built(format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $2"))
        .bind(Timestamp::now())
        .bind(invitation_id)
        .fetch_optional()
        .await?
        .ok_or(DbError::NotFound)?;
    let visible = match invitation.brand_id {
        Some(brand_id) => scope.check_brand(brand_id),
        None => scope.check_organization(invitation.organization_id),
    };
    visible.map(|()| invitation)
}

/// Withdraws a pending invitation; its token stops working. `NotFound` when
/// it is not pending any more.
pub async fn revoke(db: &Db, scope: &Scope, invitation_id: InvitationId) -> DbResult<Invitation> {
    let mut invitation = get(db, scope, invitation_id).await?;
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let revoked = tx
        .query(
            "UPDATE invitations SET revoked_at = $1
              WHERE id = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(invitation_id)
        .execute()
        .await?;
    if revoked == 0 {
        return Err(DbError::NotFound);
    }
    let mut audit = scope.audit(
        invitation.organization_id,
        invitation.brand_id,
        "invitation.revoke",
        "invitation",
        invitation.id.to_string(),
    );
    audit.before = serde_json::to_value(&invitation).ok();
    tx.record_audit(audit).await?;
    tx.commit().await?;
    invitation.status = "revoked".to_owned();
    Ok(invitation)
}

/// The pending invitation a token names, if any. The token is the
/// credential here (like an order access token), so there is no scope.
pub async fn pending_by_token(db: &Db, token_hash: &str) -> DbResult<Option<Invitation>> {
    db.read_built(format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations
          WHERE token_hash = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1"
    ))
    .bind(Timestamp::now())
    .bind(token_hash.to_owned())
    .fetch_optional()
    .await
}

/// A pending invitation with the names an email about it needs.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InvitationNotice {
    /// Who is invited.
    pub email: String,
    /// The role, as stored.
    pub role: String,
    /// The organization's name.
    pub organization_name: String,
    /// The brand's name, for a brand invitation.
    pub brand_name: Option<String>,
    /// Who invited, by name (none for the system).
    pub invited_by_name: Option<String>,
    /// Until when it can be accepted.
    pub expires_at: Timestamp,
}

/// The invitation to email, while it is pending. System-level: for the job
/// that sends it.
pub async fn pending_notice(db: &Db, invitation_id: InvitationId) -> DbResult<Option<InvitationNotice>> {
    db.read(
        "SELECT i.email, i.role, o.name AS organization_name, b.name AS brand_name,
                u.name AS invited_by_name, i.expires_at
           FROM invitations i
           JOIN organizations o ON o.id = i.organization_id
           LEFT JOIN brands b ON b.id = i.brand_id
           LEFT JOIN users u ON u.id = i.invited_by
          WHERE i.id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2",
    )
    .bind(invitation_id)
    .bind(Timestamp::now())
    .fetch_optional()
    .await
}

/// Who accepts an invitation.
pub enum Invitee<'a> {
    /// A user that exists already (its password was checked by the caller).
    Existing(UserId),
    /// A new user, created with the invitation's email.
    New {
        /// Display name.
        name: &'a str,
        /// argon2id PHC string.
        password_hash: &'a str,
    },
}

/// Spends a pending invitation and adds the membership it grants (creating
/// the user first for [`Invitee::New`]), in one transaction. `NotFound` when
/// the token is unknown, spent, revoked or expired; `Conflict` when a new
/// user's email was taken meanwhile. A membership the user already has is
/// left as it is: roles change through their own route.
pub async fn accept(db: &Db, token_hash: &str, invitee: Invitee<'_>) -> DbResult<(User, Invitation)> {
    let now = Timestamp::now();
    let invitation = pending_by_token(db, token_hash).await?.ok_or(DbError::NotFound)?;
    let user_id = match &invitee {
        Invitee::Existing(user_id) => *user_id,
        Invitee::New { .. } => UserId::new(),
    };
    let mut tx = db.begin().await?;
    let spent = tx
        .query(
            "UPDATE invitations SET accepted_at = $1
              WHERE token_hash = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash.to_owned())
        .execute()
        .await?;
    if spent == 0 {
        return Err(DbError::NotFound);
    }
    if let Invitee::New { name, password_hash } = &invitee {
        tx.query(
            "INSERT INTO users (id, email, name, password_hash, platform_admin, created_at, updated_at)
             VALUES ($1, $2, $3, $4, FALSE, $5, $5)",
        )
        .bind(user_id)
        .bind(invitation.email.clone())
        .bind((*name).to_owned())
        .bind((*password_hash).to_owned())
        .bind(now)
        .execute()
        .await?;
    }
    match invitation.brand_id {
        None => {
            tx.query(
                "INSERT INTO org_memberships (organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (organization_id, user_id) DO NOTHING",
            )
            .bind(invitation.organization_id)
            .bind(user_id)
            .bind(invitation.role.clone())
            .bind(now)
            .execute()
            .await?;
        }
        Some(brand_id) => {
            tx.query(
                "INSERT INTO brand_memberships (organization_id, brand_id, user_id, role, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (brand_id, user_id) DO NOTHING",
            )
            .bind(invitation.organization_id)
            .bind(brand_id)
            .bind(user_id)
            .bind(invitation.role.clone())
            .bind(now)
            .execute()
            .await?;
        }
    }
    tx.record_audit(crate::AuditEntry {
        organization_id: invitation.organization_id,
        brand_id: invitation.brand_id,
        actor_id: user_id.to_string(),
        action: "invitation.accept",
        entity_type: "user",
        entity_id: user_id.to_string(),
        before: None,
        after: Some(serde_json::json!({"invitation_id": invitation.id, "role": invitation.role})),
        ip: None,
        user_agent: None,
    })
    .await?;
    tx.commit().await?;
    let user = crate::users::get(db, user_id).await?;
    Ok((user, Invitation { status: "accepted".to_owned(), ..invitation }))
}
