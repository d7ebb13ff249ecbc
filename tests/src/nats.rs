//! NATS JetStream for the tests of integration events.
//!
//! With `NATS_URL` set, tests share that server and each test gets names of
//! its own: a stream `T<uuid>` and a subject prefix `t<uuid>` (so its
//! subjects `t<uuid>.order.placed`, `t<uuid>.inbound.>` overlap no other
//! test's). Without it, each test starts a private `nats-server -js` from
//! the installed binary on a free port with a store folder of its own,
//! stopped when the test ends. A test that stops NATS on purpose always
//! starts a private server ([`TestNats::private`]).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream;
use serde_json::Value;
use uuid::Uuid;

/// Where the installed `nats-server` may be, besides `NATS_SERVER`.
const NATS_SERVER_PATHS: [&str; 3] = [
    "/usr/sbin/nats-server",
    "/usr/bin/nats-server",
    "/usr/local/bin/nats-server",
];

/// One message of a stream, as a test reads it.
#[derive(Debug, Clone)]
pub struct StreamedMessage {
    pub subject: String,
    /// Its `Nats-Msg-Id` header.
    pub message_id: Option<String>,
    pub body: Value,
    /// When JetStream stored it.
    pub stored_at: chrono::DateTime<chrono::Utc>,
}

/// The NATS names of one test, and its private server if it has one.
pub struct TestNats {
    pub url: String,
    /// `SHOP_NATS_STREAM` for the server under test.
    pub stream: String,
    /// `SHOP_NATS_PREFIX` for the server under test.
    pub prefix: String,
    server: Option<NatsServer>,
}

impl TestNats {
    /// `NATS_URL` with names of this test's own, or a private server.
    pub async fn new() -> Self {
        match std::env::var("NATS_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let id = Uuid::new_v4().simple().to_string();
                Self {
                    url,
                    stream: format!("T{id}"),
                    prefix: format!("t{id}"),
                    server: None,
                }
            }
            _ => Self::private().await,
        }
    }

    /// A private `nats-server -js` for this test alone.
    pub async fn private() -> Self {
        let server = NatsServer::start().await;
        Self {
            url: server.url(),
            stream: "SHOP".to_string(),
            prefix: "shop".to_string(),
            server: Some(server),
        }
    }

    /// The settings a `shop serve` under test needs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SHOP_NATS_URL", self.url.clone()),
            ("SHOP_NATS_STREAM", self.stream.clone()),
            ("SHOP_NATS_PREFIX", self.prefix.clone()),
        ]
    }

    pub fn subject(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// A JetStream client of the test's server.
    pub async fn jetstream(&self) -> jetstream::Context {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(self.url.as_str())
            .await
            .expect("connect to NATS");
        jetstream::new(client)
    }

    /// Every message of the outbound stream, oldest first; empty while the
    /// stream does not exist.
    pub async fn outbound_messages(&self, js: &jetstream::Context) -> Vec<StreamedMessage> {
        let Ok(stream) = js.get_stream(&self.stream).await else {
            return Vec::new();
        };
        let Ok(info) = stream.get_info().await else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        if info.state.messages == 0 {
            return messages;
        }
        for sequence in info.state.first_sequence..=info.state.last_sequence {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue;
            };
            messages.push(StreamedMessage {
                subject: message.subject.to_string(),
                message_id: message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_string()),
                body: serde_json::from_slice(&message.payload).expect("a JSON message"),
                stored_at: message.time,
            });
        }
        messages
    }

    /// Publishes an inbound fact on `<prefix>.inbound.<name>` into the
    /// inbound stream, waiting for JetStream's acknowledgement.
    pub async fn send_inbound(
        &self,
        js: &jetstream::Context,
        name: &str,
        payload: &[u8],
        message_id: Option<&str>,
    ) {
        let subject = format!("{}.inbound.{name}", self.prefix);
        let mut publish =
            jetstream::message::PublishMessage::build().payload(payload.to_vec().into());
        if let Some(id) = message_id {
            publish = publish.message_id(id);
        }
        crate::eventually(
            "the inbound stream to take the message",
            Duration::from_secs(60),
            async || match js.send_publish(subject.clone(), publish.clone()).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        )
        .await;
    }

    /// Stops the private server (as if NATS went down).
    pub async fn stop(&mut self) {
        self.server
            .as_mut()
            .expect("a private NATS server")
            .stop()
            .await;
    }

    /// Starts the private server again, on the same port and store.
    pub async fn restart(&mut self) {
        self.server
            .as_mut()
            .expect("a private NATS server")
            .restart()
            .await;
    }
}

/// On a shared server, the test's streams are deleted when it ends.
impl Drop for TestNats {
    fn drop(&mut self) {
        if self.server.is_some() {
            return;
        }
        let url = self.url.clone();
        let streams = [self.stream.clone(), format!("{}_INBOUND", self.stream)];
        // Drop cannot wait on the test's runtime: a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let connecting = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(2))
                    .connect(url.as_str());
                let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(5), connecting).await
                else {
                    return;
                };
                let js = jetstream::new(client);
                for stream in &streams {
                    let _ = tokio::time::timeout(Duration::from_secs(5), js.delete_stream(stream))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A private `nats-server -js` process.
pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    program: PathBuf,
    child: Option<tokio::process::Child>,
}

/// The installed `nats-server`.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    }) {
        return path;
    }
    NATS_SERVER_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no nats-server: set NATS_URL, or install it (Debian: apt-get install nats-server)"
            )
        })
}

impl NatsServer {
    pub async fn start() -> Self {
        let port = (0..1000)
            .map(|_| 20_000 + (Uuid::new_v4().as_u128() % 12_000) as u16)
            .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
            .expect("a free port");
        let store = crate::test_data_dir()
            .join("nats")
            .join(Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&store).expect("a NATS store folder");
        let mut server = Self {
            port,
            store,
            program: nats_server_binary(),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process (again) and waits until it takes connections.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "nats-server is running");
        let child = tokio::process::Command::new(&self.program)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let port = self.port;
        crate::eventually(
            "nats-server to take connections",
            Duration::from_secs(30),
            async || {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
    }

    /// Stops the process (SIGKILL) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
