//! The `mail` service end to end: a real SMTP server process (Python's `aiosmtpd`, writing
//! what it receives to a maildir), the real host, the `services` test plugin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lutetia_tests::{Backend, Host, TestDb, on_both_backends, run_cli};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

/// An `aiosmtpd` server on `port`, storing messages in a maildir.
struct SmtpServer {
    _child: Child,
    maildir: PathBuf,
}

impl SmtpServer {
    async fn start(port: u16, maildir: &Path) -> SmtpServer {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd==1.4.6)");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return SmtpServer {
                    _child: child,
                    maildir: maildir.to_owned(),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Messages received so far.
    fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn wait_for_messages(&self, n: usize) -> Vec<String> {
        for _ in 0..600 {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the SMTP server did not receive {n} message(s)");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn start_host(db: &TestDb, smtp_port: Option<u16>) -> Host {
    let config = db.dir().join("lutetia.toml");
    let mut text = format!(
        "files-dir = {:?}\nmail-from = \"Ville <mairie@example.org>\"\n",
        db.dir().join("files").display().to_string()
    );
    if let Some(port) = smtp_port {
        text.push_str(&format!("smtp-url = \"smtp://127.0.0.1:{port}\"\n"));
    }
    std::fs::write(&config, text).expect("config");
    Host::start(BIN, db, &["--config", config.to_str().expect("utf-8 path")]).await
}

async fn send(host: &Host, message: serde_json::Value) -> (u16, String) {
    let response = host
        .client
        .post(host.url("/p/services/mail/send"))
        .json(&message)
        .send()
        .await
        .expect("request");
    (response.status().as_u16(), response.text().await.expect("body"))
}

fn invitation() -> serde_json::Value {
    serde_json::json!({
        "to": "Jeanne Dupont <jeanne@example.org>",
        "subject": "Rendez-vous en mairie",
        "text": "Votre rendez-vous est confirmé.",
        "html": "<p>Votre rendez-vous est <b>confirmé</b>.</p>",
        "ics": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Rendez-vous\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    })
}

on_both_backends! {
    async fn message_reaches_the_smtp_server(backend: Backend) {
        let db = TestDb::new(backend).await;
        let port = free_port();
        let smtp = SmtpServer::start(port, &db.dir().join("maildir")).await;
        let host = start_host(&db, Some(port)).await;
        let (status, body) = send(&host, invitation()).await;
        assert_eq!(status, 200, "{body}");
        let messages = smtp.wait_for_messages(1).await;
        let m = &messages[0];
        assert!(m.contains("X-RcptTo: jeanne@example.org"), "{m}");
        assert!(m.contains("From: Ville <mairie@example.org>"), "{m}");
        assert!(m.contains("Subject: Rendez-vous en mairie"), "{m}");
        assert!(m.contains("multipart/alternative"), "{m}");
        assert!(m.contains("Content-Type: text/plain"), "{m}");
        assert!(m.contains("Content-Type: text/html"), "{m}");
        assert!(m.contains("text/calendar"), "{m}");
        assert!(m.contains("filename=\"invite.ics\""), "{m}");
        // Exactly once, and recorded as sent.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(smtp.messages().len(), 1);
        let rows = db.open().await.outbox_list(None, 10).await.expect("outbox");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, "sent");
        assert_eq!(rows[0].attempts, 1);
        drop(smtp);
    }

    async fn message_is_retried_until_the_server_comes_up(backend: Backend) {
        let db = TestDb::new(backend).await;
        let port = free_port();
        let host = start_host(&db, Some(port)).await;
        let (status, body) = send(&host, invitation()).await;
        assert_eq!(status, 200, "{body}");
        let outbox = db.open().await;
        let mut row = None;
        for _ in 0..200 {
            let rows = outbox.outbox_list(None, 10).await.expect("outbox");
            if rows.first().is_some_and(|r| r.attempts >= 2) {
                row = rows.into_iter().next();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let row = row.expect("two failed attempts");
        assert_eq!(row.status, "queued");
        assert!(row.last_error.is_some(), "{row:?}");
        let smtp = SmtpServer::start(port, &db.dir().join("maildir")).await;
        let messages = smtp.wait_for_messages(1).await;
        assert!(messages[0].contains("Subject: Rendez-vous en mairie"));
        for _ in 0..100 {
            let rows = outbox.outbox_list(None, 10).await.expect("outbox");
            if rows[0].status == "sent" {
                assert!(rows[0].attempts >= 3, "{:?}", rows[0]);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the message was not recorded as sent");
    }

    async fn without_smtp_messages_stay_queued_and_are_listed(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start_host(&db, None).await;
        let (status, body) = send(&host, invitation()).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (code, out, err) = run_cli(BIN, &["outbox", "list", "--database-url", &db.url]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("Rendez-vous en mairie"), "{out}");
        assert!(out.contains("jeanne@example.org"), "{out}");
        assert!(out.contains("queued"), "{out}");
        assert!(out.contains("services"), "{out}");
        let (_, sent, _) = run_cli(BIN, &["outbox", "list", "--status", "sent", "--database-url", &db.url]).await;
        assert!(!sent.contains("Rendez-vous"), "{sent}");
    }

    async fn invalid_messages_are_refused(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start_host(&db, None).await;
        let mut bad = invitation();
        bad["to"] = "not an address".into();
        let (status, body) = send(&host, bad).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("not an address"), "{body}");
        let mut bad = invitation();
        bad["subject"] = "Hello\r\nBcc: everyone@example.org".into();
        assert_eq!(send(&host, bad).await.0, 400);
        // The hourly rate of the grant (20).
        for _ in 0..20 {
            assert_eq!(send(&host, invitation()).await.0, 200);
        }
        assert_eq!(send(&host, invitation()).await.0, 429);
        let rows = db.open().await.outbox_list(None, 100).await.expect("outbox");
        assert_eq!(rows.len(), 20);
    }
}

/// Two host processes on one PostgreSQL database share the outbox: each message is
/// handed to the SMTP server once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_postgres_send_each_message_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let port = free_port();
    let smtp = SmtpServer::start(port, &db.dir().join("maildir")).await;
    let first = start_host(&db, None).await;
    for i in 0..12 {
        let mut m = invitation();
        m["subject"] = format!("Message {i}").into();
        assert_eq!(send(&first, m).await.0, 200);
    }
    first.kill().await;
    // Both senders start on a full outbox and compete for every row.
    let a = start_host(&db, Some(port)).await;
    let b = start_host(&db, Some(port)).await;
    let messages = smtp.wait_for_messages(12).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.messages().len(), 12, "{messages:?}");
    for i in 0..12 {
        let subject = format!("Subject: Message {i}\n");
        assert_eq!(
            smtp.messages().iter().filter(|m| m.contains(&subject)).count(),
            1,
            "{subject}"
        );
    }
    drop((a, b));
}
