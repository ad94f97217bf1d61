//! The status page over loopback: its sign-in with the API token, and what it shows about a job
//! that needs a person (the browser itself is driven by the CLI's process tests).

use std::time::Duration;

use serde_json::Value;

use super::server::{Options, TOKEN, job_body, service};

fn form_encode(value: &str) -> String {
    value.replace('/', "%2F").replace(':', "%3A")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_takes_the_api_token_once_and_keeps_a_cookie_that_is_not_the_token() {
    let service = service(Options {
        token: true,
        ..Options::default()
    })
    .await;
    let client = no_redirects();
    let get = |path: &str, header: Option<(&str, String)>| {
        let mut request = client.get(format!("{}{path}", service.base));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send()
    };

    // Not signed in: the sign-in form, which never holds the token.
    let anonymous = get("/", None).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let csp = anonymous.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'nonce-"),
        "{csp}"
    );
    let body = anonymous.text().await.unwrap();
    assert!(
        body.contains("action=\"/signin\"") && !body.contains(TOKEN),
        "{body}"
    );
    let wrong = get("/?token=not-the-token", None).await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    // ?token= signs in: a cookie, and the same page without the token.
    let signed = get(&format!("/jobs/x?token={TOKEN}"), None).await.unwrap();
    assert_eq!(signed.status().as_u16(), 303);
    assert_eq!(signed.headers()["location"], "/jobs/x");
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["encore_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    let page = get("/", Some(("cookie", session.clone()))).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("id=\"services\""));
    let bearer = get("/", Some(("authorization", format!("Bearer {TOKEN}"))))
        .await
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 200);
    let forged = get("/", Some(("cookie", "encore_session=00".to_owned())))
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    // The page's event stream takes the cookie; the API and the metrics do not (a cookie is
    // sent by any page that links here: the API stays bearer-only).
    let created: Value = service
        .request(reqwest::Method::POST, "/v1/jobs")
        .bearer_auth(TOKEN)
        .json(&job_body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let events = get(
        &format!("/jobs/{id}/events?after=0"),
        Some(("cookie", session.clone())),
    )
    .await
    .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(events);
    for path in ["/v1/jobs", "/metrics"] {
        let refused = get(path, Some(("cookie", session.clone()))).await.unwrap();
        assert_eq!(refused.status().as_u16(), 401, "{path}");
    }
    let metrics = get(
        "/metrics",
        Some(("authorization", format!("Bearer {TOKEN}"))),
    )
    .await
    .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);

    // The form: back to a local path only.
    for (next, location) in [
        ("/jobs/y", "/jobs/y"),
        ("//evil.test/", "/"),
        ("https://evil.test/", "/"),
    ] {
        let response = client
            .post(format!("{}/signin", service.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={TOKEN}&next={}", form_encode(next)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "{next}");
        assert_eq!(response.headers()["location"], location, "{next}");
    }
    let refused = client
        .post(format!("{}/signin", service.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=nope&next=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_needs_attention_is_listed_with_what_resolves_it() {
    let service = service(Options {
        scenario: "[routes.\"suno.generate\"]\nsequence = [\"reset_after_processing\"]\n",
        sim_callbacks: false,
        reconcile_window: Duration::from_millis(800),
        ..Options::default()
    })
    .await;
    let (_, created) = service.submit(&job_body(), None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let job = service
        .wait_for(&id, &["needs_attention", "succeeded", "failed"])
        .await;
    assert_eq!(job["status"], "needs_attention", "{job:#}");

    let index = service
        .request(reqwest::Method::GET, "/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let attention = index
        .split("<table id=\"attention\">")
        .nth(1)
        .unwrap_or_else(|| panic!("an attention table:\n{index}"))
        .split("</table>")
        .next()
        .unwrap();
    assert!(
        attention.contains(&format!("href=\"/jobs/{id}\"")),
        "{attention}"
    );
    assert!(attention.contains("song.submit"), "{attention}");
    assert!(
        attention.contains(&format!("encore jobs resolve {id} --adopt TASK_ID")),
        "the action that resolves it: {attention}"
    );

    let page = service
        .request(reqwest::Method::GET, &format!("/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"attention\""), "{page}");
    assert!(
        page.contains(
            "<tr data-step=\"song.submit\"><td>song.submit</td><td><span class=\"state unknown\">"
        ),
        "{page}"
    );

    let metrics = service
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "encore_unknown_billed_steps{step=\"song.submit\"} 1",
        "encore_jobs{state=\"needs_attention\"} 1",
        "encore_client_attempts_total{service=\"suno\",endpoint=\"suno.generate\",outcome=\"ambiguous\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    service.stop().await;
}
