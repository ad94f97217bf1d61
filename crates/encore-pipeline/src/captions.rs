//! Captions for the video: the sung lines, each with its words and when they are sung, timed
//! from Suno's aligned words (section tags stripped), or spread evenly when there are none.
//!
//! Suno's `get-timestamped-lyrics` answer is loose (`shared/reference/apis.md` 1.6): a token may
//! carry a section tag and newlines before or after the word (`"[Verse]\nWaggin'"`, `"day\n"`),
//! and a word may come without usable times (`startS`/`endS` null or missing, `success: false`).
//! One untimed word must not cost the whole song its timing, so [`captions`] keeps every timed
//! word's times as sent and places the others next to their neighbours (see its docs); only an
//! answer with no usable time at all leaves the caller with [`spread`].

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
    /// The line's words with their own times, in order (their texts joined by spaces are
    /// `text`). Empty in captions stored by versions that did not keep them: the line is then
    /// one timed unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<CaptionWord>,
}

/// A word of a caption line and when it is sung. Words Suno sent within one token, or an
/// untimed word attached to its timed neighbour, share one `CaptionWord` (`text` then holds
/// several words).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionWord {
    /// The word (or words sung as one).
    pub text: String,
    /// When it starts, in seconds.
    pub start: f64,
    /// When it ends, in seconds.
    pub end: f64,
}

/// A word as aligned by Suno: possibly carrying a section tag and newlines (`"[Verse]\nHello"`,
/// `"day\n"`), and possibly without times.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord<'a> {
    /// The token as Suno returned it.
    pub word: &'a str,
    /// Start, in seconds (`None`: Suno sent none, or none worth using).
    pub start: Option<f64>,
    /// End, in seconds (`None`: Suno sent none, or none worth using).
    pub end: Option<f64>,
}

impl TimedWord<'_> {
    /// The word's times when they can be used: both present and finite, `0 <= start <= end`.
    fn timing(&self) -> Option<(f64, f64)> {
        match (self.start, self.end) {
            (Some(s), Some(e)) if s.is_finite() && e.is_finite() && 0.0 <= s && s <= e => {
                Some((s, e))
            }
            _ => None,
        }
    }
}

/// One sung word on its way into a caption line.
struct Piece {
    text: String,
    line: usize,
    timing: Option<(f64, f64)>,
    /// Index of the Suno token it came from (pieces of one token are sung as one).
    token: usize,
}

/// Groups aligned words into caption lines.
///
/// - A newline in a token ends the line at that point: text before it (`"day\n"`) closes the
///   current line, text after it (`"[Verse]\nHello"`) opens the next. Section tags
///   (`[Verse]`, `[Chorus]`, …) are dropped, and lines longer than `max_words` are split.
/// - A word with usable times (see [`TimedWord`]) keeps them exactly.
/// - Words without are attached to their neighbours: a run of them between two timed words
///   shares the silence between those words evenly (a whole untimed line gets that gap); where
///   there is no such gap, each is joined to the nearest timed word of its own line (the
///   previous one first). A word with neither — alone on a line with no timed word and no gap
///   around it — is dropped.
///
/// No untimed word ever turns the answer into the even spread: the result is empty only when no
/// word has a usable time.
pub fn captions<'a>(
    words: impl IntoIterator<Item = TimedWord<'a>>,
    max_words: usize,
) -> Vec<Caption> {
    let max_words = max_words.max(1);
    let mut pieces = Vec::new();
    let (mut line, mut in_line) = (0_usize, 0_usize);
    for (token, w) in words.into_iter().enumerate() {
        let timing = w.timing();
        for (k, segment) in strip_tags(w.word).split('\n').enumerate() {
            if k > 0 && in_line > 0 {
                line += 1;
                in_line = 0;
            }
            for text in segment.split_whitespace() {
                if in_line == max_words {
                    line += 1;
                    in_line = 0;
                }
                pieces.push(Piece {
                    text: text.to_owned(),
                    line,
                    timing,
                    token,
                });
                in_line += 1;
            }
        }
    }
    place_untimed(&mut pieces);
    lines(pieces)
}

/// Gives untimed pieces a slot in the gap between their timed neighbours, or the timing of the
/// nearest timed piece of their line (marked by sharing its token, so the two are merged into
/// one caption word); pieces that get neither keep `None` and are dropped by [`lines`].
fn place_untimed(pieces: &mut [Piece]) {
    let mut i = 0;
    while i < pieces.len() {
        if pieces[i].timing.is_some() {
            i += 1;
            continue;
        }
        let run_end = (i..pieces.len())
            .find(|&j| pieces[j].timing.is_some())
            .unwrap_or(pieces.len());
        let before = i.checked_sub(1).and_then(|p| pieces[p].timing);
        let after = pieces.get(run_end).and_then(|p| p.timing);
        if let (Some((_, gap_start)), Some((gap_end, _))) = (before, after)
            && gap_end > gap_start
        {
            let n = (run_end - i) as f64;
            for (k, piece) in pieces[i..run_end].iter_mut().enumerate() {
                let at = |k: f64| gap_start + (gap_end - gap_start) * (k / n);
                piece.timing = Some((at(k as f64), at(k as f64 + 1.0)));
            }
        } else {
            for j in i..run_end {
                let line = pieces[j].line;
                let previous = (0..j).rev().find(|&p| pieces[p].timing.is_some());
                let neighbour = previous
                    .filter(|&p| pieces[p].line == line)
                    .or_else(|| Some(run_end).filter(|&n| n < pieces.len()))
                    .filter(|&n| pieces[n].line == line);
                if let Some(n) = neighbour {
                    pieces[j].timing = pieces[n].timing;
                    pieces[j].token = pieces[n].token;
                }
            }
        }
        i = run_end;
    }
}

/// The caption lines of placed pieces: pieces of one token sung together make one word.
fn lines(pieces: Vec<Piece>) -> Vec<Caption> {
    let mut out: Vec<Caption> = Vec::new();
    let mut current: Option<(usize, usize)> = None; // (line, token) of the last word
    for piece in pieces {
        let Some((start, end)) = piece.timing else {
            continue;
        };
        let same_line = current.is_some_and(|(line, _)| line == piece.line);
        let same_word = current == Some((piece.line, piece.token));
        current = Some((piece.line, piece.token));
        if !same_line {
            out.push(Caption {
                text: String::new(),
                start,
                end,
                words: Vec::new(),
            });
        }
        let caption = out.last_mut().expect("a line was opened");
        match caption.words.last_mut() {
            Some(word) if same_word => {
                word.text.push(' ');
                word.text.push_str(&piece.text);
                word.start = word.start.min(start);
                word.end = word.end.max(end);
            }
            _ => caption.words.push(CaptionWord {
                text: piece.text.clone(),
                start,
                end,
            }),
        }
        if !caption.text.is_empty() {
            caption.text.push(' ');
        }
        caption.text.push_str(&piece.text);
        caption.start = caption.start.min(start);
        caption.end = caption.end.max(end);
    }
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
/// times are always finite), and each line's words evenly over its line.
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
        .map(|(i, line)| {
            let (start, end) = (at(i), at(i + 1));
            let words: Vec<&str> = line.split_whitespace().collect();
            let count = words.len() as f64;
            let word_at = |k: usize| round_ms(start + (end - start) * (k as f64 / count));
            Caption {
                text: (*line).to_owned(),
                start,
                end,
                words: words
                    .iter()
                    .enumerate()
                    .map(|(k, w)| CaptionWord {
                        text: (*w).to_owned(),
                        start: word_at(k),
                        end: word_at(k + 1),
                    })
                    .collect(),
            }
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
        let caps = spread("a b c d", 8.0);
        let words: Vec<(f64, f64)> = caps[0].words.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(words, [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)]);
    }

    fn w(word: &str, start: f64, end: f64) -> TimedWord<'_> {
        TimedWord {
            word,
            start: Some(start),
            end: Some(end),
        }
    }

    fn untimed(word: &str) -> TimedWord<'_> {
        TimedWord {
            word,
            start: None,
            end: None,
        }
    }

    fn word(text: &str, start: f64, end: f64) -> CaptionWord {
        CaptionWord {
            text: text.into(),
            start,
            end,
        }
    }

    /// (text, start, end) of each line.
    fn spans(caps: &[Caption]) -> Vec<(&str, f64, f64)> {
        caps.iter()
            .map(|c| (c.text.as_str(), c.start, c.end))
            .collect()
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
                    end: 2.1,
                    words: vec![word("Waggin'", 1.36, 1.79), word("tails", 1.8, 2.1)],
                },
                Caption {
                    text: "Morning bread".into(),
                    start: 2.5,
                    end: 3.4,
                    words: vec![word("Morning", 2.5, 2.9), word("bread", 3.0, 3.4)],
                },
                Caption {
                    text: "Haneul!".into(),
                    start: 5.0,
                    end: 5.6,
                    words: vec![word("Haneul!", 5.0, 5.6)],
                },
            ]
        );
    }

    #[test]
    fn a_newline_after_a_word_ends_its_line() {
        // The line's last word carries the newline: it stays on its line.
        let words = vec![
            w("[Verse]\nall", 1.0, 1.5),
            w("day\n", 1.6, 2.0),
            w("Happy", 3.0, 3.5),
            w("play", 3.6, 4.0),
        ];
        assert_eq!(
            spans(&captions(words, 8)),
            [("all day", 1.0, 2.0), ("Happy play", 3.0, 4.0)]
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
    fn an_untimed_word_between_timed_ones_gets_the_silence_between_them() {
        let words = vec![
            w("one", 1.0, 1.5),
            untimed("two"),
            untimed("three"),
            w("four\n", 2.5, 3.0),
        ];
        let caps = captions(words, 8);
        assert_eq!(spans(&caps), [("one two three four", 1.0, 3.0)]);
        assert_eq!(
            caps[0].words,
            [
                word("one", 1.0, 1.5),
                word("two", 1.5, 2.0),
                word("three", 2.0, 2.5),
                word("four", 2.5, 3.0),
            ]
        );
    }

    #[test]
    fn an_untimed_word_without_a_gap_joins_its_timed_neighbour() {
        // No silence between "one" and "four": "two" joins "one", the line's previous timed word.
        let words = vec![w("one", 1.0, 2.0), untimed("two"), w("four", 2.0, 3.0)];
        let caps = captions(words, 8);
        assert_eq!(spans(&caps), [("one two four", 1.0, 3.0)]);
        assert_eq!(
            caps[0].words,
            [word("one two", 1.0, 2.0), word("four", 2.0, 3.0)]
        );
        // First on its line: it joins the next timed word of the line.
        let words = vec![w("a\n", 1.0, 2.0), untimed("b"), w("c", 2.0, 3.0)];
        let caps = captions(words, 8);
        assert_eq!(spans(&caps), [("a", 1.0, 2.0), ("b c", 2.0, 3.0)]);
        assert_eq!(caps[1].words, [word("b c", 2.0, 3.0)]);
    }

    #[test]
    fn a_whole_untimed_line_gets_the_gap_between_its_neighbour_lines() {
        let words = vec![
            w("first\n", 1.0, 2.0),
            untimed("lost"),
            untimed("line\n"),
            w("last", 6.0, 7.0),
        ];
        let caps = captions(words, 8);
        assert_eq!(
            spans(&caps),
            [
                ("first", 1.0, 2.0),
                ("lost line", 2.0, 6.0),
                ("last", 6.0, 7.0)
            ]
        );
    }

    #[test]
    fn a_word_with_no_timed_neighbour_on_its_line_and_no_gap_is_dropped() {
        let words = vec![
            w("first\n", 1.0, 2.0),
            untimed("lost\n"),
            w("last", 2.0, 3.0),
        ];
        assert_eq!(
            spans(&captions(words, 8)),
            [("first", 1.0, 2.0), ("last", 2.0, 3.0)]
        );
        // Nothing timed at all: nothing to time captions from.
        assert!(captions(vec![untimed("a"), untimed("b")], 8).is_empty());
    }

    #[test]
    fn unusable_times_count_as_missing() {
        for (start, end) in [
            (Some(f64::NAN), Some(1.0)),
            (Some(2.0), Some(1.0)),
            (Some(-1.0), Some(1.0)),
            (Some(1.0), None),
            (None, Some(1.0)),
        ] {
            let words = vec![
                w("a", 0.0, 1.0),
                TimedWord {
                    word: "b",
                    start,
                    end,
                },
                w("c", 3.0, 4.0),
            ];
            let caps = captions(words, 8);
            assert_eq!(caps[0].words[1], word("b", 1.0, 3.0), "{start:?}..{end:?}");
        }
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
