//! Word-level alignment of submitted lyrics over a track's duration.

use rand::Rng;

use super::types::AlignedWord;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Splits lyrics into words and spreads them, in order, over `duration` seconds (after a
/// short intro, before a short outro). The first word of a section carries the tag and a
/// newline (`"[Verse]\nWaggin'"`); the last word of each line ends with a newline.
pub(crate) fn align(lyrics: &str, duration: f64, rng: &mut impl Rng) -> Vec<AlignedWord> {
    struct Token {
        word: String,
        weight: f64,
    }
    let mut tokens: Vec<Token> = Vec::new();
    let mut pending_tag: Option<String> = None;
    for line in lyrics.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            pending_tag = Some(line.to_owned());
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let last = words.len().saturating_sub(1);
        for (i, w) in words.iter().enumerate() {
            let mut weight = 1.0 + rng.random_range(-0.15..0.15);
            let mut word = (*w).to_owned();
            if i == 0
                && let Some(tag) = pending_tag.take()
            {
                word = format!("{tag}\n{word}");
                weight += 2.0; // a breath before a new section
            }
            if i == last {
                word.push('\n');
                weight += 0.5; // hold the last word of a line
            }
            tokens.push(Token { word, weight });
        }
    }
    if let Some(last) = tokens.last_mut()
        && last.word.ends_with('\n')
        && !last.word.ends_with("]\n")
    {
        last.word.pop();
    }
    let start = (duration * 0.06).clamp(0.0, 12.0);
    let end = duration * 0.92;
    let span = (end - start).max(0.0);
    let total: f64 = tokens.iter().map(|t| t.weight).sum();
    let mut at = start;
    let mut out = Vec::with_capacity(tokens.len());
    let mut prev_end = 0.0f64;
    for t in tokens {
        let slot = if total > 0.0 {
            span * t.weight / total
        } else {
            0.0
        };
        let s = round2(at.max(prev_end));
        let e = round2((at + slot * 0.85).max(s + 0.01));
        out.push(AlignedWord {
            word: t.word,
            success: true,
            start_s: s,
            end_s: e,
            palign: 0,
        });
        prev_end = e;
        at += slot;
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn tags_order_and_bounds() {
        let lyrics = "[Verse]\nWaggin' tails all day\nHappy dogs at play\n\n[Chorus]\nWoof woof";
        let words = align(lyrics, 180.0, &mut StdRng::seed_from_u64(1));
        assert_eq!(words.len(), 10);
        assert_eq!(words[0].word, "[Verse]\nWaggin'");
        assert_eq!(words[3].word, "day\n");
        assert_eq!(words[8].word, "[Chorus]\nWoof");
        assert_eq!(words[9].word, "woof");
        for pair in words.windows(2) {
            assert!(pair[0].start_s < pair[0].end_s);
            assert!(pair[0].end_s <= pair[1].start_s);
        }
        assert!(words[0].start_s > 0.0 && words[9].end_s <= 180.0);
        let text: String = words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains("Happy dogs at play"));
        assert!(align("", 100.0, &mut StdRng::seed_from_u64(1)).is_empty());
    }
}
