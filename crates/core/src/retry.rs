//! When to look at a pending order again, and the name of the schedule that will.
//!
//! The delay comes from the auction's expected publication time when the platform or the
//! calendar knows it (wait until just after it), otherwise from bounded exponential backoff with
//! jitter. The jitter is derived from the record id and attempt, not drawn at random: a duplicate
//! delivery of the same event computes the same instant and the same schedule name.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::hash::{fnv1a64, mix64};
use crate::order::RecordId;

/// How patiently evaluate-order waits for results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Result checks before giving up with `ResultsTimeout` (template parameter `MaxAttempts`).
    pub max_attempts: u32,
    /// First backoff step once the expected publication time has passed (`RetryBaseSeconds`).
    pub base: SignedDuration,
    /// Longest backoff step.
    pub cap: SignedDuration,
    /// Up to this much is added after a known publication time, spreading the checks of many
    /// orders of one auction.
    pub publication_spread: SignedDuration,
    /// How long a READY or FAILED order may wait for its consumer before the sweeper re-sends
    /// its event.
    pub redelivery_after: SignedDuration,
    /// How long a delivery's claim on an order lasts (store-result's put, notify-slack's post,
    /// evaluate-order's withdrawal): longer than a function may run (30 s), short enough that a
    /// claimant that died is replaced within minutes, before a gate if it can be.
    #[serde(default = "default_claim_for")]
    pub claim_for: SignedDuration,
}

fn default_claim_for() -> SignedDuration {
    SignedDuration::from_secs(60)
}

impl Default for RetryPolicy {
    /// Fourteen checks: with a 60 s base and a 20 min cap the last one falls 1.6 to 3.2 hours
    /// after the expected publication, past SDAC's known late checkpoints (14:00 and 14:20 CET,
    /// 75 and 95 minutes after the usual 12:45).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 14,
            base: SignedDuration::from_secs(60),
            cap: SignedDuration::from_mins(20),
            publication_spread: SignedDuration::from_secs(30),
            redelivery_after: SignedDuration::from_mins(5),
            claim_for: default_claim_for(),
        }
    }
}

fn unit(record_id: &RecordId, attempt: u32) -> u64 {
    mix64(fnv1a64(record_id.as_str().as_bytes()) ^ u64::from(attempt))
}

impl RetryPolicy {
    /// Backoff before check `attempt` (2, 3, ...) when no publication time is ahead:
    /// "equal jitter", half fixed and half spread, so checks never bunch up at zero delay.
    pub fn backoff(&self, record_id: &RecordId, attempt: u32) -> SignedDuration {
        let exp = attempt.saturating_sub(2).min(30);
        let base = self.base.as_millis().max(1);
        let step = base
            .saturating_mul(1i128 << exp)
            .min(self.cap.as_millis().max(base));
        let half = step / 2;
        let jitter = i128::from(unit(record_id, attempt) % (half.max(1) as u64 + 1));
        SignedDuration::from_millis((half + jitter) as i64)
    }

    /// When check `attempt` should run, given what is known of the publication time.
    /// Whole seconds: EventBridge Scheduler's `at()` has no finer resolution.
    pub fn check_at(
        &self,
        now: Timestamp,
        expected_publication: Option<Timestamp>,
        record_id: &RecordId,
        attempt: u32,
    ) -> Timestamp {
        let at = match expected_publication {
            Some(p) if p > now => {
                let spread = self.publication_spread.as_millis().max(1) as u64;
                let jitter =
                    SignedDuration::from_millis((unit(record_id, attempt) % spread) as i64);
                p.saturating_add(jitter).unwrap_or(p)
            }
            _ => {
                let d = self.backoff(record_id, attempt);
                now.saturating_add(d).unwrap_or(now)
            }
        };
        let up = i64::from(at.subsec_nanosecond() > 0);
        Timestamp::from_second(at.as_second() + up).unwrap_or(at)
    }
}

/// How long a round of checks gathers: the checks due within one round are made together,
/// at its end, by one schedule.
pub const ROUND: SignedDuration = SignedDuration::from_secs(10);

/// The round a check due at `at` belongs to: the end of its [`ROUND`] (a check is never made
/// before it is due).
pub fn check_round(at: Timestamp) -> Timestamp {
    let step = ROUND.as_secs();
    let second = at.as_second() + i64::from(at.subsec_nanosecond() > 0);
    let past = second.rem_euclid(step);
    let end = if past == 0 {
        second
    } else {
        second.saturating_add(step - past)
    };
    Timestamp::from_second(end).unwrap_or(at)
}

/// The one-time schedule of the round of checks at `round`: `checks-20261128T124510`, the
/// same for every order whose check falls in it, so one schedule serves them all.
pub fn round_name(round: Timestamp) -> String {
    format!("checks-{}", round.strftime("%Y%m%dT%H%M%S"))
}

/// `at(2026-11-28T11:45:26)`, in UTC (Scheduler's resolution is a second).
pub fn at_expression(at: Timestamp) -> String {
    format!("at({})", at.strftime("%Y-%m-%dT%H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RecordId {
        RecordId::parse(s).unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let p = RetryPolicy::default();
        for attempt in 2..20 {
            let d = p.backoff(&id("o-1"), attempt).as_millis();
            let step = (60_000i128 << (attempt - 2).min(30)).min(1_200_000);
            assert!(
                d >= step / 2 && d <= step,
                "attempt {attempt}: {d} not in [{}, {step}]",
                step / 2
            );
        }
    }

    #[test]
    fn same_order_and_attempt_give_the_same_instant() {
        let p = RetryPolicy::default();
        let now: Timestamp = "2026-01-14T12:00:00Z".parse().unwrap();
        assert_eq!(
            p.check_at(now, None, &id("o-1"), 3),
            p.check_at(now, None, &id("o-1"), 3)
        );
    }

    #[test]
    fn a_known_publication_time_ahead_is_waited_for() {
        let p = RetryPolicy::default();
        let now: Timestamp = "2026-01-14T10:00:00Z".parse().unwrap();
        let publication: Timestamp = "2026-01-14T11:45:00Z".parse().unwrap();
        let at = p.check_at(now, Some(publication), &id("o-1"), 1);
        assert!(at >= publication && at < publication + SignedDuration::from_secs(30));
    }

    #[test]
    fn a_check_belongs_to_the_round_that_ends_at_or_after_it() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        for (at, round) in [
            ("2026-01-14T11:45:00Z", "2026-01-14T11:45:00Z"),
            ("2026-01-14T11:45:00.001Z", "2026-01-14T11:45:10Z"),
            ("2026-01-14T11:45:01Z", "2026-01-14T11:45:10Z"),
            ("2026-01-14T11:45:09.999Z", "2026-01-14T11:45:10Z"),
            ("2026-01-14T11:45:10Z", "2026-01-14T11:45:10Z"),
            ("2026-01-14T11:59:55Z", "2026-01-14T12:00:00Z"),
            ("1969-12-31T23:59:55Z", "1970-01-01T00:00:00Z"),
        ] {
            assert_eq!(check_round(t(at)), t(round), "{at}");
        }
        assert_eq!(check_round(Timestamp::MAX), Timestamp::MAX);
        let name = round_name(t("2026-01-14T11:45:10Z"));
        assert_eq!(name, "checks-20260114T114510");
        // Scheduler's names: `[0-9A-Za-z_.-]`, at most 64 characters, whatever the year.
        for n in [name, round_name(Timestamp::MAX), round_name(Timestamp::MIN)] {
            assert!(
                n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
                "{n}"
            );
        }
        // Thirty seconds of spread after one publication: three rounds, three schedules.
        let p = RetryPolicy::default();
        let publication = t("2026-01-14T11:45:00Z");
        let now = t("2026-01-14T10:00:00Z");
        let rounds: std::collections::BTreeSet<Timestamp> = (0..2_000)
            .map(|i| check_round(p.check_at(now, Some(publication), &id(&format!("o-{i}")), 1)))
            .collect();
        assert!(rounds.len() <= 4, "{rounds:?}");
    }

    /// The jitter is a pure function of the order and the check: these instants are what a
    /// deployed evaluator schedules, and a change to them shows here.
    #[test]
    fn the_jittered_instants_are_pinned() {
        let p = RetryPolicy::default();
        let now: Timestamp = "2026-01-14T12:00:00Z".parse().unwrap();
        let got: Vec<String> = (2..6)
            .map(|n| p.check_at(now, None, &id("o-1"), n).to_string())
            .collect();
        assert_eq!(got, GOLDEN_BACKOFF);
        let publication: Timestamp = "2026-01-14T12:45:00Z".parse().unwrap();
        let spread: Vec<String> = ["o-1", "o-2", "desk:a"]
            .iter()
            .map(|o| p.check_at(now, Some(publication), &id(o), 1).to_string())
            .collect();
        assert_eq!(spread, GOLDEN_SPREAD);
    }

    const GOLDEN_BACKOFF: [&str; 4] = [
        "2026-01-14T12:00:50Z",
        "2026-01-14T12:01:22Z",
        "2026-01-14T12:03:21Z",
        "2026-01-14T12:07:49Z",
    ];
    const GOLDEN_SPREAD: [&str; 3] = [
        "2026-01-14T12:45:20Z",
        "2026-01-14T12:45:26Z",
        "2026-01-14T12:45:20Z",
    ];

    #[test]
    fn a_publication_time_now_or_past_is_not_waited_for_and_instants_round_up() {
        let p = RetryPolicy::default();
        let now: Timestamp = "2026-01-14T12:00:00.250Z".parse().unwrap();
        // Published at this instant: back off as when it is past.
        let at = p.check_at(now, Some(now), &id("o-1"), 2);
        let backoff = p.backoff(&id("o-1"), 2);
        let exact = now + backoff;
        assert_eq!(at.subsec_nanosecond(), 0, "whole seconds");
        assert!(
            at >= exact && at < exact + SignedDuration::from_secs(1),
            "{at} {exact}"
        );
        // An instant on the second stays where it is.
        let whole: Timestamp = "2026-01-14T12:00:00Z".parse().unwrap();
        let d = p.backoff(&id("o-1"), 2);
        if d.subsec_nanos() == 0 {
            assert_eq!(p.check_at(whole, None, &id("o-1"), 2), whole + d);
        }
    }

    #[test]
    fn an_instant_already_on_the_second_is_not_moved() {
        let p = RetryPolicy {
            publication_spread: SignedDuration::from_millis(1),
            ..RetryPolicy::default()
        };
        let now: Timestamp = "2026-01-14T10:00:00Z".parse().unwrap();
        let publication: Timestamp = "2026-01-14T11:45:00Z".parse().unwrap();
        assert_eq!(
            p.check_at(now, Some(publication), &id("o-1"), 1),
            publication
        );
    }
}
