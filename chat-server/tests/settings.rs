//! Tenant settings over `/v1/settings`: admins read and patch them, everyone else is
//! refused, bad values are 422 naming the setting and change nothing, and the binary's
//! flags set a new tenant's settings.

mod common;

use chat_core::Role;
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
