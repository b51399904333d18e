//! The document's endpoints, as one table: which method and path go to which handler.

use std::sync::LazyLock;

use chat_server::extension::{Matched, PathParams, PathTable};
use chat_server::http;
use chat_server::{Context, Extension, Handled, auth};
use chat_starter::fastapi;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use crate::answers::Answer;
use crate::salons::SalonChat;
use crate::{chats, files, messages, socket};

/// The handlers of the document's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    StaffLogin,
    CustomerLogin,
    Socket,
    CreateChat,
    ListChats,
    CreateChatAsCustomer,
    ListCustomerChats,
    GetChat,
    History,
    PostMessage,
    EditMessage,
    DeleteMessage,
    Upload,
    Download,
    Stats,
}

/// Every endpoint of the document.
static ENDPOINTS: LazyLock<PathTable<Endpoint>> = LazyLock::new(|| {
    use Endpoint::*;
    PathTable::new([
        (Method::POST, "/api/v1/auth/login", StaffLogin),
        (Method::POST, "/api/v1/customer-auth/login", CustomerLogin),
        (Method::GET, "/api/v1/chat/ws/chat/{kind}", Socket),
        (Method::POST, "/api/v1/chat/chats", CreateChat),
        (Method::GET, "/api/v1/chat/chats", ListChats),
        (
            Method::POST,
            "/api/v1/chat/chats/customer",
            CreateChatAsCustomer,
        ),
        (
            Method::GET,
            "/api/v1/chat/chats/customer",
            ListCustomerChats,
        ),
        (Method::GET, "/api/v1/chat/chats/{id}", GetChat),
        (Method::GET, "/api/v1/chat/chats/{id}/messages", History),
        (
            Method::POST,
            "/api/v1/chat/chats/{id}/messages",
            PostMessage,
        ),
        (Method::PUT, "/api/v1/chat/messages/{id}", EditMessage),
        (Method::DELETE, "/api/v1/chat/messages/{id}", DeleteMessage),
        (Method::POST, "/api/v1/chat/upload", Upload),
        // Blob keys hold a folder per chat: the key is the rest of the path.
        (Method::GET, "/api/v1/chat/files/{chat}/{*key}", Download),
        (Method::GET, "/api/v1/chat/stats", Stats),
    ])
});

#[async_trait::async_trait]
impl Extension for SalonChat {
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled {
        let path = req.uri().path().to_owned();
        let (endpoint, pattern, params) = match ENDPOINTS.find(req.method(), &path) {
            Matched::Found {
                endpoint,
                pattern,
                params,
            } => (*endpoint, pattern, params),
            Matched::MethodNotAllowed { .. } => {
                let refused = fastapi::detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                return Handled::Answered("method_not_allowed", refused);
            }
            // The rest of the document's prefix is FastAPI's 404; other paths (the
            // built-in `/v1` API, `/healthz`) are the server's.
            Matched::NotFound if path == "/api/v1/chat" || path.starts_with("/api/v1/chat/") => {
                let missing = fastapi::detail(StatusCode::NOT_FOUND, "Not Found");
                return Handled::Answered("not_found", missing);
            }
            Matched::NotFound => return Handled::Declined(req),
        };
        let answer = self.answer(cx, endpoint, &params, req).await;
        Handled::Answered(pattern, answer.unwrap_or_else(|e| e))
    }
}

impl SalonChat {
    async fn answer(
        &self,
        cx: &Context,
        endpoint: Endpoint,
        params: &PathParams,
        req: Request<Incoming>,
    ) -> Answer {
        use Endpoint::*;
        let param = |name| params.get(name).unwrap_or_default();
        match endpoint {
            StaffLogin => return self.staff_login(cx, req).await,
            CustomerLogin => return self.customer_login(cx, req).await,
            Socket => {
                return match param("kind") {
                    kind @ ("user" | "customer") => {
                        socket::open(cx, self, req, kind == "user").await
                    }
                    _ => Err(fastapi::detail(StatusCode::NOT_FOUND, "Not Found")),
                };
            }
            // Every other endpoint is for a signed-in staff member or customer.
            _ => {}
        }
        let mut who = self.who(cx, token(&req)).await?;
        let id = param("id");
        match endpoint {
            CreateChat => self.create(cx, &mut who, req).await,
            ListChats => chats::list(cx, &mut who, &req, true).await,
            CreateChatAsCustomer => self.create_as_customer(cx, &mut who, req).await,
            ListCustomerChats => chats::list(cx, &mut who, &req, false).await,
            GetChat => chats::chat(cx, &mut who, id).await,
            History => chats::history(cx, &mut who, &req, id).await,
            PostMessage => messages::post(cx, &mut who, req, id).await,
            EditMessage => messages::edit(cx, &mut who, req, id).await,
            DeleteMessage => messages::delete(cx, &mut who, id).await,
            Upload => files::upload(cx, &who, req).await,
            Download => files::download(cx, &who, param("chat"), param("key")).await,
            Stats => self.stats(cx, &who).await,
            StaffLogin | CustomerLogin | Socket => unreachable!("answered before signing in"),
        }
    }
}

/// The bearer token of a request: the `Authorization` header, else `?token=` (the
/// document's clients put it in the query for `<img src>` and WebSockets).
fn token(req: &Request<Incoming>) -> Option<String> {
    auth::bearer(req.headers(), req.uri().query())
        .ok()
        .flatten()
        .or_else(|| {
            req.uri()
                .query()
                .and_then(|q| http::query_param(q, "token"))
        })
}
