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

use hyper::Request;
use hyper::body::Incoming;

use crate::app::App;
use crate::http::Resp;

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
    async fn handle(&self, app: &Arc<App>, req: Request<Incoming>, ip: IpAddr) -> Handled;
}
