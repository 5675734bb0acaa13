//! Storage behind the web pages.

use crate::{Db, DbError, DbResult, Scope};
use consign_domain::{BrandId, UserId};

/// One active product of a brand, for its public product page. Public data
/// only: the early-access list is emptied. Another brand's product, or one
/// not active, is `NotFound`.
pub async fn storefront_product(
    db: &Db,
    brand_id: BrandId,
    product_id: consign_domain::ProductId,
) -> DbResult<crate::products::ProductWithVariants> {
    let mut product = crate::products::get(db, &Scope::system(), product_id).await?;
    if product.product.brand_id != brand_id || product.product.status != consign_domain::status::ProductStatus::Active {
        return Err(DbError::NotFound);
    }
    product.product.early_access_emails.clear();
    Ok(product)
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
