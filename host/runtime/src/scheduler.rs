//! Fair CPU for guest code: a two-level feedback queue with a per-plugin cost estimate.
//!
//! There are two lanes:
//! - the **interactive lane**: a call is polled inline, on the Tokio worker that serves its
//!   connection, so a short call costs no thread hop;
//! - the **background lane**: a runtime of its own whose threads run at a low OS priority
//!   (`limits.background-nice`, 19 by default, on Linux). There a call keeps running
//!   whenever the machine has CPU to spare, but the host's own routes and every
//!   interactive call take precedence: the kernel gives a nice-19 thread about 1.5 % of the
//!   CPU that a nice-0 thread competing with it gets (a nice-10 one about 10 %).
//!
//! Costs and deadlines count **CPU time** ([`thread_cpu_time`]), not wall time: a call is
//! charged for what it ran, not for the time the kernel or its lane kept it waiting, so a
//! call starved in the background lane on a busy machine is slowed down, not cut short. Its
//! wall time is bounded too (twice its deadline, in the runtime).
//!
//! Guest code yields to the executor at every epoch tick (`UpdateDeadline::Yield`), so no
//! call holds a worker for more than one tick at a time, and a call can change lanes
//! between two polls. Which lane a call runs in is decided twice:
//! - **per plugin, before the call**: each plugin has a [`CallCost`], a prediction of the CPU
//!   one of its calls costs (guest code, the synchronous part of its host calls, and the
//!   host's work on its answer, such as cleaning its page), updated after every call. A
//!   plugin whose predicted cost is over the threshold starts its calls in the background
//!   lane, and so does the host's work on its answers. A call that traps, times out or runs
//!   out of memory, and an answer the host refuses, count as a cost over the threshold: a
//!   plugin that floods the host with failing calls is as expensive as one that spins.
//! - **per call, while it runs**: a call that has been polled for longer than the threshold
//!   (its CPU time, not the time it waits on the database) is **demoted** to the background
//!   lane, and so is a call whose plugin becomes expensive meanwhile (the other calls of a
//!   burst move as soon as the first one has shown what they cost).
//!
//! The prediction rises fast (half-way up to any costlier call at once) and decays with time
//! only (it halves every [`COST_HALF_LIFE`]), not with the number of calls: a plugin cannot
//! make many cheap calls to bring it down and keep the expensive ones in the interactive
//! lane, and one slow call of a well-behaved plugin (a cold cache) costs it at most a
//! second or two in the background lane.
//!
//! This is the classic multi-level feedback queue of operating systems, built from two
//! pieces that already exist: Tokio's executors and the kernel's priorities. The alternative
//! — a cooperative priority queue of our own at each epoch yield — would need its own share
//! accounting and could still not stop a spinning guest from competing with the connection
//! threads for the CPU.
//!
//! A call whose client went away is cancelled: hyper drops the handler's future, which
//! drops an interactive call at once and aborts a background one at its next yield point.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A call, boxed so it can move between executors.
pub(crate) type CallFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How fast a plugin's predicted call cost decays: it halves every second.
pub const COST_HALF_LIFE: Duration = Duration::from_secs(1);

/// The predicted CPU cost of one call of a plugin (see the module docs).
#[derive(Debug)]
pub struct CallCost {
    estimate: Mutex<Estimate>,
}

#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// Predicted cost in microseconds, as of `at`.
    micros: f64,
    at: Instant,
}

impl Estimate {
    /// The prediction decayed to `now`.
    fn at(self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.micros * 0.5_f64.powf(elapsed / COST_HALF_LIFE.as_secs_f64())
    }
}

impl Default for CallCost {
    fn default() -> Self {
        CallCost {
            estimate: Mutex::new(Estimate {
                micros: 0.0,
                at: Instant::now(),
            }),
        }
    }
}

impl CallCost {
    /// Folds the CPU used by one call, or by the host's work on one answer, into the
    /// prediction: half-way up to it when it is costlier than predicted; a cheaper one
    /// changes nothing (the prediction decays with time only).
    pub fn observe(&self, used: Duration) {
        self.raise(used.as_secs_f64() * 1e6, 0.5);
    }

    /// Counts a failed call (trap, timeout, memory exhausted) or a refused answer as a cost
    /// of four times `threshold`: the plugin's next calls start in the background lane for
    /// about two half-lives.
    pub fn penalize(&self, threshold: Duration) {
        self.raise(threshold.as_secs_f64() * 4e6, 1.0);
    }

    /// Raises the prediction to twice `threshold` at once: a call has just used
    /// `threshold` and is not finished, so the other calls of the burst need not wait for
    /// it to end to know they are expensive (for about a half-life).
    fn demoted(&self, threshold: Duration) {
        self.raise(threshold.as_secs_f64() * 2e6, 1.0);
    }

    /// Moves the prediction `weight` of the way up to `micros` if that is higher.
    fn raise(&self, micros: f64, weight: f64) {
        let now = Instant::now();
        let Ok(mut estimate) = self.estimate.lock() else {
            return;
        };
        let current = estimate.at(now);
        let raised = if micros > current {
            current + (micros - current) * weight
        } else {
            current
        };
        *estimate = Estimate {
            micros: raised,
            at: now,
        };
    }

    /// The predicted cost of the plugin's next call.
    pub fn predicted(&self) -> Duration {
        let micros = self
            .estimate
            .lock()
            .map_or(0.0, |estimate| estimate.at(Instant::now()));
        Duration::try_from_secs_f64(micros.max(0.0) / 1e6).unwrap_or(Duration::MAX)
    }
}

/// The CPU time the calling thread has used since it started (on systems without a
/// per-thread clock, the time since the first call: wall time).
///
/// Every cost and every deadline counts this, not wall time: a call that waits while the
/// kernel runs other threads (a busy machine, or the background lane's low priority) is
/// not charged for the wait.
pub(crate) fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(unix))]
    {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// `work`'s answer and the CPU time the calling thread spent on it.
pub fn cpu_time_of<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let started = thread_cpu_time();
    let answer = work();
    (answer, thread_cpu_time().saturating_sub(started))
}

/// The CPU time one call has used so far, added up poll by poll; shared with the call's
/// deadline check, which runs inside the guest (the epoch callback).
#[derive(Debug, Default)]
pub(crate) struct CpuUsed(AtomicU64);

impl CpuUsed {
    /// The CPU time used by the polls that have ended.
    pub(crate) fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    fn add(&self, used: Duration) {
        let nanos = u64::try_from(used.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The two lanes guest code runs in.
pub(crate) struct Scheduler {
    /// Runs demoted calls and the host's work for expensive plugins; `None` only while the
    /// runtime is being dropped.
    background: Option<tokio::runtime::Runtime>,
    /// Bounds the host's work running at once in the background lane's blocking threads.
    background_work: Arc<tokio::sync::Semaphore>,
    /// Polling time after which a call is demoted, and predicted cost from which a
    /// plugin's calls start in the background lane.
    threshold: Duration,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("threshold", &self.threshold)
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
    /// Run in the low-priority background lane: demoted, or started there because its
    /// plugin's calls are expensive.
    Background,
}

impl Scheduler {
    /// Starts the background lane with `threads` worker threads (and as many threads for
    /// the host's work) at the low priority `nice`.
    pub(crate) fn new(threads: usize, threshold: Duration, nice: i32) -> Result<Scheduler, SchedulerError> {
        let threads = threads.max(1);
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            // Blocking threads are started by the same builder, so they run at the same
            // low priority: the host's work for expensive plugins, and WASI's blocking I/O.
            .max_blocking_threads(threads.saturating_mul(4))
            .thread_name("lutetia-background")
            .on_thread_start(move || lower_this_thread_priority(nice))
            .enable_all()
            .build()
            .map_err(SchedulerError)?;
        Ok(Scheduler {
            background: Some(background),
            background_work: Arc::new(tokio::sync::Semaphore::new(threads)),
            threshold,
        })
    }

    /// The polling time after which a call is demoted.
    pub(crate) fn threshold(&self) -> Duration {
        self.threshold
    }

    /// Whether the calls of a plugin with this cost start in the background lane.
    pub(crate) fn is_expensive(&self, cost: &CallCost) -> bool {
        cost.predicted() >= self.threshold
    }

    /// Runs `call` to completion, adds the CPU time of each of its polls to `used` and
    /// folds the total into `cost`: inline while that stays under the threshold and its
    /// plugin is not expensive, else in the background lane. Dropping the returned future
    /// cancels the call wherever it runs. `cancelled` is the answer when the background
    /// task ends without an answer (it panicked, or the lane is shutting down).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        cost: &Arc<CallCost>,
        used: &Arc<CpuUsed>,
        call: CallFuture<'static, T>,
        cancelled: impl FnOnce() -> T,
    ) -> (T, Lane) {
        let mut call = Some(Metered {
            call,
            used: used.clone(),
            cost: cost.clone(),
        });
        let threshold = self.threshold;
        if !self.is_expensive(cost) {
            let inline = std::future::poll_fn(|cx| {
                let Some(metered) = call.as_mut() else {
                    return Poll::Ready(None);
                };
                match Pin::new(&mut *metered).poll(cx) {
                    Poll::Ready(answer) => Poll::Ready(Some(answer)),
                    Poll::Pending if metered.used.get() >= threshold => {
                        // The other calls of this plugin learn it now, not when this ends.
                        cost.demoted(threshold);
                        Poll::Ready(None)
                    }
                    Poll::Pending if cost.predicted() >= threshold => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if let Some(answer) = inline {
                return (answer, Lane::Interactive);
            }
        }
        let (Some(call), Some(background)) = (call, self.background.as_ref()) else {
            return (cancelled(), Lane::Background);
        };
        tracing::debug!(
            polled_ms = call.used.get().as_millis(),
            predicted_ms = cost.predicted().as_millis(),
            "call runs in the background lane"
        );
        let mut task = AbortOnDrop(background.spawn(call));
        match task.await_join().await {
            Some(answer) => (answer, Lane::Background),
            None => (cancelled(), Lane::Background),
        }
    }

    /// Runs the host's synchronous `work` for a plugin (cleaning its page) on one of the
    /// background lane's blocking threads, at its low priority, and folds the CPU time it
    /// took into `cost`. `None` when the lane is shutting down or the work panicked.
    pub(crate) async fn run_work<T: Send + 'static>(
        &self,
        cost: &Arc<CallCost>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let background = self.background.as_ref()?;
        let _permit = self.background_work.clone().acquire_owned().await.ok()?;
        let cost = cost.clone();
        let mut task = AbortOnDrop(background.spawn_blocking(move || {
            let (answer, used) = cpu_time_of(work);
            cost.observe(used);
            answer
        }));
        task.await_join().await
    }
}

/// A call that adds up the CPU time it uses while it is polled, and folds it into its
/// plugin's cost when it ends or is dropped (cancelled, or aborted at its deadline).
struct Metered<T: 'static> {
    call: CallFuture<'static, T>,
    /// CPU time of the polls so far, which the deadline reads too.
    used: Arc<CpuUsed>,
    cost: Arc<CallCost>,
}

impl<T: 'static> Future for Metered<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let (answer, used) = cpu_time_of(|| self.call.as_mut().poll(cx));
        self.used.add(used);
        answer
    }
}

impl<T: 'static> Drop for Metered<T> {
    fn drop(&mut self) {
        // Dropping the call drops its store, which resets the instance's memory slot: host
        // work the call caused, charged to it too (a plugin that dirties its whole memory
        // on every call costs that much).
        let ((), reset) = cpu_time_of(|| {
            drop(std::mem::replace(
                &mut self.call,
                Box::pin(std::future::pending()),
            ));
        });
        self.cost.observe(self.used.get() + reset);
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

/// Gives the calling thread the background lane's priority. On Linux the nice value is per
/// thread; elsewhere `setpriority` would lower the whole process, so the background lane
/// is then separated by its thread count only.
fn lower_this_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
            tracing::warn!(error = %e, "cannot lower the priority of a background-lane thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The background lane's priority in these tests.
    const BACKGROUND_NICE: i32 = 10;

    fn spin_for(duration: Duration) {
        let started = Instant::now();
        while started.elapsed() < duration {
            std::hint::spin_loop();
        }
    }

    #[tokio::test]
    async fn a_short_call_stays_interactive() {
        let scheduler = Scheduler::new(1, Duration::from_millis(50), BACKGROUND_NICE).expect("lane starts");
        let call: CallFuture<'static, u32> = Box::pin(async {
            tokio::task::yield_now().await;
            7
        });
        let (answer, lane) = scheduler.run(&Arc::default(), &Arc::default(), call, || 0).await;
        assert_eq!((answer, lane), (7, Lane::Interactive));
    }

    #[tokio::test]
    async fn a_call_that_keeps_the_cpu_is_demoted_and_finishes() {
        let scheduler = Scheduler::new(1, Duration::from_millis(5), BACKGROUND_NICE).expect("lane starts");
        let call: CallFuture<'static, String> = Box::pin(async {
            for _ in 0..10 {
                spin_for(Duration::from_millis(2));
                tokio::task::yield_now().await;
            }
            std::thread::current().name().unwrap_or("").to_owned()
        });
        let (thread, lane) = scheduler
            .run(&Arc::default(), &Arc::default(), call, String::new)
            .await;
        assert_eq!(lane, Lane::Background);
        assert_eq!(thread, "lutetia-background");
    }

    #[test]
    fn the_prediction_rises_fast_and_ignores_cheaper_calls() {
        let cost = CallCost::default();
        cost.observe(Duration::from_millis(100));
        let after_one = cost.predicted();
        assert!(
            after_one >= Duration::from_millis(49) && after_one <= Duration::from_millis(50),
            "half-way up at once: {after_one:?}"
        );
        for _ in 0..1000 {
            cost.observe(Duration::ZERO);
        }
        assert!(
            cost.predicted() >= Duration::from_millis(45),
            "a thousand cheap calls do not bring it down, only time does: {:?}",
            cost.predicted()
        );
    }

    #[test]
    fn the_prediction_halves_every_half_life() {
        let cost = CallCost::default();
        cost.penalize(Duration::from_millis(10));
        let start = cost.predicted();
        assert!(
            start >= Duration::from_millis(39),
            "four times the threshold: {start:?}"
        );
        if let Ok(mut estimate) = cost.estimate.lock() {
            estimate.at -= COST_HALF_LIFE * 2;
        }
        let later = cost.predicted();
        assert!(
            later <= Duration::from_millis(10) && later >= Duration::from_millis(9),
            "a quarter after two half-lives: {later:?}"
        );
    }

    #[tokio::test]
    async fn an_expensive_plugin_starts_its_calls_in_the_background() {
        let scheduler = Scheduler::new(1, Duration::from_millis(20), BACKGROUND_NICE).expect("lane starts");
        let cost = Arc::new(CallCost::default());
        let short = || -> CallFuture<'static, String> {
            Box::pin(async { std::thread::current().name().unwrap_or("").to_owned() })
        };
        let (_, lane) = scheduler.run(&cost, &Arc::default(), short(), String::new).await;
        assert_eq!(lane, Lane::Interactive, "a cheap plugin's call is polled inline");
        cost.observe(Duration::from_millis(100));
        let (thread, lane) = scheduler.run(&cost, &Arc::default(), short(), String::new).await;
        assert_eq!(
            lane,
            Lane::Background,
            "after a 100 ms call even a short one goes to the background"
        );
        assert_eq!(thread, "lutetia-background");
    }

    #[tokio::test]
    async fn a_failing_plugin_is_expensive() {
        let scheduler = Scheduler::new(1, Duration::from_millis(20), BACKGROUND_NICE).expect("lane starts");
        let cost = Arc::new(CallCost::default());
        assert!(!scheduler.is_expensive(&cost));
        cost.penalize(scheduler.threshold());
        assert!(scheduler.is_expensive(&cost));
        let call: CallFuture<'static, ()> = Box::pin(async {});
        let ((), lane) = scheduler.run(&cost, &Arc::default(), call, || ()).await;
        assert_eq!(lane, Lane::Background);
    }

    #[tokio::test]
    async fn a_demoted_call_makes_its_plugin_expensive_before_it_ends() {
        let scheduler = Scheduler::new(1, Duration::from_millis(5), BACKGROUND_NICE).expect("lane starts");
        let cost = Arc::new(CallCost::default());
        let (demoted_tx, demoted_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let call: CallFuture<'static, ()> = Box::pin(async move {
            for _ in 0..5 {
                spin_for(Duration::from_millis(2));
                tokio::task::yield_now().await;
            }
            let _ = demoted_tx.send(());
            let _ = release_rx.await;
        });
        let used = Arc::default();
        let running = scheduler.run(&cost, &used, call, || ());
        tokio::pin!(running);
        tokio::select! {
            _ = &mut running => panic!("the call ended before it was released"),
            _ = demoted_rx => {}
        }
        assert!(
            scheduler.is_expensive(&cost),
            "the plugin's next calls start in the background while this one still runs"
        );
        let _ = release_tx.send(());
        let ((), lane) = running.await;
        assert_eq!(lane, Lane::Background);
    }

    #[tokio::test]
    async fn host_work_runs_at_low_priority_and_is_charged() {
        let scheduler = Scheduler::new(1, Duration::from_millis(20), BACKGROUND_NICE).expect("lane starts");
        let cost = Arc::new(CallCost::default());
        let thread = scheduler
            .run_work(&cost, || {
                spin_for(Duration::from_millis(60));
                std::thread::current().name().unwrap_or("").to_owned()
            })
            .await;
        assert_eq!(thread.as_deref(), Some("lutetia-background"));
        #[cfg(target_os = "linux")]
        {
            let nice = scheduler
                .run_work(&cost, || {
                    rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                })
                .await;
            assert!(
                matches!(nice, Some(Ok(n)) if n == BACKGROUND_NICE),
                "the work ran at the lane's priority: {nice:?}"
            );
        }
        assert!(
            scheduler.is_expensive(&cost),
            "60 ms of work for one answer is charged to the plugin: {:?}",
            cost.predicted()
        );
    }

    #[tokio::test]
    async fn waiting_is_not_running() {
        // A call that sleeps for longer than the demotion threshold but uses no CPU stays
        // in the interactive lane: only polling time counts.
        let scheduler = Scheduler::new(1, Duration::from_millis(5), BACKGROUND_NICE).expect("lane starts");
        let call: CallFuture<'static, ()> = Box::pin(async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let ((), lane) = scheduler.run(&Arc::default(), &Arc::default(), call, || ()).await;
        assert_eq!(lane, Lane::Interactive);
    }

    #[tokio::test]
    async fn cpu_time_is_counted_not_the_time_the_thread_is_off_the_cpu() {
        // A poll that blocks its thread without running (as when the kernel runs other
        // threads first) is not charged: neither to the deadline nor to the plugin.
        let scheduler = Scheduler::new(1, Duration::from_millis(20), BACKGROUND_NICE).expect("lane starts");
        let cost = Arc::new(CallCost::default());
        let used = Arc::new(CpuUsed::default());
        let call: CallFuture<'static, ()> = Box::pin(async {
            std::thread::sleep(Duration::from_millis(60));
        });
        let ((), lane) = scheduler.run(&cost, &used, call, || ()).await;
        assert_eq!(lane, Lane::Interactive);
        assert!(
            used.get() < Duration::from_millis(20),
            "sleeping is not CPU: {:?}",
            used.get()
        );
        assert!(!scheduler.is_expensive(&cost), "{:?}", cost.predicted());

        // The same time spent computing is.
        let call: CallFuture<'static, ()> = Box::pin(async {
            spin_for(Duration::from_millis(60));
        });
        let used = Arc::new(CpuUsed::default());
        let ((), _) = scheduler.run(&cost, &used, call, || ()).await;
        assert!(
            used.get() >= Duration::from_millis(20),
            "spinning is CPU: {:?}",
            used.get()
        );
        assert!(scheduler.is_expensive(&cost), "{:?}", cost.predicted());
    }

    #[tokio::test]
    async fn dropping_the_caller_aborts_a_background_call() {
        let scheduler = Scheduler::new(1, Duration::from_millis(1), BACKGROUND_NICE).expect("lane starts");
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
        let cost = Arc::new(CallCost::default());
        let used = Arc::default();
        let running = scheduler.run(&cost, &used, call, || ());
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
