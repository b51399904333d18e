//! Conformance of inboxes: stored with their settings and secrets, one thread per
//! customer of an inbox (the first link wins), threads gone with their conversation.

use super::*;
use crate::ids::{InboxId, WebhookId};

fn inbox_value(tenant: TenantId) -> Inbox {
    Inbox {
        id: InboxId(id()),
        tenant_id: tenant,
        name: "Shop app".into(),
        kind: InboxKind::Api,
        token_digest: "ab12".into(),
        webhook_id: Some(WebhookId(id())),
        settings: BTreeMap::from([("base_url".into(), "https://api.example".into())]),
        secrets: InboxSecrets(BTreeMap::from([("bot_token".into(), "123:abc".into())])),
        created_at: T0,
        updated_at: T0,
    }
}

pub async fn inboxes_are_stored_per_tenant_and_found_by_id(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let a = inbox_value(t);
    let b = inbox_value(other);
    store.put_inbox(&a).await.unwrap();
    store.put_inbox(&b).await.unwrap();
    assert_eq!(store.inboxes(t).await.unwrap(), vec![a.clone()]);
    assert_eq!(store.inbox(b.id).await.unwrap(), Some(b.clone()));
    let mut renamed = a.clone();
    renamed.name = "Shop app (new)".into();
    renamed.updated_at = at(5);
    store.put_inbox(&renamed).await.unwrap();
    assert_eq!(store.inbox(a.id).await.unwrap(), Some(renamed));
    // Another tenant cannot take the id over.
    let mut stolen = b.clone();
    stolen.id = a.id;
    assert!(store.put_inbox(&stolen).await.is_err());
    assert!(matches!(
        store.delete_inbox(other, a.id).await,
        Err(Error::NotFound(_))
    ));
    store.delete_inbox(t, a.id).await.unwrap();
    assert_eq!(store.inbox(a.id).await.unwrap(), None);
    assert!(store.inboxes(t).await.unwrap().is_empty());
}

pub async fn an_inbox_is_replaced_only_over_the_version_read(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let inbox = inbox_value(t);
    store.put_inbox(&inbox).await.unwrap();
    // The first admin's edit, over the version both read, lands.
    let mut first = inbox.clone();
    first.name = "Shop app (first)".into();
    first
        .settings
        .insert("from".into(), "help@shop.example".into());
    first.updated_at = at(5);
    assert!(store.replace_inbox(&first, T0).await.unwrap());
    // The second, over the same old version, changes nothing.
    let mut second = inbox.clone();
    second.name = "Shop app (second)".into();
    second.token_digest = "cd34".into();
    second.updated_at = at(6);
    assert!(!store.replace_inbox(&second, T0).await.unwrap());
    assert_eq!(store.inbox(inbox.id).await.unwrap(), Some(first.clone()));
    // Read again, it lands over the first.
    second.settings = first.settings.clone();
    assert!(store.replace_inbox(&second, at(5)).await.unwrap());
    assert_eq!(store.inbox(inbox.id).await.unwrap(), Some(second.clone()));
    // Another tenant's id, or one that is gone, replaces nothing and creates nothing.
    let mut stolen = second.clone();
    stolen.tenant_id = other;
    stolen.updated_at = at(7);
    assert!(!store.replace_inbox(&stolen, at(6)).await.unwrap());
    let ghost = inbox_value(t);
    assert!(!store.replace_inbox(&ghost, T0).await.unwrap());
    assert_eq!(store.inbox(ghost.id).await.unwrap(), None);
    assert_eq!(store.inbox(inbox.id).await.unwrap(), Some(second));
}

pub async fn an_inbox_customer_has_one_thread_and_the_first_link_wins(store: S) {
    let t = tenant(&store).await;
    let inbox = inbox_value(t);
    store.put_inbox(&inbox).await.unwrap();
    let k = contact(&store, t, None).await;
    let first = conversation(&store, t, k.id, |_| {}).await;
    let second = conversation(&store, t, k.id, |_| {}).await;
    assert_eq!(store.inbox_thread(inbox.id, "chat-42").await.unwrap(), None);
    let linked = store
        .link_inbox_thread(t, inbox.id, "chat-42", first.id)
        .await
        .unwrap();
    assert_eq!(linked, first.id);
    let again = store
        .link_inbox_thread(t, inbox.id, "chat-42", second.id)
        .await
        .unwrap();
    assert_eq!(again, first.id, "the first link stays");
    assert_eq!(
        store.inbox_thread(inbox.id, "chat-42").await.unwrap(),
        Some(first.id)
    );
    assert_eq!(store.inbox_thread(inbox.id, "chat-43").await.unwrap(), None);
    // The thread goes with its conversation, so the customer's next message opens anew.
    store.delete_conversation(t, first.id, at(9)).await.unwrap();
    assert_eq!(store.inbox_thread(inbox.id, "chat-42").await.unwrap(), None);
    assert_eq!(
        store
            .link_inbox_thread(t, inbox.id, "chat-42", second.id)
            .await
            .unwrap(),
        second.id
    );
    // And with their inbox.
    store.delete_inbox(t, inbox.id).await.unwrap();
    assert_eq!(store.inbox_thread(inbox.id, "chat-42").await.unwrap(), None);
}

pub async fn one_node_polls_an_inbox_and_its_offset_only_moves_forward(store: S) {
    let t = tenant(&store).await;
    let inbox = inbox_value(t);
    store.put_inbox(&inbox).await.unwrap();
    // The first lease answers offset 0; a renewal stores the offset it brings.
    assert_eq!(
        store
            .poll_inbox(inbox.id, "a", 0, at(0), at(60))
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        store
            .poll_inbox(inbox.id, "a", 102, at(1), at(61))
            .await
            .unwrap(),
        Some(102)
    );
    // Another node waits while the lease lives, and changes nothing.
    assert_eq!(
        store
            .poll_inbox(inbox.id, "b", 500, at(2), at(62))
            .await
            .unwrap(),
        None
    );
    // The offset never goes back.
    assert_eq!(
        store
            .poll_inbox(inbox.id, "a", 7, at(3), at(63))
            .await
            .unwrap(),
        Some(102)
    );
    // A lapsed lease is another node's to take, with the offset stored.
    assert_eq!(
        store
            .poll_inbox(inbox.id, "b", 0, at(63), at(120))
            .await
            .unwrap(),
        Some(102)
    );
    assert_eq!(
        store
            .poll_inbox(inbox.id, "a", 0, at(64), at(124))
            .await
            .unwrap(),
        None
    );
    // Released (`until <= now`): taken at once.
    assert_eq!(
        store
            .poll_inbox(inbox.id, "b", 103, at(65), at(65))
            .await
            .unwrap(),
        Some(103)
    );
    assert_eq!(
        store
            .poll_inbox(inbox.id, "a", 0, at(66), at(126))
            .await
            .unwrap(),
        Some(103)
    );
    // Another inbox has its own offset; rewriting the inbox keeps it; a gone inbox is
    // not found.
    let other = inbox_value(t);
    store.put_inbox(&other).await.unwrap();
    assert_eq!(
        store
            .poll_inbox(other.id, "b", 0, at(67), at(127))
            .await
            .unwrap(),
        Some(0)
    );
    let mut renamed = inbox.clone();
    renamed.name = "Renamed".into();
    store.put_inbox(&renamed).await.unwrap();
    assert_eq!(
        store
            .poll_inbox(inbox.id, "a", 0, at(68), at(128))
            .await
            .unwrap(),
        Some(103)
    );
    store.delete_inbox(t, inbox.id).await.unwrap();
    assert!(matches!(
        store.poll_inbox(inbox.id, "a", 0, at(69), at(129)).await,
        Err(Error::NotFound(_))
    ));
}
