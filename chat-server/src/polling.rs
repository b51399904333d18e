//! Telegram long polling: for a bot without a public URL, a `telegram` inbox created with
//! `mode: polling` reads its updates by `getUpdates` instead of a webhook.
//!
//! - One poller per inbox across every server on the database: a node polls an inbox
//!   only while it holds the inbox's lease in the store ([`chat_core::Engine::poll_inbox`]),
//!   renewed at every step and released at shutdown; a node that dies loses it when it
//!   lapses (the long-poll time plus the client timeout plus 30 s).
//! - The offset is durable: after each update is handled, `update_id + 1` is stored with
//!   the lease renewal, and every `getUpdates` asks from the stored offset (which also
//!   tells Telegram the earlier updates are confirmed). A restart neither skips nor
//!   repeats updates; one handled but not yet recorded when a node died comes again, and
//!   its message is stored once (idempotent on `message_id`).
//! - An update refused for good (a file over the limit or of a type the desk does not
//!   take, a malformed message: a 4xx of the webhook route) is logged and passed over; a
//!   failure that may pass (Telegram not giving a file, the store) stops the batch, and
//!   the same update is asked for again after a pause.
//! - `deleteWebhook` is called when such an inbox is created: Telegram refuses
//!   `getUpdates` (409 Conflict) while a webhook is set, and `setWebhook` stops them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{Error, Inbox, InboxId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::channels::telegram;
use crate::webhooks::HttpClient;

/// How long a poller waits after a failed `getUpdates` or store step before the next.
const PAUSE: Duration = Duration::from_secs(2);

/// Runs the pollers of every polling inbox until `stopped` flips, with the delivery
/// worker's switch ([`WebhookConfig::enabled`](crate::webhooks::WebhookConfig): a server
/// that leaves delivery to others leaves polling to them too).
pub(crate) async fn run(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    if !app.config.webhooks.enabled {
        return;
    }
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).expect("the OS random source works");
    let node: Arc<str> = Arc::from(hex::encode(random));
    let client = crate::webhooks::client(app.config.webhooks.allow_private);
    let mut running: HashMap<InboxId, JoinHandle<()>> = HashMap::new();
    // New polling inboxes are looked for at a quarter of the outbox's pace: a list of every
    // tenant's inboxes, cheap but not free.
    let mut tick =
        tokio::time::interval(app.config.webhooks.poll.max(Duration::from_millis(10)) * 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        running.retain(|_, task| !task.is_finished());
        let inboxes = match app.engine.polling_inboxes().await {
            Ok(inboxes) => inboxes,
            Err(e) => {
                tracing::warn!(error = %e, "listing polling inboxes failed");
                continue;
            }
        };
        for inbox in inboxes {
            running.entry(inbox.id).or_insert_with(|| {
                tokio::spawn(poll(
                    app.clone(),
                    client.clone(),
                    node.clone(),
                    inbox,
                    stopped.clone(),
                ))
            });
        }
    }
    // Each poller releases its lease, so another server takes over at once.
    for (_, task) in running {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}

/// Polls one inbox while this node holds its lease.
async fn poll(
    app: Arc<App>,
    client: HttpClient,
    node: Arc<str>,
    inbox: Inbox,
    mut stopped: watch::Receiver<bool>,
) {
    let config = &app.config.webhooks;
    let long_poll = config.telegram_long_poll;
    // Outlasts one getUpdates (its wait, then the client's timeout) and its batch.
    let lease = long_poll + config.timeout + Duration::from_secs(30);
    let mut offset = match app.engine.poll_inbox(inbox.id, &node, 0, lease).await {
        Ok(Some(offset)) => offset,
        // Another node polls it, or it is gone: the next round looks again.
        Ok(None) | Err(Error::NotFound(_)) => return,
        Err(e) => {
            tracing::warn!(inbox = %inbox.id, error = %e, "taking a polling lease failed");
            return;
        }
    };
    tracing::info!(inbox = %inbox.id, offset, "polling Telegram for updates");
    loop {
        let body = serde_json::json!({
            "offset": offset,
            "timeout": long_poll.as_secs(),
            "allowed_updates": ["message"],
        });
        let asked = telegram::call(
            &client,
            long_poll + config.timeout,
            &inbox,
            "getUpdates",
            &body,
        );
        let answer = tokio::select! {
            (answer, _) = asked => answer,
            _ = stopped.changed() => break,
        };
        let mut failed = false;
        match answer {
            Err((status, why)) => {
                tracing::warn!(inbox = %inbox.id, status, error = why, "getUpdates failed");
                failed = true;
            }
            Ok(updates) => {
                for update in updates.as_array().into_iter().flatten() {
                    let Some(id) = update["update_id"].as_i64() else {
                        continue;
                    };
                    if id < offset {
                        continue;
                    }
                    let taken = match serde_json::from_value::<telegram::Update>(update.clone()) {
                        Ok(parsed) => crate::api::inboxes::take_update(&app, &inbox, parsed).await,
                        Err(e) => Err(crate::error::ApiError::invalid(
                            "update",
                            format!("not an Update: {e}"),
                        )),
                    };
                    match taken {
                        Ok(_) => {}
                        Err(e) if e.status.is_client_error() => {
                            tracing::warn!(inbox = %inbox.id, update = id, error = e.message, "Telegram update refused");
                        }
                        Err(e) => {
                            tracing::warn!(inbox = %inbox.id, update = id, error = e.message, "Telegram update failed; asked again");
                            failed = true;
                            break;
                        }
                    }
                    offset = id + 1;
                    // Recorded at once: a restart after this update asks for the next.
                    match step(&app, &inbox, &node, offset, lease).await {
                        Some(stored) => offset = offset.max(stored),
                        None => return,
                    }
                }
            }
        }
        match step(&app, &inbox, &node, offset, lease).await {
            Some(stored) => offset = offset.max(stored),
            None => return,
        }
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(PAUSE) => {}
                _ = stopped.changed() => break,
            }
        }
        if *stopped.borrow() {
            break;
        }
    }
    let _ = app
        .engine
        .poll_inbox(inbox.id, &node, offset, Duration::ZERO)
        .await;
}

/// Stores the offset and renews the lease: the stored offset, or `None` when the lease is
/// lost (another node took it over) or the inbox is gone, and the poller ends.
async fn step(app: &App, inbox: &Inbox, node: &str, offset: i64, lease: Duration) -> Option<i64> {
    loop {
        match app.engine.poll_inbox(inbox.id, node, offset, lease).await {
            Ok(Some(stored)) => return Some(stored),
            Ok(None) | Err(Error::NotFound(_)) => return None,
            Err(e) => {
                // The store failing is no reason to poll on without a lease: wait.
                tracing::warn!(inbox = %inbox.id, error = %e, "storing the polling offset failed");
                tokio::time::sleep(PAUSE).await;
            }
        }
    }
}
