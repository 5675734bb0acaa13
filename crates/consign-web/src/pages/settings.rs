//! Settings pages: brands (name, reservation TTL, logo and colours of the
//! customer pages), their members and roles, invitations and 3PL links,
//! and their API keys (a new key or invitation link is shown once, on the
//! page that answers the form, never stored in clear), and its payment
//! providers (`providers.rs`); organizations with their members and
//! invitations. Policy as in the API: `ManageBrand`, `ManageBrandMembers`,
//! `ManageApiKeys`, `CreateBrand`, `ViewOrganizationMembers`,
//! `ManageOrganizationMembers`. A refused invitation shows the form again
//! with what was typed.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use consign_db::api_keys::{self, ApiKey};
use consign_db::brands::{self, Brand, BrandChanges, BrandMember, BrandTheme, Fulfiller, NewBrand};
use consign_db::invitations::{self, Invitation, InvitedRole};
use consign_db::users::{OrgMember, Organization};
use consign_db::{DbError, PageRequest, users};
use consign_domain::policy::Action;
use consign_domain::roles::{BrandRole, OrgRole};
use consign_domain::text::{ApiKeyName, DisplayName, Slug};
use consign_domain::{ApiKeyId, BrandId, InvitationId, OrganizationId, UserId};
use serde::Deserialize;

use super::view::{self, filled};
use super::{Chrome, PageError, Staff, render, settle};
use crate::AppState;
use crate::actions::invitations::{CreatedInvitation, invite};
use crate::actions::organizations;
use crate::auth::tokens;
use crate::error::AppError;
use crate::pages::PageForm;

/// The settings routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/settings", get(overview))
        .route("/admin/settings/brands", post(create_brand))
        .route("/admin/settings/brands/{id}", get(brand_page).post(update_brand))
        .route("/admin/settings/brands/{id}/bank-transfer", post(save_bank_transfer))
        .route("/admin/settings/brands/{id}/members", post(add_member))
        .route("/admin/settings/brands/{id}/members/{user_id}", post(change_brand_member))
        .route("/admin/settings/brands/{id}/members/{user_id}/remove", post(remove_brand_member))
        .route("/admin/settings/brands/{id}/invitations/{invitation_id}/revoke", post(revoke_brand_invitation))
        .route("/admin/settings/brands/{id}/fulfillers/{organization_id}/remove", post(remove_fulfiller))
        .route("/admin/settings/brands/{id}/api-keys", post(create_key))
        .route("/admin/settings/api-keys/{id}/revoke", post(revoke_key))
        .route("/admin/settings/organizations/{id}", get(organization_page))
        .route("/admin/settings/organizations/{id}/members", post(invite_org_member))
        .route("/admin/settings/organizations/{id}/members/{user_id}", post(change_org_member))
        .route("/admin/settings/organizations/{id}/members/{user_id}/remove", post(remove_org_member))
        .route("/admin/settings/organizations/{id}/invitations/{invitation_id}/revoke", post(revoke_org_invitation))
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

/// An organization the caller belongs to, with its role there.
pub struct OrgLink {
    id: OrganizationId,
    name: String,
    kind: String,
    role: String,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct OverviewPage {
    chrome: Chrome,
    brands: Vec<BrandRow>,
    organizations: Vec<OrgChoice>,
    memberships: Vec<OrgLink>,
}

/// `GET /admin/settings`.
pub async fn overview(State(state): State<AppState>, staff: Staff) -> Result<Response, PageError> {
    let brands = staff.brands(&state).await?;
    let grants = staff.caller.scope().grants();
    let mut organizations = Vec::new();
    let mut memberships = Vec::new();
    if let Some(user_id) = staff.caller.scope().user_id() {
        for (organization, role) in users::organizations_of(&state.db, user_id).await? {
            memberships.push(OrgLink {
                id: organization.id,
                name: organization.name.clone(),
                kind: if organization.kind.as_str() == "threepl" { "3PL".into() } else { "Merchant".into() },
                role: view::words(role.as_str()),
            });
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
        memberships,
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

/// `POST /admin/settings/brands`.
pub async fn create_brand(
    State(state): State<AppState>,
    staff: Staff,
    PageForm(form): PageForm<NewBrandForm>,
) -> Result<Response, PageError> {
    let result = async {
        let named: Option<OrganizationId> =
            filled(&form.organization_id).map(|v| v.parse().map_err(|_| AppError::NotFound)).transpose()?;
        let organization_id = staff.caller.authorize_organization(Action::CreateBrand, named)?;
        let name = DisplayName::parse(&form.name).map_err(AppError::invalid("name"))?;
        let slug = Slug::parse(&form.slug).map_err(AppError::invalid("slug"))?;
        let currency = form.currency.trim().to_uppercase();
        if !consign_domain::money::is_currency_code(&currency) {
            return Err(AppError::field("currency", "must be an ISO 4217 code such as USD"));
        }
        brands::create(
            &state.db,
            staff.caller.scope(),
            NewBrand { organization_id, name: name.as_str(), slug: slug.as_str(), currency: &currency },
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
    selected: bool,
}

const BRAND_ROLES: &[(&str, &str)] = &[("brand_member", "Brand member"), ("brand_admin", "Brand admin")];
const ORG_ROLES: &[(&str, &str)] = &[("org_member", "Org member"), ("org_admin", "Org admin")];

fn role_choices(roles: &[(&'static str, &'static str)], current: &str) -> Vec<RoleChoice> {
    roles.iter().map(|&(value, label)| RoleChoice { value, label, selected: value == current }).collect()
}

/// A member row: who, and the role select with the current role chosen.
pub struct MemberRow {
    user_id: UserId,
    name: String,
    email: String,
    role: String,
    roles: Vec<RoleChoice>,
}

impl MemberRow {
    fn of_brand(member: BrandMember) -> Self {
        Self {
            roles: role_choices(BRAND_ROLES, member.role.as_str()),
            role: view::words(member.role.as_str()),
            user_id: member.user_id,
            name: member.name,
            email: member.email,
        }
    }

    fn of_organization(member: OrgMember) -> Self {
        Self {
            roles: role_choices(ORG_ROLES, member.role.as_str()),
            role: view::words(member.role.as_str()),
            user_id: member.user_id,
            name: member.name,
            email: member.email,
        }
    }
}

/// A pending invitation row.
pub struct InvitationRow {
    id: InvitationId,
    email: String,
    role: String,
    expires: view::When,
}

impl InvitationRow {
    fn of(invitation: Invitation) -> Self {
        Self {
            id: invitation.id,
            role: view::words(&invitation.role),
            expires: view::time(invitation.expires_at),
            email: invitation.email,
        }
    }
}

/// A linked 3PL row.
pub struct FulfillerRow {
    organization_id: OrganizationId,
    name: String,
    linked: view::When,
}

impl FulfillerRow {
    fn of(fulfiller: Fulfiller) -> Self {
        Self {
            linked: view::time(fulfiller.created_at),
            organization_id: fulfiller.organization_id,
            name: fulfiller.name,
        }
    }
}

/// The invitation form as typed, shown again when it was refused.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// A new invitation's link, shown once.
pub struct NewInvitationView {
    email: String,
    link: String,
}

impl NewInvitationView {
    fn of(created: &CreatedInvitation) -> Self {
        Self { email: created.invitation.email.clone(), link: format!("/admin/invitations/{}", created.token) }
    }
}

/// What a brand or organization page shows beyond its stored state: a
/// secret shown once, or the invitation form as typed.
#[derive(Default)]
struct Shown {
    new_key: Option<String>,
    new_invitation: Option<NewInvitationView>,
    invite: InviteForm,
}

/// An API key row.
pub struct KeyRow {
    key: ApiKey,
    created: view::When,
    revoked: String,
}

#[derive(Template)]
#[template(path = "admin/brand_settings.html")]
struct BrandPage {
    chrome: Chrome,
    brand: Brand,
    theme: BrandTheme,
    logo_url: String,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    fulfillers: Vec<FulfillerRow>,
    keys: Vec<KeyRow>,
    roles: Vec<RoleChoice>,
    may_manage: bool,
    may_manage_members: bool,
    may_manage_keys: bool,
    new_key: Option<String>,
    new_invitation: Option<NewInvitationView>,
    invite: InviteForm,
    providers: Vec<super::providers::ProviderView>,
    /// The warehouses it ships from and could ship from.
    warehouses: Vec<super::stock::WarehouseChoice>,
    /// How many days a bank transfer order holds its stock.
    hold_days: i64,
}

fn brand_id_of(id: &str) -> Result<BrandId, PageError> {
    id.parse().map_err(|_| PageError::NotFound)
}

async fn brand_page_for(
    state: &AppState,
    staff: &Staff,
    brand_id: BrandId,
    shown: Shown,
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
                revoked: key.revoked_at.map(view::time_text).unwrap_or_default(),
                key,
            })
            .collect()
    } else {
        Vec::new()
    };
    let theme = brands::theme(&state.db, brand_id).await?;
    let providers = super::providers::views(state, staff, brand_id).await?;
    let may_manage_members = grants.allows_on_brand(Action::ManageBrandMembers, brand_id);
    let all = PageRequest { limit: 200, after: None };
    let invitations = if may_manage_members {
        invitations::list_pending(&state.db, staff.caller.scope(), brand.organization_id, Some(brand_id), &all)
            .await?
            .data
            .into_iter()
            .map(InvitationRow::of)
            .collect()
    } else {
        Vec::new()
    };
    let fulfillers = brands::list_fulfillers(&state.db, staff.caller.scope(), brand_id, &all)
        .await?
        .data
        .into_iter()
        .map(FulfillerRow::of)
        .collect();
    let members = brands::list_members(&state.db, staff.caller.scope(), brand_id).await?;
    let warehouses = super::stock::brand_choices(state, staff, &brand).await?;
    render(&BrandPage {
        providers,
        warehouses,
        hold_days: (brand.manual_reservation_ttl_seconds / (24 * 60 * 60)).max(1),
        chrome: staff.chrome("settings", format!("Settings · {}", brand.name)),
        logo_url: theme.logo_url.clone().unwrap_or_default(),
        theme,
        members: members.into_iter().map(MemberRow::of_brand).collect(),
        invitations,
        fulfillers,
        keys,
        roles: role_choices(
            BRAND_ROLES,
            if shown.invite.role.is_empty() { "brand_member" } else { &shown.invite.role },
        ),
        may_manage: grants.allows_on_brand(Action::ManageBrand, brand_id),
        may_manage_members,
        may_manage_keys,
        new_key: shown.new_key,
        new_invitation: shown.new_invitation,
        invite: shown.invite,
        brand,
    })
}

/// `GET /admin/settings/brands/{id}`.
pub async fn brand_page(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    brand_page_for(&state, &staff, brand_id_of(&id)?, Shown::default()).await
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
    PageForm(form): PageForm<BrandForm>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let back = format!("/admin/settings/brands/{brand_id}");
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrand, brand_id)?;
        let name = DisplayName::parse(&form.name).map_err(AppError::invalid("name"))?;
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
            name: Some(name.as_str()),
            currency: None,
            reservation_ttl_seconds: Some(ttl),
            manual_reservation_ttl_seconds: None,
            bank_details: None,
        };
        brands::update(&state.db, staff.caller.scope(), brand_id, changes, form.version).await?;
        brands::set_theme(&state.db, staff.caller.scope(), brand_id, &theme).await?;
        Ok(())
    }
    .await;
    settle(result, &back, "Brand saved.")
}

/// The bank transfer form: the details customers need, and how many days
/// an order waiting for a transfer holds its stock.
#[derive(Deserialize)]
pub struct BankTransferForm {
    bank_details: String,
    hold_days: String,
}

/// `POST /admin/settings/brands/{id}/bank-transfer`.
pub async fn save_bank_transfer(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<BankTransferForm>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let back = format!("/admin/settings/brands/{brand_id}#payment-providers");
    let result = async {
        staff.caller.authorize_brand(Action::ManageBrand, brand_id)?;
        let mut problems = Vec::new();
        if form.bank_details.chars().count() > 1000 {
            problems.push(crate::error::FieldError::new("bank_details", "must have at most 1000 characters"));
        }
        let days = form.hold_days.trim().parse::<i64>().ok().filter(|days| (1..=30).contains(days));
        if days.is_none() {
            problems.push(crate::error::FieldError::new("hold_days", "must be a whole number of days, 1 to 30"));
        }
        let Some(days) = days.filter(|_| problems.is_empty()) else { return Err(AppError::Validation(problems)) };
        let changes = BrandChanges {
            manual_reservation_ttl_seconds: Some(days * 24 * 60 * 60),
            bank_details: Some(&form.bank_details),
            ..BrandChanges::default()
        };
        Ok(brands::update(&state.db, staff.caller.scope(), brand_id, changes, None).await?)
    }
    .await;
    settle(result, &back, "Bank transfer saved.")
}

/// The answer to an invitation form: the page again, showing the new link
/// once, or the refusal in words above the form as it was typed (422).
fn invited_page(
    state: &AppState,
    result: Result<CreatedInvitation, AppError>,
    mut staff: Staff,
    form: InviteForm,
) -> Result<(Staff, Shown, StatusCode), PageError> {
    match result {
        Ok(created) => {
            let email = &created.invitation.email;
            let channels = &state.config.channels;
            staff.flash =
                Some(view::Flash::notice(if channels.email.is_some() && channels.public_base_url.is_some() {
                    format!(
                        "Invitation for {email} created and emailed to them. The link is below too, shown only now."
                    )
                } else {
                    format!("Invitation for {email} created. Send them the link below: it is not shown again.")
                }));
            Ok((
                staff,
                Shown { new_invitation: Some(NewInvitationView::of(&created)), ..Shown::default() },
                StatusCode::OK,
            ))
        }
        Err(AppError::NotFound) => Err(PageError::NotFound),
        Err(AppError::Internal(error)) => Err(PageError::Internal(error)),
        Err(error) => {
            staff.flash = Some(view::Flash::error(view::describe(&error)));
            Ok((staff, Shown { invite: form, ..Shown::default() }, StatusCode::UNPROCESSABLE_ENTITY))
        }
    }
}

fn with_status(response: Result<Response, PageError>, status: StatusCode) -> Result<Response, PageError> {
    response.map(|mut response| {
        *response.status_mut() = status;
        response
    })
}

/// `POST /admin/settings/brands/{id}/members`: invites someone to the brand.
pub async fn add_member(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<InviteForm>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let result = async {
        let brand = brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
        let role: BrandRole = form.role.parse().map_err(|_| AppError::field("role", "is not a role"))?;
        invite(&state, staff.caller.scope(), brand.organization_id, InvitedRole::Brand(brand_id, role), &form.email)
            .await
    }
    .await;
    let (staff, shown, status) = invited_page(&state, result, staff, form)?;
    with_status(brand_page_for(&state, &staff, brand_id, shown).await, status)
}

/// The role form of a member row.
#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

fn user_id_of(id: &str) -> Result<UserId, PageError> {
    id.parse().map_err(|_| PageError::NotFound)
}

/// `POST /admin/settings/brands/{id}/members/{user_id}`: changes a role.
pub async fn change_brand_member(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, user_id)): Path<(String, String)>,
    PageForm(form): PageForm<RoleForm>,
) -> Result<Response, PageError> {
    let (brand_id, user_id) = (brand_id_of(&id)?, user_id_of(&user_id)?);
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
        let role: BrandRole = form.role.parse().map_err(|_| AppError::field("role", "is not a role"))?;
        Ok(brands::set_member_role(&state.db, staff.caller.scope(), brand_id, user_id, role).await?)
    }
    .await;
    let message = match &result {
        Ok(member) => format!("{} is now {}.", member.email, view::words(member.role.as_str()).to_lowercase()),
        Err(_) => String::new(),
    };
    settle(result, &format!("/admin/settings/brands/{brand_id}"), message)
}

/// `POST /admin/settings/brands/{id}/members/{user_id}/remove`.
pub async fn remove_brand_member(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (brand_id, user_id) = (brand_id_of(&id)?, user_id_of(&user_id)?);
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
        Ok(brands::remove_member(&state.db, staff.caller.scope(), brand_id, user_id).await?)
    }
    .await;
    settle(result, &format!("/admin/settings/brands/{brand_id}"), "Member removed. Their access ended.")
}

fn invitation_id_of(id: &str) -> Result<InvitationId, PageError> {
    id.parse().map_err(|_| PageError::NotFound)
}

/// `POST /admin/settings/brands/{id}/invitations/{invitation_id}/revoke`.
pub async fn revoke_brand_invitation(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, invitation_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (brand_id, invitation_id) = (brand_id_of(&id)?, invitation_id_of(&invitation_id)?);
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
        let invitation = invitations::get(&state.db, staff.caller.scope(), invitation_id).await?;
        if invitation.brand_id != Some(brand_id) {
            return Err(AppError::NotFound);
        }
        Ok(invitations::revoke(&state.db, staff.caller.scope(), invitation_id).await?)
    }
    .await;
    settle(result, &format!("/admin/settings/brands/{brand_id}"), "Invitation revoked; its link no longer works.")
}

/// `POST /admin/settings/brands/{id}/fulfillers/{organization_id}/remove`.
pub async fn remove_fulfiller(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, organization_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let organization_id: OrganizationId = organization_id.parse().map_err(|_| PageError::NotFound)?;
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageBrand, brand_id)?;
        Ok(brands::remove_fulfiller(&state.db, staff.caller.scope(), brand_id, organization_id).await?)
    }
    .await;
    settle(result, &format!("/admin/settings/brands/{brand_id}"), "3PL unlinked. Its staff no longer see this brand.")
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
    PageForm(form): PageForm<KeyForm>,
) -> Result<Response, PageError> {
    let brand_id = brand_id_of(&id)?;
    let back = format!("/admin/settings/brands/{brand_id}");
    let result = async {
        brands::get(&state.db, staff.caller.scope(), brand_id).await?;
        staff.caller.authorize_brand(Action::ManageApiKeys, brand_id)?;
        let name = ApiKeyName::parse(&form.name).map_err(AppError::invalid("name"))?;
        let (key, lookup) = tokens::new_api_key();
        let key_hash = tokens::sha256_hex(&key);
        api_keys::create(&state.db, staff.caller.scope(), brand_id, name.as_str(), &lookup, &key_hash).await?;
        Ok(key)
    }
    .await;
    match result {
        Ok(key) => {
            let mut staff = staff;
            staff.flash = Some(view::Flash::notice("API key created. Copy it now: it is not shown again."));
            brand_page_for(&state, &staff, brand_id, Shown { new_key: Some(key), ..Shown::default() }).await
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

#[derive(Template)]
#[template(path = "admin/organization_settings.html")]
struct OrganizationPage {
    chrome: Chrome,
    organization: Organization,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    roles: Vec<RoleChoice>,
    may_manage: bool,
    new_invitation: Option<NewInvitationView>,
    invite: InviteForm,
}

fn organization_id_of(id: &str) -> Result<OrganizationId, PageError> {
    id.parse().map_err(|_| PageError::NotFound)
}

async fn organization_page_for(
    state: &AppState,
    staff: &Staff,
    organization_id: OrganizationId,
    shown: Shown,
) -> Result<Response, PageError> {
    staff.caller.authorize_organization(Action::ViewOrganizationMembers, Some(organization_id))?;
    let user_id = staff.caller.scope().user_id().ok_or(PageError::NotFound)?;
    // A platform admin sees every organization but belongs to few; the page
    // names only organizations the viewer belongs to.
    let organization = users::organizations_of(&state.db, user_id)
        .await?
        .into_iter()
        .map(|(organization, _)| organization)
        .find(|o| o.id == organization_id)
        .ok_or(PageError::NotFound)?;
    let all = PageRequest { limit: 200, after: None };
    let may_manage =
        staff.caller.scope().grants().allows_in_organization(Action::ManageOrganizationMembers, organization_id);
    let members = users::list_org_members(&state.db, staff.caller.scope(), organization_id, &all).await?.data;
    let invitations = if may_manage {
        invitations::list_pending(&state.db, staff.caller.scope(), organization_id, None, &all)
            .await?
            .data
            .into_iter()
            .map(InvitationRow::of)
            .collect()
    } else {
        Vec::new()
    };
    render(&OrganizationPage {
        chrome: staff.chrome("settings", format!("Settings · {}", organization.name)),
        organization,
        members: members.into_iter().map(MemberRow::of_organization).collect(),
        invitations,
        roles: role_choices(ORG_ROLES, if shown.invite.role.is_empty() { "org_member" } else { &shown.invite.role }),
        may_manage,
        new_invitation: shown.new_invitation,
        invite: shown.invite,
    })
}

/// `GET /admin/settings/organizations/{id}`.
pub async fn organization_page(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    organization_page_for(&state, &staff, organization_id_of(&id)?, Shown::default()).await
}

/// `POST /admin/settings/organizations/{id}/members`: invites someone.
pub async fn invite_org_member(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<InviteForm>,
) -> Result<Response, PageError> {
    let organization_id = organization_id_of(&id)?;
    let result = async {
        staff.caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
        let role: OrgRole = form.role.parse().map_err(|_| AppError::field("role", "is not a role"))?;
        invite(&state, staff.caller.scope(), organization_id, InvitedRole::Organization(role), &form.email).await
    }
    .await;
    let (staff, shown, status) = invited_page(&state, result, staff, form)?;
    with_status(organization_page_for(&state, &staff, organization_id, shown).await, status)
}

/// `POST /admin/settings/organizations/{id}/members/{user_id}`: changes a
/// role (never the last org admin's).
pub async fn change_org_member(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, user_id)): Path<(String, String)>,
    PageForm(form): PageForm<RoleForm>,
) -> Result<Response, PageError> {
    let (organization_id, user_id) = (organization_id_of(&id)?, user_id_of(&user_id)?);
    let result = async {
        staff.caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
        let role: OrgRole = form.role.parse().map_err(|_| AppError::field("role", "is not a role"))?;
        organizations::change_member_role(&state, staff.caller.scope(), organization_id, user_id, role).await
    }
    .await;
    let message = match &result {
        Ok(member) => format!("{} is now {}.", member.email, view::words(member.role.as_str()).to_lowercase()),
        Err(_) => String::new(),
    };
    settle(result, &format!("/admin/settings/organizations/{organization_id}"), message)
}

/// `POST /admin/settings/organizations/{id}/members/{user_id}/remove`.
pub async fn remove_org_member(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (organization_id, user_id) = (organization_id_of(&id)?, user_id_of(&user_id)?);
    let result = async {
        staff.caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
        organizations::remove_member(&state, staff.caller.scope(), organization_id, user_id).await
    }
    .await;
    settle(result, &format!("/admin/settings/organizations/{organization_id}"), "Member removed. Their access ended.")
}

/// `POST /admin/settings/organizations/{id}/invitations/{invitation_id}/revoke`.
pub async fn revoke_org_invitation(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, invitation_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (organization_id, invitation_id) = (organization_id_of(&id)?, invitation_id_of(&invitation_id)?);
    let result = async {
        staff.caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
        let invitation = invitations::get(&state.db, staff.caller.scope(), invitation_id).await?;
        if invitation.organization_id != organization_id || invitation.brand_id.is_some() {
            return Err(AppError::NotFound);
        }
        Ok(invitations::revoke(&state.db, staff.caller.scope(), invitation_id).await?)
    }
    .await;
    settle(
        result,
        &format!("/admin/settings/organizations/{organization_id}"),
        "Invitation revoked; its link no longer works.",
    )
}
