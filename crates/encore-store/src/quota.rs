//! Request quotas shared by every worker (a provider's limit is per account, not per process):
//! a GCRA whose state — one theoretical arrival time (TAT) per quota name — lives in the
//! database and is taken in one atomic statement.
//!
//! With an emission interval `T = per / requests` and a tolerance `τ = T × (burst − 1)`, a
//! request at `now` may go at `max(TAT, now) − τ`; taking it moves the TAT to
//! `max(TAT, now) + T`. The statement reserves the slot only when its wait fits the caller's
//! `max_wait`, so a caller that would wait too long takes nothing from the others. Any `k`
//! granted slots then span at least `k·T − τ`: at most `requests + burst − 1` fall in any
//! window of `per` (exactly `requests` with the default burst of 1, as a provider counting a
//! sliding window expects).
//!
//! Times come from the callers' clocks: workers on several machines must keep them in sync
//! (NTP); a worker whose clock runs `d` ahead sees slots up to `d` early.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::Fail;
use crate::{Error, ErrorKind, Store};

/// The longest accepted quota window.
const MAX_PER: Duration = Duration::from_secs(24 * 3600);

/// A request quota: `requests` per `per`, at most `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    interval_us: i64,
    burst: u32,
}

impl Quota {
    /// `requests` per `per`, evenly spaced (`per / requests` apart, rounded up to the
    /// microsecond), with up to `burst` at once.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Invalid`] when `requests` is 0, `per` is 0 or longer than a day, or `burst`
    /// is not between 1 and `requests`.
    pub fn new(requests: u32, per: Duration, burst: u32) -> Result<Quota, Error> {
        if requests == 0 || per.is_zero() || per > MAX_PER {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "invalid quota {requests} per {per:?}: needs at least 1 request per a window of up to a day"
                ),
            ));
        }
        if burst == 0 || burst > requests {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("invalid quota burst {burst}: must be between 1 and requests ({requests})"),
            ));
        }
        let interval_us = per.as_micros().div_ceil(u128::from(requests)).max(1);
        Ok(Quota {
            interval_us: i64::try_from(interval_us).unwrap_or(i64::MAX),
            burst,
        })
    }

    /// The time between two requests at the full rate.
    pub fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_us.unsigned_abs())
    }

    /// How many requests may go at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// τ: how far ahead of the TAT a request may go.
    fn tolerance_us(&self) -> i64 {
        self.interval_us * i64::from(self.burst - 1)
    }
}

/// The answer to a quota take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A slot is reserved: send the request after `wait`.
    Granted {
        /// How long to wait before sending (zero: now).
        wait: Duration,
    },
    /// No slot within the caller's `max_wait`; nothing was reserved.
    Denied {
        /// When the next slot would be free, as of the take (others may take it first).
        next_available_in: Duration,
    },
}

const TAKE: &str = "INSERT INTO quotas (name, tat) VALUES ($1, $2 + $3) \
     ON CONFLICT (name) DO UPDATE \
     SET tat = (CASE WHEN quotas.tat > $2 THEN quotas.tat ELSE $2 END) + $3 \
     WHERE (CASE WHEN quotas.tat > $2 THEN quotas.tat ELSE $2 END) - $4 - $2 <= $5 \
     RETURNING tat";
const READ_TAT: &str = "SELECT tat FROM quotas WHERE name = $1";
const HOLD: &str = "INSERT INTO quotas (name, tat) VALUES ($1, $2) \
     ON CONFLICT (name) DO UPDATE SET tat = CASE WHEN quotas.tat > $2 THEN quotas.tat ELSE $2 END";

fn micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn duration_us(us: i64) -> Duration {
    Duration::from_micros(us.max(0).unsigned_abs())
}

impl Store {
    /// Takes a slot of quota `name` (e.g. `suno.generate`) now: see [`Store::take_quota_at`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), encore_store::Error> {
    /// use std::time::Duration;
    /// use encore_store::{Admission, Quota, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path().join("jobs.db").to_str().unwrap()).await?;
    ///
    /// // Suno generate: 20 per 10 s for the whole account, every worker included.
    /// let suno = Quota::new(20, Duration::from_secs(10), 1)?;
    /// match store.take_quota("suno.generate", &suno, Duration::from_secs(2)).await? {
    ///     Admission::Granted { wait } => tokio::time::sleep(wait).await, // then send
    ///     Admission::Denied { next_available_in } => println!("busy for {next_available_in:?}"),
    /// }
    /// // The next one waits its turn: 500 ms after the first (less the time taken since).
    /// let Admission::Granted { wait } = store.take_quota("suno.generate", &suno, Duration::from_secs(2)).await? else {
    ///     unreachable!("within 2 s")
    /// };
    /// assert!(wait > Duration::from_millis(250) && wait <= Duration::from_millis(500));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn take_quota(
        &self,
        name: &str,
        quota: &Quota,
        max_wait: Duration,
    ) -> Result<Admission, Error> {
        self.take_quota_at(name, quota, max_wait, SystemTime::now())
            .await
    }

    /// Takes a slot of quota `name` at `now`: [`Admission::Granted`] with the wait before the
    /// request may go, when that wait is at most `max_wait` (the slot is then reserved for the
    /// caller, whoever asks next); otherwise [`Admission::Denied`] with when the next slot
    /// would be free, reserving nothing. One atomic statement, whatever the number of workers.
    pub async fn take_quota_at(
        &self,
        name: &str,
        quota: &Quota,
        max_wait: Duration,
        now: SystemTime,
    ) -> Result<Admission, Error> {
        let now = micros(now);
        let max_wait_us = i64::try_from(max_wait.as_micros()).unwrap_or(i64::MAX / 4);
        let tolerance = quota.tolerance_us();
        let outcome: Result<Admission, Fail> = on_backend!(self, |pool| async {
            let taken: Option<i64> = sqlx::query_scalar(TAKE)
                .bind(name)
                .bind(now)
                .bind(quota.interval_us)
                .bind(tolerance)
                .bind(max_wait_us)
                .fetch_optional(pool)
                .await?;
            if let Some(tat) = taken {
                return Ok(Admission::Granted {
                    wait: duration_us(tat - quota.interval_us - tolerance - now),
                });
            }
            let tat: Option<i64> = sqlx::query_scalar(READ_TAT)
                .bind(name)
                .fetch_optional(pool)
                .await?;
            Ok(Admission::Denied {
                next_available_in: duration_us(tat.unwrap_or(now) - tolerance - now),
            })
        }
        .await);
        outcome.map_err(|f| self.fail("taking a quota slot", f))
    }

    /// Holds quota `name` until `until` for every worker (a 429's `Retry-After`): the next
    /// slot is at `until` at the earliest, and the burst refills from there.
    pub async fn hold_quota(
        &self,
        name: &str,
        quota: &Quota,
        until: SystemTime,
    ) -> Result<(), Error> {
        let tat = micros(until).saturating_add(quota.tolerance_us());
        let outcome: Result<(), Fail> = on_backend!(self, |pool| async {
            sqlx::query(HOLD).bind(name).bind(tat).execute(pool).await?;
            Ok(())
        }
        .await);
        outcome.map_err(|f| self.fail("holding a quota", f))?;
        tracing::debug!(quota = name, "quota held");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_and_bad_quotas_are_refused() {
        let q = Quota::new(20, Duration::from_secs(10), 1).unwrap();
        assert_eq!(q.interval(), Duration::from_millis(500));
        assert_eq!(q.tolerance_us(), 0);
        let q = Quota::new(3, Duration::from_secs(1), 3).unwrap();
        assert_eq!(q.interval(), Duration::from_micros(333_334));
        assert_eq!(q.tolerance_us(), 2 * 333_334);
        for (requests, per, burst) in [
            (0, Duration::from_secs(1), 1),
            (1, Duration::ZERO, 1),
            (5, Duration::from_secs(1), 0),
            (5, Duration::from_secs(1), 6),
            (5, Duration::from_secs(2 * 24 * 3600), 1),
        ] {
            let err = Quota::new(requests, per, burst).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{requests} {per:?} {burst}");
        }
    }
}
