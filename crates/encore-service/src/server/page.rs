//! The status page: `GET /` (the jobs, each service's circuit breaker, the jobs that need a
//! person and what resolves them) and `GET /jobs/{id}` (one job's steps and its timeline of
//! attempts, waits and callbacks), rendered on the server with `maud`, which escapes every
//! value it is given (a job's business text is untrusted input). A small inline script,
//! allowed by a per-response CSP nonce, follows the open jobs' event streams
//! (`/jobs/{id}/events`, the `/v1` stream behind the page's sign-in) and reloads the page when
//! something happens. No front-end build step.
//!
//! Sign-in: with `serve.api_token` set, the page takes the same token as `/v1`: as a bearer
//! header, or once through `?token=` (or the sign-in form), which sets an `HttpOnly`,
//! `SameSite=Strict` cookie holding an HMAC of the token (never the token) and redirects to the
//! same page without it. The token never appears in the HTML.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use encore_clients::{CircuitState, Service};
use encore_pipeline::job::{Millis, now_millis};
use encore_pipeline::{JobStatus, StepName, StepState};
use encore_store::{JobDetail, JobEvent, JobQuery};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::Shared;
use super::doc::rfc3339;

/// The cookie that carries a signed-in browser's session.
const COOKIE: &str = "encore_session";
/// How long a sign-in lasts.
const SESSION_SECONDS: u32 = 12 * 3600;
/// Jobs listed on the front page.
const LIST_LIMIT: u32 = 50;
/// Open jobs whose event streams the front page follows.
const FOLLOW_LIMIT: usize = 10;
/// Events shown on a job's page.
const EVENT_LIMIT: u32 = 500;

const STYLE: &str = r"
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:#1d2430}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{font-weight:600;color:#555}code{font-size:12px}.muted{color:#6b7280}
.state{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:12px;background:#e5e7eb}
.succeeded,.done,.closed{background:#d1fae5}.running,.in_flight,.half-open{background:#dbeafe}
.failed,.open{background:#fee2e2}.needs_attention,.unknown{background:#fef3c7}.cancelled{background:#f3f4f6}
.attention{border:1px solid #f59e0b;background:#fffbeb;padding:.6rem .8rem;border-radius:.4rem;margin:.5rem 0}
.counts span{margin-right:1rem}nav a{margin-right:1rem}
";

/// Follows the open jobs' event streams; reloads (at most every 2 s) when one says something.
const SCRIPT: &str = r"
(function(){
  var rows=document.querySelectorAll('[data-follow]');var due=null;var store=window.sessionStorage;
  var key='encore.live.'+location.pathname;var times=Number(store.getItem(key)||'0');
  function reload(){if(due===null){due=setTimeout(function(){store.setItem(key,String(times+1));location.reload();},2000);}}
  rows.forEach(function(row){
    var id=row.getAttribute('data-follow');var after=row.getAttribute('data-after')||'0';
    var es=new EventSource('/jobs/'+encodeURIComponent(id)+'/events?after='+encodeURIComponent(after));
    es.onmessage=reload;
    ['step','status','step_changed','retrying','call_finished','breaker_changed','callback','status_changed'].forEach(function(k){es.addEventListener(k,reload);});
    es.addEventListener('end',function(){es.close();reload();});
  });
  var live=document.getElementById('live');
  if(live){
    live.textContent=(rows.length?'live: following '+rows.length+' open job(s)':'live: nothing open to follow')
      +(times?' (updated live ×'+times+')':'');
  }
})();
";

/// `?token=` on a page.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignIn {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// The session cookie's value for `token`: an HMAC of it, so that the cookie is not the token.
fn session_for(token: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"encore status page session v1");
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request is signed in: no token configured, the bearer token, or the cookie.
fn signed_in(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = &shared.config.api_token else {
        return true;
    };
    let token = token.expose();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| super::constant_time_eq(b.as_bytes(), token.as_bytes())) {
        return true;
    }
    cookie_value(headers, COOKIE)
        .is_some_and(|c| super::constant_time_eq(c.as_bytes(), session_for(token).as_bytes()))
}

fn session_cookie(shared: &Shared, token: &str) -> String {
    let secure = shared
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECONDS}{}",
        session_for(token),
        if secure { "; Secure" } else { "" }
    )
}

/// Only a local path is a place to go back to after signing in.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/",
    }
}

/// Guards the page's routes; `?token=` signs in and comes back without it.
pub(crate) async fn guard(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TokenQuery>,
    request: Request,
    next: Next,
) -> Response {
    if let (Some(given), Some(token)) = (&query.token, &shared.config.api_token) {
        let path = request.uri().path().to_owned();
        return if super::constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            let mut response = Redirect::to(local_path(Some(&path))).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&session_cookie(&shared, token.expose())) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        } else {
            sign_in_page(&path, Some("wrong token"))
        };
    }
    if signed_in(&shared, request.headers()) {
        next.run(request).await
    } else {
        sign_in_page(request.uri().path(), None)
    }
}

/// `POST /signin`: the form's token; back to where the person was.
pub(crate) async fn sign_in(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<SignIn>,
) -> Response {
    let next = local_path(form.next.as_deref()).to_owned();
    match &shared.config.api_token {
        Some(token)
            if super::constant_time_eq(form.token.as_bytes(), token.expose().as_bytes()) =>
        {
            let mut response = Redirect::to(&next).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&session_cookie(&shared, token.expose())) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Some(_) => sign_in_page(&next, Some("wrong token")),
        None => Redirect::to(&next).into_response(),
    }
}

/// A page with its security headers: a fresh nonce for its style and script, nothing else
/// allowed but same-origin event streams.
fn page(status: StatusCode, title: &str, body: impl FnOnce(&str) -> Markup) -> Response {
    let nonce: [u8; 16] = rand::random();
    let nonce = nonce.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · encore" }
                style nonce=(nonce) { (PreEscaped(STYLE)) }
            }
            body { (body(&nonce)) }
        }
    };
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    );
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn sign_in_page(path: &str, problem: Option<&str>) -> Response {
    let next = local_path(Some(path)).to_owned();
    page(StatusCode::UNAUTHORIZED, "sign in", |_| {
        html! {
            h1 { "encore — sign in" }
            p.muted { "This page takes the API token of " code { "/v1" } " (" code { "serve.api_token" } ")." }
            @if let Some(problem) = problem { p.attention { (problem) } }
            form method="post" action="/signin" {
                input type="hidden" name="next" value=(next);
                input type="password" name="token" autocomplete="current-password" placeholder="API token" required;
                " "
                button type="submit" { "Sign in" }
            }
        }
    })
}

/// "12s", "4m", "3h", "2d".
fn age(since: Millis, now: Millis) -> String {
    let s = (now - since).max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn millis_text(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn text_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The step a job is at: one in flight or unknown, else (while it runs) the first not done,
/// else the last done.
fn current_step(detail: &JobDetail) -> Option<(StepName, StepState)> {
    let state = |name| {
        detail
            .steps
            .iter()
            .find(|s| s.name == name)
            .map_or(StepState::Pending, |s| s.state)
    };
    let all = StepName::ALL.map(|n| (n, state(n)));
    all.iter()
        .find(|(_, s)| matches!(s, StepState::InFlight | StepState::Unknown))
        .or_else(|| {
            (detail.job.status == JobStatus::Running)
                .then(|| all.iter().find(|(_, s)| *s != StepState::Done))
                .flatten()
        })
        .or_else(|| all.iter().rev().find(|(_, s)| *s != StepState::Pending))
        .copied()
}

fn breaker_text(state: Option<CircuitState>) -> &'static str {
    state.map_or("off", CircuitState::as_str)
}

fn header_nav() -> Markup {
    html! {
        nav { a href="/" { "jobs" } a href="/metrics" { "metrics" } a href="/openapi.json" { "API" } }
    }
}

/// `GET /`.
pub(crate) async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let now = now_millis();
    let census = shared.store.census().await.ok();
    let listed = shared
        .store
        .list_job_details(&JobQuery {
            limit: LIST_LIMIT,
            ..JobQuery::default()
        })
        .await;
    let attention = shared
        .store
        .list_jobs(&JobQuery {
            status: Some(JobStatus::NeedsAttention),
            limit: LIST_LIMIT,
            ..JobQuery::default()
        })
        .await;
    let (jobs, attention) = match (listed, attention) {
        (Ok(jobs), Ok(attention)) => (jobs, attention.jobs),
        (Err(e), _) | (_, Err(e)) => {
            let message = e.to_string();
            return page(StatusCode::SERVICE_UNAVAILABLE, "jobs", |_| {
                html! { h1 { "encore" } p.attention { "The job store does not answer: " (message) } }
            });
        }
    };
    let mut rows = Vec::with_capacity(jobs.len());
    let mut following = 0;
    for detail in &jobs {
        let job = &detail.job;
        let follow_after = if !job.status.is_final() && following < FOLLOW_LIMIT {
            following += 1;
            Some(job.last_event)
        } else {
            None
        };
        rows.push((job, current_step(detail), follow_after));
    }
    page(StatusCode::OK, "jobs", |nonce| {
        html! {
            h1 { "encore" }
            (header_nav())
            p.muted { "jobs at " (rfc3339(now)) " · " span #live { "static" } }
            @if let Some(census) = &census {
                p.counts {
                    @for (status, count) in &census.jobs {
                        span { span class={"state " (status.as_str())} { (status.as_str()) } " " (count) }
                    }
                }
            }
            h2 { "Services" }
            table #services {
                tr { th { "service" } th { "circuit breaker" } }
                @for service in [Service::OpenAi, Service::Suno, Service::Creatomate] {
                    @let state = breaker_text(shared.http.circuit_state(service));
                    tr { td { (service.as_str()) } td { span class={"state " (state)} { (state) } } }
                }
            }
            h2 { "Needs attention" }
            @if attention.is_empty() {
                p.muted #attention { "Nothing needs a person." }
            } @else {
                table #attention {
                    tr { th { "job" } th { "step" } th { "what is unknown" } th { "what resolves it" } }
                    @for job in &attention {
                        tr {
                            td { a href={"/jobs/" (job.id)} { code { (job.id) } } }
                            td { (job.attention.as_ref().and_then(|a| a.step).map_or("", StepName::as_str)) }
                            td { (job.attention.as_ref().map_or("", |a| a.reason.as_str())) }
                            td { (job.attention.as_ref().map_or("", |a| a.resolution.as_str())) }
                        }
                    }
                }
            }
            h2 { "Jobs" }
            @if rows.is_empty() {
                p.muted { "No jobs yet: " code { "POST /v1/jobs" } "." }
            } @else {
                table #jobs {
                    tr { th { "job" } th { "name" } th { "state" } th { "age" } th { "current step" } }
                    @for (job, current, follow) in &rows {
                        tr data-job=(job.id) data-follow=[follow.map(|_| job.id)] data-after=[*follow] {
                            td { a href={"/jobs/" (job.id)} { code { (job.id) } } }
                            td { (text_of(&job.input, "name")) }
                            td { span class={"state " (job.status.as_str())} { (job.status.as_str()) } }
                            td { (age(job.created_at, now)) }
                            td {
                                @if let Some((step, state)) = current {
                                    (step.as_str()) " " span class={"state " (state.as_str())} { (state.as_str()) }
                                } @else { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
            script nonce=(nonce) { (PreEscaped(SCRIPT)) }
        }
    })
}

/// One line about an event: what happened, with the attempts and waits it names.
fn summary(event: &JobEvent) -> String {
    let d = &event.data;
    if let Some(notice) = d.get("notice").filter(|_| event.kind == "retrying") {
        return format!(
            "{} attempt {}/{} failed: {} — waiting {}{}",
            text_of(notice, "endpoint"),
            notice["attempt"],
            notice["max_attempts"],
            text_of(notice, "cause"),
            millis_text(notice["delay_ms"].as_i64().unwrap_or(0)),
            if notice["server_requested"] == true {
                " (asked by the server)"
            } else {
                ""
            }
        );
    }
    if let Some(record) = d.get("record").filter(|_| event.kind == "call_finished") {
        let attempts = record["attempts"].as_u64().unwrap_or(0);
        return format!(
            "{} {} after {} attempt{} in {}{}",
            text_of(record, "endpoint"),
            text_of(record, "outcome"),
            attempts,
            if attempts == 1 { "" } else { "s" },
            millis_text(record["elapsed_ms"].as_i64().unwrap_or(0)),
            record
                .get("error")
                .and_then(Value::as_str)
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(notice) = d.get("notice").filter(|_| event.kind == "breaker_changed") {
        return format!(
            "{} circuit {} → {}",
            text_of(notice, "service"),
            text_of(notice, "from"),
            text_of(notice, "to")
        );
    }
    match event.kind.as_str() {
        "note" => return format!("{}: {}", text_of(d, "stage"), text_of(d, "message")),
        "stage_started" => return format!("{} stage started", text_of(d, "stage")),
        "stage_finished" => {
            return format!(
                "{} stage finished in {}: {}",
                text_of(d, "stage"),
                millis_text(d["elapsed"].as_i64().unwrap_or(0)),
                text_of(d, "summary")
            );
        }
        "stage_failed" => {
            return format!(
                "{} stage failed: {}",
                text_of(d, "stage"),
                text_of(d, "error")
            );
        }
        "callback" => {
            return format!(
                "{} callback `{}` for {}{}",
                text_of(d, "step"),
                text_of(d, "kind"),
                text_of(d, "external_id"),
                if d["duplicate"] == true {
                    " (a repeat)"
                } else {
                    ""
                }
            );
        }
        "status_changed" => {
            return format!("{} status: {}", text_of(d, "stage"), text_of(d, "status"));
        }
        _ => {}
    }
    if d.get("step").is_some() && d.get("state").is_some() {
        let mut line = format!("{} → {}", text_of(d, "step"), text_of(d, "state"));
        if let Some(attempt) = d.get("attempt").and_then(Value::as_u64) {
            let _ = write!(line, " (run {attempt})");
        }
        if let Some(id) = d.get("external_id").and_then(Value::as_str) {
            let _ = write!(line, " id {id}");
        }
        if let Some(error) = d.get("error").and_then(Value::as_str) {
            let _ = write!(line, ": {error}");
        }
        return line;
    }
    if let Some(status) = d.get("status").and_then(Value::as_str) {
        let reason = text_of(d, "reason");
        return if reason.is_empty() {
            format!("job → {status}")
        } else {
            format!("job → {status} ({reason})")
        };
    }
    let mut text = d.to_string();
    if text.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `GET /jobs/{id}`.
pub(crate) async fn job(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let not_found = |id: &str| {
        let id = id.to_owned();
        page(StatusCode::NOT_FOUND, "no such job", move |_| {
            html! { h1 { "encore" } (header_nav()) p.attention { "No job " code { (id) } "." } }
        })
    };
    let Ok(job_id) = id.parse::<encore_store::JobId>() else {
        return not_found(&id);
    };
    let Ok(detail) = shared.store.get_job(job_id).await else {
        return not_found(&id);
    };
    let events = shared
        .store
        .events_after(job_id, 0, EVENT_LIMIT)
        .await
        .unwrap_or_default();
    let job = &detail.job;
    let now = now_millis();
    let last = events.last().map_or(0, |e| e.seq);
    let follow = !job.status.is_final();
    let video = job
        .result
        .as_ref()
        .and_then(|r| r.get("video_url"))
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned);
    let name = text_of(&job.input, "name").to_owned();
    page(StatusCode::OK, &format!("job {name}"), |nonce| {
        html! {
            h1 { "Job " (name) }
            (header_nav())
            p.muted { "job " code { (job.id) } " · " span #live { "static" } }
            table #job data-follow=[follow.then_some(job.id)] data-after=(last) {
                tr { th { "state" } td { span class={"state " (job.status.as_str())} { (job.status.as_str()) } } }
                tr { th { "business" } td { (text_of(&job.input, "business")) } }
                tr { th { "created" } td { (rfc3339(job.created_at)) " (" (age(job.created_at, now)) " ago)" } }
                tr { th { "updated" } td { (rfc3339(job.updated_at)) } }
                @if let Some(lease) = &job.lease { tr { th { "worker" } td { (lease.owner) } } }
                @if let Some(video) = &video { tr { th { "video" } td { a href=(video) rel="noreferrer" { (video) } } } }
            }
            @if let Some(attention) = &job.attention {
                div.attention #attention {
                    strong { "Needs attention" }
                    @if let Some(step) = attention.step { " (" (step.as_str()) ")" }
                    p { (attention.reason) }
                    p { "Resolve: " (attention.resolution) }
                }
            }
            @if let Some(error) = &job.error {
                div.attention { strong { "Failed: " } code { (error.code) } " " (error.message) " (" (error.class) ")" }
            }
            h2 { "Steps" }
            table #steps {
                tr { th { "step" } th { "state" } th { "runs" } th { "provider id" } th { "started" } th { "took" } th { "error" } }
                @for name in StepName::ALL {
                    @let step = detail.steps.iter().find(|s| s.name == name);
                    @let state = step.map_or(StepState::Pending, |s| s.state);
                    tr data-step=(name.as_str()) {
                        td { (name.as_str()) }
                        td { span class={"state " (state.as_str())} { (state.as_str()) } }
                        td { (step.map_or(0, |s| s.attempts)) }
                        td { code { (step.and_then(|s| s.external_id.as_deref()).unwrap_or("")) } }
                        td { (step.and_then(|s| s.started_at).map(|t| age(job.created_at, t)).map(|a| format!("+{a}")).unwrap_or_default()) }
                        td { (step.and_then(|s| Some(millis_text(s.finished_at? - s.started_at?))).unwrap_or_default()) }
                        td { (step.and_then(|s| s.error.as_deref()).unwrap_or("")) }
                    }
                }
            }
            h2 { "Timeline" }
            p.muted { "Attempts, waits between them, step changes and callbacks, as the job's runner stored them." }
            table #timeline {
                tr { th { "at" } th { "event" } th { "what" } }
                // The pipeline's `step_changed` repeats the store's own `step` events.
                @for event in events.iter().filter(|e| e.kind != "step_changed") {
                    tr data-kind=(event.kind) {
                        td { "+" (millis_text(event.at - job.created_at)) }
                        td { code { (event.kind) } }
                        td { (summary(event)) }
                    }
                }
            }
            script nonce=(nonce) { (PreEscaped(SCRIPT)) }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_paths_and_ages() {
        let a = session_for("token-a");
        assert_eq!(a.len(), 64);
        assert_ne!(a, session_for("token-b"));
        assert!(!a.contains("token-a"));
        assert_eq!(local_path(Some("/jobs/x")), "/jobs/x");
        for bad in ["//evil.test", "https://evil.test", "/\\evil", ""] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(age(0, 59_999), "59s");
        assert_eq!(age(0, 61_000), "1m");
        assert_eq!(age(0, 7_200_000), "2h");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; encore_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers, COOKIE), Some("abc"));
    }

    #[test]
    fn hostile_text_is_escaped() {
        let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
        let response = page(StatusCode::OK, hostile, |_| html! { p { (hostile) } });
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'nonce-"), "{csp}");
        let body = futures_util::FutureExt::now_or_never(axum::body::to_bytes(
            response.into_body(),
            usize::MAX,
        ))
        .unwrap()
        .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(!body.contains("<script>alert"), "{body}");
        assert!(!body.contains("<img"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{body}"
        );
    }

    #[test]
    fn events_read_as_attempts_and_waits() {
        let event = |kind: &str, data: Value| JobEvent {
            job_id: encore_store::JobId::generate(),
            seq: 1,
            at: 0,
            kind: kind.to_owned(),
            data,
        };
        let retry = event(
            "retrying",
            serde_json::json!({"event":"retrying","stage":"song","notice":{"endpoint":"suno.status",
                "attempt":1,"max_attempts":3,"delay_ms":1000,"server_requested":false,"cause":"http 503"}}),
        );
        assert_eq!(
            summary(&retry),
            "suno.status attempt 1/3 failed: http 503 — waiting 1.0s"
        );
        let call = event(
            "call_finished",
            serde_json::json!({"event":"call_finished","record":{"service":"suno","endpoint":"suno.status",
                "attempts":2,"outcome":"ok","elapsed":"1.2s","elapsed_ms":1204,"error":null}}),
        );
        assert_eq!(summary(&call), "suno.status ok after 2 attempts in 1.2s");
        let step = event(
            "step",
            serde_json::json!({"step":"song.submit","state":"done","external_id":"t-1"}),
        );
        assert_eq!(summary(&step), "song.submit → done id t-1");
    }
}
