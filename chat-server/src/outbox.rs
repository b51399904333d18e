//! The claim-and-drain loop every outbox worker runs (the mail worker, the webhook
//! delivery worker): wake every `poll`, claim what is due, work on the claimed batch at
//! once, and claim again until nothing is due, then sleep.
//!
//! What stays with each worker is what a claim and an attempt are: the store leases the
//! claimed items (so a dead worker's claims lapse and another worker takes them), and the
//! worker reports every attempt back to the engine, which decides retries and backoff. A
//! claim that fails is logged and retried at the next tick; an item whose attempt could
//! not be recorded is claimed again when its lease lapses.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Shortest poll interval: a zero from a test or a flag must not spin.
const MIN_POLL: Duration = Duration::from_millis(10);

/// Runs the loop until `stopped` flips. `claim` takes the next due batch (the worker
/// chooses its size); `attempt` works on one claimed item, records its outcome and logs
/// what went wrong (it is not told). `what` names the items in the log ("mails").
///
/// The items of one batch are attempted together, and the next batch is claimed only when
/// all of them are done, so a batch the store made of one item per ordered stream (the
/// webhook outbox: one delivery per webhook and conversation) keeps each stream's order.
/// A stop is noticed between batches: a batch already claimed is finished first.
pub(crate) async fn drain<T, C, CF, A, AF>(
    what: &'static str,
    poll: Duration,
    mut stopped: watch::Receiver<bool>,
    mut claim: C,
    attempt: A,
) where
    T: Send + 'static,
    C: FnMut() -> CF,
    CF: Future<Output = chat_core::Result<Vec<T>>>,
    A: Fn(T) -> AF,
    AF: Future<Output = ()> + Send + 'static,
{
    let mut tick = tokio::time::interval(poll.max(MIN_POLL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        loop {
            let due = match claim().await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming {what} failed");
                    break;
                }
            };
            if due.is_empty() {
                break;
            }
            let mut batch = tokio::task::JoinSet::new();
            for item in due {
                batch.spawn(attempt(item));
            }
            while batch.join_next().await.is_some() {}
            if *stopped.borrow() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn drains_every_due_batch_then_stops_when_told() {
        let (stop, stopped) = watch::channel(false);
        // Three batches of two, then nothing: the loop claims until the outbox is empty.
        let batches = Arc::new(std::sync::Mutex::new(vec![
            vec![5, 6],
            vec![3, 4],
            vec![1, 2],
        ]));
        let done = Arc::new(AtomicUsize::new(0));
        let (all_done, mut seen) = watch::channel(0usize);
        let worker = {
            let (batches, done) = (batches.clone(), done.clone());
            tokio::spawn(drain(
                "numbers",
                Duration::from_millis(10),
                stopped,
                move || {
                    let next = batches.lock().unwrap().pop().unwrap_or_default();
                    async move { Ok::<_, chat_core::Error>(next) }
                },
                move |n: usize| {
                    let (done, all_done) = (done.clone(), all_done.clone());
                    async move {
                        let total = done.fetch_add(n, Ordering::SeqCst) + n;
                        all_done.send_replace(total);
                    }
                },
            ))
        };
        seen.wait_for(|total| *total == 21).await.unwrap();
        assert!(batches.lock().unwrap().is_empty());
        stop.send_replace(true);
        worker.await.unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 21);
    }
}
