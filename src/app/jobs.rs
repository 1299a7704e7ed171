//! The background job runner: caches of derived results keyed by every input they depend on,
//! computed on a named rayon pool, with the newest request of a lane cancelling the older one.
//!
//! `ui()` only calls [`Jobs::request`] (cheap: a hash lookup, maybe a spawn) and
//! [`Jobs::poll`] moves finished results into the cache. In inline mode (tests) a request
//! computes synchronously, so interaction tests need no sleeps.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::cancel::Cancel;

/// Where jobs run.
#[derive(Clone)]
pub enum Runner {
    /// On the shared named pool; the worker calls `request_repaint` on the context when done.
    Pool {
        /// The pool every job cache of the app shares.
        pool: Arc<rayon::ThreadPool>,
        /// Woken when a job finishes so `logic()` drains it.
        ctx: Option<egui::Context>,
    },
    /// Synchronously inside `request` (tests).
    Inline,
}

impl Runner {
    /// A runner on a new pool named "quantscope-jobs" (threads "quantscope-jobs-N"), one thread
    /// per core.
    pub fn pool(ctx: Option<egui::Context>) -> anyhow::Result<Self> {
        Self::named_pool(ctx, "quantscope-jobs", 0)
    }

    /// A runner on a new pool with threads "NAME-N"; `threads` 0 means one per core.
    pub fn named_pool(
        ctx: Option<egui::Context>,
        name: &'static str,
        threads: usize,
    ) -> anyhow::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(move |i| format!("{name}-{i}"))
            .num_threads(threads)
            .build()?;
        Ok(Self::Pool {
            pool: Arc::new(pool),
            ctx,
        })
    }

    /// Whether jobs run synchronously.
    pub fn is_inline(&self) -> bool {
        matches!(self, Self::Inline)
    }
}

/// A job key: all the inputs of one derived result, plus the lane it competes in.
pub trait JobKey: Clone + Eq + Hash + Send + Sync + 'static {
    /// Requests in the same lane replace each other: the newest cancels the running older one.
    /// Requests in different lanes run side by side.
    fn lane(&self) -> u64 {
        0
    }

    /// Whether the last result of `other` (same lane) may stand in, dimmed, while this key
    /// computes. Results for another tensor would mislead, so keys override this.
    fn same_subject(&self, other: &Self) -> bool {
        let _ = other;
        true
    }
}

/// What a request returns.
pub enum JobState<V> {
    /// The result for exactly this key.
    Ready(Arc<V>),
    /// Still computing; `last` is the latest result of the same lane (drawn dimmed meanwhile).
    Pending {
        /// The most recent finished result in this lane, if any.
        last: Option<Arc<V>>,
        /// Finished fraction in [0, 1] as the kernels report it.
        progress: f32,
    },
    /// The computation failed; the message is shown in the window.
    Failed(String),
}

impl<V> JobState<V> {
    /// The value to draw: the exact one, or the dimmed last one while pending.
    pub fn value(&self) -> Option<&Arc<V>> {
        match self {
            Self::Ready(v) => Some(v),
            Self::Pending { last, .. } => last.as_ref(),
            Self::Failed(_) => None,
        }
    }

    /// Whether the shown value is exactly the requested one.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready(_))
    }
}

type Compute<K, V> = dyn Fn(&K, &Cancel) -> Result<V, String> + Send + Sync;

struct Running<K> {
    key: K,
    cancel: Cancel,
}

struct Finished<K, V> {
    key: K,
    result: Result<V, String>,
}

/// One cache of derived results of type `V` keyed by `K`.
pub struct Jobs<K: JobKey, V: Send + Sync + 'static> {
    name: &'static str,
    runner: Runner,
    compute: Arc<Compute<K, V>>,
    ready: HashMap<K, Arc<V>>,
    /// Insertion order of `ready`, for evicting the oldest beyond `capacity`.
    order: VecDeque<K>,
    capacity: usize,
    failed: HashMap<K, String>,
    running: HashMap<u64, Running<K>>,
    last_in_lane: HashMap<u64, (K, Arc<V>)>,
    tx: Sender<Finished<K, V>>,
    rx: Receiver<Finished<K, V>>,
}

impl<K: JobKey, V: Send + Sync + 'static> Jobs<K, V> {
    /// A cache named `name` (for messages) keeping up to `capacity` results.
    pub fn new(
        name: &'static str,
        runner: Runner,
        capacity: usize,
        compute: impl Fn(&K, &Cancel) -> Result<V, String> + Send + Sync + 'static,
    ) -> Self {
        let (tx, rx) = channel();
        Self {
            name,
            runner,
            compute: Arc::new(compute),
            ready: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            failed: HashMap::new(),
            running: HashMap::new(),
            last_in_lane: HashMap::new(),
            tx,
            rx,
        }
    }

    /// The result for `key` if finished; otherwise starts it (cancelling an older job of the
    /// same lane) and reports it pending.
    pub fn request(&mut self, key: &K) -> JobState<V> {
        if let Some(v) = self.ready.get(key) {
            return JobState::Ready(Arc::clone(v));
        }
        if let Some(e) = self.failed.get(key) {
            return JobState::Failed(format!("{}: {e}", self.name));
        }
        let lane = key.lane();
        let progress = match self.running.get(&lane) {
            Some(r) if &r.key == key => r.cancel.fraction_done(),
            _ => {
                self.start(key.clone());
                // Inline jobs are finished now.
                self.poll();
                if let Some(v) = self.ready.get(key) {
                    return JobState::Ready(Arc::clone(v));
                }
                if let Some(e) = self.failed.get(key) {
                    return JobState::Failed(format!("{}: {e}", self.name));
                }
                0.0
            }
        };
        JobState::Pending {
            last: self
                .last_in_lane
                .get(&lane)
                .filter(|(k, _)| key.same_subject(k))
                .map(|(_, v)| Arc::clone(v)),
            progress,
        }
    }

    /// The cached result for `key`, without starting anything.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.ready.get(key).cloned()
    }

    /// What a request for `key` would show without starting anything: the exact result if
    /// cached, else the last result of its lane when it is of the same subject (dimmed).
    pub fn peek(&self, key: &K) -> JobState<V> {
        if let Some(v) = self.ready.get(key) {
            return JobState::Ready(Arc::clone(v));
        }
        JobState::Pending {
            last: self
                .last_in_lane
                .get(&key.lane())
                .filter(|(k, _)| key.same_subject(k))
                .map(|(_, v)| Arc::clone(v)),
            progress: 0.0,
        }
    }

    /// Whether any job of this cache is running.
    pub fn is_busy(&self) -> bool {
        !self.running.is_empty()
    }

    fn start(&mut self, key: K) {
        let lane = key.lane();
        if let Some(old) = self.running.remove(&lane) {
            old.cancel.cancel();
        }
        let cancel = Cancel::new();
        self.running.insert(
            lane,
            Running {
                key: key.clone(),
                cancel: cancel.clone(),
            },
        );
        let compute = Arc::clone(&self.compute);
        let tx = self.tx.clone();
        match &self.runner {
            Runner::Inline => {
                let result = compute(&key, &cancel);
                // The receiver lives in `self`, so sending cannot fail here.
                let _ = tx.send(Finished { key, result });
            }
            Runner::Pool { pool, ctx } => {
                let ctx = ctx.clone();
                pool.spawn(move || {
                    if cancel.is_cancelled() {
                        return;
                    }
                    let result = compute(&key, &cancel);
                    if cancel.is_cancelled() {
                        return;
                    }
                    // The app may have dropped this cache meanwhile (a new model); then nobody
                    // wants the result.
                    let _ = tx.send(Finished { key, result });
                    if let Some(ctx) = ctx {
                        ctx.request_repaint();
                    }
                });
            }
        }
    }

    /// Moves finished jobs into the cache. Call once per frame (from `logic()`).
    pub fn poll(&mut self) {
        while let Ok(Finished { key, result }) = self.rx.try_recv() {
            let lane = key.lane();
            if self.running.get(&lane).is_some_and(|r| r.key == key) {
                self.running.remove(&lane);
            }
            match result {
                Ok(v) => {
                    let v = Arc::new(v);
                    self.last_in_lane
                        .insert(lane, (key.clone(), Arc::clone(&v)));
                    if self.ready.insert(key.clone(), v).is_none() {
                        self.order.push_back(key);
                    }
                    while self.order.len() > self.capacity {
                        if let Some(old) = self.order.pop_front() {
                            self.ready.remove(&old);
                        }
                    }
                }
                Err(e) => {
                    self.failed.insert(key, e);
                }
            }
        }
    }

    /// Cancels every running job and keeps the finished results (the user pressed Cancel).
    pub fn cancel_running(&mut self) {
        for r in self.running.values() {
            r.cancel.cancel();
        }
        self.running.clear();
    }

    /// Cancels every running job and forgets every result (a new model was opened).
    pub fn clear(&mut self) {
        for r in self.running.values() {
            r.cancel.cancel();
        }
        self.running.clear();
        self.ready.clear();
        self.order.clear();
        self.failed.clear();
        self.last_in_lane.clear();
        // Results of cancelled jobs still in the channel belong to the old model.
        while self.rx.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone, PartialEq, Eq, Hash, Debug)]
    struct Key(u32, u64);
    impl JobKey for Key {
        fn lane(&self) -> u64 {
            self.1
        }
    }

    #[test]
    fn inline_jobs_are_ready_at_once_and_cached() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let mut jobs = Jobs::new("square", Runner::Inline, 4, move |k: &Key, _| {
            c.fetch_add(1, Ordering::Relaxed);
            Ok(k.0 * k.0)
        });
        match jobs.request(&Key(7, 0)) {
            JobState::Ready(v) => assert_eq!(*v, 49),
            _ => panic!("inline job not ready"),
        }
        assert!(jobs.request(&Key(7, 0)).is_ready());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn failures_are_reported_with_the_cache_name() {
        let mut jobs: Jobs<Key, u32> =
            Jobs::new("hist", Runner::Inline, 4, |_, _| Err("bad".into()));
        match jobs.request(&Key(1, 0)) {
            JobState::Failed(e) => assert_eq!(e, "hist: bad"),
            _ => panic!("expected a failure"),
        }
    }

    #[derive(Clone, PartialEq, Eq, Hash, Debug)]
    struct Subject(u32, u32);
    impl JobKey for Subject {
        fn same_subject(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }

    #[test]
    fn pending_shows_the_last_result_only_for_the_same_subject() {
        let runner = Runner::pool(None).expect("pool");
        let gate = Arc::new(std::sync::Mutex::new(()));
        let g = Arc::clone(&gate);
        let mut jobs = Jobs::new("gated", runner, 8, move |k: &Subject, _: &Cancel| {
            // Jobs with setting 1 wait for the test to release the gate.
            if k.1 == 1 {
                let _held = g.lock();
            }
            Ok(k.0 * 10 + k.1)
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !jobs.request(&Subject(1, 0)).is_ready() {
            jobs.poll();
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let held = gate.lock().expect("gate");
        match jobs.request(&Subject(1, 1)) {
            JobState::Pending { last, .. } => assert_eq!(last.as_deref(), Some(&10)),
            _ => panic!("gated job finished early"),
        }
        match jobs.request(&Subject(2, 1)) {
            JobState::Pending { last, .. } => assert!(last.is_none()),
            _ => panic!("gated job finished early"),
        }
        drop(held);
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let mut jobs = Jobs::new("id", Runner::Inline, 2, |k: &Key, _| Ok(k.0));
        for i in 0..3 {
            jobs.request(&Key(i, 0));
        }
        assert!(jobs.get(&Key(0, 0)).is_none());
        assert_eq!(jobs.get(&Key(2, 0)).as_deref(), Some(&2));
    }

    #[test]
    fn newer_request_in_a_lane_cancels_the_older_on_the_pool() {
        let runner = Runner::pool(None).expect("pool");
        let mut jobs = Jobs::new("slow", runner, 4, |k: &Key, cancel: &Cancel| {
            // The first key spins until cancelled; the others finish at once.
            if k.0 == 0 {
                while cancel.check().is_ok() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                return Err("cancelled".into());
            }
            Ok(k.0)
        });
        assert!(!jobs.request(&Key(0, 5)).is_ready());
        assert!(!jobs.request(&Key(1, 5)).is_ready());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            jobs.poll();
            if let JobState::Ready(v) = jobs.request(&Key(1, 5)) {
                assert_eq!(*v, 1);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "job never finished");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // The cancelled job never reports (neither success nor failure).
        assert!(jobs.get(&Key(0, 5)).is_none());
        assert!(!jobs.failed.contains_key(&Key(0, 5)));
    }

    /// Threads of this process whose name starts with `prefix` (Linux; None elsewhere).
    fn threads_named(prefix: &str) -> Option<usize> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        Some(
            tasks
                .filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count(),
        )
    }

    #[test]
    fn a_burst_of_requests_ends_with_the_last_result_and_no_stale_current() {
        let runner = Runner::named_pool(None, "burst-pool", 2).expect("pool");
        let computed = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&computed);
        let mut jobs = Jobs::new("burst", runner, 4, move |k: &Key, cancel: &Cancel| {
            // Each job takes ~20 ms in 1 ms slices, checking for cancellation like a kernel.
            for _ in 0..20 {
                cancel.check().map_err(|e| e.to_string())?;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            c.fetch_add(1, Ordering::Relaxed);
            Ok(k.0 * 3)
        });
        // rayon starts its threads lazily: count once the first job ran.
        let _ = jobs.request(&Key(1000, 1));
        // 100 settings changes in one second, polled like frames in between.
        for i in 0..100u32 {
            match jobs.request(&Key(i, 0)) {
                // A result shown as current is exactly the requested key's.
                JobState::Ready(v) => assert_eq!(*v, i * 3),
                // A stale result may show only dimmed, and is an earlier key's.
                JobState::Pending { last, .. } => {
                    if let Some(v) = last {
                        assert!(*v < i * 3, "a later result cannot exist yet");
                    }
                }
                JobState::Failed(e) => panic!("no request fails: {e}"),
            }
            jobs.poll();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let last = loop {
            jobs.poll();
            if let JobState::Ready(v) = jobs.request(&Key(99, 0)) {
                break *v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the last request never finished"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert_eq!(last, 99 * 3);
        assert!(!jobs.is_busy(), "nothing runs after the last result");
        // Older jobs were cancelled: far fewer than 100 ran to the end.
        assert!(computed.load(Ordering::Relaxed) < 100);
        // The pool's two threads did all the work: the burst started no thread of its own.
        if let Some(n) = threads_named("burst-pool") {
            assert_eq!(n, 2, "threads of the job pool");
        }
    }
}
