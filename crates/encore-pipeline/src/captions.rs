//! Captions for the video, timed from Suno's aligned words, with section tags stripped.

use serde::{Deserialize, Serialize};

/// One caption line and when it is sung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    /// The words of the line.
    pub text: String,
    /// When the first word starts, in seconds.
    pub start: f64,
    /// When the last word ends, in seconds.
    pub end: f64,
}

/// A word as aligned by Suno: possibly carrying a section tag and a newline (`"[Verse]\nHello"`).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord<'a> {
    /// The token as Suno returned it.
    pub word: &'a str,
    /// Start, in seconds.
    pub start: f64,
    /// End, in seconds.
    pub end: f64,
}

/// Groups aligned words into caption lines: a newline in a token starts a new line, section tags
/// (`[Verse]`, `[Chorus]`, …) are dropped, and lines longer than `max_words` are split.
pub fn captions<'a>(
    words: impl IntoIterator<Item = TimedWord<'a>>,
    max_words: usize,
) -> Vec<Caption> {
    let max_words = max_words.max(1);
    let mut out = Vec::new();
    let mut line: Vec<&str> = Vec::new();
    let mut owned: Vec<String> = Vec::new();
    let (mut start, mut end) = (0.0_f64, 0.0_f64);
    let flush = |owned: &mut Vec<String>, start: f64, end: f64, out: &mut Vec<Caption>| {
        if !owned.is_empty() {
            out.push(Caption {
                text: owned.join(" "),
                start,
                end,
            });
            owned.clear();
        }
    };
    for w in words {
        line.clear();
        let token = w.word;
        let breaks = token.contains('\n');
        let cleaned = strip_tags(token);
        if breaks {
            flush(&mut owned, start, end, &mut out);
        }
        for piece in cleaned.split_whitespace() {
            if owned.is_empty() {
                start = w.start;
            }
            owned.push(piece.to_owned());
            end = w.end;
            if owned.len() >= max_words {
                flush(&mut owned, start, end, &mut out);
            }
        }
    }
    flush(&mut owned, start, end, &mut out);
    out
}

/// Removes `[...]` section tags from `text`.
pub fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0_u32;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The lyrics as plain caption text: tags removed, one line per sung line, blank lines dropped.
pub fn plain_lyrics(lyrics: &str) -> String {
    lyrics
        .lines()
        .map(|l| strip_tags(l).trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rounds seconds to whole milliseconds. Values too large to have a millisecond part (above
/// ~1.8e305 s, where `secs * 1000` overflows) are returned as they are, not as infinity.
pub fn round_ms(secs: f64) -> f64 {
    let ms = (secs * 1000.0).round();
    if ms.is_finite() { ms / 1000.0 } else { secs }
}

/// Captions for lyrics without timestamps: the sung lines (tags dropped) spread evenly over
/// `duration` seconds (at least 1; a duration that is not a finite number counts as 1, so the
/// times are always finite).
pub fn spread(lyrics: &str, duration: f64) -> Vec<Caption> {
    let text = plain_lyrics(lyrics);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return Vec::new();
    }
    let duration = if duration.is_finite() {
        duration.max(1.0)
    } else {
        1.0
    };
    // `duration × (i / n)` rather than `i × (duration / n)`: never above `duration`, even for
    // one near `f64::MAX`.
    let n = lines.len() as f64;
    let at = |i: usize| round_ms(duration * (i as f64 / n));
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| Caption {
            text: (*line).to_owned(),
            start: at(i),
            end: at(i + 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_captions_cover_the_song() {
        let caps = spread("[Verse]\none\ntwo\n[Chorus]\nthree\nfour", 100.0);
        assert_eq!(caps.len(), 4);
        assert_eq!(caps[0].text, "one");
        assert!((caps[3].end - 100.0).abs() < 1e-9);
        assert!(spread("[Intro]", 10.0).is_empty());
    }

    fn w(word: &str, start: f64, end: f64) -> TimedWord<'_> {
        TimedWord { word, start, end }
    }

    #[test]
    fn tags_are_stripped_and_newlines_start_lines() {
        let words = vec![
            w("[Verse]\nWaggin'", 1.36, 1.79),
            w("tails", 1.8, 2.1),
            w("\nMorning", 2.5, 2.9),
            w("bread", 3.0, 3.4),
            w("[Chorus]\nHaneul!", 5.0, 5.6),
        ];
        let caps = captions(words, 8);
        assert_eq!(
            caps,
            vec![
                Caption {
                    text: "Waggin' tails".into(),
                    start: 1.36,
                    end: 2.1
                },
                Caption {
                    text: "Morning bread".into(),
                    start: 2.5,
                    end: 3.4
                },
                Caption {
                    text: "Haneul!".into(),
                    start: 5.0,
                    end: 5.6
                },
            ]
        );
    }

    #[test]
    fn long_lines_are_split() {
        let words: Vec<_> = (0..5)
            .map(|i| w("la", f64::from(i), f64::from(i) + 0.5))
            .collect();
        let caps = captions(words, 2);
        assert_eq!(caps.len(), 3);
        assert_eq!(caps[2].text, "la");
        assert!((caps[1].start - 2.0).abs() < 1e-9);
    }

    #[test]
    fn plain_lyrics_drop_tags_and_blank_lines() {
        assert_eq!(
            plain_lyrics("[Verse]\nHello\n\n[Chorus]\nWorld [x2]"),
            "Hello\nWorld"
        );
        assert_eq!(strip_tags("a [b] c"), "a  c");
    }
}
