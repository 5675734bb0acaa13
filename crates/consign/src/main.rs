//! `consign`: the one binary. `serve` runs the API and the background worker
//! (and, with `--demo`, seeds demo data on an empty database), `migrate`
//! applies migrations, `seed` loads demo data, `admin` manages platform
//! admins, passwords and brands' messaging approval.

mod cli;
mod seed;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use consign_db::{Db, PoolSettings};
use consign_jobs::Runner;
use consign_web::AppState;

use crate::cli::{AdminCommand, Cli, Command, DatabaseArgs, JobsCommand, LogFormat, ServeArgs};

fn main() -> anyhow::Result<()> {
    // Plain `consign` (and so plain `cargo run`) serves the demo, with its
    // printed logins and open signup. `consign serve` is the production
    // start: no demo logins and no open signup unless asked for.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 1 {
        args.push("serve".into());
        args.push("--demo".into());
    }
    let cli = Cli::parse_from(args);
    init_logging(cli.log_format, &cli.log_level);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => {
            let db = connect(&args).await?;
            db.migrate().await.context("migration failed")?;
            tracing::info!("database is up to date");
            db.close().await;
            Ok(())
        }
        Command::Seed(args) => {
            let db = connect(&args).await?;
            db.migrate().await.context("migration failed")?;
            match seed::demo(&db).await? {
                Some(logins) => {
                    println!("Demo data loaded.");
                    seed::print_logins(&logins);
                }
                None => println!("Demo data is already there; nothing to do."),
            }
            db.close().await;
            Ok(())
        }
        Command::Admin { database, command } => {
            let db = connect(&database).await?;
            db.migrate().await.context("migration failed")?;
            let result = admin(&db, command).await;
            db.close().await;
            result
        }
    }
}

async fn connect(args: &DatabaseArgs) -> anyhow::Result<Db> {
    let settings = PoolSettings {
        max_connections: args.db_max_connections,
        group_commit: args.db_group_commit,
        ..PoolSettings::default()
    };
    Db::connect(&args.database_url, &settings).await
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let db = connect(&args.database).await?;
    db.migrate().await.context("migration failed")?;
    // In demo mode the logins are printed at every start, not only the
    // first: the person trying it has usually lost the first screen.
    let demo_logins = if args.demo {
        seed::demo_if_empty(&db).await?;
        seed::demo_logins(&db).await?
    } else {
        None
    };
    let gateway = std::sync::Arc::new(args.gateway().context("cannot load the master key")?);
    let web_config = args.web_config();
    let channels = std::sync::Arc::new(consign_channels::Channels::new((*web_config.channels).clone())?);
    let state = AppState::new(db.clone(), web_config, args.jwt_secret.clone(), gateway.clone()).await?;
    let listener =
        tokio::net::TcpListener::bind(&args.bind).await.with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener.local_addr()?;
    // The URLs a person opens, with an unspecified bind address shown as
    // this machine's loopback.
    let base = match address.ip().is_unspecified() {
        true => format!("http://127.0.0.1:{}", address.port()),
        false => format!("http://{address}"),
    };
    tracing::info!(
        %address,
        engine = ?db.engine(),
        admin = %format!("{base}/admin"),
        docs = %format!("{base}/docs"),
        shop = demo_logins.as_ref().map(|_| format!("{base}/shop/{}", seed::DEMO_SHOP)),
        "Consign is listening"
    );
    if let Some(logins) = &demo_logins {
        println!(
            "Consign is serving the demo. Staff app: {base}/admin · demo shop: {base}/shop/{} · API docs: {base}/docs",
            seed::DEMO_SHOP
        );
        seed::print_logins(logins);
    }
    let keyring = gateway.keyring().context("cannot load the master key")?.clone();
    let runner = args.worker.then(|| {
        let mut runner = Runner::new(db.clone(), args.runner_config());
        let files = state.files.clone();
        let delete_file: consign_jobs::handlers::DeleteFile = std::sync::Arc::new(move |key| {
            let files = files.clone();
            Box::pin(async move { files.delete(&key).await })
        });
        let services = consign_jobs::handlers::Services {
            gateway: gateway.clone(),
            keyring: keyring.clone(),
            channels: channels.clone(),
            delete_file,
            unsent_upload_ttl: Duration::from_secs(args.unsent_upload_ttl_hours.saturating_mul(60 * 60)),
        };
        consign_jobs::handlers::register_every_job(&mut runner, services);
        runner
    });
    if runner.is_none() {
        tracing::info!("the background worker is off (--worker=false): this instance only serves the API");
    }

    // One stop signal for both halves: SIGTERM/Ctrl-C, or the server ending
    // on its own (an error), which must not leave the worker running alone.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let signal = tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        }
    });
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    let server = async {
        let result = consign_web::serve(listener, state, until_stopped(stopped.clone()), grace).await;
        let _ = stop.send(true);
        result
    };
    let worker = async {
        if let Some(runner) = &runner {
            runner.run(until_stopped(stopped.clone())).await;
        }
    };
    let (result, ()) = tokio::join!(server, worker);
    signal.abort();
    db.close().await;
    tracing::info!("stopped");
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

async fn admin(db: &Db, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreatePlatformAdmin { email, name, password, password_stdin } => {
            let password = password_from(password, password_stdin)?;
            let email = email.trim().to_lowercase();
            anyhow::ensure!(password.chars().count() >= 8, "the password must have at least 8 characters");
            let user = match consign_db::users::get_by_email(db, &email).await? {
                Some(user) => user,
                None => {
                    let hash = consign_web::auth::password::hash(password).await?;
                    consign_db::users::create(db, &email, &name, &hash, true).await?
                }
            };
            consign_db::users::grant_platform_admin(db, user.id).await?;
            println!("{email} is a platform admin.");
        }
        AdminCommand::RotateKeys { keys, generate } => {
            if generate {
                anyhow::ensure!(
                    keys.master_key.is_none(),
                    "CONSIGN_MASTER_KEY is set: add the new key to it (last), then run rotate-keys without --generate"
                );
                keys.keyring()?; // creates the file on first use
                let id = consign_payments::Keyring::add_key_to_file(&keys.master_key_file)?;
                println!("Added master key {id} to {}.", keys.master_key_file.display());
            }
            let keyring = keys.keyring()?;
            let (resealed, skipped) = rotate_keys(db, &keyring).await?;
            println!(
                "Re-sealed {resealed} credential(s) under key {}; {skipped} changed meanwhile and were left.",
                keyring.newest_id()
            );
            let (resealed, skipped) = rotate_instance_secrets(db, &keyring).await?;
            println!("Re-sealed {resealed} instance secret(s); {skipped} changed meanwhile and were left.");
        }
        AdminCommand::ApproveMessaging { brand } => {
            let slug = brand.trim().to_lowercase();
            consign_db::notifications::approve_messaging(db, &slug).await.map_err(|error| match error {
                consign_db::DbError::NotFound => anyhow::anyhow!("no brand has the slug {slug}"),
                other => other.into(),
            })?;
            println!("Brand {slug} may now send SMS and WhatsApp and use its own templates.");
        }
        AdminCommand::ResetPassword { email, password, password_stdin } => {
            let password = password_from(password, password_stdin)?;
            let email = email.trim().to_lowercase();
            anyhow::ensure!(password.chars().count() >= 8, "the password must have at least 8 characters");
            let user = consign_db::users::get_by_email(db, &email)
                .await?
                .with_context(|| format!("no user has the email {email}"))?;
            let hash = consign_web::auth::password::hash(password).await?;
            consign_db::users::set_password(db, user.id, &hash).await?;
            println!("Password changed for {email}; its sessions were ended.");
        }
        AdminCommand::Jobs { command: JobsCommand::Requeue { id, dead } } => {
            let ids = match id {
                Some(id) if !dead => vec![id.parse().map_err(|_| anyhow::anyhow!("{id} is not a job id"))?],
                _ => consign_db::jobs::dead_ids(db).await?,
            };
            let mut requeued = 0;
            for job_id in ids {
                match consign_db::alerts::retry_job(db, job_id).await {
                    Ok(true) => requeued += 1,
                    Ok(false) => println!("Job {job_id} is not dead; left as it is."),
                    Err(error) => println!("Job {job_id} was not requeued: {error}"),
                }
            }
            println!("Requeued {requeued} job(s).");
        }
    }
    Ok(())
}

/// The password given with `--password` (or its variable), else the first
/// line of standard input (`--password-stdin`), asked for on a terminal.
fn password_from(given: Option<String>, from_stdin: bool) -> anyhow::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if let (Some(password), false) = (given, from_stdin) {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

/// Re-seals every credential not under the newest key. Answers how many
/// were re-sealed and how many changed while it ran (left as they are).
async fn rotate_keys(db: &Db, keyring: &consign_payments::Keyring) -> anyhow::Result<(usize, usize)> {
    let rows = consign_db::payments::sealed_under_older_keys(db, keyring.newest_id()).await?;
    let (mut resealed, mut skipped) = (0, 0);
    for row in rows {
        let aad = consign_db::payments::credentials_aad(row.organization_id, row.brand_id, &row.provider);
        let sealed = consign_payments::Sealed {
            key_id: row.key_id.clone(),
            nonce: row.nonce.clone(),
            ciphertext: row.ciphertext.clone(),
        };
        let plaintext = keyring
            .open(&sealed, &aad)
            .with_context(|| format!("cannot open the {} credentials of brand {}", row.provider, row.brand_id))?;
        let fresh = keyring.seal(&plaintext, &aad);
        if consign_db::payments::reseal(db, &row, (&fresh.key_id, &fresh.nonce, &fresh.ciphertext)).await? {
            resealed += 1;
        } else {
            skipped += 1;
        }
    }
    Ok((resealed, skipped))
}

/// Re-seals every instance secret (JWT signing key, order-token key, …)
/// not under the newest key, as `rotate_keys` does for credentials.
async fn rotate_instance_secrets(db: &Db, keyring: &consign_payments::Keyring) -> anyhow::Result<(usize, usize)> {
    let (mut resealed, mut skipped) = (0, 0);
    for (name, old) in consign_db::secrets::sealed_under_older_keys(db, keyring.newest_id()).await? {
        let aad = consign_payments::keyring::instance_secret_aad(&name);
        let sealed = consign_payments::Sealed {
            key_id: old.key_id.clone(),
            nonce: old.nonce.clone(),
            ciphertext: old.ciphertext.clone(),
        };
        let plaintext =
            keyring.open(&sealed, &aad).with_context(|| format!("cannot open the instance secret {name}"))?;
        let fresh = keyring.seal(&plaintext, &aad);
        let fresh = consign_db::secrets::SealedSecret {
            key_id: fresh.key_id,
            nonce: fresh.nonce,
            ciphertext: fresh.ciphertext,
        };
        if consign_db::secrets::reseal(db, &name, &old, &fresh).await? {
            resealed += 1;
        } else {
            skipped += 1;
        }
    }
    Ok((resealed, skipped))
}

fn init_logging(format: LogFormat, level: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
