//! Endpoints an embedder serves beside the engine's own API.
//!
//! A starter template that speaks another product's API (its paths, JSON shapes and
//! WebSocket messages) implements [`Extension`] and starts the server with
//! [`run_with`](crate::run_with). Its requests then get everything the built-in endpoints
//! get: connection limits, per-IP rate limiting, CORS, request ids, metrics, logs and
//! graceful shutdown. The built-in `/v1` API, `/v1/ws` and `/healthz` stay available
//! beside it.

use std::net::IpAddr;
use std::sync::Arc;

use chat_core::Engine;
use hyper::Request;
use hyper::body::Incoming;
use tokio::sync::watch;

use crate::app::{App, Config, HttpLimits};
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::http::Resp;
use crate::metrics::Metrics;
use crate::realtime::Hub;

pub use crate::paths::{Matched, PathParams, PathTable};

/// What an extension did with a request.
pub enum Handled {
    /// Answered; the name labels the endpoint in metrics and logs (keep it a path pattern,
    /// not the raw path, so metrics stay bounded).
    Answered(&'static str, Resp),
    /// Not one of its endpoints: the request goes to the built-in ones.
    Declined(Request<Incoming>),
}

/// Extra endpoints, tried before the built-in ones.
#[async_trait::async_trait]
pub trait Extension: Send + Sync + 'static {
    /// Answers `req` or hands it back. Errors are answered in the extension's own
    /// error shape, which is why this returns a response and not a `Result`.
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled;
}

/// What an extension's handler may use of the running server: the engine, the caller's
/// identity, the settings and the client address, and what a WebSocket of its own needs.
/// The server's other state (rate limiters, token cache, endpoint table) stays its own.
///
/// Cheap to clone (one `Arc`): a WebSocket task keeps its own copy.
///
/// ```no_run
/// use chat_server::auth::Caller;
/// use chat_server::extension::Context;
///
/// # async fn whoami(cx: &Context, req: &hyper::Request<hyper::body::Incoming>) {
/// match cx.authenticate_request(req).await {
///     Ok(Caller::Actor(actor)) => println!("{actor:?} from {}", cx.ip()),
///     Ok(Caller::Anonymous) => println!("nobody"),
///     Err(refused) => println!("{}", refused.message),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Context {
    app: Arc<App>,
    ip: IpAddr,
}

impl Context {
    pub(crate) fn new(app: Arc<App>, ip: IpAddr) -> Self {
        Self { app, ip }
    }

    /// The engine: every read and change goes through it, with the caller as actor.
    pub fn engine(&self) -> &Engine {
        &self.app.engine
    }

    /// The server's settings (token signing, visitor token lifetime, realtime settings).
    pub fn config(&self) -> &Config {
        &self.app.config
    }

    /// The input limits; a body read with a larger cap would bypass them.
    pub fn limits(&self) -> &HttpLimits {
        &self.app.config.limits
    }

    /// The client's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Turns a bearer token into a caller, as the built-in endpoints do: counted against
    /// the per-token rate limit, a bad token is an error (401), never anonymous.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Caller, ApiError> {
        self.app.authenticate(token).await
    }

    /// [`authenticate`](Self::authenticate) with the request's `Authorization: Bearer`
    /// header.
    pub async fn authenticate_request<B>(&self, req: &Request<B>) -> Result<Caller, ApiError> {
        let token = auth::bearer(req.headers(), None)?;
        self.authenticate(token.as_deref()).await
    }

    /// The realtime hub: [`Hub::live`] follows a tenant's events for a WebSocket.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.app.hub
    }

    /// The server's counters (a WebSocket counts itself with
    /// [`Metrics::websocket_opened`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.app.metrics
    }

    /// Flips to `true` when the server shuts down; a long-lived connection watches it
    /// and closes.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.app.shutdown.clone()
    }
}
