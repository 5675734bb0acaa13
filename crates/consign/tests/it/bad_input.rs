//! Bad input never yields a 5xx: malformed JSON, wrong types, missing
//! fields, huge bodies, ids that name nothing and query values of the wrong
//! kind answer 4xx problem+json. The operations come from `/openapi.json`,
//! so a new route is covered the day it is documented.

use consign_testkit::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A well-formed id of nothing: bodies are read before ids are looked up.
const SOME_ID: &str = "01a20095-c351-734f-bb2e-855cbbbec971";

/// One documented operation.
struct Operation {
    method: Method,
    /// The path template, such as `/api/v1/orders/{id}`.
    template: String,
    /// The JSON request body's schema (components resolved), if it takes one.
    json_body: Option<Value>,
    /// Names and schemas of its query parameters.
    query: Vec<(String, Value)>,
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &spec["components"]["schemas"][name],
        None => schema,
    }
}

async fn documented_operations(app: &TestApp) -> Vec<Operation> {
    let spec = app.request(Method::GET, "/openapi.json", None, None).await.body;
    let mut operations = Vec::new();
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let json_body = operation["requestBody"]["content"]
                .get("application/json")
                .map(|content| resolve(&spec, &content["schema"]).clone());
            let query = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|param| param["in"] == "query")
                .map(|param| (param["name"].as_str().unwrap().to_owned(), resolve(&spec, &param["schema"]).clone()))
                .collect();
            operations.push(Operation { method, template: template.clone(), json_body, query });
        }
    }
    assert!(operations.len() > 50, "the document lists every operation: {}", operations.len());
    operations
}

/// The path with real-looking values: the brand's id where a brand is
/// named (so the body is checked past the brand lookup), ids of nothing
/// elsewhere.
fn fill(template: &str, brand_id: &str) -> String {
    let brand_path = format!("/api/v1/brands/{brand_id}");
    let mut path = template
        .replacen("/api/v1/brands/{id}", &brand_path, 1)
        .replace("{brand_slug}", "acme")
        .replace("{provider}", "stripe")
        .replace("{kind}", "order.paid")
        .replace("{channel}", "email");
    // Every other parameter is an id: one of nothing.
    while let (Some(start), Some(end)) = (path.find('{'), path.find('}')) {
        path.replace_range(start..=end, SOME_ID);
    }
    path
}

/// A body whose every documented field has the wrong type: a number where
/// a string (or an enum) goes, a string where anything else does.
fn wrong_types(schema: &Value) -> Value {
    let mut body = serde_json::Map::new();
    for (field, property) in schema["properties"].as_object().into_iter().flatten() {
        let types: Vec<&str> = match &property["type"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let wrong = if types.contains(&"string") { json!(12345) } else { json!("not of this type") };
        body.insert(field.clone(), wrong);
    }
    if body.is_empty() {
        body.insert("unexpected".into(), json!([1, {"deep": null}]));
    }
    Value::Object(body)
}

async fn assert_problem(
    app: &TestApp,
    method: &Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
    what: &str,
) -> StatusCode {
    let response = app
        .send(
            app.client
                .request(method.clone(), app.url(path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    assert!(
        response.status.is_client_error(),
        "{what} to {method} {path} answered {}: {}",
        response.status,
        response.text
    );
    assert_eq!(response.header("content-type"), Some("application/problem+json"), "{what} to {method} {path}");
    assert!(!response.code().is_empty(), "{what} to {method} {path} has a code");
    response.status
}

#[tokio::test]
async fn every_documented_operation_answers_bad_bodies_with_4xx_problems() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let mut checked = 0;
    for operation in documented_operations(&app).await {
        let Some(schema) = &operation.json_body else { continue };
        let (method, path) = (&operation.method, fill(&operation.template, brand_id));
        let malformed =
            assert_problem(&app, method, &path, &owner.token, b"{\"name\": ".to_vec(), "malformed JSON").await;
        // Webhooks and callbacks check a signature over the raw body first.
        let signed = operation.template.contains("webhooks") || operation.template.contains("callback");
        if !signed {
            assert_eq!(malformed, StatusCode::BAD_REQUEST, "malformed JSON to {method} {path}");
        }
        assert_problem(&app, method, &path, &owner.token, b"[1, 2, 3]".to_vec(), "an array").await;
        let body = wrong_types(schema).to_string().into_bytes();
        assert_problem(&app, method, &path, &owner.token, body, "wrong types").await;
        assert_problem(&app, method, &path, &owner.token, huge.clone().into_bytes(), "a 2 MiB body").await;
        assert_problem(&app, method, &path, &owner.token, b"\xff\xfe".to_vec(), "not UTF-8").await;
        checked += 1;
    }
    assert!(checked > 30, "{checked} operations take a JSON body");
}

#[tokio::test]
async fn wrong_types_are_422_naming_a_field() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    for operation in documented_operations(&app).await {
        let Some(schema) = &operation.json_body else { continue };
        // Webhooks and callbacks check a signature over the raw body first.
        if operation.template.contains("webhooks") || operation.template.contains("callback") {
            continue;
        }
        let (method, path) = (&operation.method, fill(&operation.template, brand_id));
        let response = app.request(method.clone(), &path, Some(&owner.token), Some(&wrong_types(schema))).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}: {}", response.text);
        assert_eq!(response.code(), "validation_failed", "{method} {path}");
        assert!(response.body["errors"][0]["field"].is_string(), "{method} {path} names a field: {}", response.text);
    }
}

#[tokio::test]
async fn ids_of_nothing_and_bad_query_values_are_4xx_problems() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    for operation in documented_operations(&app).await {
        let method = &operation.method;
        let body = operation.json_body.as_ref().map(|_| json!({}));
        if operation.template.contains('{') {
            for bad_id in ["not-an-id", SOME_ID, "%00%ff", "01a20095-c351-734f-bb2e-855cbbbec971x"] {
                let path = operation.template.split('/').map(|part| if part.starts_with('{') { bad_id } else { part });
                let path: Vec<&str> = path.collect();
                let path = path.join("/");
                let response = app.request(method.clone(), &path, Some(&owner.token), body.as_ref()).await;
                assert!(
                    response.status.is_client_error(),
                    "{method} {path} answered {}: {}",
                    response.status,
                    response.text
                );
                assert_eq!(response.header("content-type"), Some("application/problem+json"), "{method} {path}");
            }
        }
        for (name, schema) in &operation.query {
            let bad_values: &[&str] = match schema["type"].as_str() {
                Some("integer") | Some("number") => &["-1", "x", "99999999999999999999999", "1.5"],
                Some("boolean") => &["maybe"],
                _ => &["not-an-id", "%00", "%ff%fe", "2026-13-45T99:99:99Z"],
            };
            for value in bad_values {
                let path = format!("{}?{name}={value}", fill(&operation.template, brand_id));
                let response = app.request(method.clone(), &path, Some(&owner.token), body.as_ref()).await;
                assert!(
                    !response.status.is_server_error(),
                    "{method} {path} answered {}: {}",
                    response.status,
                    response.text
                );
                if !response.status.is_success() {
                    assert_eq!(response.header("content-type"), Some("application/problem+json"), "{method} {path}");
                }
            }
        }
    }
}

#[tokio::test]
async fn validation_errors_name_each_field() {
    let app = TestApp::spawn().await;
    let response = app
        .post_anonymous(
            "/api/v1/auth/signup",
            json!({"email": "not-an-email", "password": "short", "name": "", "organization": {"name": "", "kind": "merchant"}}),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.code(), "validation_failed");
    let fields: Vec<&str> =
        response.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for expected in ["email", "password", "name", "organization.name"] {
        assert!(fields.contains(&expected), "{expected} missing from {fields:?}");
    }
    let wrong_kind = app
        .post_anonymous(
            "/api/v1/auth/signup",
            json!({"email": "a@example.com", "password": "long enough", "name": "A", "organization": {"name": "O", "kind": "bank"}}),
        )
        .await;
    assert_eq!(wrong_kind.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_kind.body["errors"][0]["field"], "organization.kind");
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = TestApp::spawn_with(consign_web::WebConfig { body_limit_bytes: 256, ..Default::default() }).await;
    let response =
        app.post_anonymous("/api/v1/auth/login", json!({"email": "a@example.com", "password": "p".repeat(400)})).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.code(), "payload_too_large");
}

#[tokio::test]
async fn unknown_ids_and_routes_are_404_problems() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    for path in ["/api/v1/brands/not-an-id", "/api/v1/brands/01a20095-c351-734f-bb2e-855cbbbec971", "/api/v1/nothing"] {
        let response = app.get(path, &owner.token).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.header("content-type"), Some("application/problem+json"));
    }
    let anonymous = app.request(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.code(), "unauthenticated");
}

#[tokio::test]
async fn a_login_next_with_control_characters_falls_back_to_the_dashboard() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    for next in ["/admin\u{1}", "/admin/orders\u{7f}", "/admin\r\nSet-Cookie: x=y"] {
        let mut client = consign_testkit::pages::PageClient::new(&app);
        let form = client.get("/admin/login").await;
        let token = consign_testkit::pages::attribute_after(&form.text, "name=\"_csrf\"", "value").unwrap();
        let login = client
            .post_raw(
                "/admin/login",
                &[("email", &owner.email), ("password", &owner.password), ("_csrf", &token), ("next", next)],
            )
            .await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{next:?}: {}", login.text);
        assert_eq!(login.header("location"), Some("/admin"), "{next:?}");
    }
}

#[tokio::test]
async fn a_unique_conflict_does_not_name_the_schema() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    // Warehouses with one code race: the later inserts hit the unique index.
    let create = || app.post("/api/v1/warehouses", &owner.token, json!({"name": "Main", "code": "WH-RACE"}));
    let answers = futures_util::future::join_all((0..4).map(|_| create())).await;
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CREATED || answer.status == StatusCode::CONFLICT,
            "{}: {}",
            answer.status,
            answer.text
        );
        assert!(!answer.text.contains("UNIQUE") && !answer.text.contains("constraint"), "{}", answer.text);
    }
    assert!(answers.iter().any(|a| a.status == StatusCode::CONFLICT), "the race was not run: {answers:?}");
}

#[tokio::test]
async fn a_nul_character_is_refused_as_bad_input_naming_its_field() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let created =
        app.post("/api/v1/brands", &owner.token, json!({"name": "Ac\u{0}me", "slug": "acme", "currency": "USD"})).await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", created.text);
    assert_eq!(created.body["errors"][0]["field"], "name");
    let searched = app.get("/api/v1/messages/search?q=a%00b", &owner.token).await;
    assert_eq!(searched.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", searched.text);
    assert_eq!(searched.body["errors"][0]["field"], "q");
    let listed = app.get("/api/v1/brands", &owner.token).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0, "nothing was stored");
}
