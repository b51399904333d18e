//! The template plumbing: one tenant per database, a stable signing key, idempotent demo
//! staff and an owner-only token file whose tokens the server accepts.

use chat_core::{Role, TenantSettings};
use chat_server::auth::{self, Caller};
use chat_starter::Starter;

#[tokio::test]
async fn starters_reopen_the_same_tenant_key_and_staff() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let first = Starter::open(&db, "Salon", TenantSettings::default(), |b| b)
        .await
        .unwrap();
    let admin = first
        .ensure_staff("Admin", "admin@example.com", "admin123", Role::Admin)
        .await
        .unwrap();
    let token = first.staff_token(&admin).await.unwrap();
    let path = first
        .write_demo_tokens(&serde_json::json!({ "admin": token }))
        .unwrap();
    assert_eq!(path, dir.path().join("demo-tokens.json"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "tokens are credentials");
    }
    let (tenant, engine) = (first.tenant, first.engine.clone());
    drop(first);
    drop(engine);

    let again = Starter::open(&db, "Salon", TenantSettings::default(), |b| b)
        .await
        .unwrap();
    assert_eq!(again.tenant, tenant);
    let same = again
        .ensure_staff("Admin", "admin@example.com", "other", Role::Admin)
        .await
        .unwrap();
    assert_eq!(same.id, admin.id, "ensure_staff does not duplicate");
    // The key is stable across restarts, so the written token still authenticates.
    let caller = auth::authenticate(
        &again.engine,
        &again.config.jwt,
        &auth::TokenCache::default(),
        Some(&token),
    )
    .await
    .unwrap();
    assert!(matches!(caller, Caller::Actor(a) if a.tenant() == tenant));
    let stored = again.engine.credential(tenant, admin.id).await.unwrap();
    assert!(auth::verify_password(
        "admin123",
        stored.password_hash.as_deref().unwrap()
    ));
}
