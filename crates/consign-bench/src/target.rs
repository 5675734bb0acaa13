//! The server under test: one that is already running (`--url`), or a
//! `consign` binary this program starts on a database it creates
//! (`--spawn`) and removes again at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::Connection as _;

use crate::cli::{Args, Scenario};

/// Where the benchmark sends its requests.
pub struct Target {
    /// Base URL, such as `http://127.0.0.1:41234`.
    pub base_url: String,
    /// The server's database, when known (always with `--spawn`).
    pub database_url: Option<String>,
    /// `sqlite`, `postgres` or `unknown`.
    pub engine: &'static str,
    spawned: Option<Spawned>,
}

struct Spawned {
    child: tokio::process::Child,
    work_dir: PathBuf,
    log_path: PathBuf,
    postgres: Option<PostgresDatabase>,
    keep: bool,
}

/// A PostgreSQL database this program created.
struct PostgresDatabase {
    /// The same server's `postgres` database, to create and drop from.
    admin_url: String,
    name: String,
}

/// Names the engine of a database URL.
pub fn engine_of(url: Option<&str>) -> &'static str {
    match url {
        Some(url) if url.starts_with("sqlite:") => "sqlite",
        Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => "postgres",
        _ => "unknown",
    }
}

impl Target {
    /// Uses a running server, or starts one.
    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        match &args.url {
            Some(url) => Ok(Self {
                base_url: url.trim_end_matches('/').to_owned(),
                database_url: args.database_url.clone(),
                engine: engine_of(args.database_url.as_deref()),
                spawned: None,
            }),
            None => Self::spawn(args).await,
        }
    }

    async fn spawn(args: &Args) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let server = exe.with_file_name(format!("consign{}", std::env::consts::EXE_SUFFIX));
        anyhow::ensure!(
            server.is_file(),
            "--spawn needs the consign binary at {} (build it with `cargo build --release -p consign`)",
            server.display()
        );
        let work_dir = std::env::temp_dir().join(format!("consign-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&work_dir).with_context(|| format!("cannot create {}", work_dir.display()))?;
        let database_url = match &args.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", work_dir.join("consign.db").display()),
        };
        let engine = engine_of(Some(&database_url));
        let postgres = match engine {
            "postgres" => Some(create_postgres_database(&database_url, args.replace_database).await?),
            "sqlite" => None,
            _ => anyhow::bail!("--database-url must be sqlite://… or postgres://…"),
        };
        let database_url = match &postgres {
            Some(database) => with_database(&database_url, &database.name),
            None => database_url,
        };

        // A free port: bind, read, release. Another process could take it in
        // between, in which case the server fails to start and says so.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port")?
            .port();
        let bind = format!("127.0.0.1:{port}");
        let log_path = work_dir.join("server.log");
        let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = tokio::process::Command::new(&server)
            .arg("serve")
            // Only the pages scenario reads the demo data; the others make
            // their own.
            .args(["--bind", &bind, "--database-url", &database_url])
            .args(["--demo", if args.scenario == Scenario::Pages { "true" } else { "false" }])
            // Access-log lines for every request would cost the server CPU
            // it shares with us; warnings and errors still go to the log.
            .args(["--log-level", "warn"])
            // Long runs outlive the default 15-minute access token.
            .args(["--access-token-ttl-seconds", "86400"])
            // Every simulated client shares the loopback address.
            .args(["--live-sockets-per-ip", "1000000"])
            // The benchmark signs up its own staff, and its load comes from
            // one address, one customer email and one token: the abuse
            // limits would measure themselves, not the server.
            .args(["--allow-signup", "true"])
            .args(["--signup-limit-per-ip", "off", "--checkout-limit-per-ip", "off"])
            .args(["--checkout-limit-per-email", "off", "--unpaid-orders-per-email", "4294967295"])
            .args(["--max-units-per-order", "9223372036854775807"])
            .args(["--upload-limit-per-caller", "off", "--search-limit-per-caller", "off"])
            .args(["--message-limit-per-caller", "off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", server.display()))?;
        let mut target = Self {
            base_url: format!("http://{bind}"),
            database_url: Some(database_url),
            engine,
            spawned: Some(Spawned { child, work_dir, log_path, postgres, keep: args.keep_database }),
        };
        if let Err(error) = target.wait_until_ready().await {
            target.stop().await;
            return Err(error);
        }
        Ok(target)
    }

    /// Polls `/readyz` until it answers 200, the server exits, or a minute passes.
    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}/readyz", self.base_url);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(spawned) = &mut self.spawned
                && let Some(status) = spawned.child.try_wait()?
            {
                anyhow::bail!(
                    "the consign server exited ({status}) before it was ready; its log:\n{}",
                    tail(&spawned.log_path, 30)
                );
            }
            anyhow::ensure!(Instant::now() < deadline, "the consign server was not ready within 60 s at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The spawned server's resident memory, from `/proc` (Linux only).
    pub fn server_rss_mib(&self) -> Option<f64> {
        let pid = self.spawned.as_ref()?.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
        Some((kib / 1024.0 * 10.0).round() / 10.0)
    }

    /// Whether the server shares this machine (spawned, or a loopback URL),
    /// so its CPU use competes with the clients'.
    pub fn is_local(&self) -> bool {
        let host = self.base_url.split_once("://").map_or(self.base_url.as_str(), |(_, rest)| rest);
        self.spawned.is_some()
            || ["127.", "localhost", "[::1]", "0.0.0.0"].iter().any(|prefix| host.starts_with(prefix))
    }

    /// A line describing where the server runs, for the progress output.
    pub fn describe(&self) -> String {
        match &self.spawned {
            Some(spawned) => format!(
                "spawned consign (pid {}) at {}, {} database, log {}",
                spawned.child.id().map_or_else(|| "?".to_owned(), |pid| pid.to_string()),
                self.base_url,
                self.engine,
                spawned.log_path.display()
            ),
            None => format!("running consign at {} ({} database)", self.base_url, self.engine),
        }
    }

    /// Stops a spawned server (SIGTERM, then SIGKILL after 10 s) and removes
    /// what was created for it unless `--keep-database`.
    pub async fn stop(&mut self) {
        let Some(mut spawned) = self.spawned.take() else { return };
        if let Some(pid) = spawned.child.id() {
            // tokio only offers SIGKILL; a graceful stop lets the server
            // close its pools (and checkpoint the SQLite WAL) first.
            let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(10), spawned.child.wait()).await.is_err() {
            let _ = spawned.child.kill().await;
        }
        if spawned.keep {
            println!(
                "kept the database {} and {}",
                self.database_url.as_deref().unwrap_or("?"),
                spawned.work_dir.display()
            );
            return;
        }
        if let Some(database) = &spawned.postgres
            && let Err(error) = drop_postgres_database(database).await
        {
            eprintln!("warning: could not drop database {}: {error:#}", database.name);
        }
        if let Err(error) = std::fs::remove_dir_all(&spawned.work_dir) {
            eprintln!("warning: could not remove {}: {error}", spawned.work_dir.display());
        }
    }
}

/// The database name of a PostgreSQL URL (`consign_bench` when it names none).
fn database_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    let name = path.split('?').next().unwrap_or("");
    if name.is_empty() { "consign_bench".to_owned() } else { name.to_owned() }
}

/// The URL with its database replaced (or added), query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, query) = match rest.split_once('?') {
        Some((before, query)) => (before, format!("?{query}")),
        None => (rest, String::new()),
    };
    let host = authority.split_once('/').map_or(authority, |(host, _)| host);
    format!("{scheme}://{host}/{name}{query}")
}

async fn create_postgres_database(url: &str, replace: bool) -> anyhow::Result<PostgresDatabase> {
    let name = database_name(url);
    // The name goes into DDL unquoted, and this program drops it at the end:
    // keep it to a plain identifier and never a system database.
    anyhow::ensure!(
        name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_'),
        "database name {name:?} must be lowercase letters, digits and underscores"
    );
    anyhow::ensure!(
        !matches!(name.as_str(), "postgres" | "template0" | "template1"),
        "refusing to use (and later drop) the system database {name:?}: name a scratch database such as consign_bench"
    );
    let admin_url = with_database(url, "postgres");
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if exists {
        anyhow::ensure!(
            replace,
            "database {name} already exists; pass --replace-database to drop and recreate it, or name another"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut admin).await?;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    let _ = admin.close().await;
    Ok(PostgresDatabase { admin_url, name })
}

async fn drop_postgres_database(database: &PostgresDatabase) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(&database.admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database.name)))
        .execute(&mut admin)
        .await?;
    let _ = admin.close().await;
    Ok(())
}

/// The last `lines` lines of a file, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_comes_from_the_url_path() {
        assert_eq!(database_name("postgres://postgres@127.0.0.1:5432/consign_bench"), "consign_bench");
        assert_eq!(database_name("postgres://postgres@127.0.0.1:5432/bench2?sslmode=disable"), "bench2");
        assert_eq!(database_name("postgres://postgres@127.0.0.1:5432"), "consign_bench");
    }

    #[test]
    fn replacing_the_database_keeps_host_and_query() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/a?sslmode=disable", "postgres"),
            "postgres://u:p@h:5432/postgres?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
    }
}
