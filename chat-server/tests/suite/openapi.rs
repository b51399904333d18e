//! The OpenAPI document and the router agree: every route is documented and every
//! documented operation exists on a live server.

use crate::common;

use chat_server::endpoints::ENDPOINTS;
use hyper::{Method, StatusCode};

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_exists() {
    let s = common::start().await;
    let doc = s.get("/v1/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();

    let mut documented = Vec::new();
    for (path, operations) in paths {
        for (method, op) in operations.as_object().unwrap() {
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
            assert!(
                op["responses"]["default"].is_object(),
                "{method} {path} documents no error shape"
            );
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    for route in ENDPOINTS {
        assert!(
            documented.contains(&(route.method.to_string(), route.path.to_owned())),
            "{} {} is served but not documented",
            route.method,
            route.path
        );
    }
    assert_eq!(documented.len(), ENDPOINTS.len());

    // Every documented operation reaches a handler: whatever it answers, it is not the
    // router's "no such route" or "method not allowed".
    for (method, path) in &documented {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let reply = s
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete,
                None,
                None,
            )
            .await;
        let routed = reply.body["error"]["message"] != "no such route"
            && reply.status != StatusCode::METHOD_NOT_ALLOWED;
        assert!(
            routed,
            "{method} {path} is documented but not served: {}",
            reply.text
        );
    }

    // Referenced schemas exist.
    let text = doc.text.clone();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc.body["components"]["schemas"][name].is_object(),
            "schema {name} is referenced but missing"
        );
    }
    let docs = s.get("/docs", None).await;
    assert_eq!(docs.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        docs.text.contains("/v1/openapi.json") && !docs.text.contains("https://"),
        "served from the binary, no CDN"
    );
    s.stop().await;
}

/// The bounds of a documented query parameter are the parser's: for every parameter whose
/// schema has a `maximum`, `minimum`, `maxLength` or `minLength`, the value at the bound
/// is not refused for that parameter and the value one past it is 422 naming it.
#[tokio::test]
async fn every_documented_query_bound_is_the_parsers() {
    let s = common::start().await;
    let admin = s.staff("Ada", chat_core::Role::Admin, &[]).await;
    let (conversation, _) = s.visitor("bound@example.com").await;
    let doc = s.get("/v1/openapi.json", None).await.body;
    let mut played = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let Some(op) = operations.get("get") else {
            continue;
        };
        let concrete = path.replace("{id}", &conversation);
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["in"] != "query" {
                continue;
            }
            let name = param["name"].as_str().unwrap();
            // The bounds sit on the schema, or on its first alternative (the other is "").
            let schema = param["schema"]["anyOf"]
                .get(0)
                .unwrap_or(&param["schema"])
                .clone();
            let mut cases = Vec::new();
            if let Some(max) = schema["maximum"].as_u64() {
                cases.push((max.to_string(), (u128::from(max) + 1).to_string()));
            }
            if let Some(min) = schema["minimum"].as_i64() {
                cases.push((min.to_string(), (i128::from(min) - 1).to_string()));
            }
            if let Some(max) = schema["maxLength"].as_u64() {
                let max = max as usize;
                cases.push(("é".repeat(max), "é".repeat(max + 1)));
            }
            if let Some(min) = schema["minLength"].as_u64() {
                // One short of the least is empty at 1: the parameter left out, which a
                // required parameter refuses just the same.
                let min = min as usize;
                cases.push(("x".repeat(min), "x".repeat(min - 1)));
            }
            for (at, past) in cases {
                let url = |value: &str| {
                    let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
                    format!("{concrete}?{name}={value}")
                };
                let refused = s.get(&url(&past), Some(&admin.token)).await;
                assert_eq!(
                    (refused.status, refused.body["error"]["field"].as_str()),
                    (StatusCode::UNPROCESSABLE_ENTITY, Some(name)),
                    "GET {path}: {name}={past} is past its documented bound: {}",
                    refused.text
                );
                let accepted = s.get(&url(&at), Some(&admin.token)).await;
                assert_ne!(
                    accepted.body["error"]["field"].as_str(),
                    Some(name),
                    "GET {path}: {name} at its documented bound is refused: {}",
                    accepted.text
                );
                played += 1;
            }
        }
    }
    // limit, since, before, after, q and email at least.
    assert!(played >= 10, "only {played} bounds played");
    s.stop().await;
}

/// Every query parameter an endpoint lists has a definition the handler reads it by.
#[test]
fn every_listed_query_parameter_is_defined() {
    use chat_server::api::query::{ENDPOINT_PARAMS, PARAMS};
    for endpoint in ENDPOINTS {
        for name in endpoint.query {
            assert!(
                PARAMS.iter().any(|p| p.name == *name)
                    || ENDPOINT_PARAMS
                        .iter()
                        .any(|(e, p)| *e == endpoint.id && p.name == *name),
                "{} {}: query parameter {name} has no definition",
                endpoint.method,
                endpoint.path
            );
        }
    }
}

/// A posted text's rule is one pattern (`chat_core::openapi::POSTED_TEXT`); the field
/// attributes that spell it out must say the same.
#[test]
fn posted_texts_are_documented_by_one_pattern() {
    let doc = chat_server::openapi::document();
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("PostMessageRequest", "body"),
        ("NewCannedResponse", "body"),
        ("CannedResponsePatch", "body"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"],
            chat_core::openapi::POSTED_TEXT,
            "{schema}.{field}"
        );
    }
}

/// The links the document states from `POST /v1/conversations` name real operations and
/// their path parameter, and the id each takes from the answer is the right one: followed
/// right after the opening, by the staff member who opened it, every linked read finds
/// the conversation or its contact.
#[tokio::test]
async fn the_links_of_an_opened_conversation_lead_to_it() {
    let s = common::start().await;
    let admin = s.staff("Ada", chat_core::Role::Admin, &[]).await;
    let doc = s.get("/v1/openapi.json", None).await.body;
    let links = doc["paths"]["/v1/conversations"]["post"]["responses"]["201"]["links"]
        .as_object()
        .expect("the opening states its links")
        .clone();
    let operations: std::collections::BTreeMap<String, (String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object().unwrap().iter().map(|(method, op)| {
                (
                    op["operationId"].as_str().unwrap().to_owned(),
                    (method.clone(), path.clone()),
                )
            })
        })
        .collect();
    let opened = s
        .post(
            "/v1/conversations",
            Some(&admin.token),
            serde_json::json!({ "contact": { "name": "Lin" }, "first_message": "hello" }),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let mut followed = 0;
    for (name, link) in &links {
        let target = link["operationId"].as_str().unwrap();
        let (method, path) = operations
            .get(target)
            .unwrap_or_else(|| panic!("link {name} names no operation {target}"));
        let pointer = link["parameters"]["id"]
            .as_str()
            .and_then(|p| p.strip_prefix("$response.body#"))
            .unwrap_or_else(|| panic!("link {name} gives no `id` from the body"));
        assert!(path.contains("{id}"), "link {name}: {path} takes no id");
        if method != "get" || path.matches('{').count() != 1 {
            continue;
        }
        let id = opened.body.pointer(pointer).and_then(|v| v.as_str());
        let id = id.unwrap_or_else(|| panic!("link {name}: the answer has no {pointer}"));
        let reply = s.get(&path.replace("{id}", id), Some(&admin.token)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "link {name}: GET {path} with {pointer}: {}",
            reply.text
        );
        followed += 1;
    }
    // The conversation, its messages, read cursors, queue and transcript; the contact and
    // its conversations.
    assert!(followed >= 6, "only {followed} links followed");
    s.stop().await;
}
