//! The tenant scope every tenant query takes.
//!
//! A [`Scope`] can only be made here, from a verified principal (a user
//! session, an API key) or explicitly as [`Scope::system`] for the CLI and
//! background work. Storage functions take `&Scope` and filter by it, so no
//! code path can read tenant rows without one.

use consign_domain::policy::{BrandAccess, BrandGrant, Grants, OrgGrant};
use consign_domain::roles::{BrandRole, OrgRole, OrganizationKind};
use consign_domain::{ApiKeyId, BrandId, OrderId, OrganizationId, SessionId, UserId};

use crate::{Db, DbResult};

/// Who is acting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user, in one session.
    User {
        /// The user.
        user_id: UserId,
        /// The session (refresh-token family) the access token belongs to.
        session_id: SessionId,
    },
    /// An integration holding a brand API key.
    ApiKey {
        /// The key.
        key_id: ApiKeyId,
    },
    /// A customer holding an order access token: that one order only.
    Customer {
        /// The order.
        order_id: OrderId,
    },
    /// Consign itself: the CLI, the seeder, background jobs.
    System,
}

impl Principal {
    /// The actor id recorded in audit rows and events.
    pub fn actor_id(&self) -> String {
        match self {
            Principal::User { user_id, .. } => user_id.to_string(),
            Principal::ApiKey { key_id } => key_id.to_string(),
            Principal::Customer { .. } => "customer".to_owned(),
            Principal::System => "system".to_owned(),
        }
    }
}

/// Where a request came from, for the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

/// What a caller may see. See the module docs.
#[derive(Clone, Debug)]
pub struct Scope {
    principal: Principal,
    grants: Grants,
    origin: Origin,
}

impl Scope {
    /// Consign itself, seeing every tenant. For the CLI, the seeder and jobs
    /// only: request handlers get their scope from authentication.
    pub fn system() -> Self {
        Self {
            principal: Principal::System,
            grants: Grants { platform_admin: true, ..Grants::default() },
            origin: Origin::default(),
        }
    }

    /// The same scope, noting where the request came from. Changes nothing
    /// of what it may see.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Where the request came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// An audit row for an action by this scope's principal.
    pub fn audit(
        &self,
        organization_id: OrganizationId,
        brand_id: Option<BrandId>,
        action: &'static str,
        entity_type: &'static str,
        entity_id: String,
    ) -> crate::AuditEntry {
        crate::AuditEntry {
            organization_id,
            brand_id,
            actor_id: self.principal.actor_id(),
            action,
            entity_type,
            entity_id,
            before: None,
            after: None,
            ip: self.origin.ip.clone(),
            user_agent: self.origin.user_agent.clone(),
        }
    }

    /// Who is acting.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// What the caller may see and do, for the authorization policy.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The user behind the scope, if it is a user.
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { user_id, .. } => Some(user_id),
            _ => None,
        }
    }

    /// The namespace of the caller's idempotency keys and similar per-caller
    /// records: one user (whichever session), one API key, or one order's
    /// token. Never shared by two principals, so no one can replay another's
    /// response.
    pub fn caller_key(&self) -> String {
        match &self.principal {
            Principal::User { user_id, .. } => format!("user:{user_id}"),
            Principal::ApiKey { key_id } => format!("api_key:{key_id}"),
            Principal::Customer { order_id } => format!("order:{order_id}"),
            Principal::System => "system".to_owned(),
        }
    }

    /// `None` when the caller sees every brand, else the brands it sees.
    pub(crate) fn brand_filter(&self) -> Option<Vec<String>> {
        if self.grants.platform_admin {
            return None;
        }
        Some(self.grants.brands.iter().map(|g| g.brand_id.to_string()).collect())
    }

    /// Fails with `NotFound` unless the caller sees the brand.
    pub(crate) fn check_brand(&self, brand_id: BrandId) -> DbResult<()> {
        if self.grants.sees_brand(brand_id) { Ok(()) } else { Err(crate::DbError::NotFound) }
    }

    /// The one order a customer scope may see.
    pub fn customer_order(&self) -> Option<OrderId> {
        match self.principal {
            Principal::Customer { order_id } => Some(order_id),
            _ => None,
        }
    }

    /// Fails with `NotFound` unless the caller sees this order: staff through
    /// its brand, a customer through its token.
    pub(crate) fn check_order(&self, order_id: OrderId, brand_id: BrandId) -> DbResult<()> {
        if self.customer_order() == Some(order_id) || self.grants.sees_brand(brand_id) {
            Ok(())
        } else {
            Err(crate::DbError::NotFound)
        }
    }

    /// The scope of an order access token.
    pub(crate) fn for_customer(order_id: OrderId) -> Self {
        Self { principal: Principal::Customer { order_id }, grants: Grants::default(), origin: Origin::default() }
    }

    /// Fails with `NotFound` unless the caller belongs to the organization.
    pub(crate) fn check_organization(&self, organization_id: OrganizationId) -> DbResult<()> {
        if self.grants.sees_organization(organization_id) { Ok(()) } else { Err(crate::DbError::NotFound) }
    }

    /// Builds a user's scope in one round trip: organization memberships,
    /// brand memberships, brands of its organizations and brands its 3PL
    /// organizations fulfil for.
    pub(crate) async fn for_user(
        db: &Db,
        user_id: UserId,
        session_id: SessionId,
        platform_admin: bool,
    ) -> DbResult<Self> {
        // kind: 'org' rows carry (organization, org kind, org role);
        // the others carry (brand, owner organization, role or 'fulfiller').
        const SQL: &str = "
            SELECT 'org' AS kind, o.id AS organization_id, NULL AS brand_id, m.role AS role, o.kind AS org_kind
              FROM org_memberships m JOIN organizations o ON o.id = m.organization_id
             WHERE m.user_id = $1
            UNION ALL
            SELECT 'owner', b.organization_id, b.id, m.role, NULL
              FROM org_memberships m JOIN brands b ON b.organization_id = m.organization_id
             WHERE m.user_id = $1
            UNION ALL
            SELECT 'brand', bm.organization_id, bm.brand_id, bm.role, NULL
              FROM brand_memberships bm WHERE bm.user_id = $1
            UNION ALL
            SELECT 'fulfiller', b.organization_id, b.id, 'fulfiller', NULL
              FROM org_memberships m
              JOIN brand_fulfillers f ON f.organization_id = m.organization_id
              JOIN brands b ON b.id = f.brand_id
             WHERE m.user_id = $1";
        let rows: Vec<GrantRow> = db.read(SQL).bind(user_id.to_string()).fetch_all().await?;
        let mut grants = Grants { platform_admin, ..Grants::default() };
        for row in rows {
            row.apply(&mut grants)?;
        }
        Ok(Self { principal: Principal::User { user_id, session_id }, grants, origin: Origin::default() })
    }

    /// The scope of a brand API key: that one brand, as an integration.
    pub(crate) fn for_api_key(key_id: ApiKeyId, brand_id: BrandId, organization_id: OrganizationId) -> Self {
        let grants = Grants {
            platform_admin: false,
            organizations: vec![],
            brands: vec![BrandGrant { brand_id, organization_id, access: BrandAccess::Integration }],
        };
        Self { principal: Principal::ApiKey { key_id }, grants, origin: Origin::default() }
    }

    /// Appends ` AND <column> IN (…)` for the caller's brands, or nothing for
    /// a caller that sees every brand. A caller with no brands matches none.
    pub(crate) fn push_brand_filter(&self, query: &mut crate::Statement<'_>, column: &str) {
        let Some(brand_ids) = self.brand_filter() else { return };
        query.push(" AND ").push_in(column, brand_ids);
    }
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    kind: String,
    organization_id: String,
    brand_id: Option<String>,
    role: String,
    org_kind: Option<String>,
}

impl GrantRow {
    fn apply(self, grants: &mut Grants) -> DbResult<()> {
        let corrupt = |what: &str| crate::DbError::Other(anyhow::anyhow!("corrupt grant row: {what}"));
        let organization_id: OrganizationId = self.organization_id.parse().map_err(|_| corrupt("organization id"))?;
        if self.kind == "org" {
            let kind: OrganizationKind = self.org_kind.unwrap_or_default().parse().map_err(|_| corrupt("org kind"))?;
            let role: OrgRole = self.role.parse().map_err(|_| corrupt("org role"))?;
            grants.organizations.push(OrgGrant { organization_id, kind, role });
            return Ok(());
        }
        let brand_id: BrandId = self.brand_id.unwrap_or_default().parse().map_err(|_| corrupt("brand id"))?;
        let access = match self.kind.as_str() {
            "owner" => BrandAccess::from_org_role(self.role.parse().map_err(|_| corrupt("org role"))?),
            "brand" => BrandAccess::from_brand_role(self.role.parse::<BrandRole>().map_err(|_| corrupt("brand role"))?),
            _ => BrandAccess::Fulfiller,
        };
        grants.brands.push(BrandGrant { brand_id, organization_id, access });
        Ok(())
    }
}
