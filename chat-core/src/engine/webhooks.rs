//! Event webhooks: admins register endpoints; the store writes each matching event's
//! delivery in the event's own transaction (the outbox); a delivery worker (the server's,
//! or an embedder's) claims due deliveries here, posts them and reports each attempt,
//! and the engine decides what follows: the next attempt (exponential backoff with
//! jitter), giving up after the retry period, pausing an endpoint that keeps failing.
//!
//! The engine knows nothing of HTTP: how a delivery is posted and signed is the worker's.

use std::time::Duration;

use serde::Deserialize;

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::WebhookId;
use crate::model::{
    Delivery, DeliveryOutcome, DeliveryState, Event, NewEvent, Role, WEBHOOK_EVENT_KINDS, Webhook,
    WebhookSecret, WebhookState,
};
use crate::policy::{Actor, Resolved};

/// Longest webhook URL, in characters.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2_000;
/// Most webhooks per tenant: each event writes one delivery per webhook.
pub const MAX_WEBHOOKS: usize = 20;

/// A new webhook.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to post: `http://` or `https://`.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub url: String,
    /// Event kinds to follow ([`WEBHOOK_EVENT_KINDS`]); empty or absent = all.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::webhook_events))]
    pub events: Vec<String>,
    /// The signing secret (16 to 256 characters); absent = the engine makes one, shown once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 16, max_length = 256))]
    pub secret: Option<String>,
}

/// A change to a webhook: only the fields given change.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// New URL.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub url: Option<String>,
    /// New event kinds (empty = all).
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::webhook_events_patch))]
    pub events: Option<Vec<String>>,
    /// `paused` stops attempts; `active` resumes them (and forgets past failures).
    pub state: Option<WebhookState>,
}

/// How deliveries are retried and when an endpoint is paused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WebhookRetry {
    /// Wait after the first failure; doubled after each next one.
    pub base: Duration,
    /// Longest wait between two attempts.
    pub max: Duration,
    /// A delivery still failing this long after its event is given up (`failed`).
    pub give_up_after: Duration,
    /// An endpoint whose every attempt has failed for this long is paused.
    pub pause_after: Duration,
    /// How long a claimed delivery is reserved for the worker that claimed it: longer than
    /// one attempt may take, so only a dead worker's claims lapse.
    pub lease: Duration,
}

impl Default for WebhookRetry {
    /// 10 s doubling to at most 1 h, given up after a day; paused after a day of failures;
    /// a 60 s lease.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max: Duration::from_secs(3_600),
            give_up_after: Duration::from_secs(86_400),
            pause_after: Duration::from_secs(86_400),
            lease: Duration::from_secs(60),
        }
    }
}

impl WebhookRetry {
    /// The wait before attempt `attempts + 1`, after `attempts` failures: `base · 2^(n-1)`
    /// capped at `max`, then "equal jitter" (a random point in its upper half) so endpoints
    /// recovering from an outage are not hit by every retry at once. `random` is any
    /// uniformly random number.
    pub fn backoff(&self, attempts: u32, random: u64) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << exp).min(self.max);
        let half = full / 2;
        let spread = half.as_millis() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        half + Duration::from_millis(jitter)
    }
}

/// A claimed delivery with what the worker needs to post it.
#[derive(Clone, Debug, PartialEq)]
pub struct DueDelivery {
    /// The delivery, as before the claim.
    pub delivery: Delivery,
    /// Its webhook (URL, secret).
    pub webhook: Webhook,
    /// The event; `None` if it is no longer in the log.
    pub event: Option<Event>,
}

/// What one attempt got, as the worker saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// The answer's HTTP status, if one came; 2xx is a success.
    pub status: Option<u16>,
    /// Why no answer came (connection refused, timeout, refused address).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
}

impl Engine {
    /// Registers a webhook (admins). Without a secret the engine makes one; the returned
    /// webhook carries it, and nothing shows it again.
    pub async fn create_webhook(&self, actor: &Actor, input: NewWebhook) -> Result<Webhook> {
        self.may_manage_webhooks(actor).await?;
        let url = webhook_url(&input.url)?;
        self.insert_webhook(actor, NewWebhook { url, ..input })
            .await
    }

    /// Registers a webhook whose URL the caller checked or chose (an email inbox's, which
    /// names the mail outbox rather than an http endpoint).
    pub(super) async fn insert_webhook(&self, actor: &Actor, input: NewWebhook) -> Result<Webhook> {
        self.may_manage_webhooks(actor).await?;
        let tenant = actor.tenant();
        let url = input.url;
        let events = event_kinds(input.events)?;
        let secret = match input.secret {
            Some(s) if !(16..=256).contains(&s.chars().count()) => {
                return Err(Error::validation("secret", "16 to 256 characters"));
            }
            Some(s) => s,
            None => new_secret(),
        };
        if self.inner.store.webhooks(tenant).await?.len() >= MAX_WEBHOOKS {
            return Err(Error::validation(
                "url",
                format!("at most {MAX_WEBHOOKS} webhooks per tenant"),
            ));
        }
        let now = self.now();
        let webhook = Webhook {
            id: WebhookId(self.new_id()),
            tenant_id: tenant,
            url,
            events,
            secret: WebhookSecret(secret),
            state: WebhookState::Active,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.put_webhook(&webhook).await?;
        Ok(webhook)
    }

    /// The tenant's webhooks (admins), oldest first.
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<Webhook>> {
        self.may_manage_webhooks(actor).await?;
        self.inner.store.webhooks(actor.tenant()).await
    }

    /// One webhook (admins).
    pub async fn webhook(&self, actor: &Actor, id: WebhookId) -> Result<Webhook> {
        self.webhooks(actor)
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or(Error::NotFound("webhook"))
    }

    /// Changes a webhook (admins). Making a paused one active resumes its deliveries.
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: WebhookId,
        patch: WebhookPatch,
    ) -> Result<Webhook> {
        let mut webhook = self.webhook(actor, id).await?;
        if let Some(url) = patch.url {
            webhook.url = webhook_url(&url)?;
        }
        if let Some(events) = patch.events {
            webhook.events = event_kinds(events)?;
        }
        if let Some(state) = patch.state {
            if state == WebhookState::Active {
                webhook.failing_since = None;
            }
            webhook.state = state;
        }
        webhook.updated_at = self.now();
        self.inner.store.put_webhook(&webhook).await?;
        Ok(webhook)
    }

    /// Deletes a webhook and its deliveries (admins).
    pub async fn delete_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        self.may_manage_webhooks(actor).await?;
        self.inner.store.delete_webhook(actor.tenant(), id).await
    }

    /// A webhook's delivery log (admins), newest event first.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        id: WebhookId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.webhook(actor, id).await?;
        let limit = limit.clamp(1, self.inner.limits.max_page);
        self.inner
            .store
            .deliveries(actor.tenant(), id, before, limit)
            .await
    }

    /// Sends a delivery again (admins): pending, due now, whatever it was.
    pub async fn redeliver(&self, actor: &Actor, id: WebhookId, seq: u64) -> Result<Delivery> {
        self.webhook(actor, id).await?;
        self.inner
            .store
            .redeliver(actor.tenant(), id, seq, self.now())
            .await
    }

    /// Claims up to `limit` due deliveries of every tenant for a delivery worker, each
    /// reserved for `retry.lease`. Deliveries of one conversation come one at a time, in
    /// order (see [`Store::claim_deliveries`](crate::Store::claim_deliveries)).
    pub async fn claim_deliveries(
        &self,
        retry: &WebhookRetry,
        limit: usize,
    ) -> Result<Vec<DueDelivery>> {
        let now = self.now();
        let store = &self.inner.store;
        let claimed = store
            .claim_deliveries(now, now + retry.lease, limit)
            .await?;
        let mut due = Vec::with_capacity(claimed.len());
        let mut hooks: std::collections::HashMap<crate::ids::TenantId, Vec<Webhook>> =
            Default::default();
        for delivery in claimed {
            let tenant = delivery.tenant_id;
            if let std::collections::hash_map::Entry::Vacant(slot) = hooks.entry(tenant) {
                slot.insert(store.webhooks(tenant).await?);
            }
            // Deleted since the claim: its deliveries went with it.
            let Some(webhook) = hooks[&tenant]
                .iter()
                .find(|w| w.id == delivery.webhook_id)
                .cloned()
            else {
                continue;
            };
            let event = store
                .events_since(tenant, delivery.seq - 1, 1)
                .await?
                .into_iter()
                .find(|e| e.seq == delivery.seq);
            due.push(DueDelivery {
                delivery,
                webhook,
                event,
            });
        }
        Ok(due)
    }

    /// Records how an attempt went and decides what follows: delivered on a 2xx; else
    /// another attempt after [`WebhookRetry::backoff`], or `failed` once the event is older
    /// than `give_up_after`; and an endpoint failing for `pause_after` is paused, which
    /// appends (and publishes) a `webhook_paused` event for the admins.
    pub async fn record_attempt(
        &self,
        retry: &WebhookRetry,
        due: &DueDelivery,
        attempt: Attempt,
    ) -> Result<DeliveryOutcome> {
        let now = self.now();
        let d = &due.delivery;
        let attempts = d.attempts + 1;
        let ok = attempt.status.is_some_and(|s| (200..300).contains(&s));
        let (state, next, pause) = if ok {
            (DeliveryState::Delivered, now, None)
        } else {
            let state = if now - d.created_at >= retry.give_up_after {
                DeliveryState::Failed
            } else {
                DeliveryState::Pending
            };
            let random = uuid::Uuid::new_v4().as_u128() as u64;
            let next = now + retry.backoff(attempts, random);
            let mut paused = due.webhook.clone();
            paused.failing_since.get_or_insert(now);
            let pause = Some((
                now - retry.pause_after,
                NewEvent::webhook_paused(&paused, now),
            ));
            (state, next, pause)
        };
        let last_error = match (&attempt.error, attempt.status) {
            _ if ok => None,
            (Some(e), _) => Some(e.clone()),
            (None, Some(status)) => Some(format!("HTTP {status}")),
            (None, None) => Some("no answer".to_owned()),
        };
        let outcome = DeliveryOutcome {
            tenant_id: d.tenant_id,
            webhook_id: d.webhook_id,
            seq: d.seq,
            state,
            attempts,
            next_attempt_at: next,
            last_status: attempt.status,
            last_error,
            response_ms: attempt.elapsed_ms,
            at: now,
            pause,
        };
        if let Some(event) = self.inner.store.record_delivery(&outcome).await? {
            self.publish([event]);
        }
        Ok(outcome)
    }

    /// Records that a claimed delivery's event is gone from the log (erased): nothing to
    /// post, ever, so it fails at once.
    pub async fn drop_delivery(&self, due: &DueDelivery) -> Result<()> {
        let d = &due.delivery;
        let now = self.now();
        let outcome = DeliveryOutcome {
            tenant_id: d.tenant_id,
            webhook_id: d.webhook_id,
            seq: d.seq,
            state: DeliveryState::Failed,
            attempts: d.attempts,
            next_attempt_at: now,
            last_status: None,
            last_error: Some("the event is no longer in the log".to_owned()),
            response_ms: 0,
            at: now,
            pause: None,
        };
        self.inner.store.record_delivery(&outcome).await.map(drop)
    }

    async fn may_manage_webhooks(&self, actor: &Actor) -> Result<()> {
        match self.resolve(actor).await? {
            Resolved::System => Ok(()),
            Resolved::Staff(me) if me.role == Role::Admin => Ok(()),
            _ => Err(Error::Forbidden("manage webhooks")),
        }
    }
}

/// A webhook URL: trimmed, `http://` or `https://`, a host, no spaces. Whether the host
/// may be a private address is the worker's call (it resolves it).
fn webhook_url(url: &str) -> Result<String> {
    let url = url.trim();
    let invalid = |why: &str| Error::validation("url", why.to_owned());
    if url.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(invalid("too long"));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("must be an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(invalid("needs a host (and no user name)"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must not contain spaces"));
    }
    Ok(url.to_owned())
}

/// Checked, de-duplicated event kinds.
fn event_kinds(mut events: Vec<String>) -> Result<Vec<String>> {
    for e in &events {
        if !WEBHOOK_EVENT_KINDS.contains(&e.as_str()) {
            return Err(Error::validation(
                "events",
                format!(
                    "unknown event `{e}`; one of {}",
                    WEBHOOK_EVENT_KINDS.join(", ")
                ),
            ));
        }
    }
    events.sort();
    events.dedup();
    Ok(events)
}

/// 244 random bits (two v4 UUIDs) in hex, with a prefix that says what it is.
fn new_secret() -> String {
    format!(
        "whsec_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let retry = WebhookRetry::default();
        assert_eq!(retry.backoff(1, 0), Duration::from_secs(5));
        assert_eq!(
            retry.backoff(1, u64::MAX),
            Duration::from_millis(5_000 + u64::MAX % 5_001)
        );
        assert_eq!(retry.backoff(3, 0), Duration::from_secs(20));
        assert_eq!(retry.backoff(40, 0), Duration::from_secs(1_800));
        for random in [0, 1, 12_345, u64::MAX] {
            let wait = retry.backoff(2, random);
            assert!(wait >= Duration::from_secs(10) && wait <= Duration::from_secs(20));
        }
    }

    #[test]
    fn webhook_urls_must_be_http_with_a_host() {
        assert!(webhook_url(" https://hooks.example/x ").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "http:///path",
            "https://u@h/",
            "https://a b",
        ] {
            assert!(webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_event_kinds_are_refused_and_mentions_cannot_be_followed() {
        assert!(event_kinds(vec!["message_created".into()]).is_ok());
        assert!(event_kinds(vec!["mentioned".into()]).is_err());
        assert!(event_kinds(vec!["nope".into()]).is_err());
    }
}
