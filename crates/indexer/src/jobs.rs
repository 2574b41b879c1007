//! Runs under way, so concurrent requests for one repository share one run.
//!
//! Each run has subscribers; when the last one goes away the run is
//! cancelled (an agent cancelled its tool call, a client hung up). Across
//! replicas a cache lock keeps one run per repository: a second replica waits
//! for it, then finds nothing left to do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use devops_errors::ApiError;
use devops_models::TenantId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::pipeline::Progress;

#[derive(Debug, Clone)]
pub enum JobState {
    Running(Progress),
    Finished(Progress),
    Failed(ApiError),
}

struct Job {
    state: watch::Receiver<JobState>,
    cancel: CancellationToken,
    subscribers: AtomicUsize,
}

type Key = (TenantId, String);

#[derive(Clone, Default)]
pub struct Jobs {
    running: Arc<Mutex<HashMap<Key, Arc<Job>>>>,
}

/// One caller's view of a run; dropping the last one cancels the run.
pub struct Subscription {
    job: Arc<Job>,
    pub state: watch::Receiver<JobState>,
    /// Whether this caller started the run (false: joined one under way).
    pub started: bool,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.job.subscribers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.job.cancel.cancel();
        }
    }
}

impl Jobs {
    /// Joins the run for `key`, or starts one with `start`, which gets the
    /// state sender and the run's cancellation token.
    pub fn join_or_start(
        &self,
        key: (TenantId, String),
        start: impl FnOnce(watch::Sender<JobState>, CancellationToken) -> tokio::task::JoinHandle<()>,
    ) -> Subscription {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = running.get(&key)
            && !job.cancel.is_cancelled()
        {
            job.subscribers.fetch_add(1, Ordering::AcqRel);
            return Subscription { job: job.clone(), state: job.state.clone(), started: false };
        }
        let (tx, rx) = watch::channel(JobState::Running(Progress::default()));
        let cancel = CancellationToken::new();
        let job = Arc::new(Job { state: rx.clone(), cancel: cancel.clone(), subscribers: AtomicUsize::new(1) });
        running.insert(key.clone(), job.clone());
        drop(running);
        let handle = start(tx, cancel);
        let jobs = self.running.clone();
        let finished = job.clone();
        tokio::spawn(async move {
            let _ = handle.await;
            let mut running = jobs.lock().unwrap_or_else(|p| p.into_inner());
            if running.get(&key).is_some_and(|j| Arc::ptr_eq(j, &finished)) {
                running.remove(&key);
            }
        });
        Subscription { job, state: rx, started: true }
    }

    /// Progress of the run for `key` on this replica, if one is under way.
    pub fn progress(&self, key: &(TenantId, String)) -> Option<Progress> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(key).and_then(|job| match &*job.state.borrow() {
            JobState::Running(progress) => Some(progress.clone()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_request_joins_and_the_last_to_leave_cancels() {
        let jobs = Jobs::default();
        let key = (TenantId::new(), "https://example.com/r.git".to_owned());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut starts = 0;
        let first = jobs.join_or_start(key.clone(), |_tx, cancel| {
            starts += 1;
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = released => {}
                }
            })
        });
        let second = jobs.join_or_start(key.clone(), |_, _| unreachable!("must join the run under way"));
        assert_eq!(starts, 1);
        assert!(first.started && !second.started);
        let cancel = first.job.cancel.clone();
        drop(first);
        assert!(!cancel.is_cancelled(), "one subscriber is left");
        drop(second);
        assert!(cancel.is_cancelled(), "the last subscriber left");
        drop(release);
    }
}
