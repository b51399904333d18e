//! The document's answers: FastAPI's error shapes, JSON bodies, paging and path numbers.

use chat_server::http::{self, Resp};
use chat_starter::fastapi;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::{MAX_BODY, MAX_PAGE_SIZE};

pub(crate) fn chat_not_found() -> Resp {
    fastapi::detail(StatusCode::NOT_FOUND, "Chat not found")
}

/// Engine errors as FastAPI's `HTTPException`s.
pub(crate) fn engine_error(e: chat_core::Error) -> Resp {
    fastapi::engine_error(e, "Chat not found")
}

pub(crate) type Answer = Result<Resp, Resp>;

pub(crate) fn ok(status: StatusCode, body: Value) -> Resp {
    http::json(status, &body)
}

pub(crate) async fn json_body(req: Request<Incoming>) -> Result<Value, Resp> {
    let bytes = http::collect(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| fastapi::detail(e.status, &e.message))?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(fastapi::invalid(vec![fastapi::item(
            "model_attributes_type",
            "body",
            "Input should be a valid dictionary or object to extract fields from",
            Value::Null,
        )])),
        Err(_) => Err(fastapi::json_invalid()),
    }
}

/// `?page=&page_size=` (1-based; page size 1 to [`MAX_PAGE_SIZE`]).
pub(crate) fn paging(query: &str, default_size: usize) -> Result<(usize, usize), Resp> {
    let number = |name: &str, default: usize, max: usize| -> Result<usize, Resp> {
        match http::query_param(query, name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    fastapi::detail(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &format!("{name} must be an integer from 1 to {max}"),
                    )
                }),
        }
    };
    Ok((
        number("page", 1, 1_000_000)?,
        number("page_size", default_size, MAX_PAGE_SIZE)?,
    ))
}

/// A number in a path.
pub(crate) fn path_number(text: &str, what: &str) -> Result<u64, Resp> {
    text.parse().map_err(|_| {
        fastapi::invalid(vec![json!({
            "type": "int_parsing",
            "loc": ["path", what],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": text,
        })])
    })
}
