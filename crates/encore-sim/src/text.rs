//! Seeded text: lyrics with `[Verse]`/`[Chorus]`/`[Bridge]` sections, titles, style tags
//! and prose, in English or Korean, flavoured with keywords from the prompt.

use rand::Rng;
use rand::seq::IndexedRandom;

/// What the text is about and in which language.
#[derive(Clone, Debug, Default)]
pub(crate) struct TextCtx {
    /// Salient words from the prompt (business name, product…).
    pub(crate) keywords: Vec<String>,
    /// Write Korean (the prompt contains Hangul).
    pub(crate) korean: bool,
}

/// Words never used as keywords (instructions, not subject matter).
const STOPWORDS: &str = "about also based because before business catchy chorus company could description \
    each every from have include into json just like line lines lyrics make more \
    most music must only over please plan return schema should some song songs style \
    such than that their them then there they this title under using verse very \
    video what when where which will with would write your yours bridge format \
    output field fields language english korean user assistant system object string \
    array short long world people want need here help things thing being been 노래 가사 \
    위한 위해 작성 음악 뮤직 비디오 영상 만들어 만들어줘 주세요 해주세요 회사 사업 제목 스타일 그리고 우리 대한 관한 \
    작은 큰 새로운 좋은 멋진 예쁜 아름다운";

/// Trailing Korean particles stripped from keywords (`성수동의` → `성수동`).
const PARTICLES: &[&str] = &[
    "에서", "으로", "에게", "의", "을", "를", "은", "는", "과", "와", "에",
];

fn strip_particle(word: &str) -> &str {
    for p in PARTICLES {
        if let Some(stem) = word.strip_suffix(p)
            && stem.chars().count() >= 2
        {
            return stem;
        }
    }
    word
}

/// The final-consonant (batchim) index of the last Hangul syllable, if any.
fn batchim(word: &str) -> Option<u32> {
    let c = word.chars().last()?;
    ('\u{AC00}'..='\u{D7A3}')
        .contains(&c)
        .then(|| (u32::from(c) - 0xAC00) % 28)
}

/// The Korean particle form that fits `word` (`로`/`으로`, `와`/`과`, `이`/`가`, `을`/`를`).
fn particle(word: &str, josa: &str) -> &'static str {
    let fin = batchim(word);
    let has_final = fin.is_some_and(|f| f != 0);
    match (josa, has_final) {
        ("로", true) if fin != Some(8) => "으로",
        ("로", _) => "로",
        ("와", true) => "과",
        ("와", false) => "와",
        ("이", true) => "이",
        ("이", false) => "가",
        ("을", true) => "을",
        ("을", false) => "를",
        _ => "",
    }
}

/// True if the text contains Hangul syllables.
pub(crate) fn has_hangul(s: &str) -> bool {
    s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// Salient words of a prompt, in order of appearance, at most `max`.
pub(crate) fn keywords(text: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-')) {
        let word = raw.trim_matches(|c: char| c == '\'' || c == '-');
        let hangul = has_hangul(word);
        let word = if hangul { strip_particle(word) } else { word };
        let long_enough = if hangul {
            word.chars().count() >= 2
        } else {
            word.chars().count() >= 4
        };
        if !long_enough || word.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let lower = word.to_lowercase();
        if STOPWORDS.split_whitespace().any(|w| w == lower)
            || out.iter().any(|w| w.to_lowercase() == lower)
        {
            continue;
        }
        out.push(word.to_owned());
        if out.len() >= max {
            break;
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

impl TextCtx {
    /// A context from prompt text.
    pub(crate) fn from_prompt(prompt: &str) -> Self {
        TextCtx {
            keywords: keywords(prompt, 8),
            korean: has_hangul(prompt),
        }
    }

    fn keyword(&self, rng: &mut impl Rng) -> String {
        let korean_kw: Vec<&String> = self.keywords.iter().filter(|k| has_hangul(k)).collect();
        if self.korean {
            if let Some(k) = korean_kw.choose(rng) {
                return (*k).clone();
            }
            return "우리 가게".to_owned();
        }
        let latin: Vec<&String> = self.keywords.iter().filter(|k| !has_hangul(k)).collect();
        latin
            .choose(rng)
            .map_or_else(|| "the city".to_owned(), |k| k.to_lowercase())
    }

    /// Replaces `{k}` (keyword), `{K}` (capitalised keyword) and `{k|로}`-style
    /// placeholders (keyword + the Korean particle form that fits it).
    fn fill(&self, rng: &mut impl Rng, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let token = &rest[start + 1..start + len];
            let (name, josa) = token.split_once('|').unwrap_or((token, ""));
            let k = self.keyword(rng);
            let word = if name == "K" { capitalize(&k) } else { k };
            out.push_str(&word);
            out.push_str(particle(&word, josa));
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }
}

const EN_VERSE: &[&str] = &[
    "Morning light on the {k} sign",
    "Doors swing open right on time",
    "Every corner smells like home",
    "Friendly faces, never alone",
    "We built {k} from a dream",
    "Nothing's ever what it seems",
    "Coffee steaming, city waking",
    "Every day a new beginning",
    "Down the street where the {k} glows",
    "Everybody in the neighborhood knows",
    "Hands that work and hearts that care",
    "A little magic in the air",
    "From the first hello to the last goodbye",
    "We keep the {k} burning bright",
    "Rain or shine we're standing tall",
    "There's a place here for one and all",
];
const EN_CHORUS: &[&str] = &[
    "Come on down to {K}",
    "Where the good times never end",
    "{K}, {K}, oh-oh",
    "Every stranger is a friend",
    "Sing it loud for {K}",
    "We'll be here when you need us",
    "Turn it up and let the {k} shine",
    "This is our home, this is our time",
];
const EN_BRIDGE: &[&str] = &[
    "When the lights go low",
    "And the night is long",
    "You can always find us",
    "Singing this song",
    "Hold on, hold on",
    "{K} carries on",
];
const KO_VERSE: &[&str] = &[
    "아침 햇살 아래 {k} 문을 열어",
    "오늘도 우리는 같은 자리에",
    "골목 끝에 피어난 작은 꿈",
    "따뜻한 미소로 너를 맞아",
    "바쁜 하루 속 쉼표 하나",
    "{k}에서 시작된 이야기",
    "비가 와도 우리는 여기 있어",
    "정성 담아 하나하나 만들어",
    "창밖에 흐르는 도시의 노래",
    "익숙한 향기 속에 머물러",
];
const KO_CHORUS: &[&str] = &[
    "{k|로} 와요 지금 바로",
    "함께라면 언제나 좋아",
    "노래해 우리 {k}",
    "오늘 밤도 빛나는 거리",
    "너와 나의 작은 천국",
    "언제든 여기서 기다릴게",
];
const KO_BRIDGE: &[&str] = &[
    "조용히 불이 꺼져도",
    "우린 여기서 기다릴게",
    "긴 밤이 지나고 나면",
    "다시 문을 열게",
];

fn lines(ctx: &TextCtx, rng: &mut impl Rng, pool: &[&str], n: usize) -> Vec<String> {
    let mut picked: Vec<&str> = pool
        .choose_multiple(rng, n.min(pool.len()))
        .copied()
        .collect();
    while picked.len() < n {
        picked.push(pool.choose(rng).expect("non-empty pool"));
    }
    picked.into_iter().map(|t| ctx.fill(rng, t)).collect()
}

/// One lyric line.
pub(crate) fn lyric_line(ctx: &TextCtx, rng: &mut impl Rng) -> String {
    let pool = if ctx.korean { KO_VERSE } else { EN_VERSE };
    lines(ctx, rng, pool, 1).remove(0)
}

/// Song lyrics with section tags, newline-separated lines, between `min` and `max` chars
/// (counted as Unicode scalar values, as JSON Schema does).
pub(crate) fn lyrics(ctx: &TextCtx, rng: &mut impl Rng, min: usize, max: Option<usize>) -> String {
    let (verse, chorus, bridge) = if ctx.korean {
        (KO_VERSE, KO_CHORUS, KO_BRIDGE)
    } else {
        (EN_VERSE, EN_CHORUS, EN_BRIDGE)
    };
    let chorus_lines = lines(ctx, rng, chorus, 4);
    let mut sections: Vec<String> = Vec::new();
    let plan = ["Verse", "Chorus", "Verse", "Chorus", "Bridge", "Chorus"];
    let mut i = 0usize;
    loop {
        let tag = plan.get(i).copied().unwrap_or(if i.is_multiple_of(2) {
            "Verse"
        } else {
            "Chorus"
        });
        let body = match tag {
            "Chorus" => chorus_lines.clone(),
            "Bridge" => lines(ctx, rng, bridge, 2),
            _ => lines(ctx, rng, verse, 4),
        };
        let section = format!("[{tag}]\n{}", body.join("\n"));
        let current: usize = sections.iter().map(|s| s.chars().count() + 2).sum();
        let next_len = current + section.chars().count();
        if let Some(max) = max
            && next_len > max
        {
            if sections.is_empty() {
                // not even one section fits: keep as many whole lines as possible
                let mut text = format!("[{tag}]");
                for line in &body {
                    if text.chars().count() + 1 + line.chars().count() > max {
                        break;
                    }
                    text.push('\n');
                    text.push_str(line);
                }
                sections.push(text);
            }
            break;
        }
        sections.push(section);
        i += 1;
        let len: usize = sections.iter().map(|s| s.chars().count() + 2).sum();
        if i >= plan.len() && len >= min {
            break;
        }
        if i > 64 {
            break;
        }
    }
    fit(sections.join("\n\n"), min, max, rng, ctx)
}

/// A song title.
pub(crate) fn title(ctx: &TextCtx, rng: &mut impl Rng) -> String {
    let pool: &[&str] = if ctx.korean {
        &[
            "{k}의 노래",
            "{k} 블루스",
            "안녕, {k}",
            "{k}에서 만나",
            "빛나는 {k}",
        ]
    } else {
        &[
            "{K} Nights",
            "Heart of {K}",
            "{K} Anthem",
            "Welcome to {K}",
            "The {K} Song",
            "{K} Forever",
            "Meet Me at {K}",
        ]
    };
    let template = *pool.choose(rng).expect("non-empty");
    let t = ctx.fill(rng, template);
    if ctx.korean {
        t
    } else {
        t.split(' ').map(capitalize).collect::<Vec<_>>().join(" ")
    }
}

const GENRES: &[&str] = &[
    "synthwave",
    "indie pop",
    "funk",
    "acoustic folk",
    "lo-fi hip hop",
    "city pop",
    "disco",
    "soft rock",
    "jazz-hop",
    "bossa nova",
    "electropop",
];
const MOODS: &[&str] = &[
    "upbeat",
    "warm",
    "nostalgic",
    "energetic",
    "dreamy",
    "catchy",
    "feel-good",
    "bright",
];

/// Comma-separated style tags, e.g. `"indie pop, upbeat, female vocals, 104 bpm"`.
pub(crate) fn style(ctx: &TextCtx, rng: &mut impl Rng) -> String {
    let genre = if ctx.korean && rng.random_bool(0.5) {
        "k-pop"
    } else {
        GENRES.choose(rng).expect("non-empty")
    };
    let mood = MOODS.choose(rng).expect("non-empty");
    let vocals = ["female vocals", "male vocals", "duet vocals"]
        .choose(rng)
        .expect("non-empty");
    let bpm = rng.random_range(80..=128);
    format!("{genre}, {mood}, {vocals}, {bpm} bpm")
}

/// A mood word.
pub(crate) fn mood(rng: &mut impl Rng) -> String {
    (*MOODS.choose(rng).expect("non-empty")).to_owned()
}

/// A descriptive sentence.
pub(crate) fn sentence(ctx: &TextCtx, rng: &mut impl Rng) -> String {
    let pool: &[&str] = if ctx.korean {
        &[
            "{k|와} 그곳을 사랑하는 사람들을 위한 따뜻한 노래.",
            "{k}의 하루를 담은 경쾌한 이야기.",
            "골목의 작은 가게 {k}에 보내는 러브레터.",
        ]
    } else {
        &[
            "A warm, upbeat song about {k} and the people who love it.",
            "A bright story of a day at {k}, from opening time to closing.",
            "A love letter to {k} and its neighborhood.",
            "An energetic anthem that makes you want to visit {k} today.",
        ]
    };
    let template = *pool.choose(rng).expect("non-empty");
    ctx.fill(rng, template)
}

/// A short phrase.
pub(crate) fn phrase(ctx: &TextCtx, rng: &mut impl Rng) -> String {
    let pool: &[&str] = if ctx.korean {
        &["{k}의 순간", "따뜻한 {k}", "오늘의 {k}", "{k} 이야기"]
    } else {
        &[
            "{K} moments",
            "the {k} way",
            "bright {k} days",
            "a taste of {k}",
        ]
    };
    let template = *pool.choose(rng).expect("non-empty");
    ctx.fill(rng, template)
}

/// Forces `text` into `min..=max` chars: pads with phrases, cuts at a char boundary.
pub(crate) fn fit(
    mut text: String,
    min: usize,
    max: Option<usize>,
    rng: &mut impl Rng,
    ctx: &TextCtx,
) -> String {
    let mut guard = 0;
    while text.chars().count() < min && guard < 10_000 {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&phrase(ctx, rng));
        guard += 1;
    }
    while text.chars().count() < min {
        text.push('x');
    }
    if let Some(max) = max
        && text.chars().count() > max
    {
        text = text.chars().take(max).collect();
        let trimmed = text.trim_end().to_owned();
        if trimmed.chars().count() >= min {
            text = trimmed;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn keywords_skip_stopwords() {
        let k = keywords(
            "Write a song for Sunrise Bakery, a family bakery in Portland.",
            8,
        );
        assert_eq!(k, vec!["Sunrise", "Bakery", "family", "Portland"]);
        let k = keywords("서울 성수동의 작은 카페 모카하우스를 위한 노래", 8);
        assert_eq!(k, vec!["서울", "성수동", "카페", "모카하우스"]);
        assert_eq!(particle("성수동", "로"), "으로");
        assert_eq!(particle("서울", "로"), "로");
        assert_eq!(particle("카페", "로"), "로");
        assert_eq!(particle("카페", "와"), "와");
        assert_eq!(particle("성수동", "와"), "과");
        let ctx = TextCtx {
            keywords: vec!["성수동".into()],
            korean: true,
        };
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(
            ctx.fill(&mut rng, "{k|로} 와요, {K}!"),
            "성수동으로 와요, 성수동!"
        );
        assert!(has_hangul("카페") && !has_hangul("cafe"));
    }

    #[test]
    fn lyrics_have_sections_and_respect_limits() {
        let ctx = TextCtx::from_prompt("Sunrise Bakery in Portland");
        let mut rng = StdRng::seed_from_u64(3);
        let l = lyrics(&ctx, &mut rng, 0, None);
        assert!(l.starts_with("[Verse]\n"));
        assert!(l.contains("[Chorus]") && l.contains("[Bridge]"));
        assert!(
            l.to_lowercase().contains("sunrise")
                || l.to_lowercase().contains("bakery")
                || l.to_lowercase().contains("portland")
        );
        for max in [5, 30, 120, 400] {
            let l = lyrics(&ctx, &mut rng, 0, Some(max));
            assert!(l.chars().count() <= max, "{max}: {l}");
        }
        let l = lyrics(&ctx, &mut rng, 2000, Some(2500));
        assert!((2000..=2500).contains(&l.chars().count()));
        let ko = TextCtx::from_prompt("서울의 작은 카페 모카하우스");
        let l = lyrics(&ko, &mut rng, 0, None);
        assert!(has_hangul(&l) && l.contains("[Chorus]"));
    }

    #[test]
    fn titles_styles() {
        let ctx = TextCtx::from_prompt("Sunrise Bakery");
        let mut rng = StdRng::seed_from_u64(1);
        let t = title(&ctx, &mut rng);
        assert!(!t.is_empty() && !t.contains('{'));
        let s = style(&ctx, &mut rng);
        assert_eq!(s.split(", ").count(), 4, "{s}");
        assert!(
            fit(String::new(), 10, Some(12), &mut rng, &ctx)
                .chars()
                .count()
                >= 10
        );
    }
}
