//! The OpenAPI document and the router agree: every route is documented and every
//! documented operation exists on a live server.

mod common;

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
