//! A Creatomate render and its virtual timeline.

use tokio::time::Instant;

use super::types::Render;
use crate::ledger::SubtitleLine;

/// One render and its timeline.
#[derive(Clone, Debug)]
pub(crate) struct RenderJob {
    pub(crate) base: Render,
    pub(crate) created: Instant,
    pub(crate) planned_s: f64,
    pub(crate) waiting_s: f64,
    pub(crate) done_s: f64,
    pub(crate) failure: Option<String>,
    /// `modifications` keys that matched nothing (ignored, as Creatomate v1 does).
    pub(crate) ignored_modifications: Vec<String>,
    /// The subtitle lines the render shows (from `transcript_source` keyframes).
    pub(crate) subtitles: Vec<SubtitleLine>,
    pub(crate) final_fields: FinalFields,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FinalFields {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) frame_rate: Option<f64>,
    pub(crate) duration: Option<f64>,
    pub(crate) file_size: u64,
}

impl RenderJob {
    pub(crate) fn at(&self, virtual_s: f64) -> Render {
        let mut r = self.base.clone();
        let status = if virtual_s >= self.done_s {
            if self.failure.is_some() {
                "failed"
            } else {
                "succeeded"
            }
        } else if virtual_s >= self.waiting_s {
            "rendering"
        } else if virtual_s >= self.planned_s {
            "waiting"
        } else {
            "planned"
        };
        status.clone_into(&mut r.status);
        match r.status.as_str() {
            "succeeded" => {
                let f = self.final_fields;
                r.width = Some(f.width);
                r.height = Some(f.height);
                r.frame_rate = f.frame_rate;
                r.duration = f.duration;
                r.file_size = Some(f.file_size);
            }
            "failed" => r.error_message.clone_from(&self.failure),
            _ => {}
        }
        r
    }

    pub(crate) fn final_render(&self) -> Render {
        self.at(f64::INFINITY)
    }
}
