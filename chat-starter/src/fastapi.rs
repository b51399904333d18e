//! FastAPI's answers, byte for byte where a FastAPI document's clients read them: `{"detail":
//! "..."}` errors, pydantic v2's 422 list, and the OAuth2 bearer challenge.

use chat_server::http::{self, Resp};
use hyper::StatusCode;
use hyper::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};

/// An engine error as FastAPI's `HTTPException`: `not_found` for anything missing or
/// not the caller's (so ids cannot be probed), `"Not enough permissions"` for a refused
/// action, pydantic's list naming the field for invalid input, the built-in API's message
/// (and `Retry-After`) otherwise.
pub fn engine_error(e: chat_core::Error, not_found: &str) -> Resp {
    let api = chat_server::error::ApiError::from(e);
    match api.status {
        StatusCode::NOT_FOUND => detail(StatusCode::NOT_FOUND, not_found),
        StatusCode::FORBIDDEN => detail(StatusCode::FORBIDDEN, "Not enough permissions"),
        StatusCode::UNPROCESSABLE_ENTITY => invalid(vec![item(
            "value_error",
            api.field.as_deref().unwrap_or("body"),
            &api.message,
            Value::Null,
        )]),
        status => {
            let mut response = detail(status, &api.message);
            // A busy store says when to come back (503 with `Retry-After`), as the built-in
            // API does.
            if let Some(seconds) = api.retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    }
}

/// `{"detail": text}` with `status`.
pub fn detail(status: StatusCode, text: &str) -> Resp {
    http::json(status, &json!({ "detail": text }))
}

/// 401 with `WWW-Authenticate: Bearer`, as FastAPI's `OAuth2PasswordBearer` answers.
pub fn unauthorized(text: &str) -> Resp {
    let mut response = detail(StatusCode::UNAUTHORIZED, text);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// One pydantic error item.
pub fn item(kind: &str, field: &str, msg: &str, input: Value) -> Value {
    json!({ "type": kind, "loc": ["body", field], "msg": msg, "input": input })
}

/// 422 with pydantic's error list.
pub fn invalid(items: Vec<Value>) -> Resp {
    http::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({ "detail": items }),
    )
}

/// FastAPI's answer to a body that is not JSON.
pub fn json_invalid() -> Resp {
    invalid(vec![json!({
        "type": "json_invalid",
        "loc": ["body", 0],
        "msg": "JSON decode error",
        "input": {},
        "ctx": { "error": "Expecting value" },
    })])
}

/// Required string fields of a JSON body, checked like pydantic: every missing or
/// non-string field is reported at once.
// The error is a finished response, answered at once: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
pub fn strings(body: &Value, fields: &[&str]) -> Result<Vec<String>, Resp> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for field in fields {
        match body.get(*field) {
            Some(Value::String(s)) => values.push(s.clone()),
            None => errors.push(item("missing", field, "Field required", body.clone())),
            Some(other) => errors.push(item(
                "string_type",
                field,
                "Input should be a valid string",
                other.clone(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use chat_core::{Error, StorageKind};

    use super::*;

    #[test]
    fn a_busy_store_is_503_with_retry_after_and_a_full_one_without() {
        let busy = Error::storage_kind(StorageKind::Busy, "database is locked: /srv/chat.db");
        let response = engine_error(busy, "Chat not found");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        let full = engine_error(
            Error::storage_kind(StorageKind::Full, "disk full"),
            "Chat not found",
        );
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(full.headers().get(RETRY_AFTER).is_none());
    }
}
