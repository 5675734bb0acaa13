//! Account emails over real SMTP: a forgotten password is reset from an
//! emailed link that works once, and an invitation is emailed to the
//! invitee with the link the inviter was shown. Neither tells anyone
//! whether an account exists.

use std::sync::Arc;

use consign_channels::{ChannelsConfig, EmailConfig};
use consign_testkit::pages::PageClient;
use consign_testkit::providers::smtp::{ReceivedEmail, SmtpServer};
use consign_testkit::{TestApp, TestResponse};
use consign_web::WebConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

const PUBLIC: &str = "https://consign.test";

async fn emailing_app() -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let channels = ChannelsConfig {
        email: Some(EmailConfig {
            smtp_url: smtp.url.clone(),
            from: "support@consign.test".into(),
            inbound_domain: "in.consign.test".into(),
            mailgun_signing_key: None,
        }),
        public_base_url: Some(PUBLIC.into()),
        max_delivery_attempts: 3,
        ..ChannelsConfig::default()
    };
    let app = TestApp::spawn_with(WebConfig { channels: Arc::new(channels), ..WebConfig::default() }).await;
    (app, smtp)
}

/// Runs the due jobs (each sends its email before it finishes), then
/// waits, with the SMTP server's deadline, for `count` emails.
async fn emails_after_jobs(app: &TestApp, smtp: &SmtpServer, count: usize) -> Vec<ReceivedEmail> {
    app.run_jobs().await;
    smtp.wait_for(count).await
}

/// The path of the first `{PUBLIC}{prefix}…` link in an email.
fn link_path(mail: &ReceivedEmail, prefix: &str) -> String {
    let body = mail.body();
    let start = body.find(&format!("{PUBLIC}{prefix}")).unwrap_or_else(|| panic!("no {prefix} link in {body}"));
    let link: String = body[start + PUBLIC.len()..].chars().take_while(|c| !c.is_whitespace()).collect();
    link
}

async fn ask_for_a_link(app: &TestApp, email: &str) -> TestResponse {
    let asked = PageClient::new(app).post_raw("/admin/forgot-password", &[("email", email)]).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.text);
    assert_eq!(asked.header("location"), Some("/admin/forgot-password?sent=1"), "the same answer for {email}");
    asked
}

#[tokio::test]
async fn a_forgotten_password_is_reset_from_the_emailed_link_once_and_every_session_ends() {
    let (app, smtp) = emailing_app().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let mut browser = PageClient::new(&app);
    let login = browser.get("/admin/login").await;
    assert!(login.text.contains("href=\"/admin/forgot-password\""), "{}", login.text);
    let form = browser.get("/admin/forgot-password").await;
    assert!(form.text.contains("action=\"/admin/forgot-password\""), "{}", form.text);

    // An unknown address and the real one get the same answer; only the
    // real one gets an email.
    ask_for_a_link(&app, "nobody@acme.example").await;
    ask_for_a_link(&app, " Owner@Acme.example ").await;
    let mails = emails_after_jobs(&app, &smtp, 1).await;
    app.run_jobs().await;
    assert_eq!(smtp.received().len(), 1, "one email, to the account's address only");
    assert_eq!(mails[0].rcpt_to, ["owner@acme.example"]);
    assert_eq!(mails[0].header("Subject").as_deref(), Some("Reset your Consign password"));
    let link = link_path(&mails[0], "/admin/reset-password/");
    let sent = browser.get("/admin/forgot-password?sent=1").await;
    assert!(sent.text.contains("If an account uses that address"), "{}", sent.text);

    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("owner@acme.example"), "{}", page.text);
    let mut forged = link.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let refused = browser.get(&forged).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("not valid any more"), "{}", refused.text);

    // Refusals keep the form and name the problem.
    for (new, confirm, problem) in
        [("short", "short", "8 to 256 characters"), ("a long new password", "another one", "not the same")]
    {
        let answer = browser.post_raw(&link, &[("new_password", new), ("confirm_password", confirm)]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text);
        assert!(answer.text.contains(problem) && answer.text.contains("id=\"set-password\""), "{}", answer.text);
    }
    let fields = [("new_password", "a brand new password"), ("confirm_password", "a brand new password")];
    let done = browser.post_raw(&link, &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.header("location"), Some("/admin/login"));

    // Every session ended; only the new password works; the link is spent.
    assert_eq!(app.get("/api/v1/me", &owner.token).await.status, StatusCode::UNAUTHORIZED);
    let old = json!({"email": owner.email, "password": owner.password});
    assert_eq!(app.post_anonymous("/api/v1/auth/login", old).await.status, StatusCode::UNAUTHORIZED);
    let new = json!({"email": owner.email, "password": "a brand new password"});
    assert_eq!(app.post_anonymous("/api/v1/auth/login", new).await.status, StatusCode::OK);
    assert_eq!(browser.get(&link).await.status, StatusCode::UNPROCESSABLE_ENTITY, "a link works once");
    let again = browser.post_raw(&link, &[("new_password", "third password"), ("confirm_password", "third password")]);
    assert_eq!(again.await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let third = json!({"email": owner.email, "password": "third password"});
    assert_eq!(app.post_anonymous("/api/v1/auth/login", third).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_address_gets_a_few_reset_emails_an_hour_and_its_asker_cannot_tell() {
    // The budget is an hour's: a run that crossed into the next hour is
    // repeated on a fresh app.
    let sent = consign_testkit::in_one_window(3600, || async {
        let (app, smtp) = emailing_app().await;
        app.sign_up("owner@acme.example", "merchant").await;
        for _ in 0..7 {
            ask_for_a_link(&app, "owner@acme.example").await;
        }
        emails_after_jobs(&app, &smtp, 5).await;
        app.run_jobs().await;
        smtp.received().len()
    })
    .await;
    assert_eq!(sent, 5, "the sixth and seventh requests sent nothing");
}

#[tokio::test]
async fn without_email_the_forgotten_password_page_says_who_can_reset_it() {
    let app = TestApp::spawn().await;
    let mut browser = PageClient::new(&app);
    let page = browser.get("/admin/forgot-password").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("id=\"no-email\"") && page.text.contains("consign admin reset-password"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("<form"), "a form that cannot send anything is offered");
    let asked = browser.post_raw("/admin/forgot-password", &[("email", "owner@acme.example")]).await;
    assert_eq!(asked.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_invitation_is_emailed_with_the_link_the_inviter_was_shown_and_a_revoked_one_is_not() {
    let (app, smtp) = emailing_app().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let invitations = format!("/api/v1/organizations/{}/members", owner.organization_id);
    let revoked =
        app.post(&invitations, &owner.token, json!({"email": "late@acme.example", "role": "org_member"})).await;
    assert_eq!(revoked.status, StatusCode::CREATED, "{}", revoked.text);
    let path =
        format!("/api/v1/organizations/{}/invitations/{}", owner.organization_id, revoked.body["id"].as_str().unwrap());
    assert_eq!(app.request(Method::DELETE, &path, Some(&owner.token), None).await.status, StatusCode::NO_CONTENT);
    let invited =
        app.post(&invitations, &owner.token, json!({"email": "New@Acme.example", "role": "org_member"})).await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    let token = invited.body["token"].as_str().unwrap().to_owned();

    let mails = emails_after_jobs(&app, &smtp, 1).await;
    app.run_jobs().await;
    assert_eq!(smtp.received().len(), 1, "the revoked invitation was emailed");
    assert_eq!(mails[0].rcpt_to, ["new@acme.example"]);
    let subject = mails[0].header("Subject").unwrap_or_default();
    assert!(subject.starts_with("You are invited to"), "{subject}");
    assert_eq!(link_path(&mails[0], "/admin/invitations/"), format!("/admin/invitations/{token}"));

    // The emailed link is the one that works.
    let page = PageClient::new(&app).get(&format!("/admin/invitations/{token}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("new@acme.example"), "{}", page.text);
}
