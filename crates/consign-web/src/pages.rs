//! The web pages: the staff app under `/admin` and each brand's customer
//! pages under `/shop/{slug}`, rendered on the server from askama templates
//! (`crates/consign-web/templates/`), with htmx and two small scripts for
//! the live parts. Every asset is compiled into the binary (`/assets/…`).
//!
//! Staff pages sit behind [`session::require_staff`]: a page-session cookie
//! bound to an auth session, turned into the same [`Caller`] the API builds
//! from a bearer token. Handlers ask the same policy
//! (`Caller::authorize_brand`) and call storage with the same `Scope`, so a
//! page can never do more than the API would. The same middleware checks the
//! session's CSRF token on every state-changing request before any handler
//! runs.
//!
//! Customer pages are public; an order's pages need its access token.

pub mod account;
pub mod assets;
pub mod brand_messages;
pub mod catalog;
pub mod dashboard;
pub mod inbox;
pub mod invitation;
pub mod login;
pub mod orders;
pub mod password_reset;
pub mod providers;
pub mod session;
pub mod settings;
pub mod shop;
pub mod shop_access;
pub mod shop_thread;
pub mod signup;
pub mod socket;
pub mod stock;
pub mod thread;
pub mod view;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use consign_app::order_commands::CommandError;
use consign_db::DbError;
use consign_db::brands::{self, Brand};
use consign_domain::BrandId;

use crate::AppState;
use crate::error::AppError;
use crate::extract::Caller;
use view::{Flash, escape_html};

/// Every page route. Staff routes get the session middleware; the login
/// form, the assets and the customer pages do not.
pub fn router(state: AppState) -> Router<AppState> {
    let staff = Router::new()
        .route("/admin", get(dashboard::page))
        .route("/admin/dashboard/figures", get(dashboard::figures))
        .route("/admin/alerts/badge", get(dashboard::alert_badge))
        .route("/admin/alerts/{id}/retry", post(dashboard::retry_alert))
        .route("/admin/alerts/{id}/resolve", post(dashboard::resolve_alert))
        .route("/admin/logout", post(login::logout))
        .route("/admin/live", get(socket::live))
        .merge(account::router())
        .merge(orders::router())
        .merge(thread::router())
        .merge(inbox::router())
        .merge(catalog::router())
        .merge(stock::router())
        .merge(settings::router())
        .merge(brand_messages::router())
        .merge(providers::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::require_staff));
    Router::new()
        .route("/admin/login", get(login::form).post(login::submit))
        .route("/admin/invitations/{token}", get(invitation::form).post(invitation::submit))
        .merge(password_reset::router())
        .merge(signup::router())
        .route("/admin/", get(|| async { Redirect::to("/admin") }))
        .merge(assets::router())
        .merge(
            shop::router()
                .merge(shop_thread::router())
                .merge(shop_access::router())
                .layer(axum::middleware::from_fn_with_state(state.clone(), shop::branded_not_found)),
        )
        .merge(staff)
}

/// The signed-in staff member of a page request, put in the request by
/// [`session::require_staff`].
#[derive(Clone, Debug)]
pub struct Staff {
    /// The same caller the API would build: scope and policy.
    pub caller: Caller,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    /// Email, shown in the header.
    pub email: String,
    /// Display name.
    pub name: String,
    /// A message from the previous request (a redirect after a form).
    pub flash: Option<Flash>,
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, PageError> {
        parts.extensions.get::<Staff>().cloned().ok_or(PageError::Login)
    }
}

impl Staff {
    /// The frame every staff page shares: who is signed in, the CSRF token,
    /// the flash message and the current section.
    pub fn chrome(&self, section: &'static str, title: impl Into<String>) -> Chrome {
        Chrome {
            section,
            title: title.into(),
            email: self.email.clone(),
            name: self.name.clone(),
            csrf: self.csrf.clone(),
            flash: self.flash.clone(),
        }
    }

    /// The brands the staff member sees, by name.
    pub async fn brands(&self, state: &AppState) -> Result<Vec<Brand>, PageError> {
        let page = consign_db::PageRequest { limit: 200, after: None };
        let mut brands = brands::list(&state.db, self.caller.scope(), &page).await?.data;
        brands.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(brands)
    }

    /// The brand a brand-level page works on: the one asked for (which must
    /// be visible), else the first the caller sees.
    pub async fn pick_brand(&self, state: &AppState, asked: Option<BrandId>) -> Result<(Brand, Vec<Brand>), PageError> {
        let brands = self.brands(state).await?;
        let chosen = match asked {
            Some(id) => brands.iter().find(|b| b.id == id).cloned().ok_or(PageError::NotFound)?,
            None => brands
                .first()
                .cloned()
                .ok_or_else(|| PageError::Refused("You do not see any brand yet. Create one under Settings.".into()))?,
        };
        Ok((chosen, brands))
    }
}

/// The shared frame of a staff page.
#[derive(Clone, Debug)]
pub struct Chrome {
    /// Which navigation entry is current.
    pub section: &'static str,
    /// The page title.
    pub title: String,
    /// Who is signed in.
    pub email: String,
    /// Their name.
    pub name: String,
    /// The CSRF token for the page's forms.
    pub csrf: String,
    /// A message from the previous request.
    pub flash: Option<Flash>,
}

impl Chrome {
    /// Whether `name` is the current section (for `aria-current`).
    pub fn is(&self, name: &str) -> bool {
        self.section == name
    }
}

/// A form body, refused on a page in words when it does not fit the form
/// (a field missing or not of its kind) rather than with axum's plain-text
/// rejection ("Failed to deserialize form body").
pub struct PageForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for PageForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(PageError::Refused(form_refusal(&rejection.body_text()))),
        }
    }
}

/// The words for a form body that does not fit, naming a missing field as
/// a person would (`warehouse_id` is "warehouse").
fn form_refusal(detail: &str) -> String {
    match detail.split("missing field `").nth(1).and_then(|rest| rest.split('`').next()) {
        Some(field) => format!(
            "The form was sent without its {} field. Fill it in and send it again.",
            field.trim_end_matches("_id").replace('_', " ")
        ),
        None => "The form could not be read: a field is not filled in the way the form expects. Check the fields and \
                 send it again."
            .to_owned(),
    }
}

/// What a page handler can fail with.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): go to the login page.
    Login,
    /// No such thing, or one the caller cannot see.
    NotFound,
    /// Refused, with the reason in words.
    Refused(String),
    /// Our fault; logged, never shown.
    Internal(anyhow::Error),
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::NotFound => PageError::NotFound,
            AppError::Unauthenticated(_) => PageError::Login,
            AppError::Internal(error) => PageError::Internal(error),
            other => PageError::Refused(view::describe(&other)),
        }
    }
}

impl From<CommandError> for PageError {
    fn from(error: CommandError) -> Self {
        AppError::from(error).into()
    }
}

impl From<DbError> for PageError {
    fn from(error: DbError) -> Self {
        AppError::from(error).into()
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        PageError::Internal(anyhow::anyhow!("template: {error}"))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, text) = match self {
            PageError::Login => return Redirect::to("/admin/login").into_response(),
            PageError::NotFound => {
                (StatusCode::NOT_FOUND, "Not found", "There is nothing here, or you cannot see it.".to_owned())
            }
            PageError::Refused(text) => (StatusCode::UNPROCESSABLE_ENTITY, "Not possible", text),
            PageError::Internal(error) => {
                let mut response = error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side; it has been logged.",
                );
                response.extensions_mut().insert(crate::error::InternalErrorDetail(format!("{error:#}")));
                return response;
            }
        };
        error_page(status, heading, &text)
    }
}

/// A plain staff error page (no template, so it cannot fail).
fn error_page(status: StatusCode, heading: &str, text: &str) -> Response {
    plain_page(status, heading, text, "<a href=\"/admin\">Dashboard</a>")
}

/// A page with a heading, a text and links, for errors (no template, so it
/// cannot fail). `links` is trusted HTML.
fn plain_page(status: StatusCode, heading: &str, text: &str, links: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{heading}</title><link rel=\"stylesheet\" href=\"/assets/app.css\"></head>\
         <body><main class=\"narrow\"><h1>{heading}</h1><p role=\"alert\">{}</p>\
         <p><a href=\"javascript:history.back()\">Go back</a>{}{links}</p></main></body></html>",
        escape_html(text),
        if links.is_empty() { "" } else { " · " }
    );
    let mut response = (status, Html(body)).into_response();
    with_page_headers(&mut response);
    response
}

/// What a path no route serves answers: `/` goes to the staff app; under
/// `/admin` and `/shop/{slug}` a browser gets a page (the shop's in the
/// brand's frame); anything else, the API's problem answer.
pub async fn not_found(axum::extract::State(state): axum::extract::State<AppState>, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/" {
        return Redirect::to("/admin").into_response();
    }
    if let Some(rest) = path.strip_prefix("/shop/") {
        return shop::not_found(&state, rest.split('/').next().unwrap_or_default()).await;
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return PageError::NotFound.into_response();
    }
    AppError::NotFound.into_response()
}

/// Headers every page carries: no framing, no referrer beyond this site
/// (order pages carry their access token in the URL), a content policy that
/// allows only our own scripts.
pub fn with_page_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Renders a template into a page response.
pub fn render<T: askama::Template>(template: &T) -> Result<Response, PageError> {
    let mut response = Html(template.render()?).into_response();
    with_page_headers(&mut response);
    Ok(response)
}

/// The answer to a staff form: back to `to` with the outcome in words. A
/// thing the caller cannot see stays a 404, as in the API.
pub fn settle<T>(result: Result<T, AppError>, to: &str, success: impl Into<String>) -> Result<Response, PageError> {
    match result {
        Ok(_) => Ok(view::redirect_with(to, Flash::notice(success))),
        Err(AppError::NotFound) => Err(PageError::NotFound),
        Err(AppError::Internal(error)) => Err(PageError::Internal(error)),
        Err(error) => Ok(view::redirect_with(to, Flash::error(view::describe(&error)))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::form_refusal;

    #[test]
    fn a_form_missing_a_field_is_refused_in_words() {
        let text = form_refusal("Failed to deserialize form body: missing field `warehouse_id`");
        assert_eq!(text, "The form was sent without its warehouse field. Fill it in and send it again.");
        assert!(!form_refusal("Failed to deserialize form body: invalid digit").contains("deserialize"));
    }

    /// The Rust files under `dir`, and `dir.rs` beside it (the module's own
    /// file).
    fn module_files(dir: &Path) -> Vec<PathBuf> {
        fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("a source directory").filter_map(|entry| entry.ok()) {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    found.push(path);
                }
            }
        }
        let mut found = vec![dir.with_extension("rs")];
        walk(dir, &mut found);
        found.sort();
        found
    }

    /// Each line of `files`, comments aside (a doc may name the module it
    /// is about), that contains one of `needles`.
    fn offending_lines(files: &[PathBuf], needles: &[&str]) -> Vec<String> {
        let mut offenders = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file).expect("a source file");
            for (number, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                if needles.iter().any(|needle| line.contains(needle)) {
                    offenders.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
                }
            }
        }
        offenders
    }

    /// The pages and the API are two front ends over the same use cases
    /// (`crate::actions`, `crate::files`, `crate::extract`): a page that
    /// calls into an API handler module ties the pages to the JSON API's
    /// shape and hides the shared logic where the next change misses it.
    #[test]
    fn pages_do_not_import_api_handlers() {
        let pages = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/pages"));
        // Spelled in two halves so that this file, which is checked too,
        // does not match itself.
        let needles = [concat!("crate::", "api::"), concat!("use crate::", "api")];
        let offenders = offending_lines(&module_files(pages), &needles);
        assert!(
            offenders.is_empty(),
            "pages must not import the API handlers; move the shared logic to crate::actions (or crate::files, \
             crate::extract, crate::error):\n{}",
            offenders.join("\n")
        );
    }

    /// The other way round: an API handler never reaches into a page module.
    #[test]
    fn api_handlers_do_not_import_pages() {
        let api = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api"));
        let offenders = offending_lines(&module_files(api), &["crate::pages", "super::pages"]);
        assert!(
            offenders.is_empty(),
            "the API handlers must not import the pages; move the shared logic to crate::actions:\n{}",
            offenders.join("\n")
        );
    }
}
