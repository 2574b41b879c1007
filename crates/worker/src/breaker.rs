//! One circuit breaker per downstream service. After `threshold`
//! consecutive retry-safe failures the circuit opens: for `cooldown`,
//! messages bound for that service go back on the queue without calling
//! it, so an outage costs no work and floods nothing. Then one call is let
//! through (half-open); success closes the circuit, failure opens it again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const CIRCUIT_OPEN: &str = "worker_circuit_open";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is under way.
    HalfOpen,
}

/// Whether a call may go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Open: try again after this long.
    Rejected(Duration),
}

#[derive(Debug)]
pub struct Breakers {
    threshold: u32,
    cooldown: Duration,
    states: Mutex<HashMap<&'static str, State>>,
}

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, states: Mutex::new(HashMap::new()) }
    }

    fn with<T>(&self, downstream: &'static str, f: impl FnOnce(&mut State) -> T) -> T {
        let mut states = self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(states.entry(downstream).or_insert(State::Closed { failures: 0 }))
    }

    pub fn admit(&self, downstream: &'static str) -> Admission {
        self.with(downstream, |state| match *state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::HalfOpen;
                    Admission::Allowed
                } else {
                    Admission::Rejected(until - now)
                }
            }
            // Only the trial call goes through; the rest wait one cooldown.
            State::HalfOpen => Admission::Rejected(self.cooldown),
        })
    }

    pub fn succeeded(&self, downstream: &'static str) {
        self.with(downstream, |state| *state = State::Closed { failures: 0 });
        metrics::gauge!(CIRCUIT_OPEN, "downstream" => downstream).set(0.0);
    }

    /// Records a retry-safe failure (the downstream is in trouble).
    pub fn failed(&self, downstream: &'static str) {
        let opened = self.with(downstream, |state| {
            let failures = match *state {
                State::Closed { failures } => failures + 1,
                State::Open { .. } | State::HalfOpen => self.threshold,
            };
            if failures >= self.threshold {
                *state = State::Open { until: Instant::now() + self.cooldown };
                true
            } else {
                *state = State::Closed { failures };
                false
            }
        });
        if opened {
            tracing::warn!(downstream, cooldown_secs = self.cooldown.as_secs(), "circuit open");
            metrics::gauge!(CIRCUIT_OPEN, "downstream" => downstream).set(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_half_opens_after_the_cooldown() {
        let breakers = Breakers::new(2, Duration::from_millis(50));
        assert_eq!(breakers.admit("reviewer"), Admission::Allowed);
        breakers.failed("reviewer");
        assert_eq!(breakers.admit("reviewer"), Admission::Allowed, "one failure is not an outage");
        breakers.failed("reviewer");
        assert!(matches!(breakers.admit("reviewer"), Admission::Rejected(_)));
        assert_eq!(breakers.admit("indexer"), Admission::Allowed, "each downstream has its own circuit");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breakers.admit("reviewer"), Admission::Allowed, "the trial call");
        assert!(matches!(breakers.admit("reviewer"), Admission::Rejected(_)), "only one trial at a time");
        breakers.failed("reviewer");
        assert!(matches!(breakers.admit("reviewer"), Admission::Rejected(_)), "a failed trial reopens");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breakers.admit("reviewer"), Admission::Allowed);
        breakers.succeeded("reviewer");
        assert_eq!(breakers.admit("reviewer"), Admission::Allowed);
        assert_eq!(breakers.admit("reviewer"), Admission::Allowed, "closed again");
    }
}
