//! Cooperative cancellation and progress for long kernels: a flag checked between chunks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The error a kernel returns when its job was cancelled (a newer request replaced it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// A shared token: the requester may cancel; kernels check it between chunks and report
/// progress in abstract work units (usually elements).
///
/// Cloning shares the same flag and counters.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    /// Shared with every child token (see [`Cancel::child`]).
    cancelled: Arc<AtomicBool>,
    done_units: AtomicU64,
    total_units: AtomicU64,
    reserved_units: AtomicU64,
}

impl Cancel {
    /// A fresh token, not cancelled, with no progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is never cancelled, for one-shot work (CLI, tests).
    pub fn never() -> Self {
        Self::default()
    }

    /// A token that shares this one's cancellation flag but counts its own progress.
    ///
    /// Long jobs built from many kernel calls (the planner's sweep) announce their progress in
    /// their own units on the parent and hand children to the kernels, whose element counts
    /// would otherwise mix into the parent's fraction. Cancelling either cancels both.
    pub fn child(&self) -> Cancel {
        Cancel {
            inner: Arc::new(CancelInner {
                cancelled: Arc::clone(&self.inner.cancelled),
                done_units: AtomicU64::new(0),
                total_units: AtomicU64::new(0),
                reserved_units: AtomicU64::new(0),
            }),
        }
    }

    /// Asks every kernel holding this token to stop at its next check.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled; kernels call this between chunks.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Announces work that later [`Cancel::add_total`] calls will describe, so the fraction
    /// done counts every stage from the start (a job that decodes, then quantizes, reserves
    /// both; the bar does not read 100% after the first stage).
    pub fn reserve(&self, units: u64) {
        self.inner
            .reserved_units
            .fetch_add(units, Ordering::Relaxed);
        self.inner.total_units.fetch_add(units, Ordering::Relaxed);
    }

    /// Adds to the total amount of work expected (in units the kernel chooses, e.g. elements);
    /// work announced by [`Cancel::reserve`] is taken from the reservation first.
    pub fn add_total(&self, units: u64) {
        let taken = self
            .inner
            .reserved_units
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(units))
            })
            .map_or(0, |before| before.min(units));
        let units = units - taken;
        self.inner.total_units.fetch_add(units, Ordering::Relaxed);
    }

    /// Records finished work.
    pub fn add_done(&self, units: u64) {
        self.inner.done_units.fetch_add(units, Ordering::Relaxed);
    }

    /// Finished fraction in [0, 1]; 0 when no total was announced.
    pub fn fraction_done(&self) -> f32 {
        let total = self.inner.total_units.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        let done = self.inner.done_units.load(Ordering::Relaxed).min(total);
        // Precision loss is fine: this is a progress-bar fraction.
        (done as f64 / total as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag_and_progress() {
        let a = Cancel::new();
        let b = a.clone();
        assert_eq!(a.check(), Ok(()));
        a.add_total(4);
        b.add_done(1);
        assert_eq!(a.fraction_done(), 0.25);
        b.cancel();
        assert!(a.is_cancelled());
        assert_eq!(a.check(), Err(Cancelled));
    }

    #[test]
    fn children_share_the_flag_but_not_the_progress() {
        let parent = Cancel::new();
        parent.add_total(10);
        let child = parent.child();
        child.add_total(1000);
        child.add_done(1000);
        assert_eq!(parent.fraction_done(), 0.0);
        assert_eq!(child.fraction_done(), 1.0);
        parent.add_done(5);
        assert_eq!(parent.fraction_done(), 0.5);
        child.cancel();
        assert_eq!(parent.check(), Err(Cancelled));
        let other = Cancel::new();
        other.child().child().cancel();
        assert!(other.is_cancelled());
    }

    #[test]
    fn reserved_work_is_counted_from_the_start() {
        let c = Cancel::new();
        // Two stages of 10 units announced up front: the first stage alone is half the bar.
        c.reserve(20);
        c.add_total(10);
        c.add_done(10);
        assert_eq!(c.fraction_done(), 0.5);
        c.add_total(10);
        c.add_done(5);
        assert_eq!(c.fraction_done(), 0.75);
        // Work beyond the reservation grows the total.
        c.add_total(20);
        assert_eq!(c.fraction_done(), 15.0 / 40.0);
    }

    #[test]
    fn fraction_is_zero_without_total_and_capped_at_one() {
        let c = Cancel::new();
        assert_eq!(c.fraction_done(), 0.0);
        c.add_total(2);
        c.add_done(5);
        assert_eq!(c.fraction_done(), 1.0);
    }
}
