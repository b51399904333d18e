//! What binds a widget-chosen session id to the browser that created it.
//!
//! At creation the server makes a visitor token (256 random bits; the engine stores only
//! its SHA-256 digest) for that one conversation and sets it in a cookie named after the
//! session: `HttpOnly` (page scripts never see it), `SameSite=Strict` (another site's
//! page cannot make the browser send it), scoped to the two paths that need it
//! (`/api/live-chat` and `/ws/live-chat`), and `Secure` when the page was served over
//! https. Same-origin `fetch` and WebSocket handshakes send it by themselves, so the
//! document's widget runs unchanged.
//!
//! A site on another origin that cannot use cookies sends the same token (the create
//! answer's `data.token`) as `Authorization: Bearer …`, or as `?token=` on the socket,
//! whose browser API cannot set headers.

use chat_core::{Conversation, Engine, TenantId, VisitorToken};
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, COOKIE, HeaderValue, ORIGIN};
use time::{Duration, OffsetDateTime};

/// How long the browser keeps a session's cookie, and the engine its token.
pub const TOKEN_LIFETIME: Duration = Duration::days(30);

/// The paths a session cookie is sent on: the guest's REST routes and the socket.
pub const COOKIE_PATHS: [&str; 2] = ["/api/live-chat", "/ws/live-chat"];

/// The cookie holding the token of session `session_id` (a chosen id is safe in a cookie
/// name, see [`crate::ids::well_formed`]). One cookie per session, so a browser that
/// opens a second chat keeps the first.
pub fn cookie_name(session_id: &str) -> String {
    format!("lc_{session_id}")
}

/// The tokens a request carries for `session_id`: its cookie, then a bearer token
/// (header, or `token` / `access_token` in the query).
pub fn presented(headers: &HeaderMap, query: Option<&str>, session_id: &str) -> Vec<String> {
    let name = cookie_name(session_id);
    let mut tokens: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        tokens.push(bearer.trim().to_owned());
    }
    for param in ["token", "access_token"] {
        if let Some(token) = query.and_then(|q| chat_server::http::query_param(q, param)) {
            tokens.push(token);
        }
    }
    tokens.retain(|t| t.starts_with(chat_server::auth::VISITOR_PREFIX));
    tokens
}

/// Whether one of `tokens` is a live visitor token for `conversation`.
pub async fn holds(engine: &Engine, conversation: &Conversation, tokens: &[String]) -> bool {
    let now = engine.clock().now();
    for token in tokens {
        let digest = chat_server::auth::token_digest(token);
        if let Ok(Some(stored)) = engine.visitor_token(&digest).await
            && stored.tenant_id == conversation.tenant_id
            && stored.conversation_id == Some(conversation.id)
            && stored.expires_at.is_none_or(|at| at > now)
        {
            return true;
        }
    }
    false
}

/// A new token for one conversation: the token for the browser and the record the
/// engine keeps (its digest).
pub fn new_token(
    tenant: TenantId,
    conversation: &Conversation,
    now: OffsetDateTime,
) -> (String, VisitorToken) {
    let (token, digest) = chat_server::auth::new_visitor_token();
    let record = VisitorToken {
        digest,
        tenant_id: tenant,
        contact_id: conversation.contact_id,
        conversation_id: Some(conversation.id),
        created_at: now,
        expires_at: Some(now + TOKEN_LIFETIME),
    };
    (token, record)
}

/// Whether the page was served over https: then the cookie is `Secure`. Any one sign is
/// enough. A forged sign only makes the browser refuse the cookie over http, so it can
/// hurt no one but the forger.
pub fn over_https(headers: &HeaderMap) -> bool {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    value(ORIGIN.as_str()).is_some_and(|o| o.starts_with("https://"))
        || value("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"))
        || value("forwarded").is_some_and(|f| f.to_ascii_lowercase().contains("proto=https"))
}

/// The `Set-Cookie` values that bind a session to this browser, one per path.
pub fn set_cookies(session_id: &str, token: &str, secure: bool) -> Vec<HeaderValue> {
    COOKIE_PATHS
        .iter()
        .map(|path| {
            let mut cookie = format!(
                "{}={token}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict",
                cookie_name(session_id),
                TOKEN_LIFETIME.whole_seconds()
            );
            if secure {
                cookie.push_str("; Secure");
            }
            HeaderValue::from_str(&cookie).expect("a checked session id and a token are ASCII")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_strict_path_scoped_and_secure_over_https() {
        let cookies = set_cookies("session-1-abc12345", "vt_x", false);
        assert_eq!(cookies.len(), 2);
        let first = cookies[0].to_str().unwrap();
        assert!(first.starts_with("lc_session-1-abc12345=vt_x; Path=/api/live-chat;"));
        assert!(first.contains("HttpOnly") && first.contains("SameSite=Strict"));
        assert!(!first.contains("Secure"));
        assert!(cookies[1].to_str().unwrap().contains("Path=/ws/live-chat"));
        let secure = set_cookies("session-1-abc12345", "vt_x", true);
        assert!(secure[0].to_str().unwrap().ends_with("; Secure"));

        let mut headers = HeaderMap::new();
        assert!(!over_https(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("https://shop.example"));
        assert!(over_https(&headers));
    }

    #[test]
    fn only_the_named_sessions_cookie_and_visitor_tokens_are_presented() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("lc_other-session=vt_a; lc_session-1-abc12345=vt_b; x=1"),
        );
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer eyJ.staff.jwt"),
        );
        assert_eq!(
            presented(&headers, Some("token=vt_c"), "session-1-abc12345"),
            vec!["vt_b".to_owned(), "vt_c".to_owned()]
        );
    }
}
