//! The complexity analyser: chooses a question's model tier (light / strong) from its
//! features and its domain's rules, and says why.
//!
//! Rule-based and cheap: the question is cut once into whitespace-separated tokens kept in
//! one `Vec` of slices, then read in one pass; no regular expressions, no per-word heap
//! copies (keywords are matched on a lower-cased stack copy). A call takes about 2 µs
//! optimised, a quarter of it formatting the reasons. Every knob is configuration
//! (`[router.routing]` and each `[[domains]]` entry), so adding a domain or re-tuning the
//! routing is a configuration change only.
//!
//! The score is the weighted sum of the features (see [`rag_config::RoutingWeights`]):
//! words beyond `free_words`, sentences beyond the first, the technical-term density,
//! logical operators (at most [`MAX_COUNTED_OPERATORS`]), a multi-part question, negations
//! (at most [`MAX_COUNTED_NEGATIONS`]). Then, by the domain's `default_tier`:
//!
//! * **light** (hr, engineering, no domain): strong when the score reaches the domain's
//!   `strong_threshold` (a higher one keeps a domain such as hr light unless the question is
//!   clearly complex);
//! * **strong** (legal): light only for a short factual question — at most
//!   `short_question_words` words, no logical operator, a single part, and a score below the
//!   threshold.

use rag_config::{DomainSettings, RoutingSettings, Tier};

/// Logical operators counted into the score, at most.
pub const MAX_COUNTED_OPERATORS: usize = 3;
/// Negations counted into the score, at most.
pub const MAX_COUNTED_NEGATIONS: usize = 2;
/// The technical-term density in the score is taken over at least this many words, so one
/// acronym does not make a three-word question "technical".
pub const DENSITY_MIN_WORDS: usize = 10;

/// The tier chosen for a question, why, and what it was chosen from.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingDecision {
    pub tier: Tier,
    /// Human-readable, the domain's default first and the verdict last; they travel in the
    /// answer's `tier_reasons`.
    pub reasons: Vec<String>,
    pub features: QuestionFeatures,
    /// The complexity score, and the threshold it was compared with.
    pub score: f32,
    pub threshold: f32,
}

/// What the analyser measured in a question.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QuestionFeatures {
    /// Tokens with a letter or a digit (enumeration markers and bullets are not words).
    pub words: usize,
    pub sentences: usize,
    pub question_marks: usize,
    /// Words that are technical: with a digit, ACRONYMS, snake_case, camelCase, code-like
    /// (`kubectl`, /v1/query, config.toml, --flag), or a configured technical term.
    pub technical_terms: usize,
    /// `technical_terms / words` (0 for no words).
    pub technical_density: f32,
    /// Occurrences of logical operators; which ones in `operators`.
    pub logical_operators: usize,
    pub operators: Operators,
    pub multi_part: Option<MultiPart>,
    pub negations: usize,
}

/// Why a question counts as several questions in one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiPart {
    /// This many question marks.
    QuestionMarks(usize),
    /// This many enumeration markers ("1)", "(a)", "2.", bullets).
    Enumeration(usize),
    /// "… and also …".
    AndAlso,
    /// A second question joined by "and" ("… and how …"); the question word.
    JoinedQuestion(&'static str),
}

/// The set of logical operators found in a question.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Operators(u16);

impl Operators {
    /// The operators' names, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        OPERATOR_NAMES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, name)| *name)
    }

    pub fn contains(self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn insert(&mut self, op: Op) {
        self.0 |= 1 << op as u16;
    }
}

#[derive(Clone, Copy)]
enum Op {
    If,
    Unless,
    When,
    Whereas,
    Compare,
    Versus,
    Why,
    Explain,
    Difference,
    TradeOff,
    Implications,
    WhatHappensIf,
    Whether,
    Otherwise,
}

/// Indexed by `Op`.
const OPERATOR_NAMES: [&str; 14] = [
    "if",
    "unless",
    "when",
    "whereas",
    "compare",
    "versus",
    "why",
    "explain",
    "difference",
    "trade-off",
    "implications",
    "what happens if",
    "whether",
    "otherwise",
];

/// Words after which "when" asks a question ("when is it due?") rather than sets a
/// condition ("when the replica lags").
const AUXILIARIES: &[&str] = &[
    "is", "are", "was", "were", "am", "do", "does", "did", "should", "must", "can", "could",
    "will", "would", "shall", "may", "might", "has", "have", "had",
];

/// Question words that start a second question after "and".
const QUESTION_WORDS: &[&str] = &[
    "what", "how", "which", "when", "where", "who", "why", "whether",
];

/// Words ending in "." that do not end a sentence.
const ABBREVIATIONS: &[&str] = &["vs", "etc", "cf", "incl", "approx", "art", "sec", "fig"];

/// Representative questions and the tier the default configuration gives them: the unit
/// tests' routing table and the benchmark's workload.
#[derive(Clone, Copy, Debug)]
pub struct SampleQuestion {
    pub domain: Option<&'static str>,
    pub question: &'static str,
    pub expected: Tier,
}

const fn light(domain: Option<&'static str>, question: &'static str) -> SampleQuestion {
    SampleQuestion {
        domain,
        question,
        expected: Tier::Light,
    }
}

const fn strong(domain: Option<&'static str>, question: &'static str) -> SampleQuestion {
    SampleQuestion {
        domain,
        question,
        expected: Tier::Strong,
    }
}

const HR: Option<&str> = Some("hr");
const LEGAL: Option<&str> = Some("legal");
const ENG: Option<&str> = Some("engineering");
const GENERAL: Option<&str> = Some("general");

#[rustfmt::skip]
pub const SAMPLE_QUESTIONS: &[SampleQuestion] = &[
    // hr: light unless clearly complex.
    light(HR, "How many vacation days do I get per year if I work full time?"),
    light(HR, "Can I carry unused holiday into next year, and by when do I have to use it?"),
    light(HR, "How much paid leave does the secondary caregiver get after a baby is born?"),
    light(HR, "How long do I have to submit an expense claim?"),
    light(HR, "What phone number do I call to report an ethics concern anonymously?"),
    light(HR, "What's on the cafeteria menu this Friday?"),
    light(HR, "Why can't I expense a business class flight?"),
    strong(HR, "If I switch to a four-day week after parental leave, how does that change my annual leave entitlement, and what happens if I resign within the first year?"),
    strong(HR, "Explain the difference between secondary caregiver leave and unpaid parental leave, and why would I choose one over the other?"),
    // legal: strong unless very short.
    light(LEGAL, "Which country's law governs our standard mutual NDA?"),
    light(LEGAL, "How long does my password need to be?"),
    light(LEGAL, "What is the notice period?"),
    strong(LEGAL, "What is the liability cap in our vendor contracts?"),
    strong(LEGAL, "What is the deadline for responding to a GDPR data subject request?"),
    strong(LEGAL, "How long do we have to keep invoices and other financial records?"),
    strong(LEGAL, "Why is the NDA governed by Dutch law?"),
    strong(LEGAL, "If a partner asks us to return their confidential information under our NDA, how quickly must it be returned or destroyed?"),
    strong(LEGAL, "Compare the liability cap in our vendor terms with the one in the customer MSA: which is higher, and what are the implications if a supplier causes a data breach?"),
    // engineering: light for look-ups, strong for diagnosis and design questions.
    light(ENG, "How quickly must a SEV1 incident be acknowledged?"),
    light(ENG, "When is the postmortem draft due after an incident is resolved?"),
    light(ENG, "What error rate or latency makes a canary deployment roll back automatically?"),
    light(ENG, "What does the error code ERR-4102 mean?"),
    light(ENG, "The API returned ERR-4290. How many requests per minute are we allowed?"),
    light(ENG, "I was paged at 3am while on call. What time do I need to start work the next day?"),
    light(ENG, "How long are daily database backups retained?"),
    strong(ENG, "Compare a canary deployment with a blue-green rollout: when should we prefer each, and what are the trade-offs for database schema migrations?"),
    strong(ENG, "Why did the restore of the nightly backup fail with ERR-5031 when the read replica was still in recovery, and how do I retry it without losing WAL segments?"),
    strong(ENG, "What happens if the payments_api pod exceeds its memory limit while a rollout is in progress and the HPA cannot scale out?"),
    // no domain, and the catch-all domain.
    light(None, "What is Northwind Robotics' current share price?"),
    light(None, "Who approves expense claims?"),
    strong(None, "What happens if a customer asks us to delete their data but we are still within the 7-year retention period for invoices, and does the GDPR deadline still apply?"),
    strong(None, "Explain why the semantic cache never serves answers across tenants, and compare it with the exact cache."),
    light(GENERAL, "Where is the Amsterdam office?"),
    strong(GENERAL, "1) Who is my HR contact? 2) Where do I find the expense policy? 3) When are payslips published?"),
];

/// Chooses the tier of `question`, asked in `domain` (`None`: no domain).
pub fn analyse(
    question: &str,
    domain: Option<&DomainSettings>,
    settings: &RoutingSettings,
) -> RoutingDecision {
    let features = QuestionFeatures::of(question, domain, settings);
    let parts = ScoreParts::of(&features, settings);
    let score = parts.total();
    let (default_tier, threshold, short_words) = match domain {
        Some(d) => (
            d.default_tier,
            d.strong_threshold.unwrap_or(settings.strong_threshold),
            d.short_question_words
                .unwrap_or(settings.short_question_words),
        ),
        None => (
            settings.default_tier,
            settings.strong_threshold,
            settings.short_question_words,
        ),
    };

    let mut reasons = Vec::with_capacity(8);
    reasons.push(match domain {
        Some(d) => format!("{} domain defaults to {}", d.name, d.default_tier.as_str()),
        None => format!("no domain: {} by default", default_tier.as_str()),
    });
    parts.explain(&features, settings, &mut reasons);

    let short = features.words <= short_words
        && features.logical_operators == 0
        && features.multi_part.is_none();
    let tier = match default_tier {
        Tier::Light if score >= threshold => {
            reasons.push(format!(
                "complexity score {score:.2} reaches the strong threshold {threshold:.2}"
            ));
            Tier::Strong
        }
        Tier::Light => {
            if short {
                reasons.push(format!("short factual question ({} words)", features.words));
            }
            reasons.push(format!(
                "complexity score {score:.2} below the strong threshold {threshold:.2}"
            ));
            Tier::Light
        }
        Tier::Strong if short && score < threshold => {
            reasons.push(format!(
                "short factual question ({} words, no logical operator): light",
                features.words
            ));
            Tier::Light
        }
        Tier::Strong => {
            if features.words > short_words {
                reasons.push(format!(
                    "{} words: longer than a short question ({short_words})",
                    features.words
                ));
            }
            if score >= threshold {
                reasons.push(format!(
                    "complexity score {score:.2} reaches the strong threshold {threshold:.2}"
                ));
            }
            Tier::Strong
        }
    };
    RoutingDecision {
        tier,
        reasons,
        features,
        score,
        threshold,
    }
}

/// The weighted features that make up the score.
#[derive(Clone, Copy, Debug, Default)]
struct ScoreParts {
    length: f32,
    sentences: f32,
    technical: f32,
    operators: f32,
    multi_part: f32,
    negations: f32,
}

impl ScoreParts {
    fn of(f: &QuestionFeatures, settings: &RoutingSettings) -> Self {
        let w = &settings.weights;
        Self {
            length: w.per_extra_word * f.words.saturating_sub(settings.free_words) as f32,
            sentences: w.per_extra_sentence * f.sentences.saturating_sub(1) as f32,
            technical: w.technical_density * f.technical_terms as f32
                / f.words.max(DENSITY_MIN_WORDS) as f32,
            operators: w.per_logical_operator
                * f.logical_operators.min(MAX_COUNTED_OPERATORS) as f32,
            multi_part: if f.multi_part.is_some() {
                w.multi_part
            } else {
                0.0
            },
            negations: w.per_negation * f.negations.min(MAX_COUNTED_NEGATIONS) as f32,
        }
    }

    fn total(&self) -> f32 {
        self.length
            + self.sentences
            + self.technical
            + self.operators
            + self.multi_part
            + self.negations
    }

    /// A reason for every feature that added to the score.
    fn explain(&self, f: &QuestionFeatures, settings: &RoutingSettings, reasons: &mut Vec<String>) {
        if self.operators > 0.0 {
            let names: Vec<&str> = f.operators.names().collect();
            reasons.push(format!(
                "{} logical operator{} ({})",
                f.logical_operators,
                plural(f.logical_operators),
                names.join(", ")
            ));
        }
        if self.multi_part > 0.0 {
            reasons.push(match f.multi_part {
                Some(MultiPart::QuestionMarks(n)) => {
                    format!("multi-part question ({n} question marks)")
                }
                Some(MultiPart::Enumeration(n)) => {
                    format!("multi-part question (enumeration of {n})")
                }
                Some(MultiPart::AndAlso) => "multi-part question (\"and also\")".to_owned(),
                Some(MultiPart::JoinedQuestion(word)) => {
                    format!("multi-part question (\"and {word}\")")
                }
                None => "multi-part question".to_owned(),
            });
        }
        if self.length > 0.0 {
            reasons.push(format!(
                "long question ({} words > {})",
                f.words, settings.free_words
            ));
        }
        if self.sentences > 0.0 {
            reasons.push(format!("{} sentences", f.sentences));
        }
        if self.technical > 0.0 {
            reasons.push(format!(
                "{} technical term{} in {} words ({:.0}%)",
                f.technical_terms,
                plural(f.technical_terms),
                f.words,
                f.technical_density * 100.0
            ));
        }
        if self.negations > 0.0 {
            reasons.push(format!("{} negation{}", f.negations, plural(f.negations)));
        }
    }
}

fn ratio(part: usize, whole: usize) -> f32 {
    if whole == 0 {
        0.0
    } else {
        part as f32 / whole as f32
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A whitespace-separated piece of the question.
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    raw: &'a str,
    /// `raw` without leading and trailing characters that are neither letters nor digits.
    word: &'a str,
    /// An enumeration marker or a bullet: not a word.
    marker: bool,
    ends_sentence: bool,
}

/// Splits `question` at white space, in one pass over its bytes (only non-ASCII characters
/// are decoded).
fn tokenise(question: &str) -> Vec<Token<'_>> {
    let bytes = question.as_bytes();
    let mut tokens: Vec<Token<'_>> = Vec::with_capacity(bytes.len() / 5 + 1);
    // Where the current token starts, and whether it starts a line.
    let mut current: Option<(usize, bool)> = None;
    let mut new_line = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (space, width) = if b.is_ascii() {
            (char::from(b).is_whitespace(), 1)
        } else {
            question
                .get(i..)
                .and_then(|rest| rest.chars().next())
                .map_or((false, 1), |c| (c.is_whitespace(), c.len_utf8()))
        };
        if space {
            if let Some((start, line_start)) = current.take() {
                push_token(
                    &mut tokens,
                    question.get(start..i).unwrap_or(""),
                    line_start,
                );
            }
            new_line |= b == b'\n';
        } else if current.is_none() {
            current = Some((i, new_line));
            new_line = false;
        }
        i += width;
    }
    if let Some((start, line_start)) = current {
        push_token(&mut tokens, question.get(start..).unwrap_or(""), line_start);
    }
    tokens
}

fn push_token<'a>(tokens: &mut Vec<Token<'a>>, raw: &'a str, line_start: bool) {
    let after_boundary = line_start || tokens.last().is_none_or(|t| t.ends_sentence || t.marker);
    let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
    let marker = is_marker(raw, line_start, after_boundary);
    let ends_sentence = !marker && !word.is_empty() && ends_sentence(raw, word);
    tokens.push(Token {
        raw,
        word,
        marker,
        ends_sentence,
    });
}

/// "1)", "(a)", "ii)", "(3)"; "2." at the start of a line or a sentence; a bullet at the
/// start of a line.
fn is_marker(raw: &str, line_start: bool, after_boundary: bool) -> bool {
    if line_start && matches!(raw, "-" | "*" | "•" | "–" | "—") {
        return true;
    }
    let body = raw.strip_prefix('(').unwrap_or(raw);
    if let Some(body) = body.strip_suffix(')') {
        let roman =
            !body.is_empty() && body.len() <= 4 && body.bytes().all(|b| b"ivx".contains(&b));
        let letter = body.len() == 1 && body.bytes().all(|b| b.is_ascii_alphabetic());
        return roman || letter || is_small_number(body);
    }
    if let Some(body) = raw.strip_suffix('.') {
        return after_boundary && is_small_number(body);
    }
    false
}

fn is_small_number(s: &str) -> bool {
    (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn ends_sentence(raw: &str, word: &str) -> bool {
    let t = raw.trim_end_matches(['"', '\'', '”', '’', ')', ']', '»']);
    match t.chars().last() {
        Some('?' | '!' | '…') => true,
        Some('.') => {
            !(word.contains('.') || ABBREVIATIONS.iter().any(|a| word.eq_ignore_ascii_case(a)))
        }
        _ => false,
    }
}

fn is_any(word: &str, list: &[&str]) -> bool {
    list.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// `word` is `term`, or `term` with a final "s", ignoring ASCII case.
fn word_matches(word: &str, term: &str) -> bool {
    word.eq_ignore_ascii_case(term)
        || word
            .strip_suffix(['s', 'S'])
            .is_some_and(|stem| stem.eq_ignore_ascii_case(term))
}

fn word_at<'a>(tokens: &[Token<'a>], i: usize) -> &'a str {
    tokens.get(i).map_or("", |t| t.word)
}

/// The number of tokens of the longest configured term that starts at `i`, if any.
fn term_at(tokens: &[Token<'_>], i: usize, terms: &[&[String]]) -> Option<usize> {
    let mut longest = None;
    let first = tokens.get(i).and_then(|t| t.word.bytes().next())?;
    for term in terms.iter().flat_map(|list| list.iter()) {
        // Most terms fail on the first letter; only the others are split into words.
        if !term
            .bytes()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| b.eq_ignore_ascii_case(&first))
        {
            continue;
        }
        let mut len = 0;
        let mut matched = true;
        for (k, part) in term.split_whitespace().enumerate() {
            if word_matches(word_at(tokens, i + k), part) {
                len += 1;
            } else {
                matched = false;
                break;
            }
        }
        if matched && len > 0 && longest.is_none_or(|l| len > l) {
            longest = Some(len);
        }
    }
    longest
}

/// `word` in ASCII lower case, in `buf`; "" when longer than `buf` (no keyword is).
fn lowered<'b>(word: &str, buf: &'b mut [u8; 16]) -> &'b str {
    let bytes = word.as_bytes();
    let Some(out) = buf.get_mut(..bytes.len()) else {
        return "";
    };
    out.copy_from_slice(bytes);
    // Changing ASCII letters only keeps the bytes UTF-8.
    out.make_ascii_lowercase();
    std::str::from_utf8(out).unwrap_or("")
}

/// The logical operator that starts at `i` (whose word, lower-cased, is `lower`), and its
/// length in tokens.
fn operator_at(tokens: &[Token<'_>], i: usize, lower: &str) -> Option<(Op, usize)> {
    let next = || word_at(tokens, i + 1);
    let op = match lower {
        "what"
            if is_any(next(), &["happens", "happen"])
                && is_any(word_at(tokens, i + 2), &["if", "when"]) =>
        {
            return Some((Op::WhatHappensIf, 3));
        }
        "trade" if is_any(next(), &["off", "offs"]) => return Some((Op::TradeOff, 2)),
        "pros"
            if next().eq_ignore_ascii_case("and")
                && word_at(tokens, i + 2).eq_ignore_ascii_case("cons") =>
        {
            return Some((Op::TradeOff, 3));
        }
        "if" => Op::If,
        "unless" => Op::Unless,
        // "When is it due?" asks; "when the replica lags" is a condition.
        "when" if !next().is_empty() && !is_any(next(), AUXILIARIES) => Op::When,
        "whereas" => Op::Whereas,
        "compare" | "compared" | "compares" | "comparing" | "comparison" => Op::Compare,
        "versus" | "vs" => Op::Versus,
        "why" => Op::Why,
        "explain" | "explains" | "explained" | "explaining" | "explanation" => Op::Explain,
        "difference" | "differences" | "differ" | "differs" => Op::Difference,
        "trade-off" | "trade-offs" | "tradeoff" | "tradeoffs" => Op::TradeOff,
        "implication" | "implications" => Op::Implications,
        "whether" => Op::Whether,
        "otherwise" => Op::Otherwise,
        _ => return None,
    };
    Some((op, 1))
}

fn is_negation(lower: &str) -> bool {
    matches!(
        lower,
        "not"
            | "no"
            | "never"
            | "without"
            | "neither"
            | "nor"
            | "cannot"
            | "none"
            | "nobody"
            | "nothing"
            | "nowhere"
    ) || (lower.len() > 3 && (lower.ends_with("n't") || lower.ends_with("n’t")))
}

/// Two or more letters, all upper-case (digits and a final plural "s" allowed): NDA, SEV1, APIs.
fn is_acronym(word: &str) -> bool {
    let stem = match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 2 => stem,
        _ => word,
    };
    let mut upper = 0;
    for c in stem.chars() {
        if c.is_lowercase() {
            return false;
        }
        if c.is_uppercase() {
            upper += 1;
        }
    }
    upper >= 2
}

/// Technical by its shape: a digit, an acronym (unless the whole question is in capitals),
/// snake_case, camelCase, or code-like punctuation.
fn is_technical_shape(token: &Token<'_>, acronyms: bool) -> bool {
    let (raw, word) = (token.raw, token.word);
    let bytes = word.as_bytes();
    bytes.iter().any(u8::is_ascii_digit)
        || (acronyms && is_acronym(word))
        || word.contains('_')
        || bytes
            .windows(2)
            .any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase())
        || raw.contains(['`', '=', '{', '}', '<', '>', '\\', '$', '#', '@'])
        || raw.contains("::")
        || raw.contains("()")
        || raw.contains("->")
        || (raw.starts_with("--") && raw[2..].starts_with(|c: char| c.is_ascii_alphabetic()))
        || (raw.starts_with('/') && raw.len() > 1)
        || raw.matches('/').count() >= 2
        || is_dotted_identifier(word)
}

/// config.toml, node.js, rag.v1 — not e.g. or U.S.
fn is_dotted_identifier(word: &str) -> bool {
    word.contains('.')
        && word.split('.').all(|s| !s.is_empty())
        && word.split('.').filter(|s| s.len() >= 2).count() >= 2
}

impl QuestionFeatures {
    /// Measures `question`; `domain`'s technical terms count besides the global ones.
    pub fn of(question: &str, domain: Option<&DomainSettings>, settings: &RoutingSettings) -> Self {
        let tokens = tokenise(question);
        let terms: [&[String]; 2] = [
            &settings.technical_terms,
            domain.map_or(&[], |d| d.technical_terms.as_slice()),
        ];
        // A question written in capitals has no acronyms to find.
        let (words, capitals) = tokens
            .iter()
            .filter(|t| !t.marker && !t.word.is_empty())
            .fold((0, 0), |(w, c), t| {
                (w + 1, c + usize::from(is_acronym(t.word)))
            });
        let acronyms = !(words >= 4 && capitals * 2 > words);

        let mut f = Self {
            words,
            ..Self::default()
        };
        let mut enumeration = 0;
        let mut and_also = false;
        let mut joined: Option<&'static str> = None;
        let mut term_until = 0;
        let mut operator_until = 0;
        let mut last_word_ends_sentence = false;
        for (i, token) in tokens.iter().enumerate() {
            if token.marker {
                enumeration += 1;
                continue;
            }
            if token.word.is_empty() {
                continue;
            }
            last_word_ends_sentence = token.ends_sentence;
            f.sentences += usize::from(token.ends_sentence);
            f.question_marks += usize::from(token.raw.contains('?'));

            if i >= term_until
                && let Some(len) = term_at(&tokens, i, &terms)
            {
                term_until = i + len;
            }
            if i < term_until || is_technical_shape(token, acronyms) {
                f.technical_terms += 1;
            }

            let mut buf = [0; 16];
            let lower = lowered(token.word, &mut buf);
            if i >= operator_until
                && let Some((op, len)) = operator_at(&tokens, i, lower)
            {
                f.operators.insert(op);
                f.logical_operators += 1;
                operator_until = i + len;
            }

            if is_negation(lower) {
                f.negations += 1;
            }

            if lower == "and" {
                let next = word_at(&tokens, i + 1);
                if next.eq_ignore_ascii_case("also") {
                    and_also = true;
                } else if joined.is_none() {
                    joined = QUESTION_WORDS
                        .iter()
                        .find(|q| next.eq_ignore_ascii_case(q))
                        .copied();
                }
            }
        }
        if f.words > 0 && !last_word_ends_sentence {
            f.sentences += 1;
        }
        f.technical_density = ratio(f.technical_terms, f.words);
        f.multi_part = if f.question_marks >= 2 {
            Some(MultiPart::QuestionMarks(f.question_marks))
        } else if enumeration >= 2 {
            Some(MultiPart::Enumeration(enumeration))
        } else if and_also {
            Some(MultiPart::AndAlso)
        } else {
            joined.map(MultiPart::JoinedQuestion)
        };
        f
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use rag_config::{Environment, RoutingWeights, Settings};

    use super::*;

    fn features(question: &str) -> QuestionFeatures {
        QuestionFeatures::of(question, None, &RoutingSettings::default())
    }

    fn features_in(question: &str, domain: &str) -> QuestionFeatures {
        let settings = Settings::default();
        QuestionFeatures::of(question, settings.domain(domain), &settings.router.routing)
    }

    fn decide(question: &str, domain: Option<&str>) -> RoutingDecision {
        let settings = Settings::default();
        analyse(
            question,
            domain.and_then(|d| settings.domain(d)),
            &settings.router.routing,
        )
    }

    fn operators(question: &str) -> (usize, Vec<&'static str>) {
        let f = features(question);
        (f.logical_operators, f.operators.names().collect())
    }

    /// A configuration file for one test, removed when dropped.
    struct TempConfig(PathBuf);

    impl TempConfig {
        fn new(name: &str, text: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("rag-routing-{}-{name}.toml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn no_env() -> Environment {
        Environment::Map(BTreeMap::new())
    }

    #[test]
    fn routing_table_of_sample_questions() {
        assert!(SAMPLE_QUESTIONS.len() >= 30);
        for domain in [Some("hr"), Some("legal"), Some("engineering"), None] {
            for tier in [Tier::Light, Tier::Strong] {
                assert!(
                    SAMPLE_QUESTIONS
                        .iter()
                        .any(|s| s.domain == domain && s.expected == tier),
                    "no {tier:?} sample in {domain:?}"
                );
            }
        }
        let wrong: Vec<String> = SAMPLE_QUESTIONS
            .iter()
            .filter_map(|s| {
                let decision = decide(s.question, s.domain);
                (decision.tier != s.expected).then(|| {
                    format!(
                        "{:?} {:?}: expected {:?}, got {:?} ({})",
                        s.domain,
                        s.question,
                        s.expected,
                        decision.tier,
                        decision.reasons.join("; ")
                    )
                })
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn counts_words_and_sentences() {
        let f = features("How long do I have to submit an expense claim?");
        assert_eq!((f.words, f.sentences, f.question_marks), (10, 1, 1));
        let f = features("The API returned ERR-4290. How many requests per minute are we allowed?");
        assert_eq!((f.words, f.sentences, f.question_marks), (12, 2, 1));
        // Abbreviations and decimals do not end sentences; a missing final stop does not
        // lose one.
        assert_eq!(
            features("Is e.g. the NDA vs. the MSA binding, i.e. which one").sentences,
            1
        );
        assert_eq!(features("It costs 2.5 euros. Why").sentences, 2);
        assert_eq!(features("Wait... what?").sentences, 2);
        assert_eq!(features("Really?! Yes.").sentences, 2);
        // Markers and punctuation are not words.
        assert_eq!(features("1) Who? 2) Where?").words, 2);
        assert_eq!(features("leave — and pay").words, 3);
        let empty = features("  ?! … ");
        assert_eq!((empty.words, empty.sentences), (0, 0));
        assert_eq!(features(""), QuestionFeatures::default());
    }

    #[test]
    fn finds_technical_terms_by_shape() {
        for term in [
            "ERR-4102",
            "3am",
            "SEV1",
            "€600",
            "NDA",
            "APIs",
            "max_retries",
            "SpendTrack",
            "maxRetries",
            "`kubectl`",
            "/v1/query",
            "config.toml",
            "--dry-run",
            "timeout=30",
            "Vec<u8>",
            "std::fs",
            "ops@example.com",
        ] {
            let f = features(&format!("What does {term} mean here?"));
            assert_eq!(f.technical_terms, 1, "{term}");
            assert_eq!(f.words, 5, "{term}");
        }
        for plain in [
            "e.g.", "I", "A", "on-call", "and/or", "Zürich", "don't", "Friday", "(a)",
        ] {
            assert_eq!(
                features(&format!("What does {plain} mean here?")).technical_terms,
                0,
                "{plain}"
            );
        }
        // Capitals everywhere are shouting, not acronyms.
        assert_eq!(features("WHY IS MY PAYSLIP LATE AGAIN").technical_terms, 0);
        assert_eq!(features("Why is my SEPA payment late").technical_terms, 1);
        let f = features("What does ERR-4102 mean?");
        assert_eq!(f.technical_terms, 1);
        assert!((f.technical_density - 0.25).abs() < 1e-6);
    }

    #[test]
    fn finds_configured_terms_and_phrases() {
        // engineering's terms: "error rate" (a phrase, any case, plural allowed), "rollback".
        let f = features_in("Which Error Rates trigger a rollback?", "engineering");
        assert_eq!(f.technical_terms, 3);
        // hr does not have them; the router-wide terms ("database") count everywhere.
        assert_eq!(
            features_in("Which error rates trigger a rollback?", "hr").technical_terms,
            0
        );
        assert_eq!(
            features_in("Is the HR database backed up?", "hr").technical_terms,
            2
        );
        assert_eq!(
            features("Is the payroll database backed up?").technical_terms,
            1
        );

        // The longest term wins and a word is counted once.
        let mut settings = RoutingSettings {
            technical_terms: vec!["rate".into(), "rate limit".into(), "limit".into()],
            ..RoutingSettings::default()
        };
        let f = QuestionFeatures::of("What rate limit applies?", None, &settings);
        assert_eq!(f.technical_terms, 2);
        settings.technical_terms.clear();
        let f = QuestionFeatures::of("What rate limit applies?", None, &settings);
        assert_eq!(f.technical_terms, 0);
    }

    #[test]
    fn finds_logical_operators() {
        for (question, count, names) in [
            ("Why was my claim rejected?", 1, vec!["why"]),
            ("Do I get paid if I am sick?", 1, vec!["if"]),
            (
                "Can I work abroad unless my manager objects?",
                1,
                vec!["unless"],
            ),
            (
                "Whereas the NDA says one year, what does the MSA say?",
                1,
                vec!["whereas"],
            ),
            ("Compare plan A versus plan B", 2, vec!["compare", "versus"]),
            ("Plan A vs. plan B, which one?", 1, vec!["versus"]),
            ("Explain the rollout", 1, vec!["explain"]),
            ("What is the difference?", 1, vec!["difference"]),
            ("What are the trade-offs?", 1, vec!["trade-off"]),
            ("What are the trade offs?", 1, vec!["trade-off"]),
            ("Pros and cons of remote work", 1, vec!["trade-off"]),
            ("What are the implications for us?", 1, vec!["implications"]),
            ("Tell me whether I qualify", 1, vec!["whether"]),
            ("Pay now, otherwise what?", 1, vec!["otherwise"]),
            // "what happens if/when" is one operator, not two.
            ("What happens if I resign?", 1, vec!["what happens if"]),
            (
                "What happens when the replica lags?",
                1,
                vec!["what happens if"],
            ),
            // Occurrences count; names are listed once.
            ("If I resign and if I return?", 2, vec!["if"]),
            // "when" that asks a question is not a condition.
            ("When is the postmortem draft due?", 0, vec![]),
            ("By when do I have to use it?", 0, vec![]),
            ("Who pays when the train is late?", 1, vec!["when"]),
            ("How many days do I get?", 0, vec![]),
        ] {
            assert_eq!(operators(question), (count, names), "{question}");
        }
    }

    #[test]
    fn detects_multi_part_questions() {
        for (question, expected) in [
            (
                "Who approves it? How long does it take?",
                Some(MultiPart::QuestionMarks(2)),
            ),
            (
                "List the holidays and also the office hours",
                Some(MultiPart::AndAlso),
            ),
            (
                "Tell me 1) the cap 2) the term",
                Some(MultiPart::Enumeration(2)),
            ),
            (
                "Tell me (a) the cap, (b) the term",
                Some(MultiPart::Enumeration(2)),
            ),
            (
                "Check:\n- leave\n- expenses",
                Some(MultiPart::Enumeration(2)),
            ),
            (
                "First question:\n1. leave\n2. expenses",
                Some(MultiPart::Enumeration(2)),
            ),
            (
                "What is the policy and how do I apply?",
                Some(MultiPart::JoinedQuestion("how")),
            ),
            ("How many days do I get?", None),
            (
                "Can I carry unused holiday over, and by when do I use it?",
                None,
            ),
            ("Upgrade to version 2. Then what?", None),
            ("Leave - and pay - are separate", None),
        ] {
            assert_eq!(features(question).multi_part, expected, "{question}");
        }
        // "2." inside a sentence is a number, and a word.
        assert_eq!(features("Upgrade to version 2. Then what?").words, 6);
    }

    #[test]
    fn counts_negations() {
        assert_eq!(
            features("Why can't I go without approval? Not now").negations,
            3
        );
        assert_eq!(features("I don’t know").negations, 1);
        assert_eq!(
            features("I cannot, and never will; nothing, no").negations,
            4
        );
        assert_eq!(features("Is snow a problem at night?").negations, 0);
    }

    #[test]
    fn legal_is_strong_unless_very_short() {
        let d = decide("What is the notice period?", Some("legal"));
        assert_eq!(d.tier, Tier::Light);
        assert_eq!(d.reasons[0], "legal domain defaults to strong");
        assert!(
            d.reasons[1].starts_with("short factual question"),
            "{:?}",
            d.reasons
        );

        let d = decide(
            "What is the liability cap in our vendor contracts?",
            Some("legal"),
        );
        assert_eq!(d.tier, Tier::Strong);
        assert!(
            d.reasons
                .iter()
                .any(|r| r.contains("longer than a short question"))
        );

        // Short, but with a logical operator or in several parts.
        assert_eq!(
            decide("Why is the NDA Dutch?", Some("legal")).tier,
            Tier::Strong
        );
        assert_eq!(decide("Term? Cap?", Some("legal")).tier, Tier::Strong);
    }

    #[test]
    fn hr_needs_a_higher_score_than_engineering() {
        let question = "Why can't I carry over leave if I was on sick leave?";
        let hr = decide(question, Some("hr"));
        let engineering = decide(question, Some("engineering"));
        assert!((hr.score - 2.5).abs() < 1e-6, "{}", hr.score);
        assert_eq!((hr.threshold, engineering.threshold), (3.0, 2.0));
        assert_eq!(hr.tier, Tier::Light);
        assert_eq!(engineering.tier, Tier::Strong);
        assert_eq!(decide(question, None).tier, Tier::Strong);
    }

    #[test]
    fn reasons_say_why() {
        let d = decide(
            "Explain the difference between the two plans, and why would I choose one?",
            Some("hr"),
        );
        assert_eq!(
            d.reasons,
            [
                "hr domain defaults to light",
                "3 logical operators (why, explain, difference)",
                "multi-part question (\"and why\")",
                "long question (13 words > 12)",
                "complexity score 4.08 reaches the strong threshold 3.00",
            ]
        );
        let d = decide("Who approves expense claims?", None);
        assert_eq!(
            d.reasons,
            [
                "no domain: light by default",
                "short factual question (4 words)",
                "complexity score 0.00 below the strong threshold 2.00",
            ]
        );
        let d = decide(
            "What does ERR-4102 mean? And ERR-4290?",
            Some("engineering"),
        );
        assert!(
            d.reasons.contains(&"2 sentences".to_owned()),
            "{:?}",
            d.reasons
        );
        assert!(
            d.reasons
                .contains(&"2 technical terms in 6 words (33%)".to_owned()),
            "{:?}",
            d.reasons
        );
        assert!(
            d.reasons
                .contains(&"multi-part question (2 question marks)".to_owned())
        );
    }

    #[test]
    fn score_is_the_capped_weighted_sum() {
        /// Routing settings where only the weights `set` sets count.
        fn only(set: impl FnOnce(&mut RoutingWeights)) -> RoutingSettings {
            let mut weights = RoutingWeights {
                per_extra_word: 0.0,
                per_extra_sentence: 0.0,
                technical_density: 0.0,
                per_logical_operator: 0.0,
                multi_part: 0.0,
                per_negation: 0.0,
            };
            set(&mut weights);
            RoutingSettings {
                weights,
                ..RoutingSettings::default()
            }
        }
        let question = "Why, if not now, and if never, compare and explain the trade-offs? Unless?";
        let score = |settings: RoutingSettings| analyse(question, None, &settings).score;
        assert_eq!(score(only(|_| {})), 0.0);
        // Seven operators, three counted; two negations; two sentences; two parts.
        assert_eq!(features(question).logical_operators, 7);
        assert_eq!(score(only(|w| w.per_logical_operator = 1.0)), 3.0);
        assert_eq!(score(only(|w| w.per_negation = 1.0)), 2.0);
        assert_eq!(score(only(|w| w.per_extra_sentence = 1.0)), 1.0);
        assert_eq!(score(only(|w| w.multi_part = 1.5)), 1.5);
        // Words beyond `free_words` (12).
        let long = "word ".repeat(22);
        let d = analyse(&long, None, &only(|w| w.per_extra_word = 0.1));
        assert!((d.score - 1.0).abs() < 1e-6, "{}", d.score);
        // The density is taken over at least ten words.
        let d = analyse("NDA?", None, &only(|w| w.technical_density = 2.0));
        assert!((d.score - 0.2).abs() < 1e-6, "{}", d.score);

        // With every weight at zero a light domain never leaves light, and a strong domain
        // still sends its longer questions to the strong tier.
        let settings = Settings::default();
        let complex = SAMPLE_QUESTIONS[7].question;
        let flat = only(|_| {});
        assert_eq!(
            analyse(complex, settings.domain("hr"), &flat).tier,
            Tier::Light
        );
        assert_eq!(
            analyse(complex, settings.domain("legal"), &flat).tier,
            Tier::Strong
        );
    }

    #[test]
    fn a_new_domain_is_a_configuration_change() {
        let config = TempConfig::new(
            "finance",
            r#"
[router.routing]
strong_threshold = 2.5
free_words = 10

[router.routing.weights]
multi_part = 2.0

[[domains]]
name = "finance"
description = "Budgets and reporting"
default_tier = "strong"
short_question_words = 5
technical_terms = ["ebitda", "accrual"]

[[domains]]
name = "support"
strong_threshold = 1.0
"#,
        );
        let settings = Settings::load(Some(&config.0), &no_env()).unwrap();
        let routing = &settings.router.routing;
        assert_eq!(routing.strong_threshold, 2.5);
        assert_eq!(routing.weights.multi_part, 2.0);
        assert_eq!(
            routing.weights.per_negation, 0.5,
            "unset weights keep defaults"
        );
        let finance = settings.domain("finance");
        let support = settings.domain("support");

        let d = analyse("What was Q3 EBITDA?", finance, routing);
        assert_eq!(d.tier, Tier::Light);
        assert_eq!(d.features.technical_terms, 2);
        let d = analyse("What was our EBITDA margin in Q3?", finance, routing);
        assert_eq!(d.tier, Tier::Strong, "{:?}", d.reasons);
        assert_eq!(d.reasons[0], "finance domain defaults to strong");

        let d = analyse("Why was my ticket closed?", support, routing);
        assert_eq!((d.tier, d.threshold), (Tier::Strong, 1.0));
        assert_eq!(d.reasons[0], "support domain defaults to light");
        assert_eq!(
            analyse("Where is my ticket?", support, routing).tier,
            Tier::Light
        );
    }

    #[test]
    fn routing_settings_are_validated() {
        let env = |key: &str, value: &str| {
            Environment::Map(BTreeMap::from([(key.to_owned(), value.to_owned())]))
        };
        let settings =
            Settings::load(None, &env("RAG__ROUTER__ROUTING__STRONG_THRESHOLD", "2.5")).unwrap();
        assert_eq!(settings.router.routing.strong_threshold, 2.5);
        for (key, value, named) in [
            (
                "RAG__ROUTER__ROUTING__STRONG_THRESHOLD",
                "0",
                "router.routing.strong_threshold",
            ),
            (
                "RAG__ROUTER__ROUTING__WEIGHTS__PER_NEGATION",
                "-1",
                "router.routing.weights",
            ),
            (
                "RAG__ROUTER__ROUTING__WEIGHTS__MULTI_PART",
                "inf",
                "router.routing.weights",
            ),
            (
                "RAG__ROUTER__ROUTING__DEFAULT_TIER",
                "medium",
                "default_tier",
            ),
        ] {
            let err = Settings::load(None, &env(key, value)).unwrap_err();
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
        for (name, text, named) in [
            (
                "threshold",
                "[[domains]]\nname = \"x\"\nstrong_threshold = -1.0",
                "domains.strong_threshold",
            ),
            (
                "terms",
                "[[domains]]\nname = \"x\"\ntechnical_terms = [\"ok\", \" \"]",
                "domains.technical_terms",
            ),
            (
                "global-terms",
                "[router.routing]\ntechnical_terms = [\"\"]",
                "router.routing.technical_terms",
            ),
            ("unknown", "[router.routing]\nthreshold = 1.0", "threshold"),
        ] {
            let config = TempConfig::new(name, text);
            let err = Settings::load(Some(&config.0), &no_env()).unwrap_err();
            assert!(err.to_string().contains(named), "{text}: {err}");
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let long = "Why does ERR-4102 happen if the cache_ttl is 0? ".repeat(40);
        for question in [
            "",
            " ",
            "?",
            "(",
            ")",
            "()",
            "--",
            "/",
            "…",
            "'s",
            "n't",
            "s",
            "S",
            "when",
            "what happens",
            "trade",
            "pros and",
            "and",
            "1.",
            "(ii)",
            "🙂🙂 ¿Qué pasa si no?",
            "Zürich’s “rules”… über-long—dash",
            "ÄÖÜ ÉCOLE ΣΙΓΜΑ",
            "a\u{a0}b\u{2003}c\r\nd",
            long.as_str(),
        ] {
            for domain in [None, Some("hr"), Some("legal"), Some("engineering")] {
                let d = decide(question, domain);
                assert!(d.score.is_finite(), "{question:?}");
                assert!(!d.reasons.is_empty());
            }
        }
        let d = decide(&long, Some("hr"));
        assert_eq!(d.tier, Tier::Strong);
        assert_eq!(d.features.words, 360);
    }
}
