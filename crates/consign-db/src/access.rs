//! Loss of access as an event in the outbox: `access.revoked`.
//!
//! Whatever ends a caller's access (a logout, a revoked refresh family, a
//! password reset, a revoked API key, a removed member) records one such
//! event in the transaction of the change. Every instance's live hub follows
//! the outbox, so each closes its own sockets of that principal, on any
//! instance sharing the database. The event has no brand: it is never
//! streamed to anyone, the hub only acts on it (a rotated order link names
//! its order, whose customer sockets close).

use consign_domain::{ApiKeyId, EventType, OrderId, OrganizationId, SessionId, UserId};

use serde::{Deserialize, Serialize};

use crate::{DbResult, NewEvent, Tx};

/// Who lost access; at least one id is set. A `user_id` alone means every
/// session of that user (a password reset, a removed member).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRevoked {
    /// Every session of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// This one session (and its page sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// This API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<ApiKeyId>,
    /// The order whose access token was rotated: its customers' sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

/// The `access.revoked` event, filed under `organization_id` (the outbox
/// requires one; it does not narrow whose sockets close). `None` when the
/// revocation names no one.
pub fn revoked_event(organization_id: OrganizationId, revoked: &AccessRevoked) -> Option<NewEvent> {
    let (aggregate_type, aggregate_id) = if let Some(session_id) = revoked.session_id {
        ("session", session_id.to_string())
    } else if let Some(key_id) = revoked.api_key_id {
        ("api_key", key_id.to_string())
    } else if let Some(user_id) = revoked.user_id {
        ("user", user_id.to_string())
    } else if let Some(order_id) = revoked.order_id {
        ("order_access", order_id.to_string())
    } else {
        return None;
    };
    Some(NewEvent {
        organization_id,
        brand_id: None,
        event_type: EventType::AccessRevoked,
        aggregate_type,
        aggregate_id,
        payload: serde_json::to_value(revoked).unwrap_or_default(),
        actor: "system".to_owned(),
    })
}

/// Records `access.revoked` under `organization_id`, in the transaction
/// that revokes.
pub(crate) async fn record_revoked(
    tx: &mut Tx,
    organization_id: OrganizationId,
    revoked: AccessRevoked,
) -> DbResult<()> {
    if let Some(event) = revoked_event(organization_id, &revoked) {
        tx.record_event(event).await?;
    }
    Ok(())
}

/// Records `access.revoked` for something of `user_id` (its session, or the
/// user itself), filed under an organization of the user, in the transaction
/// that revokes.
pub(crate) async fn record_revoked_of_user(tx: &mut Tx, user_id: UserId, revoked: AccessRevoked) -> DbResult<()> {
    let organization_id: Option<OrganizationId> =
        tx.query(ORGANIZATION_OF_USER).bind(user_id).scalar_optional().await?;
    match organization_id {
        Some(organization_id) => record_revoked(tx, organization_id, revoked).await,
        None => Ok(()),
    }
}

/// The organization a user's revocation is filed under: one it belongs to,
/// else one of a brand it is a member of, else any (a platform admin
/// without an organization); none only on an empty installation, where no
/// event could reach a socket anyway. Bind the user id as `$1`.
const ORGANIZATION_OF_USER: &str = "
    SELECT organization_id FROM (
        SELECT organization_id, 0 AS preference FROM org_memberships WHERE user_id = $1
        UNION ALL SELECT organization_id, 1 FROM brand_memberships WHERE user_id = $1
        UNION ALL SELECT id, 2 FROM (SELECT id FROM organizations ORDER BY id LIMIT 1) AS any_organization
    ) AS candidates ORDER BY preference, organization_id LIMIT 1";
