//! Fair CPU for guest code: a two-level feedback queue.
//!
//! Every call starts in the **interactive lane**: it is polled inline, on the Tokio worker
//! that serves its connection, so a short call costs no thread hop. Guest code yields to the
//! executor at every epoch tick (`UpdateDeadline::Yield`), so no call holds a worker for
//! more than one tick at a time. The time the call spends being polled (guest code and the
//! synchronous part of host calls: its CPU time, not the time it waits on the database) is
//! counted; once it passes [`Scheduler::demote_after`], the call is **demoted**: its future
//! is moved, between two polls, to the **background lane**, a runtime of its own whose
//! threads run at a low OS priority ([`BACKGROUND_NICE`] on Linux). There it keeps running
//! whenever the machine has CPU to spare, but every interactive call, the host's own routes
//! and every other plugin's short calls take precedence: the kernel's scheduler gives a
//! nice-10 thread about a tenth of the CPU that a nice-0 thread competing with it gets.
//!
//! This is the classic multi-level feedback queue of operating systems (a job that has run
//! long loses priority to short ones), built from two pieces that already exist: Tokio's
//! executors and the kernel's priorities. The alternative — a cooperative priority queue of
//! our own at each epoch yield — would need its own share accounting and could still not
//! stop a spinning guest from competing with the connection threads for the CPU.
//!
//! A call whose client went away is cancelled: hyper drops the handler's future, which
//! drops an interactive call at once and aborts a background one at its next yield point.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// A call, boxed so it can move between executors.
pub(crate) type CallFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The two lanes guest code runs in.
pub(crate) struct Scheduler {
    /// Runs demoted calls; `None` only while the runtime is being dropped.
    background: Option<tokio::runtime::Runtime>,
    /// Polling time after which a call is demoted.
    demote_after: Duration,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("demote_after", &self.demote_after)
            .finish_non_exhaustive()
    }
}

/// Why the background lane could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the background lane for long-running plugin calls: {0}")]
pub(crate) struct SchedulerError(std::io::Error);

/// Which lane a call finished in, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Polled inline on the connection's worker thread.
    Interactive,
    /// Demoted to the low-priority background lane.
    Background,
}

impl Scheduler {
    /// Starts the background lane with `threads` worker threads at the lowest priority.
    pub(crate) fn new(threads: usize, demote_after: Duration) -> Result<Scheduler, SchedulerError> {
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("lutetia-background")
            .on_thread_start(lower_this_thread_priority)
            .enable_all()
            .build()
            .map_err(SchedulerError)?;
        Ok(Scheduler {
            background: Some(background),
            demote_after,
        })
    }

    /// Runs `call` to completion: inline while its polling time stays under
    /// `demote_after`, then in the background lane. Dropping the returned future cancels
    /// the call wherever it runs. `cancelled` is the answer when the background task ends
    /// without an answer (it panicked, or the lane is shutting down).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        call: CallFuture<'static, T>,
        cancelled: impl FnOnce() -> T,
    ) -> (T, Lane) {
        let mut call = Some(call);
        let mut polled = Duration::ZERO;
        let demote_after = self.demote_after;
        let inline = std::future::poll_fn(|cx| {
            let Some(fut) = call.as_mut() else {
                return Poll::Ready(None);
            };
            let started = Instant::now();
            let answer = fut.as_mut().poll(cx);
            polled += started.elapsed();
            match answer {
                Poll::Ready(answer) => Poll::Ready(Some(answer)),
                Poll::Pending if polled >= demote_after => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        if let Some(answer) = inline {
            return (answer, Lane::Interactive);
        }
        let (Some(call), Some(background)) = (call, self.background.as_ref()) else {
            return (cancelled(), Lane::Background);
        };
        tracing::debug!(
            polled_ms = polled.as_millis(),
            "call demoted to the background lane"
        );
        let mut task = AbortOnDrop(background.spawn(call));
        match task.await_join().await {
            Some(answer) => (answer, Lane::Background),
            None => (cancelled(), Lane::Background),
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Dropping a Tokio runtime blocks, which panics inside async code: let its threads
        // finish on their own.
        if let Some(background) = self.background.take() {
            background.shutdown_background();
        }
    }
}

/// A background task that is aborted when its awaiting side is dropped (the client went
/// away, or the call's timeout fired).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn await_join(&mut self) -> Option<T> {
        match (&mut self.0).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(error = %e, "a background plugin call panicked");
                }
                None
            }
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Nice value of the background lane's threads. Not 19: a nice-19 thread gets about 1.5 %
/// of a core against one nice-0 thread, so any other busy process of the machine (the
/// database, a backup) would starve long calls into their deadline; at 10 it gets about
/// 10 %, which still leaves short calls nine tenths of the CPU.
pub(crate) const BACKGROUND_NICE: i32 = 10;

/// Gives the calling thread the background lane's priority. On Linux the nice value is per
/// thread; elsewhere `setpriority` would lower the whole process, so the background lane
/// is then separated by its thread count only.
fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICE) {
            tracing::warn!(error = %e, "cannot lower the priority of a background-lane thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin_for(duration: Duration) {
        let started = Instant::now();
        while started.elapsed() < duration {
            std::hint::spin_loop();
        }
    }

    #[tokio::test]
    async fn a_short_call_stays_interactive() {
        let scheduler = Scheduler::new(1, Duration::from_millis(50)).expect("lane starts");
        let call: CallFuture<'static, u32> = Box::pin(async {
            tokio::task::yield_now().await;
            7
        });
        let (answer, lane) = scheduler.run(call, || 0).await;
        assert_eq!((answer, lane), (7, Lane::Interactive));
    }

    #[tokio::test]
    async fn a_call_that_keeps_the_cpu_is_demoted_and_finishes() {
        let scheduler = Scheduler::new(1, Duration::from_millis(5)).expect("lane starts");
        let call: CallFuture<'static, String> = Box::pin(async {
            for _ in 0..10 {
                spin_for(Duration::from_millis(2));
                tokio::task::yield_now().await;
            }
            std::thread::current().name().unwrap_or("").to_owned()
        });
        let (thread, lane) = scheduler.run(call, String::new).await;
        assert_eq!(lane, Lane::Background);
        assert_eq!(thread, "lutetia-background");
    }

    #[tokio::test]
    async fn waiting_is_not_running() {
        // A call that sleeps for longer than the demotion threshold but uses no CPU stays
        // in the interactive lane: only polling time counts.
        let scheduler = Scheduler::new(1, Duration::from_millis(5)).expect("lane starts");
        let call: CallFuture<'static, ()> = Box::pin(async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let ((), lane) = scheduler.run(call, || ()).await;
        assert_eq!(lane, Lane::Interactive);
    }

    #[tokio::test]
    async fn dropping_the_caller_aborts_a_background_call() {
        let scheduler = Scheduler::new(1, Duration::from_millis(1)).expect("lane starts");
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        struct Signal(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Signal {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let call: CallFuture<'static, ()> = Box::pin(async move {
            let _signal = Signal(Some(dropped_tx));
            spin_for(Duration::from_millis(3));
            tokio::task::yield_now().await;
            let _ = started_tx.send(());
            loop {
                spin_for(Duration::from_millis(1));
                tokio::task::yield_now().await;
            }
        });
        let running = scheduler.run(call, || ());
        tokio::select! {
            _ = running => panic!("an endless call ended"),
            _ = started_rx => {}
        }
        // `running` was dropped by the select: the background task must be aborted, which
        // drops the call's state.
        dropped_rx
            .await
            .expect("the call's state was dropped, not leaked");
    }
}
