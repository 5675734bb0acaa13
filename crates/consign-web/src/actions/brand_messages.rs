//! What a brand says to its customers, set up by the API
//! (`api::notifications`, `api::messages`) and the brand's messages page
//! (`pages::brand_messages`) alike: a notification template saved for one
//! kind and channel, and a canned response added.

use consign_db::messages::canned::{self, CannedResponse};
use consign_db::notifications::{self, Template, TemplateChange};
use consign_domain::BrandId;
use consign_domain::messaging::Channel;
use consign_domain::policy::Action;

use crate::AppState;
use crate::error::{AppError, AppResult, FieldError};
use crate::extract::Caller;

/// A template as typed.
pub struct TemplateInput {
    /// Whether this channel sends this kind.
    pub enabled: bool,
    /// The email subject (required for email).
    pub subject: String,
    /// The text, with placeholders.
    pub body: String,
}

/// Saves a brand's template for one kind and channel (brand admins). Every
/// refused field is named. SMS and WhatsApp can be turned on only for a
/// brand an operator approved, unless the installation lets every brand
/// (they cost the operator money and are the favourite of pumping fraud).
pub async fn save_template(
    state: &AppState,
    caller: &Caller,
    brand_id: BrandId,
    kind: &str,
    channel: &str,
    input: TemplateInput,
) -> AppResult<Template> {
    caller.authorize_brand(Action::ManageBrand, brand_id)?;
    let channel: Channel = channel.parse().map_err(|_| AppError::field("channel", "must be email, sms or whatsapp"))?;
    let mut problems = Vec::new();
    if input.subject.chars().count() > 300 {
        problems.push(FieldError::new("subject", "must have at most 300 characters"));
    }
    if channel == Channel::Email && input.subject.trim().is_empty() {
        problems.push(FieldError::new("subject", "is required for email"));
    }
    if !(1..=5000).contains(&input.body.trim().chars().count()) {
        problems.push(FieldError::new("body", "must have 1 to 5000 characters"));
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    if channel != Channel::Email
        && input.enabled
        && !state.config.channels.allow_brand_sms
        && !notifications::messaging_approved(&state.db, brand_id).await?
    {
        return Err(AppError::field("enabled", format!("{channel} needs an operator's approval for this brand")));
    }
    let change = TemplateChange { enabled: input.enabled, subject: input.subject, body: input.body };
    Ok(notifications::save_template(&state.db, caller.scope(), brand_id, kind, channel, change).await?)
}

/// Adds a canned response to the brand (staff who edit its orders); its
/// name is unique per brand.
pub async fn create_canned(
    state: &AppState,
    caller: &Caller,
    brand_id: BrandId,
    name: &str,
    body: &str,
) -> AppResult<CannedResponse> {
    caller.authorize_brand(Action::EditCommerce, brand_id)?;
    let name = name.trim();
    let mut problems = Vec::new();
    if !(1..=100).contains(&name.chars().count()) {
        problems.push(FieldError::new("name", "must have 1 to 100 characters"));
    }
    if !(1..=5000).contains(&body.trim().chars().count()) {
        problems.push(FieldError::new("body", "must have 1 to 5000 characters"));
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    Ok(canned::create(&state.db, caller.scope(), brand_id, name, body).await?)
}
