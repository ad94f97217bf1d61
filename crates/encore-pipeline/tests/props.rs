//! Hostile input (issue 6): property tests of what the pipeline does with text it does not
//! control — the business description, the language name, the lyrics OpenAI returns, and Suno's
//! word timings and durations. Every property states what the code promises for *any* input: no
//! panic, and either a typed error or a value inside the documented limits.

use encore_pipeline::captions::{TimedWord, captions, plain_lyrics, round_ms, spread, strip_tags};
use encore_pipeline::lyrics::{SunoLimits, fit_to_limits};
use encore_pipeline::{BusinessInput, Language, Lyrics};
use proptest::prelude::*;
use proptest::sample::select;

/// The documented limits of `BusinessInput` (the `MAX_*_CHARS` constants of `input.rs`).
const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 1000;
const MAX_REGION: usize = 100;
const MAX_MOOD: usize = 200;

/// Characters that break naive text handling: controls (C0, DEL, C1 incl. NEL), every kind of
/// whitespace and line separator, bidi overrides, zero-width and combining marks, a BOM,
/// multi-byte scripts, an astral emoji and the brackets and separators the code cuts at.
const NASTY: &[char] = &[
    '\0',
    '\u{7}',
    '\t',
    '\n',
    '\u{b}',
    '\u{c}',
    '\r',
    '\u{1b}',
    '\u{1f}',
    '\u{7f}',
    '\u{85}',
    '\u{9f}',
    ' ',
    '\u{a0}',
    '\u{2028}',
    '\u{2029}',
    '\u{3000}',
    '\u{202e}',
    '\u{202d}',
    '\u{200f}',
    '\u{200b}',
    '\u{200d}',
    '\u{feff}',
    '\u{301}',
    '\u{20dd}',
    '가',
    'ß',
    'א',
    'ي',
    '\u{1f600}',
    '[',
    ']',
    ',',
    '.',
    'a',
    'Z',
    '0',
];

/// Any text, with the nasty characters much more frequent than in `any::<String>()`.
fn nasty_text(max_len: usize) -> impl Strategy<Value = String> {
    let c = prop_oneof![3 => select(NASTY), 1 => any::<char>()];
    proptest::collection::vec(c, 0..max_len).prop_map(String::from_iter)
}

/// Text of any length: short and nasty, arbitrary, just around a limit, or huge (a nasty chunk
/// repeated, up to ~200 000 characters).
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => nasty_text(40),
        2 => any::<String>(),
        2 => (select(&['x', '가', '\u{1f600}', 'e'][..]), 95..=205_usize, select(&["", " ", "\u{301}", "\t", "\n"][..]))
            .prop_map(|(c, n, tail)| format!("{}{tail}", c.to_string().repeat(n))),
        2 => (select(&['가', 'x'][..]), 995..=1005_usize).prop_map(|(c, n)| c.to_string().repeat(n)),
        1 => (nasty_text(20), 1..10_000_usize).prop_map(|(chunk, n)| chunk.repeat(n)),
    ]
}

/// `check_text` of `input.rs`, as documented: required fields are not blank; the trimmed text
/// (what the prompt uses) has at most `max` characters and no control character but `\n`.
fn acceptable(value: &str, max: usize, required: bool) -> bool {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return !required;
    }
    trimmed.chars().count() <= max && !trimmed.chars().any(|c| c.is_control() && c != '\n')
}

fn business_input() -> impl Strategy<Value = BusinessInput> {
    (
        hostile_text(),
        hostile_text(),
        proptest::option::of(hostile_text()),
        proptest::option::of(hostile_text()),
        prop_oneof![Just(Language::Ko), Just(Language::En)],
    )
        .prop_map(
            |(name, description, region, mood, language)| BusinessInput {
                name,
                description,
                region,
                mood,
                language,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any business input: `validate` never panics; it accepts exactly the inputs whose fields
    /// keep the documented limits (non-blank name and description; at most 100 / 1000 / 100 /
    /// 200 characters and no control characters but `\n` in the trimmed text the prompt uses),
    /// and otherwise names the first offending field.
    #[test]
    fn validation_accepts_exactly_what_the_limits_allow(input in business_input()) {
        let fields = [
            ("name", Some(&input.name), MAX_NAME, true),
            ("business", Some(&input.description), MAX_DESCRIPTION, true),
            ("region", input.region.as_ref(), MAX_REGION, false),
            ("mood", input.mood.as_ref(), MAX_MOOD, false),
        ];
        let first_bad = fields
            .iter()
            .find(|(_, value, max, required)| value.is_some_and(|v| !acceptable(v, *max, *required)))
            .map(|(field, ..)| *field);
        match input.validate() {
            Ok(()) => prop_assert_eq!(first_bad, None),
            Err(e) => {
                prop_assert_eq!(Some(e.field()), first_bad);
                let text = e.to_string();
                prop_assert!(text.starts_with(&format!("invalid input: {} ", e.field())), "{}", text);
                prop_assert!(text.chars().count() < 200, "the message stays short: {}", text);
            }
        }
    }

    /// Any language name: only the documented spellings parse (`ko`, `kr`, `korean`, `한국어`,
    /// `en`, `english`, in any ASCII case, padded or not); anything else is an error naming
    /// `lang`. Never panics.
    #[test]
    fn languages_parse_only_documented_names(text in prop_oneof![
        hostile_text(),
        (select(&["ko", "KR", "Korean", "한국어", "en", "ENGLISH", "fr", "k o", "enn", "KO\u{301}"][..]),
         select(&["", " ", "\t", "\n", "\u{3000}", "\u{200b}"][..]))
            .prop_map(|(name, pad)| format!("{pad}{name}{pad}")),
    ]) {
        let wanted = match text.trim().to_ascii_lowercase().as_str() {
            "ko" | "kr" | "korean" | "한국어" => Some(Language::Ko),
            "en" | "english" => Some(Language::En),
            _ => None,
        };
        match text.parse::<Language>() {
            Ok(language) => {
                prop_assert_eq!(Some(language), wanted);
                prop_assert_eq!(language.code().parse::<Language>().ok(), Some(language));
            }
            Err(e) => {
                prop_assert_eq!(wanted, None);
                prop_assert_eq!(e.field(), "lang");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lyrics fitted to Suno's limits
// ---------------------------------------------------------------------------------------------

/// Text long enough to be cut: lines, tags and separators of any kind, up to ~15 000 characters.
fn lyric_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => hostile_text(),
        2 => (proptest::collection::vec(nasty_text(30), 1..30), 1..200_usize)
            .prop_map(|(lines, n)| lines.join("\n").repeat(n).chars().take(15_000).collect()),
        1 => (select(&['가', 'x', '\u{1f600}', ','][..]), 4990..5010_usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

fn model_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "V4", "V3_5", "V4_5", "V4_5ALL", "V4_5PLUS", "V5", "V6", "v4", "", " V4"
            ][..]
        )
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

/// Checks one fitted field against its input and limit: within the limit (in characters), a
/// prefix of the trimmed input (so never a split character), and untouched when it fitted.
/// Returns whether it had to be cut.
fn check_field(name: &str, before: &str, after: &str, limit: usize) -> Result<bool, TestCaseError> {
    let trimmed = before.trim();
    prop_assert!(
        after.chars().count() <= limit,
        "{} has {} characters, limit {}",
        name,
        after.chars().count(),
        limit
    );
    prop_assert!(
        trimmed.starts_with(after),
        "{} is not a prefix of the input: {:?}",
        name,
        after
    );
    let cut = trimmed.chars().count() > limit;
    if !cut {
        prop_assert_eq!(after, trimmed, "{} fitted and was changed", name);
    }
    Ok(cut)
}

fn check_fit(lyrics: Lyrics, limits: SunoLimits) -> Result<(), TestCaseError> {
    let before = lyrics.clone();
    let mut after = lyrics;
    let notes = fit_to_limits(&mut after, limits);
    let cuts = [
        check_field("lyrics", &before.lyrics, &after.lyrics, limits.lyrics)?,
        check_field("style", &before.style, &after.style, limits.style)?,
        check_field("title", &before.title, &after.title, limits.title)?,
    ];
    prop_assert_eq!(
        notes.len(),
        cuts.iter().filter(|c| **c).count(),
        "{:?}",
        notes
    );
    // Fitting again changes nothing that matters: no more cuts, still within the limits.
    let mut again = after.clone();
    prop_assert!(fit_to_limits(&mut again, limits).is_empty());
    prop_assert!(again.lyrics.chars().count() <= limits.lyrics);
    Ok(())
}

proptest! {
    // Long texts: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any lyrics for any model name: `fit_to_limits` never panics, and every field ends within
    /// the model's limits, as a prefix of its trimmed input, untouched when it already fitted,
    /// with one note per cut field.
    #[test]
    fn fitted_lyrics_respect_the_model_limits(
        model in model_name(),
        lyrics in lyric_text(),
        style in lyric_text(),
        title in lyric_text(),
    ) {
        check_fit(Lyrics { title, lyrics, style }, SunoLimits::for_model(&model))?;
    }

    /// The same with tiny limits (0 to 40 characters), so that every boundary rule — cut at the
    /// last newline, comma or space, or mid-word when there is none — meets multi-byte text.
    #[test]
    fn fitted_lyrics_respect_tiny_limits(
        lyrics in nasty_text(60),
        style in nasty_text(60),
        title in nasty_text(60),
        (l, s, t) in (0..40_usize, 0..40_usize, 0..40_usize),
    ) {
        check_fit(Lyrics { title, lyrics, style }, SunoLimits { lyrics: l, style: s, title: t })?;
    }
}

// ---------------------------------------------------------------------------------------------
// Captions from Suno's timings
// ---------------------------------------------------------------------------------------------

/// Any time: NaN, infinities, negative, huge, subnormal, or an ordinary song time.
fn any_time() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => 0.0..600.0_f64,
        1 => select(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, -0.0, f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324, 1e300][..]),
        1 => any::<f64>(),
    ]
}

/// A token as Suno sends it: words with tags, newlines and stray brackets.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => nasty_text(12),
        1 => select(&["[Verse]\nHello", "[Chorus]", "]", "[", "[[x]", "a]b", "\n", "", "  ", "[Verse 1]\n\nla la"][..])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any aligned words with any times (or none) and any words-per-line: `captions` never
    /// panics; every caption is one line of at most `max(max_words, 1)` words with no tag
    /// bracket `[`, no blank, and its words' texts joined make its text; every time is finite,
    /// no word or line ends before it starts, and a line spans exactly its words. The words kept
    /// are the words of the tag-stripped tokens, in order — all of them, at the times Suno sent,
    /// when every token has a usable time (finite, `0 <= start <= end`) — and one usable time is
    /// enough for captions (the even spread is never needed while a word is timed).
    #[test]
    fn captions_keep_the_words_in_order_and_the_times_they_were_sent(
        words in proptest::collection::vec(
            (token(), proptest::option::weighted(0.8, any_time()), proptest::option::weighted(0.8, any_time())),
            0..40,
        ),
        max_words in prop_oneof![0..10_usize, any::<usize>()],
    ) {
        let timed = words.iter().map(|(w, start, end)| TimedWord { word: w, start: *start, end: *end });
        let caps = captions(timed, max_words);
        let limit = max_words.max(1);
        let usable = |s: &Option<f64>, e: &Option<f64>| matches!((s, e), (Some(s), Some(e)) if s.is_finite() && e.is_finite() && 0.0 <= *s && s <= e);
        for cap in &caps {
            let n = cap.text.split(' ').count();
            prop_assert!(n >= 1 && n <= limit, "{} words: {:?}", n, cap.text);
            prop_assert!(!cap.text.contains('['), "{:?}", cap.text);
            prop_assert!(
                cap.text.split(' ').all(|w| !w.is_empty() && !w.contains(char::is_whitespace)),
                "{:?}", cap.text
            );
            let joined: Vec<&str> = cap.words.iter().map(|w| w.text.as_str()).collect();
            prop_assert_eq!(joined.join(" "), cap.text.clone());
            for w in &cap.words {
                prop_assert!(w.start.is_finite() && w.end.is_finite() && w.start <= w.end, "{:?}", w);
            }
            let first = cap.words.iter().map(|w| w.start).fold(f64::INFINITY, f64::min);
            let last = cap.words.iter().map(|w| w.end).fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(cap.start.to_bits() == first.to_bits() && cap.end.to_bits() == last.to_bits(), "{:?}", cap);
        }
        let expected: Vec<String> = words
            .iter()
            .flat_map(|(w, ..)| strip_tags(w).split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        let got: Vec<&str> = caps.iter().flat_map(|c| c.text.split(' ')).collect();
        let mut rest = expected.iter();
        prop_assert!(got.iter().all(|g| rest.any(|e| e == g)), "not in order: {:?} of {:?}", got, expected);
        if words.iter().all(|(_, s, e)| usable(s, e)) {
            prop_assert_eq!(&got, &expected);
            let sent: Vec<u64> = words.iter().flat_map(|(_, s, e)| [s.unwrap().to_bits(), e.unwrap().to_bits()]).collect();
            for cap in &caps {
                prop_assert!(sent.contains(&cap.start.to_bits()) && sent.contains(&cap.end.to_bits()), "{:?}", cap);
            }
        }
        let one_timed_word = words.iter().any(|(w, s, e)| usable(s, e) && !strip_tags(w).trim().is_empty());
        if one_timed_word {
            prop_assert!(!caps.is_empty());
        }
    }

    /// `strip_tags` never panics, leaves no `[`, keeps the rest in order, and is idempotent.
    #[test]
    fn stripping_tags_is_total_and_idempotent(text in prop_oneof![token(), hostile_text()]) {
        let stripped = strip_tags(&text);
        prop_assert!(!stripped.contains('['));
        let mut rest = text.chars();
        prop_assert!(stripped.chars().all(|c| rest.any(|r| r == c)), "not a subsequence");
        prop_assert_eq!(strip_tags(&stripped), stripped);
    }

    /// Lyrics without timings spread over any duration (NaN, infinite, negative, huge): `spread`
    /// never panics; one caption per sung line, in order; every time is finite, the first starts
    /// at 0, each ends after it starts, no caption starts before the previous one ends; and for an
    /// ordinary duration the last one ends at the duration (at least 1 s).
    #[test]
    fn spread_captions_are_finite_and_ordered(
        lyrics in prop_oneof![hostile_text(), proptest::collection::vec(token(), 0..40).prop_map(|t| t.join("\n"))],
        duration in any_time(),
    ) {
        let caps = spread(&lyrics, duration);
        let plain = plain_lyrics(&lyrics);
        let lines: Vec<&str> = plain.lines().collect();
        prop_assert_eq!(caps.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), lines);
        let mut previous_end = 0.0;
        for (i, cap) in caps.iter().enumerate() {
            prop_assert!(cap.start.is_finite() && cap.end.is_finite(), "{:?} for duration {}", cap, duration);
            if i == 0 {
                prop_assert!(cap.start == 0.0, "{:?}", cap);
            }
            prop_assert!(cap.start <= cap.end && cap.start >= previous_end, "{:?} after {}", cap, previous_end);
            previous_end = cap.end;
        }
        if let Some(last) = caps.last() && duration.is_finite() && duration < 1e9 {
            let want = round_ms(duration.max(1.0));
            prop_assert!((last.end - want).abs() <= 1e-6 * want, "ends at {} not {}", last.end, want);
        }
    }
}

/// Found by `spread_captions_are_finite_and_ordered`: an infinite duration gave the first caption
/// a NaN start (`0 × ∞`), and one near `f64::MAX` pushed the last end to infinity (`19 ×
/// (MAX / 19)` rounds up, and `round_ms` overflowed at `× 1000`). Suno's `duration` is read
/// leniently, so `"inf"` or `1.7976931348623157e308` can arrive from the wire.
#[test]
fn spread_survives_infinite_and_extreme_durations() {
    let lyrics = (0..19)
        .map(|i| format!("line {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    for duration in [f64::INFINITY, f64::MAX, 1e306, f64::NAN, f64::NEG_INFINITY] {
        let caps = spread(&lyrics, duration);
        assert_eq!(caps.len(), 19);
        for cap in &caps {
            assert!(
                cap.start.is_finite() && cap.end.is_finite(),
                "{cap:?} for {duration}"
            );
        }
    }
    assert!((spread("a", f64::INFINITY)[0].end - 1.0).abs() < f64::EPSILON);
    assert_eq!(round_ms(f64::MAX).to_bits(), f64::MAX.to_bits());
    assert!((round_ms(1.234_56) - 1.235).abs() < 1e-12);
}
