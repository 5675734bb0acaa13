//! Access management: organization and brand members are invited, listed,
//! changed and removed; 3PL links are listed and removed. Removing someone
//! ends their access at once (sessions, refresh, page sessions) and records
//! `access.revoked` for the live hub; the last org admin stays; inviting
//! never tells whether an email has an account.

use consign_db::Scope;
use consign_db::events::{self, EventFilter};
use consign_testkit::pages::{PageClient, attribute_after};
use consign_testkit::{Sku, TestApp, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn org_members(user: &TestUser) -> String {
    format!("/api/v1/organizations/{}/members", user.organization_id)
}

/// The `access.revoked` events recorded for a user, read from storage (the
/// live hub's input; the feed shows staff only the brands they see), once
/// at least `expected` are visible or 10 s passed.
async fn access_revoked_events(app: &TestApp, user_id: &str, expected: usize) -> Vec<Value> {
    let filter = EventFilter { event_type: Some("access.revoked".into()), after: None };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // On PostgreSQL the feed shows an event once older transactions end.
        let events = events::feed(app.db(), &Scope::system(), &filter, 200).await.unwrap();
        let mine: Vec<Value> = events
            .into_iter()
            .filter(|e| e.aggregate_id == user_id)
            .map(|e| {
                assert_eq!(e.aggregate_type, "user");
                serde_json::to_value(&e.payload).unwrap()
            })
            .collect();
        if mine.len() >= expected || tokio::time::Instant::now() > deadline {
            return mine;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_invited_member_accepts_logs_in_and_sees_the_organization() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;

    let invited = app
        .post(&org_members(&owner), &owner.token, json!({"email": " New@Acme.example ", "role": "org_member"}))
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    assert_eq!(invited.body["email"], "new@acme.example");
    assert_eq!(invited.body["status"], "pending");
    let token = invited.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cin_"), "{token}");

    let pending = app.get(&format!("/api/v1/organizations/{}/invitations", owner.organization_id), &owner.token).await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.text);
    assert_eq!(pending.body["data"][0]["id"], invited.body["id"]);
    assert!(!pending.text.contains(&token), "the token is shown only once");

    let accept = format!("/api/v1/invitations/{token}/accept");
    let no_name = app.post_anonymous(&accept, json!({"password": "a new password"})).await;
    assert_eq!(no_name.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", no_name.text);
    let accepted = app.post_anonymous(&accept, json!({"name": "Nova", "password": "a new password"})).await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text);
    assert_eq!(accepted.body["user"]["email"], "new@acme.example");
    assert_eq!(accepted.body["invitation"]["status"], "accepted");
    let again = app.post_anonymous(&accept, json!({"name": "Nova", "password": "a new password"})).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "an invitation is spent once");

    let login = app
        .post_anonymous("/api/v1/auth/login", json!({"email": "new@acme.example", "password": "a new password"}))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let member = login.body["access_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/v1/me", &member).await;
    assert_eq!(me.body["memberships"][0]["organization"]["id"], owner.organization_id.as_str());
    assert_eq!(me.body["memberships"][0]["role"], "org_member");
    let brands = app.get("/api/v1/brands", &member).await;
    assert_eq!(brands.body["data"][0]["id"], brand["id"]);

    let members = app.get(&org_members(&owner), &member).await;
    assert_eq!(members.status, StatusCode::OK, "{}", members.text);
    let emails: Vec<&str> =
        members.body["data"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), 2);
    assert!(emails.contains(&"owner@acme.example") && emails.contains(&"new@acme.example"));
    assert!(members.body["next_cursor"].is_null());
    let pending = app.get(&format!("/api/v1/organizations/{}/invitations", owner.organization_id), &owner.token).await;
    assert_eq!(pending.body["data"].as_array().unwrap().len(), 0, "accepted invitations are not pending");

    let audit = app.get("/api/v1/audit-log", &owner.token).await;
    for action in ["invitation.create", "invitation.accept"] {
        assert!(audit.text.contains(action), "{action} is audited: {}", audit.text);
    }
}

#[tokio::test]
async fn a_revoked_or_unknown_invitation_cannot_be_accepted() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let invited =
        app.post(&org_members(&owner), &owner.token, json!({"email": "late@acme.example", "role": "org_admin"})).await;
    let id = invited.body["id"].as_str().unwrap();
    let token = invited.body["token"].as_str().unwrap();
    let path = format!("/api/v1/organizations/{}/invitations/{id}", owner.organization_id);
    let revoked = app.request(Method::DELETE, &path, Some(&owner.token), None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let twice = app.request(Method::DELETE, &path, Some(&owner.token), None).await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
    for token in [token, "cin_nothing"] {
        let accepted = app
            .post_anonymous(
                &format!("/api/v1/invitations/{token}/accept"),
                json!({"name": "Late", "password": "late password"}),
            )
            .await;
        assert_eq!(accepted.status, StatusCode::NOT_FOUND, "{}", accepted.text);
        assert_eq!(accepted.code(), "not_found");
    }
    let login = app
        .post_anonymous("/api/v1/auth/login", json!({"email": "late@acme.example", "password": "late password"}))
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "no account was made");
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request_and_is_announced() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let member = app.invite_new_user(&owner, &org_members(&owner), "member@acme.example", "org_member").await;
    let create = |slug: &str| json!({"name": "New", "slug": slug, "currency": "USD"});

    let refused = app.post("/api/v1/brands", &member.token, create("before")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let path = format!("{}/{}", org_members(&owner), member.user_id);
    let promoted = app.request(Method::PATCH, &path, Some(&owner.token), Some(&json!({"role": "org_admin"}))).await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    assert_eq!(promoted.body["role"], "org_admin");
    let created = app.post("/api/v1/brands", &member.token, create("after")).await;
    assert_eq!(created.status, StatusCode::CREATED, "the same token has the new role: {}", created.text);

    let demoted = app.request(Method::PATCH, &path, Some(&owner.token), Some(&json!({"role": "org_member"}))).await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    let refused = app.post("/api/v1/brands", &member.token, create("again")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let revoked = access_revoked_events(&app, &member.user_id, 2).await;
    assert_eq!(revoked.len(), 2, "one access.revoked per role change: {revoked:?}");
    assert_eq!(revoked[0], json!({"user_id": member.user_id}));
    let audit = app.get(&format!("/api/v1/audit-log?entity_id={}", member.user_id), &owner.token).await;
    assert!(audit.text.contains("organization.member_role_change"), "{}", audit.text);
}

#[tokio::test]
async fn a_removed_member_loses_every_session_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.create_brand(&owner, "acme").await;
    let member = app.invite_new_user(&owner, &org_members(&owner), "leaver@acme.example", "org_member").await;
    let mut pages = PageClient::signed_in(&app, &member.email, &member.password).await;
    assert_eq!(app.get("/api/v1/brands", &member.token).await.status, StatusCode::OK);

    let path = format!("{}/{}", org_members(&owner), member.user_id);
    let removed = app.request(Method::DELETE, &path, Some(&owner.token), None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);

    let next = app.get("/api/v1/brands", &member.token).await;
    assert_eq!(next.status, StatusCode::UNAUTHORIZED, "{}", next.text);
    let refresh = app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": member.refresh_token})).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED, "{}", refresh.text);
    let page = pages.get("/admin").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "the page session ended too");
    assert!(page.header("location").unwrap().starts_with("/admin/login"));

    // Logging in again works, but shows nothing of the organization.
    let login =
        app.post_anonymous("/api/v1/auth/login", json!({"email": member.email, "password": member.password})).await;
    let token = login.body["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/brands", token).await.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(app.get(&org_members(&owner), token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.request(Method::DELETE, &path, Some(&owner.token), None).await.status, StatusCode::NOT_FOUND);

    assert_eq!(access_revoked_events(&app, &member.user_id, 1).await, vec![json!({"user_id": member.user_id})]);
    let audit = app.get(&format!("/api/v1/audit-log?entity_id={}", member.user_id), &owner.token).await;
    assert!(audit.text.contains("organization.member_remove"), "{}", audit.text);
}

#[tokio::test]
async fn the_last_org_admin_can_be_neither_demoted_nor_removed() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let own = format!("{}/{}", org_members(&owner), owner.user_id);
    let demote = app.request(Method::PATCH, &own, Some(&owner.token), Some(&json!({"role": "org_member"}))).await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.text);
    assert_eq!(demote.code(), "conflict");
    assert!(demote.body["detail"].as_str().unwrap().contains("at least one org admin"));
    let remove = app.request(Method::DELETE, &own, Some(&owner.token), None).await;
    assert_eq!(remove.status, StatusCode::CONFLICT, "{}", remove.text);

    // With a second admin, the first may step down; then the second is last.
    let second = app.invite_new_user(&owner, &org_members(&owner), "second@acme.example", "org_admin").await;
    let step_down = app.request(Method::PATCH, &own, Some(&owner.token), Some(&json!({"role": "org_member"}))).await;
    assert_eq!(step_down.status, StatusCode::OK, "{}", step_down.text);
    let theirs = format!("{}/{}", org_members(&owner), second.user_id);
    let last = app.request(Method::DELETE, &theirs, Some(&second.token), None).await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.text);
    let members = app.get(&org_members(&owner), &second.token).await;
    let admins = members.body["data"].as_array().unwrap().iter().filter(|m| m["role"] == "org_admin").count();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn only_org_admins_manage_members_and_outsiders_see_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let member = app.invite_new_user(&owner, &org_members(&owner), "member@acme.example", "org_member").await;
    let outsider = app.sign_up("admin@elsewhere.example", "merchant").await;
    let owner_path = format!("{}/{}", org_members(&owner), owner.user_id);
    let invitations = format!("/api/v1/organizations/{}/invitations", owner.organization_id);
    let attempts = [
        (Method::POST, org_members(&owner), Some(json!({"email": "x@acme.example", "role": "org_admin"}))),
        (Method::PATCH, owner_path.clone(), Some(json!({"role": "org_member"}))),
        (Method::DELETE, owner_path.clone(), None),
        (Method::GET, invitations.clone(), None),
    ];
    for (method, path, body) in &attempts {
        let response = app.request(method.clone(), path, Some(&member.token), body.as_ref()).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "member {method} {path}: {}", response.text);
        assert_eq!(response.code(), "forbidden");
        let response = app.request(method.clone(), path, Some(&outsider.token), body.as_ref()).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "outsider {method} {path}: {}", response.text);
    }
    assert_eq!(app.get(&org_members(&owner), &member.token).await.status, StatusCode::OK);
    assert_eq!(app.get(&org_members(&owner), &outsider.token).await.status, StatusCode::NOT_FOUND);
    let members = app.get(&org_members(&owner), &owner.token).await;
    assert_eq!(members.body["data"].as_array().unwrap().len(), 2, "nothing changed");

    let bad_role = app.request(Method::PATCH, &owner_path, Some(&owner.token), Some(&json!({"role": "emperor"}))).await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_email =
        app.post(&org_members(&owner), &owner.token, json!({"email": "not an email", "role": "org_member"})).await;
    assert_eq!(bad_email.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_email.body["errors"][0]["field"], "email");
    let malformed = app
        .send(
            app.client
                .post(app.url("/api/v1/invitations/cin_x/accept"))
                .header("content-type", "application/json")
                .body("{\"password\": "),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn inviting_to_a_brand_answers_alike_whether_or_not_the_email_has_an_account() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    let existing = app.sign_up("existing@elsewhere.example", "merchant").await;
    let path = format!("/api/v1/brands/{brand_id}/members");

    let shape = |response: &Value| -> Value {
        let mut shape = response.clone();
        for volatile in ["id", "email", "token", "expires_at", "created_at"] {
            shape.as_object_mut().unwrap().remove(volatile);
        }
        shape
    };
    let to_existing = app.post(&path, &owner.token, json!({"email": existing.email, "role": "brand_member"})).await;
    let to_unknown =
        app.post(&path, &owner.token, json!({"email": "nobody@nowhere.example", "role": "brand_member"})).await;
    assert_eq!(to_existing.status, StatusCode::CREATED, "{}", to_existing.text);
    assert_eq!(to_unknown.status, to_existing.status);
    assert_eq!(shape(&to_existing.body), shape(&to_unknown.body));
    assert_eq!(
        to_existing.body.as_object().unwrap().keys().collect::<Vec<_>>(),
        to_unknown.body.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_eq!(app.get(&path, &owner.token).await.body["data"].as_array().unwrap().len(), 0, "nobody joined yet");

    // The existing user proves it is them; a stranger holding the link
    // cannot take over their account.
    let accept = format!("/api/v1/invitations/{}/accept", to_existing.body["token"].as_str().unwrap());
    let wrong = app.post_anonymous(&accept, json!({"name": "Mallory", "password": "not their password"})).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    let right = app.post_anonymous(&accept, json!({"password": existing.password})).await;
    assert_eq!(right.status, StatusCode::CREATED, "{}", right.text);
    assert_eq!(right.body["user"]["id"], existing.user_id.as_str());
    let seen = app.get("/api/v1/brands", &existing.token).await;
    assert!(seen.text.contains(brand_id), "the same session sees the brand now: {}", seen.text);
    let members = app.get(&path, &owner.token).await;
    assert_eq!(members.body["data"][0]["email"], existing.email.as_str());
    assert_eq!(members.body["data"][0]["role"], "brand_member");

    let pending = app.get(&format!("/api/v1/brands/{brand_id}/invitations"), &owner.token).await;
    assert_eq!(pending.body["data"][0]["email"], "nobody@nowhere.example", "{}", pending.text);
}

#[tokio::test]
async fn brand_members_are_listed_changed_and_removed() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    let members_path = format!("/api/v1/brands/{brand_id}/members");
    let clerk = app.invite_new_user(&owner, &members_path, "clerk@acme.example", "brand_member").await;
    let brand_path = format!("/api/v1/brands/{brand_id}");

    let patch = app.request(Method::PATCH, &brand_path, Some(&clerk.token), Some(&json!({"name": "Mine"}))).await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    let member_path = format!("{members_path}/{}", clerk.user_id);
    let refused =
        app.request(Method::PATCH, &member_path, Some(&clerk.token), Some(&json!({"role": "brand_admin"}))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a member cannot promote itself");
    let promoted =
        app.request(Method::PATCH, &member_path, Some(&owner.token), Some(&json!({"role": "brand_admin"}))).await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    assert_eq!(promoted.body["role"], "brand_admin");
    let patch = app.request(Method::PATCH, &brand_path, Some(&clerk.token), Some(&json!({"name": "Renamed"}))).await;
    assert_eq!(patch.status, StatusCode::OK, "the role holds on the next request: {}", patch.text);

    let listed = app.get(&format!("{members_path}?limit=1"), &owner.token).await;
    assert_eq!(listed.body["data"][0]["role"], "brand_admin");
    assert!(listed.body["next_cursor"].is_null());

    let removed = app.request(Method::DELETE, &member_path, Some(&owner.token), None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert_eq!(app.get(&brand_path, &clerk.token).await.status, StatusCode::UNAUTHORIZED);
    let refresh = app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": clerk.refresh_token})).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&members_path, &owner.token).await.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(app.request(Method::DELETE, &member_path, Some(&owner.token), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(access_revoked_events(&app, &clerk.user_id, 2).await.len(), 2, "promotion and removal");
    let audit = app.get(&format!("/api/v1/audit-log?entity_id={}", clerk.user_id), &owner.token).await;
    for action in ["brand.member_role_change", "brand.member_remove"] {
        assert!(audit.text.contains(action), "{action}: {}", audit.text);
    }
}

#[tokio::test]
async fn an_unlinked_3pl_no_longer_sees_the_brands_orders() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let threepl = app.sign_up("ops@northwind.example", "threepl").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1200, stock: &[5] }]).await;
    let order = app.checkout("acme", &[("MUG", 1)], "casey@example.com").await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    let order_id = order.body["order"]["id"].as_str().unwrap();
    let fulfillers = format!("/api/v1/brands/{}/fulfillers", shop.brand_id);
    let linked = app.post(&fulfillers, &owner.token, json!({"organization_id": threepl.organization_id})).await;
    assert_eq!(linked.status, StatusCode::NO_CONTENT, "{}", linked.text);

    let listed = app.get(&fulfillers, &owner.token).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["data"][0]["organization_id"], threepl.organization_id.as_str());
    assert_eq!(app.get(&format!("/api/v1/orders/{order_id}"), &threepl.token).await.status, StatusCode::OK);
    let refused = app
        .request(Method::DELETE, &format!("{fulfillers}/{}", threepl.organization_id), Some(&threepl.token), None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a 3PL cannot unlink itself from the brand's settings");

    let link = format!("{fulfillers}/{}", threepl.organization_id);
    let removed = app.request(Method::DELETE, &link, Some(&owner.token), None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert_eq!(app.get(&format!("/api/v1/orders/{order_id}"), &threepl.token).await.status, StatusCode::NOT_FOUND);
    let orders = app.get("/api/v1/orders", &threepl.token).await;
    assert!(!orders.text.contains(order_id), "{}", orders.text);
    assert_eq!(
        app.get(&format!("/api/v1/brands/{}", shop.brand_id), &threepl.token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/me", &threepl.token).await.status, StatusCode::OK, "its own organization remains");
    assert_eq!(app.get(&fulfillers, &owner.token).await.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(app.request(Method::DELETE, &link, Some(&owner.token), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(access_revoked_events(&app, &threepl.user_id, 1).await, vec![json!({"user_id": threepl.user_id})]);
    let audit = app.get(&format!("/api/v1/audit-log?entity_id={}", threepl.organization_id), &owner.token).await;
    assert!(audit.text.contains("brand.remove_fulfiller"), "{}", audit.text);
}

/// The `value` of the invitation link shown once on a settings page.
fn invitation_link(html: &str) -> String {
    attribute_after(html, "id=\"invitation-link\"", "value").expect("the page shows the invitation link")
}

#[tokio::test]
async fn the_settings_pages_invite_change_and_remove_members() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let org_page = format!("/admin/settings/organizations/{}", owner.organization_id);
    let mut admin = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let overview = admin.get("/admin/settings").await;
    assert!(overview.text.contains(&org_page), "{}", overview.text);

    // Without the CSRF token nothing happens.
    let forged =
        admin.post_raw(&format!("{org_page}/members"), &[("email", "x@acme.example"), ("role", "org_admin")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A refused invitation keeps what was typed and says why.
    let refused = admin.post(&format!("{org_page}/members"), &[("email", "bob-at-acme"), ("role", "org_admin")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert!(refused.text.contains("email: must be an email address"), "{}", refused.text);
    assert!(refused.text.contains("value=\"bob-at-acme\""), "{}", refused.text);
    assert!(refused.text.contains("<option value=\"org_admin\" selected>"), "{}", refused.text);
    let pending = app.get(&format!("/api/v1/organizations/{}/invitations", owner.organization_id), &owner.token).await;
    assert_eq!(pending.body["data"].as_array().unwrap().len(), 0);

    let invited =
        admin.post(&format!("{org_page}/members"), &[("email", "bob@acme.example"), ("role", "org_member")]).await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.text);
    let link = invitation_link(&invited.text);
    assert!(link.starts_with("/admin/invitations/cin_"), "{link}");
    let page = admin.get(&org_page).await;
    assert!(page.text.contains("bob@acme.example") && !page.text.contains(&link), "listed, link not shown again");

    // Bob opens the link: a short password is refused with his name kept.
    let mut bob = PageClient::new(&app);
    let form = bob.get(&link).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(form.text.contains("bob@acme.example"));
    let short = bob.post_raw(&link, &[("name", "Bob Builder"), ("password", "short")]).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", short.text);
    assert!(short.text.contains("value=\"Bob Builder\""), "{}", short.text);
    assert!(short.text.contains("password: must be 8 to 256 characters"), "{}", short.text);
    let joined = bob.post_raw(&link, &[("name", "Bob Builder"), ("password", "bobs password")]).await;
    assert_eq!(joined.status, StatusCode::SEE_OTHER, "{}", joined.text);
    assert_eq!(joined.header("location"), Some("/admin/login"));
    let mut bob = PageClient::signed_in(&app, "bob@acme.example", "bobs password").await;
    let seen = bob.get(&org_page).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    assert!(!seen.text.contains("/remove\""), "a member gets no remove buttons");

    // The admin promotes, then removes Bob; his page session ends.
    let members = app.get(&format!("/api/v1/organizations/{}/members", owner.organization_id), &owner.token).await;
    let bob_id =
        members.body["data"].as_array().unwrap().iter().find(|m| m["email"] == "bob@acme.example").unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let promoted = admin.post_and_follow(&format!("{org_page}/members/{bob_id}"), &[("role", "org_admin")]).await;
    assert!(promoted.text.contains("bob@acme.example is now org admin."), "{}", promoted.text);
    assert!(promoted.text.contains("data-confirm=\"Remove bob@acme.example"), "removal asks first");
    let removed = admin.post_and_follow(&format!("{org_page}/members/{bob_id}/remove"), &[]).await;
    assert!(removed.text.contains("Member removed."), "{}", removed.text);
    let after = bob.get("/admin").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);

    // The last admin is told why they cannot step down.
    let last = admin.post_and_follow(&format!("{org_page}/members/{}", owner.user_id), &[("role", "org_member")]).await;
    assert!(last.text.contains("keeps at least one org admin"), "{}", last.text);
}

#[tokio::test]
async fn the_brand_settings_page_manages_members_invitations_and_3pl_links() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let threepl = app.sign_up("ops@northwind.example", "threepl").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    let linked = app
        .post(
            &format!("/api/v1/brands/{brand_id}/fulfillers"),
            &owner.token,
            json!({"organization_id": threepl.organization_id}),
        )
        .await;
    assert_eq!(linked.status, StatusCode::NO_CONTENT);
    let clerk = app
        .invite_new_user(&owner, &format!("/api/v1/brands/{brand_id}/members"), "clerk@acme.example", "brand_member")
        .await;
    let page_path = format!("/admin/settings/brands/{brand_id}");
    let mut admin = PageClient::signed_in(&app, &owner.email, &owner.password).await;

    let page = admin.get(&page_path).await;
    assert!(page.text.contains("clerk@acme.example"), "{}", page.text);
    assert!(page.text.contains("ops@northwind.example org"), "the 3PL link is listed: {}", page.text);

    let invited =
        admin.post(&format!("{page_path}/members"), &[("email", "temp@acme.example"), ("role", "brand_admin")]).await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.text);
    assert!(invited_link_is_shown(&invited.text));
    let pending = app.get(&format!("/api/v1/brands/{brand_id}/invitations"), &owner.token).await;
    let invitation_id = pending.body["data"][0]["id"].as_str().unwrap().to_owned();
    let revoked = admin.post_and_follow(&format!("{page_path}/invitations/{invitation_id}/revoke"), &[]).await;
    assert!(revoked.text.contains("Invitation revoked"), "{}", revoked.text);
    let pending = app.get(&format!("/api/v1/brands/{brand_id}/invitations"), &owner.token).await;
    assert_eq!(pending.body["data"].as_array().unwrap().len(), 0);

    let changed =
        admin.post_and_follow(&format!("{page_path}/members/{}", clerk.user_id), &[("role", "brand_admin")]).await;
    assert!(changed.text.contains("clerk@acme.example is now brand admin."), "{}", changed.text);
    let removed = admin.post_and_follow(&format!("{page_path}/members/{}/remove", clerk.user_id), &[]).await;
    assert!(removed.text.contains("Member removed."), "{}", removed.text);
    assert_eq!(app.get("/api/v1/me", &clerk.token).await.status, StatusCode::UNAUTHORIZED);

    let unlinked =
        admin.post_and_follow(&format!("{page_path}/fulfillers/{}/remove", threepl.organization_id), &[]).await;
    assert!(unlinked.text.contains("3PL unlinked."), "{}", unlinked.text);
    assert_eq!(app.get(&format!("/api/v1/brands/{brand_id}"), &threepl.token).await.status, StatusCode::NOT_FOUND);
    let forged = admin.post_raw(&format!("{page_path}/members/{}/remove", owner.user_id), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "CSRF holds on the new forms");
}

fn invited_link_is_shown(html: &str) -> bool {
    invitation_link(html).starts_with("/admin/invitations/cin_")
}
