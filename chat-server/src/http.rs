//! Request and response helpers shared by every handler.

use std::str::FromStr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The response type of every handler.
pub type Resp = Response<Full<Bytes>>;

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    // serde_json's `to_vec` starts at 128 bytes and doubles: a posted message's answer
    // (message and conversation, about 2 KB) moved through five reallocations.
    let mut body = Vec::with_capacity(4096);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => with_type(status, body, "application/json"),
        Err(e) => {
            tracing::error!(error = %e, "response did not serialize");
            error(&ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ))
        }
    }
}

/// A body with a content type.
pub fn with_type(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Resp {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An answer whose body is sent as it is made (chunked), never held whole: each item
/// the sender sends is one chunk; an `Err` cuts the connection, so the client sees a
/// broken transfer and not a complete-looking short body. The body travels beside the
/// response (an extension) until the connection takes it: handlers all answer [`Resp`].
pub fn streamed(
    status: StatusCode,
    content_type: &'static str,
    body: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> Resp {
    let mut response = with_type(status, Bytes::new(), content_type);
    response
        .extensions_mut()
        .insert(StreamedBody(std::sync::Arc::new(std::sync::Mutex::new(
            Some(body),
        ))));
    response
}

/// The stream of a [`streamed`] answer, while it rides along as an extension (which must
/// be `Clone`).
#[derive(Clone)]
struct StreamedBody(
    std::sync::Arc<std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>>>>,
);

/// A body as the connection sends it: a whole one, or a [`streamed`] one.
pub type WireBody = http_body_util::Either<Full<Bytes>, Chunks>;

/// The chunks of a [`streamed`] answer.
#[derive(Debug)]
pub struct Chunks(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|chunk| chunk.map(hyper::body::Frame::data)))
    }
}

/// The response as sent: a [`streamed`] answer's body put in place.
pub(crate) fn on_the_wire(mut response: Resp) -> Response<WireBody> {
    let stream = response
        .extensions_mut()
        .remove::<StreamedBody>()
        .and_then(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    match stream {
        Some(rx) => response.map(|_| http_body_util::Either::Right(Chunks(rx))),
        None => response.map(http_body_util::Either::Left),
    }
}

/// 204 No Content.
pub fn no_content() -> Resp {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// The error shape of the API.
pub fn error(e: &ApiError) -> Resp {
    let mut response = with_type(e.status, e.body(), "application/json");
    if let Some(seconds) = e.retry_after {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Reads a JSON body of at most `limit` bytes.
///
/// - wrong or missing `Content-Type` → 415 `unsupported_media_type`;
/// - too large → 413 `payload_too_large`;
/// - not JSON → 400 `malformed_json` with line and column;
/// - JSON of the wrong shape → 422 `validation_failed` naming the field.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, limit).await?;
    parse_json(&bytes)
}

/// Like [`read_json`], but an empty body gives `T::default()`.
pub async fn read_json_or_default<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<T, ApiError> {
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared == Some(0) || (declared.is_none() && !headers.contains_key(CONTENT_TYPE)) {
        let bytes = collect(body, limit).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        check_type(headers)?;
        return parse_json(&bytes);
    }
    read_json(headers, body, limit).await
}

fn check_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ))
    }
}

pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, ApiError> {
    check_type(headers)?;
    collect(body, limit).await
}

/// The deadlines of the request being answered. Past its base deadline a body may still
/// arrive if it keeps coming: each `min_rate` bytes received move the body's deadline, and
/// the request's, one second later. A large upload on a slow link gets through; a client
/// that trickles or stops does not hold its connection for long.
pub(crate) struct BodyClock {
    body_due: tokio::time::Instant,
    min_rate: u64,
    received: std::sync::atomic::AtomicU64,
}

impl BodyClock {
    /// A body due by `body_due`, later by one second per `min_rate` bytes received (0 =
    /// no extension).
    pub(crate) fn new(body_due: tokio::time::Instant, min_rate: u64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            body_due,
            min_rate,
            received: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How much later than their base the deadlines are, for what has been received.
    pub(crate) fn extension(&self) -> std::time::Duration {
        if self.min_rate == 0 {
            return std::time::Duration::ZERO;
        }
        let received = self.received.load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_secs_f64(received as f64 / self.min_rate as f64)
    }

    fn received(&self, bytes: usize) {
        self.received
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn body_due(&self) -> tokio::time::Instant {
        self.body_due + self.extension()
    }
}

tokio::task_local! {
    /// The deadlines of the request being answered; set by the accept loop around each
    /// request, read by [`collect`]. A task-local rather than a parameter so that every
    /// reader (handlers, uploads, extensions) gets it without each passing it along.
    static BODY_CLOCK: std::sync::Arc<BodyClock>;
}

/// Runs `answer` with every body read in it through [`collect`] held to `clock`.
pub(crate) async fn with_body_clock<F: std::future::Future>(
    clock: std::sync::Arc<BodyClock>,
    answer: F,
) -> F::Output {
    BODY_CLOCK.scope(clock, answer).await
}

/// Reads a body of any type, at most `limit` bytes (413 `payload_too_large` beyond).
///
/// Inside a request served by the server the body must arrive by the body deadline
/// ([`HttpLimits::body_read_timeout`](crate::HttpLimits::body_read_timeout), later for a
/// body that keeps coming at [`HttpLimits::body_min_rate`](crate::HttpLimits::body_min_rate)):
/// a client that stops sending gets 408 `request_timeout` instead of holding its
/// connection.
pub async fn collect(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let clock = BODY_CLOCK.try_with(std::sync::Arc::clone).ok();
    let mut body = Limited::new(body, limit);
    let mut out = bytes::BytesMut::new();
    let read = loop {
        let frame = match &clock {
            Some(clock) => match tokio::time::timeout_at(clock.body_due(), body.frame()).await {
                Ok(frame) => frame,
                Err(_) => return Err(body_timeout()),
            },
            None => body.frame().await,
        };
        match frame {
            None => break Ok(()),
            Some(Err(e)) => break Err(e),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if let Some(clock) = &clock {
                        clock.received(data.len());
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    };
    match read {
        Ok(()) => Ok(out.freeze()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large(limit))
        }
        Err(_) => Err(ApiError::bad_request("the request body could not be read")),
    }
}

/// 408 for a body that did not arrive in time. The connection closes after it (the rest
/// of the body is never read).
pub fn body_timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request body did not arrive in time",
    )
}

/// 413 for a body over `limit` bytes.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than {limit} bytes"),
    )
}

/// Parses JSON, telling syntax errors (400) from shape errors (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json_error(e, None))?;
    // serde reads a struct from a JSON array too (`[null, null]` as every field absent);
    // every body here is an object, so anything else is refused.
    if !value.is_object() {
        return Err(ApiError::invalid("body", "expected a JSON object"));
    }
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        json_error(e.into_inner(), Some(path))
    })
}

/// For `deserialize_with` on a field whose value is a struct: serde reads a struct from a
/// JSON array too, by position (see [`parse_json`]), so the field must be an object.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error;
    let value = serde_json::Value::deserialize(d)?;
    if !value.is_object() {
        return Err(D::Error::custom("expected a JSON object"));
    }
    T::deserialize(value).map_err(D::Error::custom)
}

/// [`object`] for an optional struct: `null` or an object.
pub fn optional_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error;
    let value = serde_json::Value::deserialize(d)?;
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Object(_) => T::deserialize(value).map(Some).map_err(D::Error::custom),
        _ => Err(D::Error::custom("expected a JSON object or null")),
    }
}

/// [`object`] for a list of structs: each item an object.
pub fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error;
    let items = Vec::<serde_json::Value>::deserialize(d)?;
    items
        .into_iter()
        .map(|item| {
            if item.is_object() {
                T::deserialize(item).map_err(D::Error::custom)
            } else {
                Err(D::Error::custom("expected a list of JSON objects"))
            }
        })
        .collect()
}

/// JSON has one number type: `5.0` is the integer 5 to JSON Schema and to most clients'
/// encoders, while serde refuses it for an integer field. A float without a fraction that
/// fits an integer becomes that integer.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                // The casts saturate; the range checks keep only exact conversions.
                if (0.0..=u64::MAX as f64).contains(&f) && f < 18_446_744_073_709_551_616.0 {
                    *n = (f as u64).into();
                } else if (i64::MIN as f64..0.0).contains(&f) {
                    *n = (f as i64).into();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn json_error(inner: serde_json::Error, path: Option<String>) -> ApiError {
    match inner.classify() {
        serde_json::error::Category::Data => {
            let field = match path.as_deref() {
                None | Some("." | "") => "body".to_owned(),
                Some(p) => p.to_owned(),
            };
            // serde's message ends with " at line L column C"; the field says where.
            let message = inner.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            ApiError::invalid(field, message)
        }
        _ => {
            let message = inner.to_string();
            let reason = message.split(" at line ").next().unwrap_or(&message);
            ApiError::malformed(format!(
                "malformed JSON at line {} column {}: {reason}",
                inner.line(),
                inner.column()
            ))
        }
    }
}

/// The decoded value of `name` in a query string.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The query parameter `name` parsed as `T`: `None` when absent or empty, 422 naming it
/// if it does not parse.
pub fn query_value<T: FromStr>(
    query: Option<&str>,
    name: &'static str,
) -> Result<Option<T>, ApiError> {
    match query.and_then(|q| query_param(q, name)) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(name, format!("`{v}` is not a valid value"))),
    }
}

/// Every decoded pair of a query string.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.map_or_else(Vec::new, |q| {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Rating {
        score: u8,
        feedback: Option<String>,
    }

    #[test]
    fn syntax_errors_give_a_position_and_shape_errors_a_field() {
        let e = parse_json::<Rating>(b"{\"score\": 5,,}").unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "malformed_json")
        );
        assert!(e.message.contains("line 1 column"), "{}", e.message);
        let e = parse_json::<Rating>(b"{\"score\": \"five\"}").unwrap_err();
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("score"))
        );
        let e = parse_json::<Rating>(b"{\"score\": 500}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("score"));
        let e = parse_json::<Rating>(b"{}").unwrap_err();
        assert_eq!(e.code, "validation_failed");
        let e = parse_json::<Rating>(b"{\"score\": 1} trailing").unwrap_err();
        assert_eq!(e.code, "malformed_json");
        let rating = parse_json::<Rating>(b"{\"score\": 5.0}").unwrap();
        assert_eq!(rating.score, 5);
        let e = parse_json::<Rating>(b"{\"score\": 4.5}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("score"));
        let e = parse_json::<Rating>(b" [5, null]").unwrap_err();
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("body"))
        );
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_param("a=1&email=jo%40x.example&b=", "email").as_deref(),
            Some("jo@x.example")
        );
        assert_eq!(
            query_param("text=late+order", "text").as_deref(),
            Some("late order")
        );
        assert_eq!(query_param("a=1", "b"), None);
    }
}
