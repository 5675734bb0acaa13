//! A brand's look on its customer pages: its logo and colours, checked
//! before they are stored since every customer page renders them.

use consign_domain::{BrandId, Timestamp};
use serde::Serialize;

use crate::{Db, DbError, DbResult, Scope};

/// A brand's look on its customer pages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BrandTheme {
    /// An image URL (https, or a path on this server).
    pub logo_url: Option<String>,
    /// Header and button colour, `#rrggbb`.
    pub primary_color: String,
    /// Links and highlights, `#rrggbb`.
    pub accent_color: String,
}

impl Default for BrandTheme {
    fn default() -> Self {
        Self { logo_url: None, primary_color: "#1f3a5f".into(), accent_color: "#b4441f".into() }
    }
}

impl BrandTheme {
    /// What is wrong with it, as (field, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let colour = |c: &str| c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
        let mut problems = Vec::new();
        if !colour(&self.primary_color) {
            problems.push(("primary_color", "must be a colour such as #1f3a5f"));
        }
        if !colour(&self.accent_color) {
            problems.push(("accent_color", "must be a colour such as #b4441f"));
        }
        if let Some(url) = &self.logo_url {
            let safe = (url.starts_with("https://") || url.starts_with('/'))
                && url.len() <= 500
                && !url.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '<' || c == '>');
            if !safe {
                problems.push(("logo_url", "must be an https:// URL or a path, without spaces or quotes"));
            }
        }
        problems
    }
}

/// A brand's theme, or the default look. Public: customer pages show it.
pub async fn theme(db: &Db, brand_id: BrandId) -> DbResult<BrandTheme> {
    let theme: Option<BrandTheme> = db
        .read("SELECT logo_url, primary_color, accent_color FROM brand_themes WHERE brand_id = $1")
        .bind(brand_id)
        .fetch_optional()
        .await?;
    Ok(theme.unwrap_or_default())
}

/// Sets a brand's theme (staff who may manage the brand; the caller checks
/// the policy, this checks visibility).
pub async fn set_theme(db: &Db, scope: &Scope, brand_id: BrandId, theme: &BrandTheme) -> DbResult<()> {
    scope.check_brand(brand_id)?;
    if let Some((field, message)) = theme.problems().into_iter().next() {
        return Err(DbError::invalid(field, message));
    }
    let mut tx = db.begin().await?;
    let organization_id: consign_domain::OrganizationId =
        tx.query("SELECT organization_id FROM brands WHERE id = $1").bind(brand_id).scalar().await?;
    tx.query(
        "INSERT INTO brand_themes (brand_id, organization_id, logo_url, primary_color, accent_color, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (brand_id) DO UPDATE SET logo_url = excluded.logo_url,
             primary_color = excluded.primary_color, accent_color = excluded.accent_color,
             updated_at = excluded.updated_at",
    )
    .bind(brand_id)
    .bind(organization_id)
    .bind(theme.logo_url.clone())
    .bind(theme.primary_color.clone())
    .bind(theme.accent_color.clone())
    .bind(Timestamp::now())
    .execute()
    .await?;
    let mut audit = scope.audit(organization_id, Some(brand_id), "brand.set_theme", "brand", brand_id.to_string());
    audit.after = serde_json::to_value(theme).ok();
    tx.record_audit(audit).await?;
    tx.commit().await?;
    Ok(())
}
