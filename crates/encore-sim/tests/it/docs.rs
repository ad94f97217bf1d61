//! Every documented example in the API reference round-trips through the simulator's types.

use encore_sim::creatomate::types::{ErrorBody, Render, RenderRequest, Template, TemplateSummary};
use encore_sim::openai::types::{
    CreateResponseRequest, ErrorResponse, Input, ResponseObject, TextFormat, Usage,
};
use encore_sim::suno::types::{
    Callback, CreateTime, Envelope, GenerateRequest, RecordInfo, TaskCreated, TimestampedLyrics,
    TimestampedLyricsRequest,
};
use serde_json::Value;

use crate::support::round_trip;

#[test]
fn suno_generate_request() {
    let r: GenerateRequest = round_trip(
        r#"{
  "customMode": true,
  "instrumental": false,
  "model": "V4_5",
  "callBackUrl": "https://example.test/suno-callback",
  "prompt": "[Verse]\nNight city lights shining bright\n[Chorus]\n...",
  "style": "synthwave, female vocals, 100 bpm",
  "title": "Night City",
  "negativeTags": "Heavy Metal, Upbeat Drums",
  "vocalGender": "f",
  "styleWeight": 0.65,
  "weirdnessConstraint": 0.65,
  "audioWeight": 0.65
}"#,
    );
    assert_eq!(r.model.as_deref(), Some("V4_5"));
    assert_eq!(
        r.call_back_url.as_deref(),
        Some("https://example.test/suno-callback")
    );
}

#[test]
fn suno_envelopes() {
    let ok: Envelope<TaskCreated> =
        round_trip(r#"{ "code": 200, "msg": "success", "data": { "taskId": "5c79****be8e" } }"#);
    assert_eq!(ok.data.unwrap().task_id, "5c79****be8e");
    let err: Envelope<Value> = round_trip(r#"{ "code": 429, "msg": "<free text>", "data": null }"#);
    assert_eq!(err.code, 429);
    assert!(err.data.is_none());
    let credit: Envelope<u64> = round_trip(r#"{ "code":200, "msg":"success", "data": 100 }"#);
    assert_eq!(credit.data, Some(100));
}

#[test]
fn suno_record_info() {
    let env: Envelope<RecordInfo> = round_trip(
        r#"{
  "code": 200,
  "msg": "success",
  "data": {
    "taskId": "5c79****be8e",
    "parentMusicId": "",
    "param": "{\"prompt\":\"A calm piano track\",\"style\":\"Classical\",\"title\":\"Peaceful Piano\",\"customMode\":true,\"instrumental\":true,\"model\":\"V4_5ALL\"}",
    "response": {
      "taskId": "5c79****be8e",
      "sunoData": [
        {
          "id": "8551****662c",
          "audioUrl": "https://example.cn/****.mp3",
          "streamAudioUrl": "https://example.cn/****",
          "imageUrl": "https://example.cn/****.jpeg",
          "prompt": "[Verse] ...",
          "modelName": "chirp-v3-5",
          "title": "Peaceful Piano",
          "tags": "electrifying, rock",
          "createTime": "2025-01-01 00:00:00",
          "duration": 198.44
        }
      ]
    },
    "status": "SUCCESS",
    "type": "GENERATE",
    "errorCode": null,
    "errorMessage": null
  }
}"#,
    );
    let data = env.data.unwrap();
    assert_eq!(data.status, "SUCCESS");
    let track = &data.response.unwrap().suno_data[0];
    assert_eq!(track.duration, Some(198.44));
    assert_eq!(
        track.create_time,
        Some(CreateTime::Text("2025-01-01 00:00:00".into()))
    );
    let param: Value = serde_json::from_str(&data.param).unwrap();
    assert_eq!(param["model"], "V4_5ALL");
    // createTime as a number (third-party clients) is accepted too
    let t: encore_sim::suno::types::Track =
        serde_json::from_str(r#"{"id":"a","createTime":1735689600000}"#).unwrap();
    assert_eq!(t.create_time, Some(CreateTime::Millis(1_735_689_600_000)));
}

#[test]
fn suno_timestamped_lyrics() {
    let req: TimestampedLyricsRequest = round_trip(
        r#"{ "taskId": "5c79****be8e", "audioId": "e231****-****-****-****-****8cadc7dc" }"#,
    );
    assert_eq!(req.task_id, "5c79****be8e");
    let env: Envelope<TimestampedLyrics> = round_trip(
        r#"{
  "code": 200,
  "msg": "success",
  "data": {
    "alignedWords": [
      { "word": "[Verse]\nWaggin'", "success": true, "startS": 1.36, "endS": 1.79, "palign": 0 }
    ],
    "waveformData": [0, 1, 0.5, 0.75],
    "hootCer": 0.3803191489361702,
    "isStreamed": false
  }
}"#,
    );
    assert_eq!(env.data.unwrap().aligned_words[0].word, "[Verse]\nWaggin'");
}

#[test]
fn suno_callbacks() {
    let cb: Callback = round_trip(
        r#"{
  "code": 200,
  "msg": "All generated successfully.",
  "data": {
    "callbackType": "complete",
    "task_id": "2fac****9f72",
    "data": [
      {
        "id": "8551****662c",
        "audio_url": "https://example.cn/****.mp3",
        "source_audio_url": "https://example.cn/****.mp3",
        "stream_audio_url": "https://example.cn/****",
        "source_stream_audio_url": "https://example.cn/****",
        "image_url": "https://example.cn/****.jpeg",
        "source_image_url": "https://example.cn/****.jpeg",
        "prompt": "[Verse] Night city lights shining bright",
        "model_name": "chirp-v3-5",
        "title": "Iron Man",
        "tags": "electrifying, rock",
        "createTime": "2025-01-01 00:00:00",
        "duration": 198.44
      },
      { "id": "bd15****1873", "...": "second track", "duration": 228.28 }
    ]
  }
}"#,
    );
    assert_eq!(cb.data.task_id.as_deref(), Some("2fac****9f72"));
    assert_eq!(cb.data.data.unwrap().len(), 2);
    let text: Callback = round_trip(
        r#"{"code":200,"msg":"Text generation completed successfully.","data":{"callbackType":"text","task_id":"abc","data":[]}}"#,
    );
    assert_eq!(text.data.callback_type, "text");
    let failed: Callback = round_trip(
        r#"{ "code": 501, "msg": "Audio generation failed", "data": { "callbackType": "error", "task_id": "2fac****9f72", "data": null } }"#,
    );
    assert!(failed.data.data.is_none());
    // lyrics callbacks use camelCase taskId
    let lyrics: Callback = round_trip(
        r#"{"code":200,"msg":"ok","data":{"callbackType":"complete","taskId":"x","data":[]}}"#,
    );
    assert_eq!(lyrics.data.task_id_camel.as_deref(), Some("x"));
}

#[test]
fn creatomate_create_and_status() {
    let created: Vec<Render> = round_trip(
        r#"[
  {
    "id": "69ba407b-72a9-4050-a9fb-559827b9623d",
    "status": "planned",
    "url": "https://cdn.creatomate.com/renders/69ba407b-72a9-4050-a9fb-559827b9623d.mp4",
    "template_id": "9e90d011-52e6-49dc-8a7a-5f25058c2568",
    "template_name": "Your Template Name",
    "template_tags": [],
    "output_format": "mp4",
    "render_scale": 1,
    "modifications": { "Title": "Hello" },
    "webhook_url": "https://example.test/hook",
    "metadata": "order-1234"
  }
]"#,
    );
    assert_eq!(created[0].status, "planned");
    let done: Render = round_trip(
        r#"{
  "id": "69ba407b-72a9-4050-a9fb-559827b9623d",
  "status": "succeeded",
  "url": "https://cdn.creatomate.com/renders/69ba407b-72a9-4050-a9fb-559827b9623d.mp4",
  "snapshot_url": "https://cdn.creatomate.com/snapshots/69ba407b-72a9-4050-a9fb-559827b9623d.jpg",
  "template_id": "9e90d011-52e6-49dc-8a7a-5f25058c2568",
  "template_name": "Your Template Name",
  "template_tags": [],
  "output_format": "mp4",
  "render_scale": 1,
  "width": 720,
  "height": 900,
  "frame_rate": 60,
  "duration": 15.5,
  "file_size": 751089
}"#,
    );
    assert_eq!(done.file_size, Some(751_089));
    let failed: Render = round_trip(
        r#"{ "id": "x", "status": "failed", "error_message": "<reason>", "url": "https://cdn.creatomate.com/renders/x.mp4", "output_format": "mp4", "render_scale": 1 }"#,
    );
    assert_eq!(failed.error_message.as_deref(), Some("<reason>"));
}

#[test]
fn creatomate_requests_templates_errors() {
    let req: RenderRequest = round_trip(
        r#"{"template_id":"...","modifications":{"Text-1":"...","Video-1":"https://..."},
       "render_scale":0.75,"max_width":1080,"max_height":1080,
       "webhook_url":"https://example.com/webhook","metadata":"Any text value"}"#,
    );
    assert_eq!(req.max_width, Some(1080));
    let list: Vec<TemplateSummary> = round_trip(
        r#"[
  { "id": "c937d125-b99b-4690-96f0-6aa1f09438c9", "name": "My Template",
    "tags": ["My", "Assigned", "Tags"],
    "created_at": "2026-01-01 12:00:00.000 +0200", "updated_at": "2026-01-01 12:00:00.000 +0200" }
]"#,
    );
    assert_eq!(list[0].tags.len(), 3);
    let full: Template = round_trip(
        r#"{ "id": "c937d125-b99b-4690-96f0-6aa1f09438c9", "name": "My Template", "tags": [],
    "created_at": "2026-01-01 12:00:00.000 +0200", "updated_at": "2026-01-01 12:00:00.000 +0200",
    "source": { "output_format": "mp4", "elements": [] } }"#,
    );
    assert_eq!(full.source["output_format"], "mp4");
    let err: ErrorBody = round_trip(r#"{ "hint": "Invalid API key" }"#);
    assert_eq!(err.hint, "Invalid API key");
    let err: ErrorBody =
        round_trip(r#"{ "hint": "Bad", "documentation_url": "https://creatomate.com/docs" }"#);
    assert!(err.documentation_url.is_some());
}

#[test]
fn openai_request() {
    let req: CreateResponseRequest = round_trip(
        r#"{
  "model": "gpt-4o-2024-08-06",
  "input": [
    { "role": "system", "content": [ { "type": "input_text", "text": "You write song plans." } ] },
    { "role": "user",   "content": [ { "type": "input_text", "text": "A synthwave song about night drives." } ] }
  ],
  "text": {
    "format": {
      "type": "json_schema",
      "name": "song_plan",
      "strict": true,
      "schema": {
        "type": "object",
        "properties": {
          "title": { "type": "string" },
          "style": { "type": "string" },
          "lyrics": { "type": "string" }
        },
        "required": ["title", "style", "lyrics"],
        "additionalProperties": false
      }
    }
  },
  "max_output_tokens": 2000
}"#,
    );
    assert!(matches!(req.input, Input::Items(ref items) if items.len() == 2));
    assert!(matches!(
        req.text.unwrap().format,
        Some(TextFormat::JsonSchema {
            strict: Some(true),
            ..
        })
    ));
    let simple: CreateResponseRequest =
        round_trip(r#"{"model":"gpt-4o","input":"hello","text":{"format":{"type":"text"}}}"#);
    assert_eq!(simple.input, Input::Text("hello".into()));
}

#[test]
fn openai_response_and_usage() {
    let resp: ResponseObject = round_trip(
        r#"{
  "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
  "object": "response",
  "created_at": 1741476542,
  "status": "completed",
  "completed_at": 1741476543,
  "error": null,
  "incomplete_details": null,
  "instructions": null,
  "max_output_tokens": null,
  "model": "gpt-5.4",
  "output": [
    { "type": "message", "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
      "status": "completed", "role": "assistant",
      "content": [ { "type": "output_text", "text": "In a peaceful grove …", "annotations": [] } ] }
  ],
  "parallel_tool_calls": true,
  "previous_response_id": null,
  "reasoning": { "effort": null, "summary": null },
  "store": true,
  "temperature": 1.0,
  "text": { "format": { "type": "text" } },
  "tool_choice": "auto",
  "tools": [],
  "top_p": 1.0,
  "truncation": "disabled",
  "usage": { "input_tokens": 36, "input_tokens_details": { "cached_tokens": 0, "cache_write_tokens": 0 },
             "output_tokens": 87, "output_tokens_details": { "reasoning_tokens": 0 }, "total_tokens": 123 },
  "user": null,
  "metadata": {}
}"#,
    );
    assert_eq!(resp.output_text(), "In a peaceful grove …");
    let usage: Usage = round_trip(
        r#"{ "input_tokens": 36, "input_tokens_details": { "cached_tokens": 0, "cache_write_tokens": 0 },
  "output_tokens": 87, "output_tokens_details": { "reasoning_tokens": 0 }, "total_tokens": 123 }"#,
    );
    assert_eq!(usage.total_tokens, 123);
    let refusal: encore_sim::openai::types::OutputItem = round_trip(
        r#"{ "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
  "content": [ { "type": "refusal", "refusal": "no" } ] }"#,
    );
    assert!(matches!(
        refusal,
        encore_sim::openai::types::OutputItem::Message(_)
    ));
}

#[test]
fn openai_errors() {
    let e: ErrorResponse = round_trip(
        r#"{ "error": { "message": "…", "type": "invalid_request_error", "param": null, "code": null } }"#,
    );
    assert_eq!(e.error.kind, "invalid_request_error");
    for body in [
        r#"{ "error": { "message": "You exceeded your current quota, please check your plan and billing details. …", "type": "insufficient_quota", "param": null, "code": "insufficient_quota" } }"#,
        r#"{ "error": { "message": "Rate limit reached for gpt-4o in organization org-… on tokens per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 644ms. …", "type": "tokens", "param": null, "code": "rate_limit_exceeded" } }"#,
        r#"{ "error": { "message": "Request too large for gpt-4o in organization org-… on tokens per min (TPM): Limit 30000, Requested 31538. The input or output tokens must be reduced …", "type": "tokens", "param": null, "code": "rate_limit_exceeded" } }"#,
    ] {
        let e: ErrorResponse = round_trip(body);
        assert!(e.error.code.is_some());
    }
}
