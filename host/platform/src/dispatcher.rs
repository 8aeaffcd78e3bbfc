//! The event dispatcher: the task that delivers the durable queue (`events`, migration 0005)
//! to subscribers (the topic rules are `lutetia_model::events`).
//!
//! Publishing appends an event with the next sequence number of its topic. Subscribers are
//! resolved at delivery time from the registry (each plugin's granted `subscribe` patterns),
//! and each (subscriber, topic) has a cursor: the sequence number of the last event it
//! acknowledged. The next event of a topic waits until the previous one is acknowledged, so
//! delivery is in order per (subscriber, topic) and at least once. A failed delivery (trap,
//! timeout or the plugin's `Err`) is retried with exponential backoff; after
//! [`MAX_ATTEMPTS`] it is recorded as dead and the cursor moves on. Several host processes
//! on one PostgreSQL database share the work: a cursor is leased before delivering, so a
//! delivery never runs twice at the same time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use lutetia_db::events::{Claim, StoredEvent};
use lutetia_db::{Database, DbError};
use lutetia_model::events::matches;
use lutetia_runtime::{Event, LoadedPlugin, Runtime};

use crate::platform::Platform;

/// Deliveries of one event to one subscriber before it is given up as dead.
pub const MAX_ATTEMPTS: u32 = 10;
/// Delay before the first retry; it doubles at each attempt.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the queue is polled even without a local publish (events published by other
/// processes, retries that became due).
const POLL: Duration = Duration::from_secs(1);
/// Added to a plugin's deadline to give the lease of a delivery.
const LEASE_MARGIN_MS: i64 = 10_000;
/// Deliveries running at once in this process.
const CONCURRENCY: usize = 8;

fn set_subscribers(plugins: &[Arc<LoadedPlugin>]) {
    let list = plugins
        .iter()
        .map(|p| (p.context.id.clone(), p.context.grants.events.subscribe.clone()))
        .collect();
    lutetia_services::bus::set_subscribers(list);
}

/// Delay before attempt `attempt + 1`, after `attempt` failed ones: 1 s doubling, capped.
pub fn backoff(attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Starts the dispatcher task; it stops when `stop` turns true.
pub fn start(app: Arc<Platform>, mut stop: watch::Receiver<bool>) {
    let node = lutetia_services::node::node_id();
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        loop {
            if let Err(e) = dispatch_pass(&app, &node, &slots).await {
                tracing::error!(error = %e, "event dispatch pass failed");
            }
            tokio::select! {
                _ = lutetia_services::bus::published() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    });
}

/// One look at the queue: every (subscriber, topic) with pending events that is not leased
/// and whose retry is due gets a delivery task.
async fn dispatch_pass(app: &Arc<Platform>, node: &str, slots: &Arc<Semaphore>) -> Result<(), DbError> {
    let subscribers: Vec<Arc<LoadedPlugin>> = app
        .registry
        .list()
        .into_iter()
        .filter(|p| !p.context.grants.events.subscribe.is_empty())
        .collect();
    set_subscribers(&subscribers);
    if subscribers.is_empty() {
        return Ok(());
    }
    let heads = app.db.event_topic_heads().await?;
    let now = lutetia_db::now_ms();
    for plugin in subscribers {
        let patterns = &plugin.context.grants.events.subscribe;
        let cursors = app.db.event_cursors(&plugin.context.id).await?;
        for (topic, head) in &heads {
            if !patterns.iter().any(|p| matches(p, topic)) {
                continue;
            }
            let cursor = cursors.iter().find(|c| &c.topic == topic);
            let delivered = cursor.map_or(0, |c| c.delivered_seq);
            if delivered >= *head {
                continue;
            }
            if cursor.is_some_and(|c| c.next_attempt_at > now || c.lease_until > now) {
                continue;
            }
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                // Every slot is busy: the next pass picks the rest up.
                return Ok(());
            };
            let lease = lease_ms(&plugin);
            let Some(claim) = app
                .db
                .claim_event_cursor(&plugin.context.id, topic, node, lease)
                .await?
            else {
                continue;
            };
            let app = app.clone();
            let plugin = plugin.clone();
            tokio::spawn(async move {
                deliver_topic(&app.runtime, &app.db, &plugin, claim, lease).await;
                drop(permit);
                // Something may have been published meanwhile: look again.
                lutetia_services::bus::notify_published();
            });
        }
    }
    Ok(())
}

/// How long a lease lasts: longer than one call of the plugin may take (it is renewed at
/// each acknowledgement), so it never expires while its delivery runs, yet short enough that
/// the events of a crashed process are taken over soon.
fn lease_ms(plugin: &LoadedPlugin) -> i64 {
    i64::try_from(plugin.context.limits.timeout.as_millis())
        .unwrap_or(i64::MAX / 4)
        .saturating_add(LEASE_MARGIN_MS)
}

/// Delivers the events of one (subscriber, topic) in order while it holds the lease, until
/// the topic is caught up or a delivery fails (then the retry is scheduled).
async fn deliver_topic(
    runtime: &Runtime,
    db: &Database,
    plugin: &LoadedPlugin,
    mut claim: Claim,
    lease: i64,
) {
    let id = &plugin.context.id;
    loop {
        let next = match db.event_after(&claim.topic, claim.delivered_seq).await {
            Ok(Some(event)) => event,
            Ok(None) => {
                if let Err(e) = db.release_event_cursor(&claim).await {
                    tracing::error!(plugin = %id, topic = %claim.topic, error = %e, "cannot release an event cursor");
                }
                return;
            }
            Err(e) => {
                tracing::error!(plugin = %id, topic = %claim.topic, error = %e, "cannot read the event queue");
                let _ = db.release_event_cursor(&claim).await;
                return;
            }
        };
        let attempt = claim.attempt.saturating_add(1);
        let failure = match runtime.deliver_event(plugin, to_wit(&next, attempt)).await {
            Ok(Ok(())) => None,
            Ok(Err(message)) => {
                // The plugin's own text: escaped so that it stays one log line.
                let shown = lutetia_runtime::one_log_line(&message);
                tracing::warn!(plugin = %id, topic = %next.topic, event = next.id, attempt, error = %shown, "subscriber answered an error; will retry");
                Some(format!("plugin error: {message}"))
            }
            Err(e) => {
                let shown = lutetia_runtime::one_log_line(&e.to_string());
                tracing::error!(plugin = %id, topic = %next.topic, event = next.id, attempt, error = %shown, "delivery failed: the subscriber trapped or overran its limits; will retry");
                Some(format!("call failed: {e}"))
            }
        };
        let result = match failure {
            None => db.ack_event(&mut claim, next.seq, lease).await,
            Some(error) if attempt >= MAX_ATTEMPTS => {
                let shown = lutetia_runtime::one_log_line(&error);
                tracing::error!(plugin = %id, topic = %next.topic, event = next.id, attempts = attempt, error = %shown, "event given up after {MAX_ATTEMPTS} attempts: marked dead");
                db.bury_event(&mut claim, &next, attempt, &error, lease).await
            }
            Some(error) => {
                let retry_at = lutetia_db::now_ms()
                    .saturating_add(i64::try_from(backoff(attempt).as_millis()).unwrap_or(i64::MAX / 4));
                match db.fail_event(&claim, attempt, &error, retry_at).await {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(plugin = %id, topic = %claim.topic, "event cursor lease lost; another process took over");
                return;
            }
            Err(e) => {
                tracing::error!(plugin = %id, topic = %claim.topic, error = %e, "cannot record an event delivery; it will be delivered again");
                return;
            }
        }
    }
}

fn to_wit(event: &StoredEvent, attempt: u32) -> Event {
    Event {
        id: event.id.to_string(),
        topic: event.topic.clone(),
        publisher: event.publisher.clone(),
        payload: event.payload.clone(),
        published_at: u64::try_from(event.published_at).unwrap_or(0),
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_is_what_the_slowest_subscriber_has_not_acknowledged() {
        use lutetia_db::events::backlog;
        let subs = ["a".to_owned(), "b".to_owned()];
        let cursors = [("a".to_owned(), 7), ("b".to_owned(), 4), ("gone".to_owned(), 0)];
        assert_eq!(backlog(10, &subs, &cursors), 6);
        // A subscriber that has not started reads from the beginning; a cursor of a plugin
        // that no longer subscribes holds nothing back.
        assert_eq!(backlog(10, &["c".to_owned()], &cursors), 10);
        assert_eq!(backlog(10, &subs[..1], &cursors), 3);
        // Nobody subscribes: the events wait for a later subscriber, so they all count.
        assert_eq!(backlog(10, &[], &cursors), 10);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(20), MAX_BACKOFF);
        assert_eq!(backoff(100), MAX_BACKOFF);
    }
}
