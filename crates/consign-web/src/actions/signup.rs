//! Signing up, the use case shared by `POST /auth/signup` and the page
//! `/admin/signup`: a new user with a new organization it administers.
//! Signup must be switched on, is limited per IP, and refuses a taken
//! email before the costly hash, in words that name no email.

use std::net::IpAddr;

use consign_db::DbError;
use consign_db::users::{self, NewSignup, Organization, User};
use consign_domain::roles::OrganizationKind;
use consign_domain::text::DisplayName;

use crate::AppState;
use crate::actions::invitations::invited_email;
use crate::auth::password;
use crate::auth::rate_limit::{Bucket, ip_key};
use crate::error::{AppError, AppResult, FieldError};

/// What a new account is made of, as typed.
pub struct NewAccount<'a> {
    /// Login email.
    pub email: &'a str,
    /// 8 to 256 characters.
    pub password: String,
    /// The person's name.
    pub name: &'a str,
    /// The new organization's name.
    pub organization_name: &'a str,
    /// A brand (`merchant`) or a 3PL (`threepl`).
    pub organization_kind: OrganizationKind,
}

/// The refusal of a taken email: it cannot be fully uniform (a successful
/// signup signs in at once), so it names no email, and every try counts
/// against the address's signup budget, which bounds enumeration.
pub fn email_refused() -> AppError {
    AppError::Conflict("These details cannot be used to sign up. If you already have an account, log in.".into())
}

/// Signs up from `ip`: every field is checked, and every refused one named,
/// before anything is stored.
pub async fn sign_up(state: &AppState, ip: IpAddr, account: NewAccount<'_>) -> AppResult<(User, Organization)> {
    if !state.config.allow_signup {
        return Err(AppError::Forbidden);
    }
    state.limiter.check(Bucket::Signup, &ip_key(ip)).await?;
    let email = invited_email(account.email);
    let password_length = (8..=256).contains(&account.password.chars().count());
    let name = DisplayName::parse(account.name).map_err(AppError::invalid("name"));
    let organization_name =
        DisplayName::parse(account.organization_name).map_err(AppError::invalid("organization.name"));
    let (Ok(email), true, Ok(name), Ok(organization_name)) = (&email, password_length, &name, &organization_name)
    else {
        let mut problems = Vec::new();
        for refused in [email.err(), name.err(), organization_name.err()].into_iter().flatten() {
            if let AppError::Validation(errors) = refused {
                problems.extend(errors);
            }
        }
        if !password_length {
            problems.push(FieldError::new("password", "must have 8 to 256 characters"));
        }
        return Err(AppError::Validation(problems));
    };
    // A taken email is refused before the costly hash, so a flood of
    // signups for one address costs a lookup each, not an argon2 run.
    if users::get_by_email(&state.db, email).await?.is_some() {
        return Err(email_refused());
    }
    let password_hash = password::hash(account.password).await?;
    let signup = NewSignup {
        email,
        name: name.as_str(),
        password_hash: &password_hash,
        organization_name: organization_name.as_str(),
        organization_kind: account.organization_kind,
    };
    users::sign_up(&state.db, signup).await.map_err(|error| match error {
        DbError::Conflict { .. } => email_refused(),
        other => other.into(),
    })
}
