//! The ledger: every request the simulator saw and every billed job it created.
//!
//! Tests use it to prove "no duplicate billed job" and to count retries from the
//! server's side. Read it with [`SimState::ledger`](crate::SimState::ledger) or
//! `GET /__sim/ledger`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::route::RouteId;

/// One request, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Global 1-based arrival number.
    pub seq: u64,
    /// Route id, e.g. `suno.generate`.
    pub route: RouteId,
    /// Method and path template, e.g. `POST /api/v1/generate`.
    pub endpoint: String,
    /// The concrete path, e.g. `/v1/renders/3f…`.
    pub path: String,
    /// 1-based call number of this route (the *n* in "the *n*th call gets …").
    pub attempt: u64,
    /// Label of the injected fault (`None` = handled normally), e.g. `"status:503"`.
    pub fault: Option<String>,
    /// Status sent to the client; `None` when the connection was dropped before any answer.
    pub status: Option<u16>,
    /// Id of the billed job this request created, if any.
    pub job_id: Option<String>,
    /// Real milliseconds since the simulator state was created.
    pub at_ms: u64,
}

/// What kind of billed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// An OpenAI response (tokens billed).
    OpenaiResponse,
    /// A Suno generation task (credits debited).
    SunoTask,
    /// A Creatomate render (credits debited).
    CreatomateRender,
}

/// One billed job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledJob {
    /// Kind of job.
    pub kind: JobKind,
    /// Its id (`resp_…`, a Suno `taskId`, a Creatomate render id).
    pub id: String,
    /// `seq` of the request that created it.
    pub request_seq: u64,
    /// Attempt number of that request on its route.
    pub attempt: u64,
    /// Real milliseconds since start.
    pub at_ms: u64,
}

/// A snapshot of everything recorded so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Every request, in arrival order.
    pub requests: Vec<RequestRecord>,
    /// Every billed job, in creation order.
    pub jobs: Vec<BilledJob>,
    /// OpenAI responses generated.
    pub openai_responses: u64,
    /// Suno tasks created.
    pub suno_tasks: u64,
    /// Creatomate renders created.
    pub creatomate_renders: u64,
    /// Request count per endpoint, keyed like `"POST /api/v1/generate"`.
    pub requests_per_route: BTreeMap<String, u64>,
}

impl Ledger {
    /// Requests of one route.
    pub fn requests_for(&self, route: RouteId) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter().filter(move |r| r.route == route)
    }

    /// Number of requests of one route.
    pub fn count(&self, route: RouteId) -> u64 {
        self.requests_per_route
            .get(route.endpoint())
            .copied()
            .unwrap_or(0)
    }

    /// Fault labels of one route's requests in order (`None` = no fault).
    pub fn faults_for(&self, route: RouteId) -> Vec<Option<String>> {
        self.requests_for(route).map(|r| r.fault.clone()).collect()
    }

    /// Billed jobs of one kind.
    pub fn jobs_of(&self, kind: JobKind) -> impl Iterator<Item = &BilledJob> {
        self.jobs.iter().filter(move |j| j.kind == kind)
    }
}

/// The mutable book behind [`Ledger`].
#[derive(Debug, Default)]
pub(crate) struct LedgerBook {
    ledger: Ledger,
}

impl LedgerBook {
    pub(crate) fn start_request(
        &mut self,
        route: RouteId,
        path: &str,
        attempt: u64,
        fault: Option<String>,
        at_ms: u64,
    ) -> u64 {
        let seq = self.ledger.requests.len() as u64 + 1;
        self.ledger.requests.push(RequestRecord {
            seq,
            route,
            endpoint: route.endpoint().to_owned(),
            path: path.to_owned(),
            attempt,
            fault,
            status: None,
            job_id: None,
            at_ms,
        });
        *self
            .ledger
            .requests_per_route
            .entry(route.endpoint().to_owned())
            .or_default() += 1;
        seq
    }

    pub(crate) fn finish_request(&mut self, seq: u64, status: Option<u16>) {
        if let Some(r) = self.ledger.requests.get_mut(seq as usize - 1) {
            r.status = status;
        }
    }

    pub(crate) fn bill(&mut self, kind: JobKind, id: &str, seq: u64, at_ms: u64) {
        let attempt = match self.ledger.requests.get_mut(seq as usize - 1) {
            Some(r) => {
                r.job_id = Some(match r.job_id.take() {
                    Some(prev) => format!("{prev},{id}"),
                    None => id.to_owned(),
                });
                r.attempt
            }
            None => 0,
        };
        self.ledger.jobs.push(BilledJob {
            kind,
            id: id.to_owned(),
            request_seq: seq,
            attempt,
            at_ms,
        });
        match kind {
            JobKind::OpenaiResponse => self.ledger.openai_responses += 1,
            JobKind::SunoTask => self.ledger.suno_tasks += 1,
            JobKind::CreatomateRender => self.ledger.creatomate_renders += 1,
        }
    }

    pub(crate) fn snapshot(&self) -> Ledger {
        self.ledger.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_bills() {
        let mut book = LedgerBook::default();
        let s1 = book.start_request(RouteId::SunoGenerate, "/api/v1/generate", 1, None, 0);
        book.bill(JobKind::SunoTask, "t1", s1, 1);
        book.finish_request(s1, Some(200));
        let s2 = book.start_request(
            RouteId::SunoGenerate,
            "/api/v1/generate",
            2,
            Some("outage".into()),
            2,
        );
        book.finish_request(s2, Some(503));
        let l = book.snapshot();
        assert_eq!(l.suno_tasks, 1);
        assert_eq!(l.count(RouteId::SunoGenerate), 2);
        assert_eq!(l.requests_per_route["POST /api/v1/generate"], 2);
        assert_eq!(l.requests[0].job_id.as_deref(), Some("t1"));
        assert_eq!(l.jobs[0].attempt, 1);
        assert_eq!(
            l.faults_for(RouteId::SunoGenerate),
            vec![None, Some("outage".into())]
        );
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["requests"][0]["route"], "suno.generate");
        assert_eq!(json["jobs"][0]["kind"], "suno_task");
    }
}
