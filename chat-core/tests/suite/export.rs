//! Who may take the tenant export through the engine, and who gets secrets in it.

use crate::common;

use chat_core::Error;
use chat_core::export::ExportOptions;
use common::desk;

/// The lines of an export by `actor`, or the engine's refusal.
async fn export(
    engine: &chat_core::Engine,
    actor: &chat_core::Actor,
    secrets: bool,
) -> Result<Vec<String>, Error> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let reader = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    });
    let result = engine
        .export_tenant(
            actor,
            ExportOptions {
                secrets,
                ..Default::default()
            },
            tx,
        )
        .await;
    let lines = reader.await.unwrap();
    result.map(|_| lines)
}

#[tokio::test]
async fn admins_export_without_secrets_and_only_the_system_exports_with_them() {
    let d = desk().await;
    let lines = export(&d.engine, &d.admin, false).await.unwrap();
    assert!(lines[0].contains("\"secrets\":false"), "{}", lines[0]);
    assert!(matches!(
        export(&d.engine, &d.admin, true).await,
        Err(Error::Forbidden(_))
    ));
    for staff in [&d.supervisor, &d.ann] {
        assert!(matches!(
            export(&d.engine, staff, false).await,
            Err(Error::Forbidden(_))
        ));
    }
    let lines = export(&d.engine, &d.system, true).await.unwrap();
    assert!(lines[0].contains("\"secrets\":true"), "{}", lines[0]);
    assert!(lines.last().unwrap().starts_with("{\"kind\":\"end\""));
}
