//! Tenant settings over `/v1/settings`: admins read and patch them, everyone else is
//! refused, bad values are 422 naming the setting and change nothing, and the binary's
//! flags set a new tenant's settings.

use crate::common;

use chat_core::Role;
use chat_server::testing::{HttpClient, Reply};
use hyper::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_patches_settings_and_staff_receive_a_settings_updated_event() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;

    let before = server.get("/v1/settings", Some(&admin.token)).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert_eq!(before.body["requeue_after_secs"], json!(null));
    assert_eq!(before.body["bot_enabled"], json!(true));

    let patched = server
        .patch(
            "/v1/settings",
            Some(&admin.token),
            json!({ "requeue_after_secs": 120, "close_inactive_after_secs": 3600, "welcome_message": "Hi there!" }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["requeue_after_secs"], json!(120));
    // Settings the patch did not name keep their values.
    assert_eq!(patched.body["bot_enabled"], json!(true));

    let after = server.get("/v1/settings", Some(&admin.token)).await;
    assert_eq!(after.body, patched.body);
    let stored = server
        .engine
        .tenant(&chat_core::Actor::System {
            tenant: server.tenant,
        })
        .await
        .unwrap();
    assert_eq!(stored.settings.close_inactive_after_secs, Some(3600));
    assert!(stored.settings.has_timers());

    let events = server.get("/v1/events?since=0", Some(&admin.token)).await;
    let kinds: Vec<_> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["type"] == "settings_updated")
        .collect();
    assert_eq!(kinds.len(), 1, "{}", events.text);
    assert_eq!(kinds[0]["payload"]["settings"], patched.body);
    assert_eq!(kinds[0]["staff_only"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_read_or_change_settings() {
    let server = common::start().await;
    let agent = server.staff("Bob", Role::Agent, &[]).await;
    let supervisor = server.staff("Sue", Role::Supervisor, &[]).await;
    let (_, visitor) = server.visitor("v@example.com").await;

    for token in [&agent.token, &supervisor.token, &visitor] {
        let read = server.get("/v1/settings", Some(token)).await;
        assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);
        let write = server
            .patch("/v1/settings", Some(token), json!({ "bot_enabled": false }))
            .await;
        assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);
    }
    let anonymous = server.get("/v1/settings", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let system = chat_core::Actor::System {
        tenant: server.tenant,
    };
    assert!(
        server
            .engine
            .tenant(&system)
            .await
            .unwrap()
            .settings
            .bot_enabled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_422_naming_the_setting_and_change_nothing() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let before = server.get("/v1/settings", Some(&admin.token)).await;

    for (patch, field) in [
        (json!({ "default_capacity": 0 }), "default_capacity"),
        (json!({ "requeue_after_secs": 0 }), "requeue_after_secs"),
        (json!({ "welcome_message": "   " }), "welcome_message"),
        (json!({ "bot_enabled": "yes" }), "bot_enabled"),
        (json!({ "colour": "blue" }), "colour"),
        (json!({ "upload_max_bytes": 0 }), "upload_max_bytes"),
        (
            json!({ "upload_allowed_types": ["text/html"] }),
            "upload_allowed_types",
        ),
        (
            json!({ "contact_attributes": { "two words": "text" } }),
            "contact_attributes",
        ),
        // A valid setting beside a bad one is not applied either.
        (
            json!({ "auto_assign": false, "edit_window_secs": 1_000_000 }),
            "edit_window_secs",
        ),
    ] {
        let reply = server
            .patch("/v1/settings", Some(&admin.token), patch.clone())
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{patch}: {}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], json!(field), "{patch}");
    }
    let not_an_object = server
        .patch("/v1/settings", Some(&admin.token), json!([1, 2]))
        .await;
    assert!(not_an_object.status.is_client_error());

    let after = server.get("/v1/settings", Some(&admin.token)).await;
    assert_eq!(after.body, before.body);
    let events = server.get("/v1/events?since=0", Some(&admin.token)).await;
    assert!(!events.text.contains("settings_updated"), "{}", events.text);
}

/// A `PATCH` with `If-Match` as `GET` gave it.
async fn patch_if(server: &HttpClient, token: &str, etag: &str, body: serde_json::Value) -> Reply {
    server
        .send_as(
            hyper::Method::PATCH,
            "/v1/settings",
            Some(token),
            &[("content-type", "application/json"), ("if-match", etag)],
            body.to_string(),
        )
        .await
}

fn etag(reply: &Reply) -> String {
    reply
        .headers
        .get("etag")
        .unwrap_or_else(|| panic!("an ETag on {}", reply.text))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_editing_from_one_read_cannot_overwrite_each_other() {
    let server = common::start().await;
    let ann = server.staff("Ann", Role::Admin, &[]).await;
    let bo = server.staff("Bo", Role::Admin, &[]).await;

    // Both read the same version.
    let read_ann = server.get("/v1/settings", Some(&ann.token)).await;
    let read_bo = server.get("/v1/settings", Some(&bo.token)).await;
    assert_eq!(read_ann.status, StatusCode::OK, "{}", read_ann.text);
    assert_eq!(etag(&read_ann), "\"0\"");
    assert_eq!(etag(&read_ann), etag(&read_bo));

    // Ann's change lands and answers the next version.
    let first = patch_if(
        &server,
        &ann.token,
        &etag(&read_ann),
        json!({ "welcome_message": "Hello from Ann" }),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(etag(&first), "\"1\"");

    // Bo's, made from the same read, is refused with the current version.
    let second = patch_if(
        &server,
        &bo.token,
        &etag(&read_bo),
        json!({ "welcome_message": "Hello from Bo", "bot_enabled": false }),
    )
    .await;
    assert_eq!(
        second.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        second.text
    );
    assert_eq!(second.body["error"]["code"], "precondition_failed");
    assert_eq!(second.body["error"]["current_version"], json!(1));

    // A patch that does not fit is 422 naming the setting, stale version or not: the
    // body's error comes first.
    let unfit = patch_if(
        &server,
        &bo.token,
        &etag(&read_bo),
        json!({ "average_handle_secs": [1] }),
    )
    .await;
    assert_eq!(
        unfit.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unfit.text
    );
    assert_eq!(unfit.body["error"]["field"], "average_handle_secs");

    // Nothing of Bo's change was written, and no event logged for it.
    let now = server.get("/v1/settings", Some(&bo.token)).await;
    assert_eq!(etag(&now), "\"1\"");
    assert_eq!(now.body["welcome_message"], "Hello from Ann");
    assert_eq!(now.body["bot_enabled"], json!(true));
    let events = server.get("/v1/events?since=0", Some(&ann.token)).await;
    let updates = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["type"] == "settings_updated")
        .count();
    assert_eq!(updates, 1, "{}", events.text);

    // Read again, Bo's change applies; `*` and a list naming the current version match.
    let retried = patch_if(
        &server,
        &bo.token,
        &etag(&now),
        json!({ "bot_enabled": false }),
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(etag(&retried), "\"2\"");
    let any = patch_if(&server, &bo.token, "*", json!({ "prechat_form": true })).await;
    assert_eq!(any.status, StatusCode::OK, "{}", any.text);
    let listed = patch_if(
        &server,
        &ann.token,
        "\"1\", \"3\"",
        json!({ "prechat_form": false }),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(etag(&listed), "\"4\"");

    // A tag that is not one of ours (weak, or not a version) matches nothing.
    for stale in ["W/\"4\"", "\"four\"", "4"] {
        let refused = patch_if(&server, &ann.token, stale, json!({ "prechat_form": true })).await;
        assert_eq!(
            refused.status,
            StatusCode::PRECONDITION_FAILED,
            "{stale}: {}",
            refused.text
        );
    }
    // Without `If-Match` a patch is merged into the newest settings, as before.
    let plain = server
        .patch(
            "/v1/settings",
            Some(&ann.token),
            json!({ "welcome_message": "Hi" }),
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text);
    assert_eq!(etag(&plain), "\"5\"");
    assert_eq!(plain.body["bot_enabled"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conditional_patches_from_one_version_let_exactly_one_through() {
    let server = std::sync::Arc::new(common::start().await);
    let admin = server.staff("Ann", Role::Admin, &[]).await;
    let read = server.get("/v1/settings", Some(&admin.token)).await;
    let tag = etag(&read);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (server, token, tag) = (server.clone(), admin.token.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            patch_if(
                &server,
                &token,
                &tag,
                json!({ "welcome_message": format!("version by {n}") }),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((won, refused), (1, 7), "{statuses:?}");
    let after = server.get("/v1/settings", Some(&admin.token)).await;
    assert_eq!(etag(&after), "\"1\"");
}

/// A value out of range is the body's error whatever version `If-Match` names: 422 naming
/// the setting (not 412), and nothing changes. Found by schemathesis: a stale `If-Match`
/// with `upload_max_files: 0` answered 412, so the client learnt of its bad value only
/// after re-reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_setting_is_422_even_under_a_stale_if_match() {
    let server = common::start().await;
    let ann = server.staff("Ann", Role::Admin, &[]).await;
    let read = server.get("/v1/settings", Some(&ann.token)).await;
    let stale = etag(&read);
    let moved = patch_if(
        &server,
        &ann.token,
        &stale,
        json!({ "welcome_message": "Hello" }),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);

    let refused = patch_if(
        &server,
        &ann.token,
        &stale,
        json!({ "upload_max_files": 0 }),
    )
    .await;
    assert_eq!(
        (refused.status, refused.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("upload_max_files")),
        "{}",
        refused.text
    );
    let now = server.get("/v1/settings", Some(&ann.token)).await;
    assert_eq!(etag(&now), etag(&moved), "nothing changed");
    assert_eq!(now.body["upload_max_files"], read.body["upload_max_files"]);
    server.stop().await;
}
