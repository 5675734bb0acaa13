//! The demo data `consign seed` (and `serve` on an empty database) loads.

use consign_testkit::{TestApp, TestDb};
use consign_web::WebConfig;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn seed_loads_a_living_demo_with_an_order_in_every_state() {
    let test_db = TestDb::new().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["seed", "--database-url", &test_db.url])
        .output()
        .expect("run consign seed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ops@northwind.example"));

    let app = TestApp::spawn_on(test_db, WebConfig::default()).await;
    let login = app
        .post_anonymous("/api/v1/auth/login", json!({"email": "ops@northwind.example", "password": "consign-demo"}))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.body["access_token"].as_str().unwrap();
    let orders = app.get("/api/v1/orders?limit=200", token).await;
    let states: Vec<(String, String, String)> = orders.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let field = |name: &str| o[name].as_str().unwrap().to_owned();
            (field("status"), field("payment_status"), field("fulfillment_status"))
        })
        .collect();
    for status in ["open", "completed", "cancelled", "expired"] {
        assert!(states.iter().any(|s| s.0 == status), "no {status} order in {states:?}");
    }
    for fulfillment in ["unfulfilled", "partially_shipped", "shipped", "delivered"] {
        assert!(states.iter().any(|s| s.2 == fulfillment), "no {fulfillment} order in {states:?}");
    }
    let levels = app.get("/api/v1/inventory/levels?limit=200", token).await;
    assert!(levels.body["data"].as_array().unwrap().len() >= 18, "stock in two warehouses");
    app.assert_stock_invariants().await;

    // Seeding again changes nothing.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["seed", "--database-url", &app.test_db.url])
        .output()
        .expect("run consign seed again");
    assert!(String::from_utf8_lossy(&again.stdout).contains("already there"));
}

/// `consign serve` on an empty database, as production starts it: runs the
/// binary, waits for its "listening" line, answers the address.
pub(crate) struct ServeProcess {
    child: std::process::Child,
    pub(crate) address: String,
    /// Its "Consign is listening" log line.
    listening: serde_json::Value,
    dir: std::path::PathBuf,
}

impl ServeProcess {
    pub(crate) fn start(database_url: &str, extra: &[&str]) -> Self {
        Self::start_with_env(database_url, extra, &[])
    }

    /// Starts it with these extra environment variables.
    pub(crate) fn start_with_env(database_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::BufRead as _;
        let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("consign-serve-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
            .args(["serve", "--database-url", database_url, "--bind", "127.0.0.1:0", "--log-format", "json"])
            .arg("--master-key-file")
            .arg(dir.join("master.key"))
            .arg("--files-url")
            .arg(format!("file://{}", dir.join("files").display()))
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("CONSIGN_DEMO")
            .env_remove("CONSIGN_ALLOW_SIGNUP")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start consign serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let listening = loop {
            let line = lines.next().expect("consign serve exited before listening").unwrap();
            if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                && entry["message"] == "Consign is listening"
            {
                break entry;
            }
        };
        // Keep draining its log so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, address: format!("http://{}", listening["address"].as_str().unwrap()), listening, dir }
    }
}

impl ServeProcess {
    /// Kills it with SIGKILL: no shutdown, no flush, no goodbye.
    pub(crate) fn kill_9(&mut self) {
        self.child.kill().expect("kill consign serve");
        self.child.wait().expect("reap consign serve");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn serve_on_an_empty_database_creates_no_demo_logins_and_keeps_signup_closed() {
    let test_db = TestDb::new().await;
    let server = ServeProcess::start(&test_db.url, &[]);
    assert_eq!(server.listening["admin"], format!("{}/admin", server.address));
    assert!(server.listening.get("shop").is_none(), "no demo shop without the demo: {}", server.listening);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let login = client
        .post(format!("{}/api/v1/auth/login", server.address))
        .json(&json!({"email": "owner@acme.example", "password": "consign-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    let signup = client
        .post(format!("{}/api/v1/auth/signup", server.address))
        .json(&json!({"email": "new@example.com", "password": "correct horse battery", "name": "New",
                      "organization": {"name": "New org", "kind": "merchant"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn serve_with_demo_seeds_the_demo_logins_and_opens_signup() {
    let test_db = TestDb::new().await;
    let server = ServeProcess::start(&test_db.url, &["--demo"]);
    // The log names where to go.
    let base = &server.address;
    assert_eq!(server.listening["admin"], format!("{base}/admin"), "{}", server.listening);
    assert_eq!(server.listening["docs"], format!("{base}/docs"));
    assert_eq!(server.listening["shop"], format!("{base}/shop/acme"));
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let root = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(root.headers()["location"], "/admin");
    let login = client
        .post(format!("{}/api/v1/auth/login", server.address))
        .json(&json!({"email": "owner@acme.example", "password": "consign-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let signup = client
        .post(format!("{}/api/v1/auth/signup", server.address))
        .json(&json!({"email": "new@example.com", "password": "correct horse battery", "name": "New",
                      "organization": {"name": "New org", "kind": "merchant"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
}
