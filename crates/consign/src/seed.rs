//! Demo data: a 3PL, a merchant with a brand the 3PL fulfils for, and a
//! login for each, so a newcomer has something to look at.

use consign_db::brands::{self, NewBrand};
use consign_db::users::{self, NewSignup};
use consign_db::{Db, Scope};
use consign_domain::roles::OrganizationKind;
use consign_web::auth::password;

/// The demo password of every demo user.
const DEMO_PASSWORD: &str = "consign-demo";
const THREEPL_EMAIL: &str = "ops@northwind.example";
const MERCHANT_EMAIL: &str = "owner@acme.example";

/// A login printed after seeding.
pub struct DemoLogin {
    /// Who this is.
    pub role: &'static str,
    /// Email.
    pub email: &'static str,
}

/// Seeds the demo when the database has no users at all.
pub async fn demo_if_empty(db: &Db) -> anyhow::Result<Option<Vec<DemoLogin>>> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    demo(db).await
}

/// Seeds the demo unless its users exist.
pub async fn demo(db: &Db) -> anyhow::Result<Option<Vec<DemoLogin>>> {
    if users::get_by_email(db, THREEPL_EMAIL).await?.is_some() {
        return Ok(None);
    }
    let hash = password::hash(DEMO_PASSWORD.to_owned()).await?;
    let (_, threepl) = users::sign_up(
        db,
        NewSignup {
            email: THREEPL_EMAIL,
            name: "Nora Northwind",
            password_hash: &hash,
            organization_name: "Northwind Logistics",
            organization_kind: OrganizationKind::Threepl,
        },
    )
    .await?;
    let (_, merchant) = users::sign_up(
        db,
        NewSignup {
            email: MERCHANT_EMAIL,
            name: "Ada Acme",
            password_hash: &hash,
            organization_name: "Acme Outdoor Co.",
            organization_kind: OrganizationKind::Merchant,
        },
    )
    .await?;
    let system = Scope::system();
    let brand = brands::create(
        db,
        &system,
        NewBrand { organization_id: merchant.id, name: "Acme Outdoor", slug: "acme", currency: "USD" },
    )
    .await?;
    brands::add_fulfiller(db, &system, brand.id, threepl.id).await?;
    Ok(Some(vec![
        DemoLogin { role: "3PL operator (Northwind Logistics)", email: THREEPL_EMAIL },
        DemoLogin { role: "Brand owner (Acme Outdoor)", email: MERCHANT_EMAIL },
    ]))
}

/// Prints the demo logins.
pub fn print_logins(logins: &[DemoLogin]) {
    println!("Demo data loaded. Log in with password `{DEMO_PASSWORD}` as:");
    for login in logins {
        println!("  {:<40} {}", login.role, login.email);
    }
}
