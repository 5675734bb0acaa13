//! Storage behind the web pages.

use crate::{Db, DbResult, Scope};
use consign_domain::{BrandId, UserId};

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
