//! Settings pages: brands (name, reservation TTL, logo and colours of the
//! customer pages), their members and roles, and their API keys (a new key
//! is shown once, on the page that answers the form, never stored in
//! clear), and its payment providers (`providers.rs`). Policy as in the
//! API: `ManageBrand`, `ManageBrandMembers`, `ManageApiKeys`, `CreateBrand`.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use consign_db::api_keys::{self, ApiKey};
use consign_db::brands::{self, Brand, BrandChanges, BrandMember, NewBrand};
use consign_db::web::{self, BrandTheme};
use consign_db::{DbError, PageRequest, users};
use consign_domain::policy::Action;
use consign_domain::roles::BrandRole;
use consign_domain::{ApiKeyId, BrandId, OrganizationId};
use serde::Deserialize;

use super::view::{self, filled};
use super::{Chrome, PageError, Staff, render, settle};
use crate::AppState;
use crate::auth::{password, tokens};
use crate::error::AppError;

/// The settings routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/settings", get(overview))
        .route("/admin/settings/brands", post(create_brand))
        .route("/admin/settings/brands/{id}", get(brand_page).post(update_brand))
        .route("/admin/settings/brands/{id}/members", post(add_member))
        .route("/admin/settings/brands/{id}/api-keys", post(create_key))
        .route("/admin/settings/api-keys/{id}/revoke", post(revoke_key))
}

/// A brand in the overview.
pub struct BrandRow {
    id: BrandId,
    name: String,
    slug: String,
    currency: String,
}

/// An organization the caller may create brands in.
pub struct OrgChoice {
    id: OrganizationId,
    name: String,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct OverviewPage {
    chrome: Chrome,
    brands: Vec<BrandRow>,
    organizations: Vec<OrgChoice>,
}

/// `GET /admin/settings`.
pub async fn overview(State(state): State<AppState>, staff: Staff) -> Result<Response, PageError> {
    let brands = staff.brands(&state).await?;
    let grants = staff.caller.scope().grants();
    let mut organizations = Vec::new();
    if let Some(user_id) = staff.caller.scope().user_id() {
        for (organization, _) in users::organizations_of(&state.db, user_id).await? {
            if grants.allows_in_organization(Action::CreateBrand, organization.id) {
                organizations.push(OrgChoice { id: organization.id, name: organization.name });
            }
        }
    }
    render(&OverviewPage {
        chrome: staff.chrome("settings", "Settings"),
        brands: brands
            .into_iter()
            .map(|b| BrandRow { id: b.id, name: b.name, slug: b.slug, currency: b.currency })
            .collect(),
        organizations,
    })
}

/// The new-brand form.
#[derive(Deserialize)]
pub struct NewBrandForm {
    name: String,
    slug: String,
    currency: String,
    organization_id: Option<String>,
}

fn check_slug(slug: &str) -> Result<(), AppError> {
    let valid = (2..=64).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(AppError::field("slug", "must be 2 to 64 lowercase letters, digits or inner hyphens"))
    }
}

/// `POST /admin/settings/brands`.
pub async fn create_brand(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<NewBrandForm>,
) -> Result<Response, PageError> {
    let result = async {
        let named: Option<OrganizationId> =
            filled(&form.organization_id).map(|v| v.parse().map_err(|_| AppError::NotFound)).transpose()?;
        let organization_id = staff.caller.authorize_organization(Action::CreateBrand, named)?;
        let name = form.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::field("name", "must be 1 to 200 characters"));
        }
        let slug = form.slug.trim().to_lowercase();
        check_slug(&slug)?;
        let currency = form.currency.trim().to_uppercase();
        if !consign_domain::money::is_currency_code(&currency) {
            return Err(AppError::field("currency", "must be an ISO 4217 code such as USD"));
        }
        brands::create(
            &state.db,
            staff.caller.scope(),
            NewBrand { organization_id, name, slug: &slug, currency: &currency },
        )
        .await
        .map_err(|e| match e {
            DbError::Conflict { .. } => AppError::Conflict("A brand with this slug already exists.".into()),
            other => other.into(),
        })
    }
    .await;
    match result {
        Ok(brand) => Ok(view::redirect_with(
            &format!("/admin/settings/brands/{}", brand.id),
            view::Flash::notice(format!("Brand {} created.", brand.name)),
        )),
        Err(error) => settle(Err::<(), _>(error), "/admin/settings", ""),
    }
}

/// A role choice.
pub struct RoleChoice {
    value: &'static str,
    label: &'static str,
}

/// An API key row.
pub struct KeyRow {
    key: ApiKey,
    created: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "admin/brand_settings.html")]
struct BrandPage {
    chrome: Chrome,
    brand: Brand,
    theme: BrandTheme,
    logo_url: String,
    members: Vec<BrandMember>,
    keys: Vec<KeyRow>,
    roles: Vec<RoleChoice>,
    may_manage: bool,
    may_manage_members: bool,
    may_manage_keys: bool,
    new_key: Option<String>,
    providers: Vec<super::providers::ProviderView>,
}

fn brand_id_of(id: &str) -> Result<BrandId, PageError> {
    id.parse().map_err(|_| PageError::NotFound)
}

async fn brand_page_for(
    state: &AppState,
    staff: &Staff,
    brand_id: BrandId,
    new_key: Option<String>,
) -> Result<Response, PageError> {
    staff.caller.authorize_brand(Action::ViewBrand, brand_id)?;
    let brand = brands::get(&state.db, staff.caller.scope(), brand_id).await?;
    let grants = staff.caller.scope().grants();
    let may_manage_keys = grants.allows_on_brand(Action::ManageApiKeys, brand_id);
    let keys = if may_manage_keys {
        api_keys::list(&state.db, staff.caller.scope(), Some(brand_id), &PageRequest { limit: 200, after: None })
            .await?
            .data
            .into_iter()
            .map(|key| KeyRow {
                created: view::time(key.created_at),
                revoked: key.revoked_at.map(view::time).unwrap_or_default(),
                key,
            })
            .collect()
    } else {
        Vec::new()
    };
    let theme = web::theme(&state.db, brand_id).await?;
    let providers = super::providers::views(state, staff, brand_id).await?;
    render(&BrandPage {
        providers,
        chrome: staff.chrome("settings", format!("Settings · {}", brand.name)),
        logo_url: theme.logo_url.clone().unwrap_or_default(),
        theme,
        members: brands::list_members(&state.db, staff.caller.scope(), brand_id).await?,
        keys,
        roles: vec![
            RoleChoice { value: "brand_member", label: "Brand member" },
            RoleChoice { value: "brand_admin", label: "Brand admin" },
        ],
        may_manage: grants.allows_on_brand(Action::ManageBrand, brand_id),
        may_manage_members: grants.allows_on_brand(Action::ManageBrandMembers, brand_id),
        may_manage_keys,
        new_key,
        brand,
    })
}

/// `GET /admin/settings/brands/{id}`.
pub async fn brand_page(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    brand_page_for(&state, &staff, brand_id_of(&id)?, None).await
}

/// The brand form: settings and look.
#[derive(Deserialize)]
pub struct BrandForm {
    name: String,
    reservation_ttl_seconds: String,
    logo_url: Option<String>,
    primary_color: String,
    accent_color: String,
    version: Option<i64>,
}

/// `POST /admin/settings/brands/{id}`.
pub async fn update_brand(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<BrandForm>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let back = format!("/admin/settings/brands/{brand_id}");
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrand, brand_id)?;
        let name = form.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::field("name", "must be 1 to 200 characters"));
        }
        let ttl: i64 = form
            .reservation_ttl_seconds
            .trim()
            .parse()
            .ok()
            .filter(|t| (60..=7 * 24 * 3600).contains(t))
            .ok_or_else(|| AppError::field("reservation_ttl_seconds", "must be 60 to 604800 seconds"))?;
        let theme = BrandTheme {
            logo_url: filled(&form.logo_url).map(str::to_owned),
            primary_color: form.primary_color.trim().to_lowercase(),
            accent_color: form.accent_color.trim().to_lowercase(),
        };
        let problems = theme.problems();
        if !problems.is_empty() {
            return Err(AppError::Validation(
                problems.into_iter().map(|(f, m)| crate::error::FieldError::new(f, m)).collect(),
            ));
        }
        let changes = BrandChanges {
            name: Some(name),
            currency: None,
            reservation_ttl_seconds: Some(ttl),
            manual_reservation_ttl_seconds: None,
        };
        brands::update(&state.db, staff.caller.scope(), brand_id, changes, form.version).await?;
        web::set_theme(&state.db, staff.caller.scope(), brand_id, &theme).await?;
        Ok(())
    }
    .await;
    settle(result, &back, "Brand saved.")
}

/// The member form.
#[derive(Deserialize)]
pub struct MemberForm {
    email: String,
    role: String,
    name: Option<String>,
    password: Option<String>,
}

/// `POST /admin/settings/brands/{id}/members`.
pub async fn add_member(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let back = format!("/admin/settings/brands/{brand_id}");
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
        let role: BrandRole = form.role.parse().map_err(|_| AppError::field("role", "is not a role"))?;
        let email = form.email.trim().to_lowercase();
        if !email.contains('@') || email.len() > 254 {
            return Err(AppError::field("email", "must be an email address"));
        }
        let user = match users::get_by_email(&state.db, &email).await? {
            Some(user) => user,
            None => {
                let (Some(name), Some(password)) = (filled(&form.name), filled(&form.password)) else {
                    return Err(AppError::field(
                        "email",
                        "no user has this email; give a name and a first password to create one",
                    ));
                };
                if password.chars().count() < 8 || password.chars().count() > 256 || name.chars().count() > 200 {
                    return Err(AppError::field("password", "must be 8 to 256 characters"));
                }
                let hash = password::hash(password.to_owned()).await?;
                users::create(&state.db, &email, name, &hash, false).await?
            }
        };
        Ok(brands::put_member(&state.db, staff.caller.scope(), brand_id, user.id, role).await?)
    }
    .await;
    let message = match &result {
        Ok(member) => format!("{} is now {}.", member.email, view::words(member.role.as_str()).to_lowercase()),
        Err(_) => String::new(),
    };
    settle(result, &back, message)
}

/// The API key form.
#[derive(Deserialize)]
pub struct KeyForm {
    name: String,
}

/// `POST /admin/settings/brands/{id}/api-keys`: answers with the brand
/// page showing the new key once.
pub async fn create_key(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<KeyForm>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let back = format!("/admin/settings/brands/{brand_id}");
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageApiKeys, brand_id)?;
        let name = form.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("name", "must be 1 to 100 characters"));
        }
        let (key, lookup) = tokens::new_api_key();
        api_keys::create(&state.db, staff.caller.scope(), brand_id, name, &lookup, &tokens::sha256_hex(&key)).await?;
        Ok(key)
    }
    .await;
    match result {
        Ok(key) => {
            let mut staff = staff;
            staff.flash = Some(view::Flash::notice("API key created. Copy it now: it is not shown again."));
            brand_page_for(&state, &staff, brand_id, Some(key)).await
        }
        Err(error) => settle(Err::<(), _>(error), &back, ""),
    }
}

/// `POST /admin/settings/api-keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let key_id: ApiKeyId = id.parse().map_err(|_| PageError::NotFound)?;
    let key = api_keys::get(&state.db, staff.caller.scope(), key_id).await?;
    let back = format!("/admin/settings/brands/{}", key.brand_id);
    let result = async {
        staff.caller.authorize_brand(Action::ManageApiKeys, key.brand_id)?;
        Ok(api_keys::revoke(&state.db, staff.caller.scope(), key_id).await?)
    }
    .await;
    settle(result, &back, "API key revoked.")
}
