//! Live delivery: `GET /api/v1/live` upgrades to a WebSocket that streams
//! the events a caller may see (new messages, read receipts, thread status
//! and assignment, order and shipment changes) as JSON text frames.
//!
//! One [`LiveHub`] per instance follows the event table (the outbox) in
//! commit order from its position, woken by `LISTEN` on PostgreSQL or by
//! local commits on SQLite, and routes each event to the subscribers
//! allowed to see it: staff by brand, a customer by its order. The outbox
//! is the source of truth, so every instance sharing a database delivers
//! every event, and a lost notification only delays delivery.
//!
//! A client that reconnects with `?after=<last event id>` gets what it
//! missed from the database, then the live stream, with no gap and no
//! duplicate. A client too slow to keep up is disconnected (close code
//! 4000) and resumes the same way.
//!
//! A socket lives only as long as its access: an `access.revoked` event in
//! the outbox (logout, a revoked refresh family, a password reset, a revoked
//! API key, a removed member; see `consign_db::access`) closes every socket
//! of the principals it names with code 4001, on every instance, and a
//! socket opened with an access JWT closes with 4001 when the token expires.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use consign_db::access::AccessRevoked;
use consign_db::events::{self, EventWaker, Position, TailEvent, TailFilter};
use consign_db::{Db, Principal, Scope};
use consign_domain::{BrandId, EventType, OrderId};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::extract::Caller;

/// Frames a subscriber may have queued before it counts as too slow.
const QUEUE: usize = 1024;
/// The largest message (and frame) a client may send. Clients send only
/// pings and closes; anything larger closes the socket (code 1009).
const CLIENT_MESSAGE_LIMIT: usize = 4 * 1024;
/// Events read from the outbox per query.
const BATCH: i64 = 500;
/// The longest the hub waits without a wake-up before looking again.
const IDLE: Duration = Duration::from_secs(1);
/// How soon the hub looks again while committed events wait for an older
/// transaction to finish (PostgreSQL; see `events::held_back`), doubling
/// up to `IDLE` while that transaction runs on.
const HELD_BACK: Duration = Duration::from_millis(2);

/// What a subscriber may see.
#[derive(Clone, Debug)]
enum Audience {
    /// Staff: these brands (None: every brand, a platform admin).
    Staff { brands: Option<HashSet<BrandId>> },
    /// A customer: one order, no internal notes.
    Customer { order_id: OrderId },
}

impl Audience {
    fn of(scope: &Scope) -> Self {
        match scope.principal() {
            Principal::Customer { order_id } => Audience::Customer { order_id: *order_id },
            _ if scope.grants().platform_admin => Audience::Staff { brands: None },
            _ => Audience::Staff { brands: Some(scope.grants().brands.iter().map(|g| g.brand_id).collect()) },
        }
    }

    /// The filter for catching up from the database.
    fn tail_filter(&self) -> TailFilter {
        match self {
            Audience::Staff { brands } => {
                TailFilter { brands: brands.as_ref().map(|b| b.iter().copied().collect()), order_id: None }
            }
            Audience::Customer { order_id } => TailFilter { brands: None, order_id: Some(*order_id) },
        }
    }
}

/// An event rendered for each kind of audience, serialized once.
struct Frames {
    staff: Option<Arc<str>>,
    customer: Option<Arc<str>>,
}

fn render(tail: &TailEvent) -> Frames {
    let event = &tail.event;
    // What staff sockets stream is decided by the event's type;
    // `access.revoked` is never sent to anyone: the hub acts on it.
    let streams = event.event_type.parse::<EventType>().is_ok_and(EventType::streams_to_staff);
    let staff = streams.then(|| frame(event));
    // The one customer allow-list, shared with the timeline.
    let customer = tail.order_id.and_then(|_| events::customer_view(event)).map(|event| frame(&event));
    Frames { staff, customer }
}

fn frame(event: &events::Event) -> Arc<str> {
    serde_json::to_string(event).unwrap_or_default().into()
}

fn frame_for(audience: &Audience, tail: &TailEvent) -> Option<Arc<str>> {
    let frames = render(tail);
    match audience {
        Audience::Staff { brands } => {
            let visible = match (brands, tail.event.brand_id) {
                (None, _) => true,
                (Some(brands), Some(brand_id)) => brands.contains(&brand_id),
                (Some(_), None) => false,
            };
            if visible { frames.staff } else { None }
        }
        Audience::Customer { order_id } => (tail.order_id == Some(*order_id)).then_some(frames.customer).flatten(),
    }
}

struct Subscriber {
    audience: Audience,
    /// Who opened it, to close it when that principal loses access.
    principal: Principal,
    sender: mpsc::Sender<(Position, Arc<str>)>,
    /// Fired when its access is revoked.
    revoked: oneshot::Sender<()>,
}

/// Whether a revocation names this principal.
fn revokes(revoked: &AccessRevoked, principal: &Principal) -> bool {
    match principal {
        Principal::User { user_id, session_id } => {
            revoked.user_id == Some(*user_id) || revoked.session_id == Some(*session_id)
        }
        Principal::ApiKey { key_id } => revoked.api_key_id == Some(*key_id),
        Principal::Customer { order_id } => revoked.order_id == Some(*order_id),
        Principal::System => false,
    }
}

#[derive(Default)]
struct Routes {
    next_id: u64,
    subscribers: HashMap<u64, Subscriber>,
    by_brand: HashMap<BrandId, HashSet<u64>>,
    by_order: HashMap<OrderId, HashSet<u64>>,
    everything: HashSet<u64>,
    /// Everything up to here has been routed; later events reach new
    /// subscribers through their queue.
    position: Position,
    started: bool,
}

impl Routes {
    fn add(&mut self, subscriber: Subscriber) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        match &subscriber.audience {
            Audience::Staff { brands: None } => {
                self.everything.insert(id);
            }
            Audience::Staff { brands: Some(brands) } => {
                for brand in brands {
                    self.by_brand.entry(*brand).or_default().insert(id);
                }
            }
            Audience::Customer { order_id } => {
                self.by_order.entry(*order_id).or_default().insert(id);
            }
        }
        self.subscribers.insert(id, subscriber);
        id
    }

    fn remove(&mut self, id: u64) -> Option<Subscriber> {
        let subscriber = self.subscribers.remove(&id)?;
        fn prune<K: std::hash::Hash + Eq>(map: &mut HashMap<K, HashSet<u64>>, key: K, id: u64) {
            if let Some(set) = map.get_mut(&key) {
                set.remove(&id);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
        match &subscriber.audience {
            Audience::Staff { brands: None } => {
                self.everything.remove(&id);
            }
            Audience::Staff { brands: Some(brands) } => {
                for brand in brands {
                    prune(&mut self.by_brand, *brand, id);
                }
            }
            Audience::Customer { order_id } => prune(&mut self.by_order, *order_id, id),
        }
        Some(subscriber)
    }

    /// Closes every subscriber of the principals a revocation names. Rare
    /// enough to look at every subscriber.
    fn revoke(&mut self, revoked: &AccessRevoked) {
        let ids: Vec<u64> =
            self.subscribers.iter().filter(|(_, s)| revokes(revoked, &s.principal)).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some(subscriber) = self.remove(id) {
                let _ = subscriber.revoked.send(());
            }
        }
    }

    /// Queues the event for everyone allowed to see it; drops subscribers
    /// whose queue is full or gone.
    fn route(&mut self, tail: &TailEvent) {
        if tail.event.event_type == EventType::AccessRevoked.as_str() {
            match serde_json::from_value::<AccessRevoked>(tail.event.payload.0.clone()) {
                Ok(revoked) => self.revoke(&revoked),
                Err(error) => tracing::warn!(%error, event_id = %tail.event.id, "live feed: unreadable revocation"),
            }
            self.position = tail.position;
            return;
        }
        let frames = render(tail);
        let mut dropped = Vec::new();
        let mut send = |ids: Option<&HashSet<u64>>, frame: &Option<Arc<str>>| {
            let (Some(ids), Some(frame)) = (ids, frame) else { return };
            for id in ids {
                if let Some(subscriber) = self.subscribers.get(id)
                    && subscriber.sender.try_send((tail.position, frame.clone())).is_err()
                {
                    dropped.push(*id);
                }
            }
        };
        send(Some(&self.everything), &frames.staff);
        if let Some(brand_id) = tail.event.brand_id {
            send(self.by_brand.get(&brand_id), &frames.staff);
        }
        if let Some(order_id) = tail.order_id {
            send(self.by_order.get(&order_id), &frames.customer);
        }
        for id in dropped {
            self.remove(id);
        }
        self.position = tail.position;
    }
}

/// A subscriber's end of the hub.
struct Subscription {
    id: u64,
    /// Where the hub was when it joined.
    routed: Position,
    receiver: mpsc::Receiver<(Position, Arc<str>)>,
    /// Resolves `Ok` when its access is revoked, `Err` when the hub dropped
    /// it for falling behind.
    revoked: oneshot::Receiver<()>,
}

/// The instance's router of live events. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    db: Db,
    routes: Arc<Mutex<Routes>>,
    /// Open sockets per client IP, for the per-IP cap.
    sockets_per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One socket's place in the per-IP count, given back when dropped (the
/// socket ended, or its upgrade never completed).
struct IpSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(count) = counts.get_mut(&self.ip)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl LiveHub {
    /// A hub over this database; it starts following on first use.
    pub fn new(db: Db) -> Self {
        Self { db, routes: Arc::new(Mutex::new(Routes::default())), sockets_per_ip: Arc::default() }
    }

    /// A place for one more socket from `ip`, unless it has `cap` open.
    fn admit(&self, ip: IpAddr, cap: usize) -> Option<IpSlot> {
        let mut counts = self.sockets_per_ip.lock().ok()?;
        let count = counts.entry(ip).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(IpSlot { ip, counts: self.sockets_per_ip.clone() })
    }

    /// Connected subscribers, for metrics and tests.
    pub fn subscribers(&self) -> usize {
        self.routes.lock().map(|r| r.subscribers.len()).unwrap_or(0)
    }

    async fn subscribe(&self, audience: Audience, principal: Principal) -> AppResult<Subscription> {
        self.start().await?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (revoke, revoked) = oneshot::channel();
        let mut routes = self.routes.lock().map_err(|_| AppError::Internal(anyhow::anyhow!("live routes poisoned")))?;
        let id = routes.add(Subscriber { audience, principal, sender, revoked: revoke });
        Ok(Subscription { id, routed: routes.position, receiver, revoked })
    }

    fn unsubscribe(&self, id: u64) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(id);
        }
    }

    /// Starts the follower once, from the newest final event.
    async fn start(&self) -> AppResult<()> {
        if self.routes.lock().map(|r| r.started).unwrap_or(true) {
            return Ok(());
        }
        let head = events::head(&self.db).await?;
        {
            let mut routes =
                self.routes.lock().map_err(|_| AppError::Internal(anyhow::anyhow!("live routes poisoned")))?;
            if routes.started {
                return Ok(());
            }
            routes.started = true;
            routes.position = head;
        }
        let hub = self.clone();
        tokio::spawn(async move { hub.follow(head).await });
        Ok(())
    }

    async fn follow(self, mut position: Position) {
        let mut waker = EventWaker::new(&self.db);
        let mut held_back_retry = HELD_BACK;
        loop {
            match events::tail(&self.db, position, BATCH, &TailFilter::default()).await {
                Ok(batch) if !batch.is_empty() => {
                    let full = batch.len() as i64 == BATCH;
                    if let Ok(mut routes) = self.routes.lock() {
                        for event in &batch {
                            routes.route(event);
                        }
                    }
                    position = batch.last().map(|e| e.position).unwrap_or(position);
                    if full {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "live feed: cannot read events"),
            }
            if events::held_back(&self.db, position).await.unwrap_or(false) {
                waker.wait(held_back_retry).await;
                held_back_retry = (held_back_retry * 2).min(IDLE);
            } else {
                held_back_retry = HELD_BACK;
                waker.wait(IDLE).await;
            }
        }
    }
}

/// Query of `GET /live`.
#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// Resume after this event id (the `id` of the last frame received).
    pub after: Option<String>,
    /// The bearer token, for clients that cannot set headers on a
    /// WebSocket (browsers): an access token or an order access token.
    pub access_token: Option<String>,
}

/// `GET /api/v1/live`: upgrades to the live WebSocket.
pub async fn live(
    State(state): State<AppState>,
    caller: Option<Caller>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LiveQuery>,
    upgrade: WebSocketUpgrade,
) -> AppResult<Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let (caller, token) = match (caller, query.access_token.as_deref()) {
        (Some(caller), _) => (caller, bearer),
        (None, Some(token)) => {
            (crate::auth::middleware::resolve(&state, token, Default::default()).await?, Some(token))
        }
        (None, None) => return Err(AppError::Unauthenticated("Send Authorization: Bearer <token> or ?access_token=.")),
    };
    // An access JWT's socket ends with the token; keys and order tokens do
    // not expire (they are revoked).
    let expires_at = token.and_then(|token| state.access_tokens.verify(token)).map(|claims| {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(claims.expires_at).unwrap_or(0));
        tokio::time::Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
    });
    let ip = crate::extract::client_ip(&state, &headers, peer);
    subscribe(state, &caller, ip, query.after.as_deref(), expires_at, upgrade).await
}

/// Upgrades to the live WebSocket for a caller already authenticated: by
/// [`live`] from a bearer token, or by the staff pages' `/admin/live` from
/// the page session (whose cookie is not sent to `/api`). The socket closes
/// at `expires_at`, if given, and when the caller's access is revoked. A
/// client `ip` with its cap of sockets open is refused (429).
pub(crate) async fn subscribe(
    state: AppState,
    caller: &Caller,
    ip: IpAddr,
    after: Option<&str>,
    expires_at: Option<tokio::time::Instant>,
    upgrade: WebSocketUpgrade,
) -> AppResult<Response> {
    let slot = state
        .live
        .admit(ip, state.config.live_sockets_per_ip)
        .ok_or(AppError::RateLimited { retry_after_seconds: 5 })?;
    let audience = Audience::of(caller.scope());
    let after = match after {
        Some(id) => Some(
            events::position_of(&state.db, id)
                .await?
                .ok_or_else(|| AppError::field("after", "is not a known event id"))?,
        ),
        None => None,
    };
    let hub = state.live.clone();
    let subscription = hub.subscribe(audience.clone(), caller.scope().principal().clone()).await?;
    let db = state.db.clone();
    // Clients only send pings and closes, and frames go out one event at a
    // time: small buffers keep thousands of idle sockets cheap (the
    // defaults reserve 128 KiB to read per socket).
    let upgrade = upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(CLIENT_MESSAGE_LIMIT)
        .max_frame_size(CLIENT_MESSAGE_LIMIT);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let id = subscription.id;
        run_socket(socket, &db, &audience, after, subscription, expires_at).await;
        hub.unsubscribe(id);
        drop(slot);
    }))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket.send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

async fn run_socket(
    mut socket: WebSocket,
    db: &Db,
    audience: &Audience,
    after: Option<Position>,
    subscription: Subscription,
    expires_at: Option<tokio::time::Instant>,
) {
    let Subscription { routed, mut receiver, mut revoked, .. } = subscription;
    // What was missed: from the client's last event up to where the hub
    // took over when this subscriber joined.
    if let Some(mut position) = after {
        let filter = audience.tail_filter();
        while position < routed {
            let batch = match events::tail(db, position, BATCH, &filter).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "live feed: catch-up failed");
                    return;
                }
            };
            let Some(last) = batch.last() else { break };
            position = last.position;
            for event in batch.iter().filter(|e| e.position <= routed) {
                if let Some(frame) = frame_for(audience, event)
                    && socket.send(WsMessage::Text(frame.as_ref().into())).await.is_err()
                {
                    return;
                }
            }
        }
    }
    let expiry = async move {
        match expires_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    // A client may have seen events (through another instance) that this
    // hub routes only now: never send anything twice.
    let seen = after.unwrap_or_default();
    loop {
        tokio::select! {
            // Access ends before anything else is sent.
            biased;
            outcome = &mut revoked => {
                match outcome {
                    Ok(()) => close(&mut socket, 4001, "access revoked").await,
                    // Dropped by the hub for falling behind.
                    Err(_) => close(&mut socket, 4000, "too slow: reconnect with ?after=<last id>").await,
                }
                return;
            }
            () = &mut expiry => {
                close(&mut socket, 4001, "access token expired").await;
                return;
            }
            frame = receiver.recv() => match frame {
                Some((position, _)) if position <= seen => {}
                Some((_, frame)) => {
                    if socket.send(WsMessage::Text(frame.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                None => {
                    close(&mut socket, 4000, "too slow: reconnect with ?after=<last id>").await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
