//! The template on a real listener (127.0.0.1:0) over a database file in a temp dir, with
//! the server library's test client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chat_core::Role;
pub use chat_server::testing::Reply;
use chat_server::testing::TestServer;

pub struct Server {
    pub http: TestServer,
    pub db: PathBuf,
    pub admin: String,
    pub agent: String,
}

impl std::ops::Deref for Server {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.http
    }
}

impl Server {
    pub async fn stop(self) {
        self.http.stop().await;
    }
}

/// Starts the template on `db` with an admin and a support agent (as `--demo` seeds them).
pub async fn start(db: &Path) -> Server {
    let mut starter = example_quick_chat::open(db).await.unwrap();
    // The tests call from one IP faster than a browser would.
    starter.config.limits.per_ip_rps = 0.0;
    starter.config.limits.per_token_rps = 0.0;
    let admin = starter
        .ensure_staff("Admin", "admin@example.com", "admin123", Role::Admin)
        .await
        .unwrap();
    let agent = starter
        .ensure_staff("Agent", "agent@example.com", "agent123", Role::Agent)
        .await
        .unwrap();
    let admin = starter.staff_token(&admin).await.unwrap();
    let agent = starter.staff_token(&agent).await.unwrap();
    let extension = example_quick_chat::extension(&starter);
    Server {
        http: TestServer::start(starter.engine.clone(), starter.config, Some(extension)).await,
        db: db.to_owned(),
        admin,
        agent,
    }
}
