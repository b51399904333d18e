//! Accepting connections and turning each request into a handler call.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chat_core::Engine;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::api::{self, Ctx};
use crate::app::{App, Config};
use crate::auth::{self, Caller};
use crate::caps::{self, Connections, Tracked, WebSocketPlace, WebSockets};
use crate::endpoints::{Access, Endpoint, EndpointTable, endpoint_table};
use crate::error::ApiError;
use crate::extension::Matched;
use crate::extension::{Context, Extension, Handled};
use crate::http::{self, Resp};

/// A running server: the shared state plus what only the accept loop needs to answer a
/// request (the endpoint table and the embedder's extension).
struct Server {
    app: Arc<App>,
    endpoints: EndpointTable,
    extension: Option<Arc<dyn Extension>>,
    /// Open WebSockets under their caps (in all, per address, per token).
    websockets: Arc<WebSockets>,
}

/// How long shutdown waits for in-flight requests and connections.
const DRAIN: Duration = Duration::from_secs(20);

/// Serves the API on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish (up to 20 s) and returns.
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_with(listener, engine, config, None, shutdown).await
}

/// Like [`run`], with an [`Extension`]'s endpoints tried before the built-in ones.
pub async fn run_with(
    listener: TcpListener,
    engine: Engine,
    config: Config,
    extension: Option<Arc<dyn Extension>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let limits = config.limits.clone();
    let app = Arc::new(App::new(engine, config, stopped.clone()));
    let server = Arc::new(Server {
        app: app.clone(),
        endpoints: endpoint_table(),
        extension,
        websockets: WebSockets::new(&limits),
    });
    tokio::spawn(run_timers(
        app.engine.clone(),
        app.config.timer_interval,
        stopped.clone(),
    ));
    tokio::spawn(crate::webhooks::run(
        app.engine.clone(),
        app.config.webhooks.clone(),
        app.config.mail.sender().map(|(_, domain)| domain),
        stopped.clone(),
    ));
    tokio::spawn(crate::polling::run(app.clone(), stopped.clone()));
    tokio::spawn(crate::mail::run(
        app.engine.clone(),
        app.config.mail.clone(),
        stopped.clone(),
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = Connections::new(limits.max_connections_per_ip);
    let trusted = server.app.config.trusted_proxies.clone();
    let refusal = caps::too_many_connections();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // Waiting for a slot before accepting keeps excess connections in the backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A trusted proxy carries many clients over its connections: only the global
        // cap applies to it (its clients' own limits apply per request).
        let place = if trusted.contains(remote.ip()) {
            None
        } else if let Some(place) = per_ip.take(remote.ip()) {
            Some(place)
        } else {
            // Answered and closed right here, without waiting on the client (a fresh
            // socket's send buffer is empty), so a flood from one address costs the
            // others nothing; its global slot is free again at once.
            let _ = stream.try_write(&refusal);
            tracing::debug!(ip = %remote.ip(), "connection over the per-address cap refused");
            drop(stream);
            drop(permit);
            continue;
        };
        let _ = stream.set_nodelay(true);
        if let Some(bytes) = limits.socket_send_buffer {
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(bytes);
        }
        let marks = caps::StreamMarks::new();
        let stream = Tracked::new(stream, marks.clone());
        let server = server.clone();
        let http1 = http1.clone();
        let mut stopped = stopped.clone();
        let idle = limits.keep_alive_idle;
        tokio::spawn(async move {
            let activity = Arc::new(Activity::default());
            let seen = activity.clone();
            let for_requests = marks.clone();
            let service = service_fn(move |req| {
                let server = server.clone();
                let seen = seen.clone();
                let marks = for_requests.clone();
                async move {
                    seen.begin();
                    let response = server.handle(req, remote, &marks.upgraded).await;
                    seen.end();
                    Ok::<_, Infallible>(http::on_the_wire(response))
                }
            });
            let conn = http1
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let mut tick = tokio::time::interval(idle / 4 + Duration::from_millis(1));
            let mut closing = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = stopped.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
                        break;
                    }
                    _ = tick.tick() => {
                        // Asked to close and still sending nothing for another idle
                        // period: the client stopped reading a response (a graceful close
                        // waits for that response forever). Dropped, so it frees its slot;
                        // a slow download that keeps going is left to finish.
                        if closing && marks.sent.quiet_for() >= idle {
                            break;
                        }
                        if activity.idle_for() >= idle {
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                }
            }
            drop(permit);
            drop(place);
        });
    }
    tracing::info!("shutting down: no new connections, draining");
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN + Duration::from_secs(1), slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time");
    }
    // Upgraded WebSockets left their HTTP connection slot behind: wait for them to send
    // their close frames too (each waits at most 2 s for the client's answer).
    let sockets = async {
        while app
            .metrics
            .websockets
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), sockets)
        .await
        .is_err()
    {
        tracing::warn!("some WebSockets did not close in time");
    }
    Ok(())
}

/// Runs every tenant's timers on an interval until shutdown: requeue and inactivity when the
/// tenant has them on, the queue at a business-hours opening, and snoozes (one list query for the snoozed, always).
async fn run_timers(engine: Engine, every: Duration, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let Ok(tenants) = engine.tenants().await else {
            continue;
        };
        for tenant in tenants {
            match engine.run_timers(tenant.id).await {
                Ok(report)
                    if !report.requeued.is_empty()
                        || !report.closed.is_empty()
                        || !report.woken.is_empty()
                        || !report.routed.is_empty()
                        || report.events_compacted > 0 =>
                {
                    tracing::info!(tenant = %tenant.id, requeued = report.requeued.len(), closed = report.closed.len(), woken = report.woken.len(), routed = report.routed.len(), events_compacted = report.events_compacted, "timers fired");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(tenant = %tenant.id, error = %e, "timers failed"),
            }
        }
    }
}

/// Requests in flight on a connection and when it last did anything.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.epoch.get_or_init(Instant::now).elapsed().as_millis() as u64
    }
    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }
    fn end(&self) {
        self.last_ms.store(self.now_ms(), Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last_ms.load(Ordering::SeqCst)),
        )
    }
}

impl Server {
    /// One request, start to finish; never fails (errors become error responses).
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        remote: SocketAddr,
        upgraded: &OnceLock<WebSocketPlace>,
    ) -> Resp {
        let started = Instant::now();
        let limits = &self.app.config.limits;
        let clock = http::BodyClock::new(
            tokio::time::Instant::from_std(started) + limits.body_read_timeout,
            limits.body_min_rate as u64,
        );
        let request_due = tokio::time::Instant::from_std(started) + limits.request_timeout;
        let request_id = request_id(req.headers());
        let client = self
            .app
            .config
            .trusted_proxies
            .client_ip(remote.ip(), req.headers());
        // No path in the logs: paths carry capabilities (a visitor's session id in the
        // templates' routes). The "done" line names the matched endpoint pattern instead.
        let span = tracing::info_span!("request", id = %request_id, method = %req.method());
        let origin = req.headers().get(header::ORIGIN).cloned();
        let method = req.method().clone();
        // On the heap once, so that the layers below (the body clock's scope, the
        // deadline, the span) move a pointer: the answer's state machine holds every
        // route's awaits (authentication, the WebSocket upgrade) and each of those moves
        // copied all of it, per request (issue 21: `memcpy` was a fifth of a post's cost).
        let answer = http::with_body_clock(
            clock.clone(),
            Box::pin(self.clone().answer(req, client, upgraded)),
        );
        let (endpoint_name, mut response) = async {
            match within(request_due, &clock, answer).await {
                Some(Ok((name, response))) => (name, response),
                Some(Err((name, e))) => (name, http::error(&e)),
                None => {
                    let e = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "deadline_exceeded",
                        "the request was not answered in time",
                    );
                    ("deadline_exceeded", http::error(&e))
                }
            }
        }
        .instrument(span.clone())
        .await;
        if response.status() == StatusCode::REQUEST_TIMEOUT || endpoint_name == "deadline_exceeded"
        {
            // The rest of a late body is never read: the connection cannot carry another
            // request, and closing it frees its slot now rather than at the idle timeout.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.cors(origin.as_ref(), &method, &mut response);
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        let status = response.status().as_u16();
        self.app
            .metrics
            .request(endpoint_name, status, started.elapsed());
        span.in_scope(|| {
            tracing::info!(
                endpoint = endpoint_name,
                status,
                micros = started.elapsed().as_micros() as u64,
                "done"
            )
        });
        response
    }

    /// Answers one request: CORS preflight, rate limit, the extension, then the built-in
    /// endpoint with its access check.
    async fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
        ip: IpAddr,
        upgraded: &OnceLock<WebSocketPlace>,
    ) -> Result<(&'static str, Resp), (&'static str, ApiError)> {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Ok(("preflight", self.preflight(req.headers())));
        }
        self.app
            .per_ip
            .check(&ip.to_string())
            .map_err(|wait| ("rate_limited", ApiError::rate_limited(wait)))?;
        let req = match &self.extension {
            Some(extension) => match extension
                .handle(&Context::new(self.app.clone(), ip), req)
                .await
            {
                Handled::Answered(name, response) => return Ok((name, response)),
                Handled::Declined(req) => req,
            },
            None => req,
        };
        let (endpoint, params) = match self.endpoints.find(req.method(), req.uri().path()) {
            Matched::Found {
                endpoint, params, ..
            } => (*endpoint, params),
            Matched::MethodNotAllowed { allowed, .. } => {
                let e = ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this path does not take that method",
                );
                let mut response = http::error(&e);
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                return Ok(("method_not_allowed", response));
            }
            Matched::NotFound => {
                return Err(("not_found", ApiError::not_found("no such endpoint")));
            }
        };
        let name = endpoint.path;
        let fail = |e: ApiError| (name, e);
        let query = req.uri().query().map(str::to_owned);
        let mut token = None;
        let caller = if endpoint.id == Endpoint::Metrics {
            // Counts of the server's internals: the scraper's own token, or an admin.
            let presented = auth::bearer(req.headers(), None).map_err(fail)?;
            let scraper = match (&self.app.config.metrics_token, presented.as_deref()) {
                (Some(expected), Some(presented)) => expected.matches(presented),
                _ => false,
            };
            if !scraper {
                let Some(presented) = presented else {
                    return Err(fail(ApiError::unauthorized(
                        "send Authorization: Bearer <the metrics token or an admin's token>",
                    )));
                };
                let caller = self
                    .app
                    .authenticate(Some(&presented))
                    .await
                    .map_err(fail)?;
                // Metrics are the server's, and name its default tenant's queue: admins of
                // another tenant on the same server are strangers to them.
                let home = self.app.config.default_tenant;
                let admin = match &caller {
                    Caller::Actor(actor @ chat_core::Actor::Staff { tenant, .. })
                        if home.is_none_or(|home| home == *tenant) =>
                    {
                        self.app
                            .engine
                            .resolve(actor)
                            .await
                            .ok()
                            .and_then(|r| r.staff().map(|me| me.role == chat_core::Role::Admin))
                            .unwrap_or(false)
                    }
                    _ => false,
                };
                if !admin {
                    return Err(fail(ApiError::forbidden(
                        "metrics are for the metrics token and admins",
                    )));
                }
            }
            Caller::Anonymous
        } else if endpoint.access == Access::Public && endpoint.request.is_none() {
            // Health and docs ignore credentials entirely.
            Caller::Anonymous
        } else if matches!(
            endpoint.id,
            Endpoint::ReceiveInbound | Endpoint::ReceiveTelegram | Endpoint::ReceiveEmail
        ) {
            // They carry the inbox's token, which their handlers check against the inbox.
            Caller::Anonymous
        } else {
            token = if endpoint.id == Endpoint::WebSocket {
                // Browsers cannot set headers on WebSockets: also accept the query
                // parameter and the subprotocol.
                match auth::bearer(req.headers(), query.as_deref()).map_err(fail)? {
                    Some(t) => Some(t),
                    None => subprotocol_token(req.headers()),
                }
            } else {
                auth::bearer(req.headers(), None).map_err(fail)?
            };
            self.app
                .authenticate(token.as_deref())
                .await
                .map_err(fail)?
        };
        match (endpoint.access, &caller) {
            // Checked above, by its own rule.
            _ if endpoint.id == Endpoint::Metrics => {}
            (Access::Authenticated | Access::Staff, Caller::Anonymous) => {
                return Err(fail(ApiError::unauthorized(
                    "send Authorization: Bearer <token>",
                )));
            }
            (Access::Staff, Caller::Actor(actor))
                if !matches!(actor, chat_core::Actor::Staff { .. }) =>
            {
                return Err(fail(ApiError::forbidden("staff only")));
            }
            _ => {}
        }
        if endpoint.id == Endpoint::WebSocket {
            let Caller::Actor(actor) = caller else {
                return Err(fail(ApiError::unauthorized("send a token")));
            };
            // Checked before the 101, so a refused client gets a plain HTTP answer. The
            // token is kept by its digest's first 16 bytes (`TokenKey`, inline: every open
            // socket holds one).
            let key = caps::TokenKey::of(token.as_deref());
            let place = self.websockets.take(ip, key).map_err(fail)?;
            let expiry = token
                .as_deref()
                .and_then(|t| self.app.cached_token_expiry(t));
            // Boxed: inline, the upgrade's state would make every request's future larger
            // (see `handle`).
            let answer = Box::pin(crate::realtime::upgrade_knowing(
                self.app.hub.clone(),
                req,
                actor,
                expiry,
                self.app.shutdown.clone(),
                self.app.metrics.clone(),
            ))
            .await;
            if answer
                .as_ref()
                .is_ok_and(|r| r.status() == StatusCode::SWITCHING_PROTOCOLS)
            {
                // From now on the place lives with the connection's stream, which the
                // socket's task takes over; any other answer gives it back here.
                let _ = upgraded.set(place);
            }
            return answer.map(|r| (name, r)).map_err(fail);
        }
        let (parts, body) = req.into_parts();
        let ctx = Ctx {
            app: self.app.clone(),
            params,
            query,
            headers: parts.headers,
            body: Some(body),
            caller,
            ip,
            endpoint: endpoint.id,
        };
        api::dispatch(endpoint, ctx)
            .await
            .map(|r| (name, r))
            .map_err(fail)
    }

    /// The `Access-Control-Allow-Origin` answer for `origin`, and whether credentials may
    /// go with it: only for an origin named in the list. A `*` in the list lets any site
    /// call the API without credentials (`*` itself, never the caller's origin echoed with
    /// credentials, which would let any page act with a visitor's cookies).
    fn origin_allowed(&self, origin: Option<&HeaderValue>) -> Option<(HeaderValue, bool)> {
        let origin = origin?;
        let text = origin.to_str().ok()?;
        let origins = &self.app.config.cors_origins;
        if origins.iter().any(|o| o == text) {
            Some((origin.clone(), true))
        } else if origins.iter().any(|o| o == "*") {
            Some((HeaderValue::from_static("*"), false))
        } else {
            None
        }
    }

    fn preflight(&self, headers: &hyper::HeaderMap) -> Resp {
        if self.origin_allowed(headers.get(header::ORIGIN)).is_none() {
            return http::error(&ApiError::forbidden("this origin may not call the API"));
        }
        let mut response = http::no_content();
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-request-id, if-match"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    }

    /// Adds CORS headers for allowed origins (credentials only for named ones).
    fn cors(&self, origin: Option<&HeaderValue>, _method: &Method, response: &mut Resp) {
        let h = response.headers_mut();
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some((origin, credentials)) = self.origin_allowed(origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            if credentials {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-request-id, retry-after, etag"),
            );
        }
    }
}

/// `answer`'s output, or `None` once `due` has passed, later by what `clock` allows for
/// the body received so far (a large upload that keeps coming is not cut off by the
/// request's base deadline).
async fn within<F: Future>(
    due: tokio::time::Instant,
    clock: &http::BodyClock,
    answer: F,
) -> Option<F::Output> {
    tokio::pin!(answer);
    loop {
        let now_due = due + clock.extension();
        tokio::select! {
            output = &mut answer => return Some(output),
            () = tokio::time::sleep_until(now_due) => {
                if due + clock.extension() <= now_due {
                    return None;
                }
            }
        }
    }
}

/// A token passed as the second WebSocket subprotocol: `chat.v1, <token>`.
fn subprotocol_token(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty() && *p != crate::realtime::SUBPROTOCOL)
        .map(str::to_owned)
}

/// The client's request id if it is short and plain, else a new one. A log-correlation id,
/// not domain data: random rather than the engine's id generator, so it never shifts the
/// ids a test with sequential ids expects.
fn request_id(headers: &hyper::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// Binds `address` with a listen backlog of 4096: the default 128 makes a burst of
/// connecting clients retry their SYNs for seconds (10,000 clients took 22 s).
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(address)
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {address}: {e}")))?;
    socket.listen(4096)
}

/// Completes on SIGINT or SIGTERM: the `shutdown` future to give [`run`].
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}
