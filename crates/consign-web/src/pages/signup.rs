//! `/admin/signup`: a new organization and its first admin, in the pages.
//! It is the API's signup (`actions::signup`): switched on or off with it,
//! limited per IP with it, refusing in the same words. Like the login form
//! it has no session yet, so its CSRF defence is a double-submit cookie;
//! once signed up, the person is signed in and lands on the dashboard,
//! whose checklist takes them through setting up.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use consign_domain::roles::OrganizationKind;
use serde::Deserialize;

use super::login::{enter, form_cookie_matches, set_form_cookie};
use super::view::{self, Flash};
use super::{PageError, render};
use crate::AppState;
use crate::actions::signup::{self, NewAccount};
use crate::auth::tokens;
use crate::error::AppError;
use crate::pages::PageForm;

const SIGNUP_CSRF_COOKIE: &str = "consign_signup_csrf";

/// The signup routes (public).
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/signup", get(form).post(submit))
}

/// The form's fields, as typed (kept when it is refused).
#[derive(Clone, Default, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    organization_name: String,
    /// `merchant` or `threepl`.
    #[serde(default)]
    kind: String,
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

#[derive(Template)]
#[template(path = "admin/signup.html")]
struct SignupPage {
    csrf: String,
    form: SignupForm,
    threepl: bool,
    flash: Option<Flash>,
}

fn show(state: &AppState, headers: &HeaderMap, form: SignupForm, flash: Option<Flash>) -> Result<Response, PageError> {
    if !state.config.allow_signup {
        return Err(PageError::Refused(
            "This installation does not take new accounts. Ask an administrator of your organization for an invitation."
                .into(),
        ));
    }
    let csrf = tokens::random_hex(32);
    let threepl = form.kind == "threepl";
    let mut response = render(&SignupPage { csrf: csrf.clone(), form, threepl, flash })?;
    set_form_cookie(state, headers, &mut response, SIGNUP_CSRF_COOKIE, "/admin/signup", &csrf);
    Ok(response)
}

/// `GET /admin/signup`.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    show(&state, &headers, SignupForm::default(), None)
}

/// `POST /admin/signup`: signs up and signs in; a refusal shows the form
/// again as it was typed (but the password), with the reason.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<SignupForm>,
) -> Result<Response, PageError> {
    let again = |status: StatusCode, text: String, form: &SignupForm| {
        let kept = SignupForm { password: String::new(), ..form.clone() };
        let mut response = show(&state, &headers, kept, Some(Flash::error(text)))?;
        *response.status_mut() = status;
        Ok::<Response, PageError>(response)
    };
    if !form_cookie_matches(&headers, SIGNUP_CSRF_COOKIE, &form.csrf) {
        return again(StatusCode::FORBIDDEN, "The form had expired. Please send it again.".into(), &form);
    }
    let kind = if form.kind == "threepl" { OrganizationKind::Threepl } else { OrganizationKind::Merchant };
    let account = NewAccount {
        email: &form.email,
        password: form.password.clone(),
        name: &form.name,
        organization_name: &form.organization_name,
        organization_kind: kind,
    };
    let ip = crate::extract::client_ip(&state, &headers, peer);
    match signup::sign_up(&state, ip, account).await {
        Ok((user, _)) => {
            let mut response = enter(&state, &headers, user.id, "/admin").await?;
            let welcome =
                Flash::notice(format!("Welcome, {}. The checklist below takes you through setting up.", user.name));
            view::set_flash(&mut response, &welcome);
            Ok(response)
        }
        Err(AppError::Internal(error)) => Err(PageError::Internal(error)),
        Err(error) => {
            let status = match &error {
                AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                AppError::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            again(status, view::describe(&error), &form)
        }
    }
}
