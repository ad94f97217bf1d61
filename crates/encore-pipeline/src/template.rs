//! The `template` step's check, remembered for a while: the jobs of one worker share a
//! successful read of the Creatomate template instead of each making its own.
//!
//! Every job checks, before anything is paid for, that the template exists and has the
//! configured elements. The read is free, but it takes a slot of Creatomate's quota (30 per
//! 10 s, one every 333 ms), so ten jobs started together queued up to 3.3 s for ten identical
//! answers. A [`TemplateChecks`] keeps the last successful check per template, element names and
//! account for `pipeline.template_check_ttl`:
//!
//! - **Only successes are kept.** A failed read (unreachable, unknown template, a missing
//!   element) is never stored, nor handed to other jobs: the next job reads again and gets a
//!   failure of its own.
//! - **One read at a time per entry.** Jobs that find no valid entry wait for the one read under
//!   way (an async lock held across it) and use its result; if it failed, the next waiter reads.
//!   So a failing Creatomate is asked by one job at a time, not by every job at once, and the
//!   circuit breaker fails the rest fast once it opens.
//! - **Cancellation-safe.** The entry changes only when a read succeeded; a job stopped while it
//!   waits or reads drops the lock and leaves the entry as it was.
//! - **On the pipeline's clock** (tokio's `Instant`, like every wait of the pipeline), so
//!   paused-time tests run the lifetime in virtual time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{PipelineConfig, PipelineError};

/// What the `template` step found (the step's stored result).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TemplateChecked {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) elements: Vec<String>,
    /// Set when this job used a check another job made this long before (in milliseconds)
    /// instead of reading the template itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checked_ms_ago: Option<u64>,
}

/// The successful template checks a worker's pipelines share (see the module's documentation).
///
/// [`Pipeline::new`](crate::Pipeline::new) makes one per pipeline; give the pipelines of one
/// process the same one with
/// [`Pipeline::with_template_checks`](crate::Pipeline::with_template_checks) so that their jobs
/// share a check. Clones share their entries. An entry is named by the Creatomate account (a
/// fingerprint of the key), the template id and the three configured element names, so
/// pipelines with other settings or another account never use each other's check; there is one
/// entry per such combination, a handful in practice.
#[derive(Clone, Default)]
pub struct TemplateChecks {
    entries: Arc<Mutex<HashMap<Key, Slot>>>,
}

/// One entry: the async lock a job holds while it reads, and the check it keeps.
type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

impl std::fmt::Debug for TemplateChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.entries.lock().expect("template checks lock").len();
        f.debug_struct("TemplateChecks")
            .field("entries", &entries)
            .finish()
    }
}

/// What a check is valid for: the account, the template and the element names it was made for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    account: String,
    template_id: String,
    elements: [String; 3],
}

impl Key {
    /// The entry a pipeline with `settings` on the Creatomate `account` uses.
    pub(crate) fn of(account: &str, settings: &PipelineConfig) -> Key {
        Key {
            account: account.to_owned(),
            template_id: settings.template_id.clone(),
            elements: [
                settings.audio_element.clone(),
                settings.title_element.clone(),
                settings.captions_element.clone(),
            ],
        }
    }
}

/// A successful check and when its answer came.
#[derive(Debug)]
struct Entry {
    checked: TemplateChecked,
    at: Instant,
}

impl TemplateChecks {
    /// No checks yet.
    pub fn new() -> TemplateChecks {
        TemplateChecks::default()
    }

    fn slot(&self, key: Key) -> Slot {
        let mut entries = self.entries.lock().expect("template checks lock");
        Arc::clone(entries.entry(key).or_default())
    }

    /// The check for `key`: a stored one younger than `ttl` (with `checked_ms_ago` set), or
    /// else `read`'s, stored when it succeeds. Waits for a read of the same entry already under
    /// way. A zero `ttl` always reads, without waiting for other jobs' reads.
    ///
    /// # Errors
    ///
    /// `read`'s error; nothing is stored then.
    pub(crate) async fn check<Fut>(
        &self,
        key: Key,
        ttl: Duration,
        read: impl FnOnce() -> Fut,
    ) -> Result<TemplateChecked, PipelineError>
    where
        Fut: Future<Output = Result<TemplateChecked, PipelineError>>,
    {
        if ttl.is_zero() {
            return read().await;
        }
        let slot = self.slot(key);
        let mut entry = slot.lock().await;
        if let Some(Entry { checked, at }) = entry.as_ref() {
            let age = at.elapsed();
            if age < ttl {
                return Ok(TemplateChecked {
                    checked_ms_ago: Some(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
                    ..checked.clone()
                });
            }
        }
        let checked = read().await?;
        *entry = Some(Entry {
            checked: checked.clone(),
            at: Instant::now(),
        });
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn key(template_id: &str) -> Key {
        Key::of(
            "account",
            &PipelineConfig {
                template_id: template_id.into(),
                ..PipelineConfig::default()
            },
        )
    }

    fn found(reads: &AtomicU32) -> impl Future<Output = Result<TemplateChecked, PipelineError>> {
        reads.fetch_add(1, Ordering::SeqCst);
        async {
            Ok(TemplateChecked {
                id: "t".into(),
                name: "a template".into(),
                elements: vec!["Audio".into()],
                checked_ms_ago: None,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_is_kept_until_its_lifetime_ends_and_says_how_old_it_is() {
        let checks = TemplateChecks::new();
        let reads = AtomicU32::new(0);
        let ttl = Duration::from_secs(60);
        let first = checks.check(key("t"), ttl, || found(&reads)).await;
        assert_eq!(first.unwrap().checked_ms_ago, None, "read, not kept");
        tokio::time::advance(Duration::from_millis(59_999)).await;
        let kept = checks.check(key("t"), ttl, || found(&reads)).await;
        assert_eq!(kept.unwrap().checked_ms_ago, Some(59_999));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        let again = checks.check(key("t"), ttl, || found(&reads)).await;
        assert_eq!(
            again.unwrap().checked_ms_ago,
            None,
            "read again at its lifetime"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // Another template is another entry; clones share the entries.
        let clone = checks.clone();
        clone.check(key("u"), ttl, || found(&reads)).await.unwrap();
        clone.check(key("t"), ttl, || found(&reads)).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        assert_eq!(format!("{checks:?}"), "TemplateChecks { entries: 2 }");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_not_kept() {
        let checks = TemplateChecks::new();
        let reads = AtomicU32::new(0);
        let ttl = Duration::from_secs(60);
        let failed = checks
            .check(key("t"), ttl, || async {
                Err(PipelineError::TemplateElements {
                    template_id: "t".into(),
                    missing: vec!["Audio".into()],
                    found: Vec::new(),
                })
            })
            .await;
        assert!(failed.is_err());
        let read = checks.check(key("t"), ttl, || found(&reads)).await.unwrap();
        assert_eq!(read.checked_ms_ago, None);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }
}
