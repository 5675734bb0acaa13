//! Tenancy: another organization's resources answer 404 on every endpoint
//! that takes an id, and nothing changes; 3PLs see the brands they fulfil
//! for; brand members see only their brand; roles are enforced.

use consign_testkit::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every endpoint that names a resource by id, as (method, path, body).
/// `{brand}` and `{key}` are replaced by the victim's ids.
fn id_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/brands/{brand}", None),
        (Method::PATCH, "/api/v1/brands/{brand}", Some(json!({"name": "Pwned"}))),
        (Method::GET, "/api/v1/brands/{brand}/members", None),
        (
            Method::POST,
            "/api/v1/brands/{brand}/members",
            Some(
                json!({"email": "intruder@example.com", "role": "brand_admin", "name": "I", "password": "intruder-pass"}),
            ),
        ),
        (Method::POST, "/api/v1/brands/{brand}/fulfillers", Some(json!({"organization_id": "{intruder_org}"}))),
        (Method::GET, "/api/v1/api-keys?brand_id={brand}", None),
        (Method::POST, "/api/v1/api-keys", Some(json!({"brand_id": "{brand}", "name": "stolen"}))),
        (Method::DELETE, "/api/v1/api-keys/{key}", None),
    ]
}

fn fill(text: &str, brand: &str, key: &str, intruder_org: &str) -> String {
    text.replace("{brand}", brand).replace("{key}", key).replace("{intruder_org}", intruder_org)
}

#[tokio::test]
async fn another_tenants_resources_answer_404_and_stay_unchanged() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@victim.example", "merchant").await;
    let brand = app.create_brand(&owner, "victim").await;
    let brand_id = brand["id"].as_str().unwrap();
    let key = app.post("/api/v1/api-keys", &owner.token, json!({"brand_id": brand_id, "name": "WMS"})).await;
    let key_id = key.body["id"].as_str().unwrap();
    let key_secret = key.body["key"].as_str().unwrap();

    // Intruders: an admin of another merchant, and of a 3PL that does not
    // fulfil for the victim.
    let merchant = app.sign_up("admin@intruder.example", "merchant").await;
    let threepl = app.sign_up("admin@other3pl.example", "threepl").await;
    for intruder in [&merchant, &threepl] {
        for (method, path, body) in id_endpoints() {
            let path = fill(path, brand_id, key_id, &threepl.organization_id);
            let body = body.map(|b| {
                serde_json::from_str(&fill(&b.to_string(), brand_id, key_id, &threepl.organization_id)).unwrap()
            });
            let response = app.request(method.clone(), &path, Some(&intruder.token), body.as_ref()).await;
            if path.starts_with("/api/v1/api-keys?") {
                // A filtered list of someone else's brand: 404 like any id.
                assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}: {}", response.text);
            } else {
                assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}: {}", response.text);
                assert_eq!(response.code(), "not_found");
            }
        }
        let listed = app.get("/api/v1/brands", &intruder.token).await;
        assert!(!listed.text.contains(brand_id), "another tenant's brand must not be listed");
    }

    // Nothing changed.
    let after = app.get(&format!("/api/v1/brands/{brand_id}"), &owner.token).await;
    assert_eq!(after.body["name"], brand["name"]);
    assert_eq!(after.body["version"], 1);
    let members = app.get(&format!("/api/v1/brands/{brand_id}/members"), &owner.token).await;
    assert_eq!(members.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(app.get(&format!("/api/v1/brands/{brand_id}"), key_secret).await.status, StatusCode::OK);
    let keys = app.get(&format!("/api/v1/api-keys?brand_id={brand_id}"), &owner.token).await;
    assert_eq!(keys.body["data"].as_array().unwrap().len(), 1, "no key was minted by an intruder");
    let me = app.get("/api/v1/me", &threepl.token).await;
    assert_eq!(me.body["brands"].as_array().unwrap().len(), 0, "the 3PL was not linked");
}

#[tokio::test]
async fn a_3pl_sees_the_brands_it_fulfils_for_but_cannot_manage_them() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let threepl = app.sign_up("ops@northwind.example", "threepl").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    let path = format!("/api/v1/brands/{brand_id}");

    assert_eq!(app.get(&path, &threepl.token).await.status, StatusCode::NOT_FOUND);
    let linked = app
        .post(&format!("{path}/fulfillers"), &owner.token, json!({"organization_id": threepl.organization_id}))
        .await;
    assert_eq!(linked.status, StatusCode::NO_CONTENT, "{}", linked.text);

    assert_eq!(app.get(&path, &threepl.token).await.status, StatusCode::OK);
    let listed = app.get("/api/v1/brands", &threepl.token).await;
    assert_eq!(listed.body["data"][0]["id"], brand_id);
    let patch = app.request(Method::PATCH, &path, Some(&threepl.token), Some(&json!({"name": "Mine now"}))).await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    assert_eq!(patch.code(), "forbidden");
    let key = app.post("/api/v1/api-keys", &threepl.token, json!({"brand_id": brand_id, "name": "k"})).await;
    assert_eq!(key.status, StatusCode::FORBIDDEN);

    // A merchant organization cannot be made a fulfiller.
    let merchant = app.sign_up("other@merchant.example", "merchant").await;
    let wrong = app
        .post(&format!("{path}/fulfillers"), &owner.token, json!({"organization_id": merchant.organization_id}))
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_brand_member_sees_only_its_brand_and_cannot_administer_it() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let sister = app.create_brand(&owner, "acme-kids").await;
    let brand_id = brand["id"].as_str().unwrap();

    let clerk = app
        .invite_new_user(&owner, &format!("/api/v1/brands/{brand_id}/members"), "clerk@acme.example", "brand_member")
        .await
        .token;

    let listed = app.get("/api/v1/brands", &clerk).await;
    let ids: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![brand_id]);
    assert_eq!(
        app.get(&format!("/api/v1/brands/{}", sister["id"].as_str().unwrap()), &clerk).await.status,
        StatusCode::NOT_FOUND
    );
    let patch = app
        .request(Method::PATCH, &format!("/api/v1/brands/{brand_id}"), Some(&clerk), Some(&json!({"name": "X"})))
        .await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    let create =
        app.post("/api/v1/brands", &clerk, json!({"name": "New", "slug": "clerk-brand", "currency": "USD"})).await;
    assert!(matches!(create.status, StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY), "{}", create.text);
}

#[tokio::test]
async fn an_org_member_cannot_create_brands_but_an_org_admin_can() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let created =
        app.post("/api/v1/brands", &owner.token, json!({"name": "Acme", "slug": "acme", "currency": "EUR"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["organization_id"], owner.organization_id.as_str());
    assert_eq!(created.header("etag"), Some("\"1\""));
    let taken =
        app.post("/api/v1/brands", &owner.token, json!({"name": "Acme 2", "slug": "acme", "currency": "EUR"})).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn if_match_guards_brand_updates() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let path = format!("/api/v1/brands/{}", brand["id"].as_str().unwrap());
    let patch = |version: &str, name: &str| {
        app.send(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&owner.token)
                .header("if-match", version)
                .json(&json!({"name": name})),
        )
    };
    let first = patch("\"1\"", "First").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["version"], 2);
    let stale = patch("\"1\"", "Stale").await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "precondition_failed");
    assert_eq!(app.get(&path, &owner.token).await.body["name"], "First");
    let unconditional =
        app.request(Method::PATCH, &path, Some(&owner.token), Some(&json!({"reservation_ttl_seconds": 600}))).await;
    assert_eq!(unconditional.status, StatusCode::OK);
    assert_eq!(unconditional.body["version"], 3);
    let bad = patch("yesterday", "Bad").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn lists_paginate_with_cursors() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    for i in 0..5 {
        app.create_brand(&owner, &format!("brand-{i}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/brands?limit=2".to_owned();
    loop {
        let page = app.get(&path, &owner.token).await;
        assert_eq!(page.status, StatusCode::OK);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|b| b["slug"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/brands?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, vec!["brand-4", "brand-3", "brand-2", "brand-1", "brand-0"]);
    for bad in ["limit=0", "limit=201", "limit=ten"] {
        let response = app.get(&format!("/api/v1/brands?{bad}"), &owner.token).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(response.code(), "validation_failed");
    }
}
