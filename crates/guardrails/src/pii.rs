//! PII detection and masking: e-mail, phone, US SSN, payment card, IBAN.
//!
//! Each detector is a cheap candidate pattern (compiled once) followed by a validation in code:
//! context around the match, digit counts, Luhn for cards, mod-97 and country length for IBANs,
//! the invalid SSN ranges. Candidates are then resolved by priority (e-mail, IBAN, card, SSN,
//! phone) so that the result is sorted and non-overlapping.
//!
//! The phone rules are deliberately conservative, because documents are full of numbers: a
//! national number needs 9–15 digits in at least two groups; an international one starts with
//! `+` and has 8–15 digits. Years, dates, year lists, IPv4 addresses, dotted versions,
//! thousands-grouped amounts and money next to a currency are not phones. Unformatted digit
//! runs without `+` are not phones either (they are usually ids); the cost is missing
//! `5551234567` written without separators.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// A kind of personal data that is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PiiKind {
    Email,
    Phone,
    Ssn,
    CreditCard,
    Iban,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 5] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Ssn,
        PiiKind::CreditCard,
        PiiKind::Iban,
    ];

    /// A stable lowercase name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Ssn => "ssn",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Iban => "iban",
        }
    }

    /// The text that replaces a match of this kind.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Ssn => "[SSN]",
            PiiKind::CreditCard => "[CARD]",
            PiiKind::Iban => "[IBAN]",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of PII: its kind and byte range `start..end` in the text searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PiiMatch {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

impl PiiMatch {
    /// The byte range of the match.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// Masked text and how many matches of each kind were replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masked {
    pub text: String,
    pub counts: BTreeMap<PiiKind, usize>,
}

impl Masked {
    /// The number of replacements of all kinds.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }
}

/// Builds a pattern that is a compile-time constant; a failure is a bug caught by the tests.
fn pattern(re: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(re).expect("guardrail PII patterns are valid")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
    )
});
/// Uppercase only: IBANs are printed in capitals, and lowercase two-letter words followed by
/// digits are far more common in prose than lowercase IBANs.
static IBAN: LazyLock<Regex> = LazyLock::new(|| pattern(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}"));
/// Digit groups joined by single spaces or dashes (cards are validated group by group).
static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| pattern(r"[0-9]+(?:[ \-][0-9]+)*"));
static SSN: LazyLock<Regex> = LazyLock::new(|| pattern(r"[0-9]{3}-[0-9]{2}-[0-9]{4}"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"\+?(?:\([0-9]{1,5}\) ?)?[0-9]+(?:(?:[ .\-]| ?\([0-9]{1,5}\) ?)[0-9]+)*")
});

/// Finds the PII in `text`, sorted by position and non-overlapping.
///
/// Text without `@` or ASCII digits is rejected by one byte scan. Otherwise nothing is
/// allocated unless something matches, except a small buffer for each run of 13 or more digits
/// (a possible card).
pub fn find_pii(text: &str) -> Vec<PiiMatch> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let has_at = bytes.contains(&b'@');
    let has_digit = bytes.iter().any(u8::is_ascii_digit);
    // Detectors run in priority order; `accept` drops anything overlapping an earlier match.
    if has_at {
        find_emails(text, &mut found);
    }
    if has_digit {
        find_ibans(text, &mut found);
        find_cards(text, &mut found);
        find_ssns(text, &mut found);
        find_phones(text, &mut found);
    }
    found
}

/// Masks the PII in `text` and counts what was replaced.
pub fn mask_pii(text: &str) -> Masked {
    let mut counts = BTreeMap::new();
    let text = mask_with(text, Some(&mut counts)).into_owned();
    Masked { text, counts }
}

/// Masks the PII in `text`; borrows the input (no allocation) when there is nothing to mask.
pub fn mask_pii_cow(text: &str) -> Cow<'_, str> {
    mask_with(text, None)
}

fn mask_with<'a>(text: &'a str, mut counts: Option<&mut BTreeMap<PiiKind, usize>>) -> Cow<'a, str> {
    let mut matches = find_pii(text);
    if matches.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = replace(text, &matches, counts.as_deref_mut());
    // A placeholder can change the context of a neighbour that was rejected before (say a phone
    // glued to an e-mail), so mask again until nothing is left. Every pass removes at least one
    // digit or `@` and placeholders contain neither, so this ends.
    loop {
        matches = find_pii(&out);
        if matches.is_empty() {
            return Cow::Owned(out);
        }
        out = replace(&out, &matches, counts.as_deref_mut());
    }
}

fn replace(
    text: &str,
    matches: &[PiiMatch],
    mut counts: Option<&mut BTreeMap<PiiKind, usize>>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in matches {
        out.push_str(text.get(last..m.start).unwrap_or_default());
        out.push_str(m.kind.placeholder());
        last = m.end;
        if let Some(counts) = counts.as_deref_mut() {
            *counts.entry(m.kind).or_insert(0) += 1;
        }
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

/// Adds `m` unless it overlaps a match already accepted (which has priority); keeps the vector
/// sorted by start.
fn accept(found: &mut Vec<PiiMatch>, m: PiiMatch) {
    let at = found.partition_point(|f| f.start < m.start);
    if at > 0 && found.get(at - 1).is_some_and(|p| p.end > m.start) {
        return;
    }
    if found.get(at).is_some_and(|n| n.start < m.end) {
        return;
    }
    found.insert(at, m);
}

fn char_before(text: &str, at: usize) -> Option<char> {
    text.get(..at).and_then(|s| s.chars().next_back())
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text.get(at..).and_then(|s| s.chars().next())
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// True when the match ending at `end` continues as a longer number (`.5`, `,00`, `-12`, `/3`,
/// `:30`), is a percentage, or is glued to a word.
fn continues_number(text: &str, end: usize) -> bool {
    let Some(rest) = text.get(end..) else {
        return false;
    };
    let mut chars = rest.chars();
    match chars.next() {
        Some(c) if is_word(c) || c == '%' => true,
        Some('.' | ',' | '-' | '/' | ':') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

fn find_emails(text: &str, found: &mut Vec<PiiMatch>) {
    for m in EMAIL.find_iter(text) {
        // A local part cannot start with a dot or hold two in a row ("see...john@x.org").
        let found_text = m.as_str();
        let local = found_text.split('@').next().unwrap_or_default();
        let from = local.rfind("..").map_or(0, |i| i + 2);
        let rest = found_text.get(from..).unwrap_or_default();
        let start = m.start() + from + (rest.len() - rest.trim_start_matches('.').len());
        if text.get(start..).is_some_and(|s| s.starts_with('@')) {
            continue;
        }
        accept(
            found,
            PiiMatch {
                kind: PiiKind::Email,
                start,
                end: m.end(),
            },
        );
    }
}

fn find_ibans(text: &str, found: &mut Vec<PiiMatch>) {
    for m in IBAN.find_iter(text) {
        if char_before(text, m.start()).is_some_and(is_word) {
            continue;
        }
        if let Some(len) = iban_len(m.as_str())
            && !char_after(text, m.start() + len).is_some_and(is_word)
        {
            accept(
                found,
                PiiMatch {
                    kind: PiiKind::Iban,
                    start: m.start(),
                    end: m.start() + len,
                },
            );
        }
    }
}

/// The byte length of the longest valid IBAN at the start of `s` (which has only ASCII capitals,
/// digits and single spaces), if any.
fn iban_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let expected = bytes.get(..2).and_then(country_iban_len);
    // Candidate ends: after each alphanumeric that is followed by a space or the end.
    let mut ends = [(0usize, 0usize); 40]; // (compact length, byte end)
    let mut n_ends = 0;
    let mut compact = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b' ' {
            // Spaces may only separate groups of four.
            if compact % 4 != 0 {
                break;
            }
            continue;
        }
        compact += 1;
        if compact > 34 {
            break;
        }
        let at_group_end = bytes.get(i + 1).is_none_or(|&n| n == b' ');
        if at_group_end && compact >= 15 && n_ends < ends.len() {
            ends[n_ends] = (compact, i + 1);
            n_ends += 1;
        }
    }
    ends[..n_ends]
        .iter()
        .rev()
        .filter(|(len, _)| expected.is_none_or(|e| e == *len))
        .find(|(_, end)| s.get(..*end).is_some_and(iban_checksum_ok))
        .map(|(_, end)| *end)
}

/// The ISO 13616 mod-97 check: the four leading characters moved to the end, letters as 10–35,
/// the number modulo 97 is 1. Check digits 00, 01 and 99 are never issued.
fn iban_checksum_ok(iban: &str) -> bool {
    let compact = iban.bytes().filter(|b| *b != b' ');
    let check = iban.as_bytes().get(2..4);
    if matches!(check, Some(b"00" | b"01" | b"99") | None) {
        return false;
    }
    let mut rem: u32 = 0;
    for b in compact.clone().skip(4).chain(compact.take(4)) {
        rem = match b {
            b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// IBAN lengths by country (SWIFT IBAN registry); unknown countries use the generic 15–34.
fn country_iban_len(country: &[u8]) -> Option<usize> {
    let len = match country {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        _ => return None,
    };
    Some(len)
}

fn find_cards(text: &str, found: &mut Vec<PiiMatch>) {
    for run in DIGIT_RUN.find_iter(text) {
        let digits = run.as_str().bytes().filter(u8::is_ascii_digit).count();
        if digits < 13 {
            continue;
        }
        // Group byte ranges, absolute.
        let groups: Vec<(usize, usize)> = split_groups(run.as_str())
            .map(|(s, e)| (run.start() + s, run.start() + e))
            .collect();
        // A first group glued to a word, a decimal point or a `+` (a phone) is not a card's.
        let glued = char_before(text, run.start())
            .is_some_and(|c| is_word(c) || matches!(c, '.' | ',' | '+'));
        let mut i = usize::from(glued);
        while i < groups.len() {
            let mut taken = None;
            // Longest window first; a card has at most five groups (4-4-4-4-3).
            for j in (i..groups.len().min(i + 5)).rev() {
                if let Some(window) = groups.get(i..=j)
                    && card_window_ok(text, window)
                {
                    taken = Some(j);
                    break;
                }
            }
            match taken {
                Some(j) => {
                    if let (Some(first), Some(last)) = (groups.get(i), groups.get(j)) {
                        accept(
                            found,
                            PiiMatch {
                                kind: PiiKind::CreditCard,
                                start: first.0,
                                end: last.1,
                            },
                        );
                    }
                    i = j + 1;
                }
                None => i += 1,
            }
        }
    }
}

/// The digit groups of a run of digits separated by single non-digits, as byte ranges.
fn split_groups(run: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = run.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while bytes.get(i).is_some_and(|b| !b.is_ascii_digit()) {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some((start, i))
    })
}

/// A window of groups is a card when its shape is a printed card layout (one block, fours, or
/// the 4-6-5 / 4-6-4 of Amex and Diners), its separators agree, it starts with a major-network
/// digit (2–6) and it passes Luhn.
fn card_window_ok(text: &str, window: &[(usize, usize)]) -> bool {
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return false;
    };
    if continues_number(text, last.1) && window.len() == 1 {
        return false;
    }
    let lens = window.iter().map(|(s, e)| e - s);
    let total: usize = lens.clone().sum();
    if !(13..=19).contains(&total) {
        return false;
    }
    let shape_ok = match window.len() {
        1 => true,
        3 if lens.clone().take(2).eq([4, 6]) => matches!(last.1 - last.0, 4 | 5),
        n => {
            n >= 3
                && lens.clone().take(n - 1).all(|l| l == 4)
                && (1..=4).contains(&(last.1 - last.0))
        }
    };
    if !shape_ok {
        return false;
    }
    let seps = window.windows(2).filter_map(|w| text.get(w[0].1..w[1].0));
    let mut seps_iter = seps.clone();
    if let Some(sep) = seps_iter.next()
        && !seps_iter.all(|s| s == sep)
    {
        return false;
    }
    let Some(span) = text.get(first.0..last.1) else {
        return false;
    };
    if !matches!(span.as_bytes().first(), Some(b'2'..=b'6')) {
        return false;
    }
    if window.len() > 1 && (char_after(text, last.1).is_some_and(is_word)) {
        return false;
    }
    luhn_ok(span.bytes().filter(u8::is_ascii_digit))
}

/// The Luhn checksum over the digits (ASCII bytes), most significant first.
fn luhn_ok(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

fn find_ssns(text: &str, found: &mut Vec<PiiMatch>) {
    for m in SSN.find_iter(text) {
        if char_before(text, m.start())
            .is_some_and(|c| is_word(c) || matches!(c, '-' | '.' | ',' | '/'))
            || continues_number(text, m.end())
        {
            continue;
        }
        if ssn_valid(m.as_str()) {
            accept(
                found,
                PiiMatch {
                    kind: PiiKind::Ssn,
                    start: m.start(),
                    end: m.end(),
                },
            );
        }
    }
}

/// `AAA-GG-SSSS` outside the never-issued ranges: area 000, 666, 900–999; group 00; serial 0000.
fn ssn_valid(s: &str) -> bool {
    let (Some(area), Some(group), Some(serial)) = (s.get(0..3), s.get(4..6), s.get(7..11)) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

fn find_phones(text: &str, found: &mut Vec<PiiMatch>) {
    for m in PHONE.find_iter(text) {
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if digits < 8 {
            continue;
        }
        if phone_context_rejects(text, m.start()) {
            continue;
        }
        // The whole span, then shorter prefixes ending at a space-separated group ("call
        // 555-123-4567 2 times").
        let span = m.as_str();
        let mut end = span.len();
        while let Some(candidate) = span.get(..end) {
            let after = m.start() + end;
            let tail_ok = if end == span.len() {
                !continues_number(text, after) && !currency_after(text, after)
            } else {
                true
            };
            if tail_ok && phone_shape_ok(candidate) {
                accept(
                    found,
                    PiiMatch {
                        kind: PiiKind::Phone,
                        start: m.start(),
                        end: after,
                    },
                );
                break;
            }
            // Drop the last space-separated group, but only when what is left uses another
            // separator ("555-123-4567 2"): in "4111 1111 1111 1112" the groups belong together.
            let Some(space) = candidate.rfind(' ') else {
                break;
            };
            let shorter = candidate
                .get(..space)
                .unwrap_or_default()
                .trim_end_matches(['(', ' ']);
            let last_sep = shorter.bytes().rev().find(|b| !b.is_ascii_digit());
            if matches!(last_sep, Some(b' ') | None) {
                break;
            }
            end = shorter.len();
            if end == 0 {
                break;
            }
        }
    }
}

/// Numbers glued to a word, a decimal point, a minus, a currency symbol or an "ISBN" are not
/// phone numbers.
fn phone_context_rejects(text: &str, start: usize) -> bool {
    let Some(before) = text.get(..start) else {
        return true;
    };
    match before.chars().next_back() {
        None => false,
        Some(c) if is_word(c) || matches!(c, '.' | ',' | '-' | '/' | '+' | '=' | '#' | '@') => true,
        Some(c) if is_currency(c) => true,
        Some(' ') => {
            let rest = before
                .get(..before.len() - 1)
                .unwrap_or_default()
                .trim_end();
            rest.ends_with(is_currency)
                || rest
                    .rsplit(|c: char| !c.is_alphanumeric())
                    .next()
                    .is_some_and(|w| {
                        ["isbn", "version", "build", "ver"]
                            .iter()
                            .any(|k| w.eq_ignore_ascii_case(k))
                    })
        }
        Some(_) => false,
    }
}

fn is_currency(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '₹' | '₽' | '¢')
}

/// An amount: the number is followed by a currency symbol or code.
fn currency_after(text: &str, end: usize) -> bool {
    let rest = text.get(end..).unwrap_or_default().trim_start_matches(' ');
    if rest.starts_with(is_currency) {
        return true;
    }
    ["EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD"]
        .iter()
        .any(|code| {
            rest.starts_with(code) && !rest[code.len()..].starts_with(|c: char| c.is_alphanumeric())
        })
}

/// The digit-group rules that tell a phone number from the other numbers in documents.
fn phone_shape_ok(span: &str) -> bool {
    let digits = span.bytes().filter(u8::is_ascii_digit).count();
    if let Some(rest) = span.strip_prefix('+') {
        // International: country code (no leading zero) and 8–15 digits (E.164 allows 15).
        return (8..=15).contains(&digits) && !rest.starts_with('0');
    }
    if !(9..=15).contains(&digits) {
        return false;
    }
    // At most six groups, read into a fixed array (no allocation on the hot path).
    let mut groups = [""; 6];
    let mut n = 0;
    for (s, e) in split_groups(span) {
        let Some(slot) = groups.get_mut(n) else {
            return false;
        };
        *slot = span.get(s..e).unwrap_or_default();
        n += 1;
    }
    let groups = &groups[..n];
    if n < 2 {
        return false;
    }
    // Every group after the first has two digits or more ("1 2 3 4 5 6 7 8 9" is a list).
    if groups.iter().skip(1).any(|g| g.len() < 2) {
        return false;
    }
    // The one separator used throughout, if there is exactly one kind.
    let mut seps = span.bytes().filter(|b| !b.is_ascii_digit());
    let first_sep = seps.next();
    let only = |c: u8| first_sep == Some(c) && seps.clone().all(|s| s == c);
    let lens = |i: usize| groups.get(i).map_or(0, |g| g.len());
    // SSN shape (valid or not): never a phone.
    if n == 3 && (lens(0), lens(1), lens(2)) == (3, 2, 4) && only(b'-') {
        return false;
    }
    // IPv4 address.
    if n == 4 && only(b'.') && groups.iter().all(|g| g.len() <= 3) {
        return false;
    }
    // Thousands grouping: "1 000 000 000", "12.345.678.901".
    let thousands = groups.iter().skip(1).all(|g| g.len() == 3);
    if thousands && (only(b'.') || (lens(0) <= 3 && n >= 4)) {
        return false;
    }
    // Years and dates: "2019 2020 2021", "2024-01-15 10", "15.01.2024 ...".
    let year = |g: &str| g.len() == 4 && (g.starts_with("19") || g.starts_with("20"));
    if groups.iter().all(|g| year(g)) {
        return false;
    }
    let small =
        |s: &str, max: u32| s.len() <= 2 && s.parse::<u32>().is_ok_and(|v| (1..=max).contains(&v));
    if let [a, b, c, ..] = groups {
        if year(a) && small(b, 12) && small(c, 31) {
            return false;
        }
        if small(a, 31) && small(b, 12) && year(c) {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        find_pii(text)
            .into_iter()
            .map(|m| (m.kind, &text[m.range()]))
            .collect()
    }

    fn assert_masked(text: &str, kind: PiiKind, expected: &str) {
        let found = kinds(text);
        assert_eq!(found, vec![(kind, expected)], "in {text:?}");
    }

    fn assert_clean(text: &str) {
        assert_eq!(kinds(text), vec![], "in {text:?}");
        assert!(matches!(mask_pii_cow(text), Cow::Borrowed(_)));
    }

    #[test]
    fn patterns_compile() {
        for re in [&EMAIL, &IBAN, &DIGIT_RUN, &SSN, &PHONE] {
            assert!(!re.as_str().is_empty());
        }
    }

    #[test]
    fn emails() {
        for (text, email) in [
            (
                "write to jane.doe@example.com today",
                "jane.doe@example.com",
            ),
            ("<a.b+tag@mail.co.uk>", "a.b+tag@mail.co.uk"),
            (
                "mailto:ops-team_1@sub.example.io.",
                "ops-team_1@sub.example.io",
            ),
            ("see...john@x.org", "john@x.org"),
            ("USER@EXAMPLE.COM", "USER@EXAMPLE.COM"),
        ] {
            assert_masked(text, PiiKind::Email, email);
        }
        for text in [
            "@home",
            "a@b",
            "user@localhost",
            "price @ 5 EUR",
            "x@y.z",
            "@example.com",
        ] {
            assert_clean(text);
        }
    }

    #[test]
    fn phones() {
        for (text, phone) in [
            ("Call +1 555 123 4567.", "+1 555 123 4567"),
            ("Call +1-555-123-4567 now", "+1-555-123-4567"),
            ("tel +44 20 7946 0958", "+44 20 7946 0958"),
            ("tel +44 (0) 20 7946 0958", "+44 (0) 20 7946 0958"),
            ("mobile +4915112345678", "+4915112345678"),
            ("office (555) 123-4567", "(555) 123-4567"),
            ("office (555)123-4567", "(555)123-4567"),
            ("555-123-4567", "555-123-4567"),
            ("Tel:555.123.4567", "555.123.4567"),
            ("appelez le 06 12 34 56 78", "06 12 34 56 78"),
            ("Berlin 030 1234567", "030 1234567"),
            ("London 020 7946 0958", "020 7946 0958"),
            ("call 555-123-4567 2 times", "555-123-4567"),
            ("call (555) 123-4567 2 times", "(555) 123-4567"),
            ("1-800-555-0199", "1-800-555-0199"),
        ] {
            assert_masked(text, PiiKind::Phone, phone);
        }
        for text in [
            "In 2024 we grew.",
            "between 1999 and 2024",
            "released 2024-01-15",
            "released 15.01.2024",
            "at 2024-01-15 10:30",
            "see section 3.2.1",
            "version 10.0.19041.1234",
            "v1.2.3",
            "costs $1,234,567.89",
            "costs € 1.234.567.890",
            "costs 1 234 567 890 EUR",
            "population 1 000 000 000",
            "pages 1234 and 5678",
            "fiscal years 2019 2020 2021",
            "host 192.168.100.200",
            "order 1234567890",
            "the ratio 123456789",
            "ISBN 978-3-16-148410-0",
            "1 2 3 4 5 6 7 8 9",
            "4111 1111 1111 1112",
            "4111-1111-1111-1112",
            "id ABC555-123-4567",
            "+1234",
            "-555-123-4567",
            "99.5%",
        ] {
            assert_clean(text);
        }
    }

    #[test]
    fn ssns() {
        for (text, ssn) in [
            ("SSN 123-45-6789", "123-45-6789"),
            ("ssn:078-05-1120.", "078-05-1120"),
            ("899-99-9999", "899-99-9999"),
        ] {
            assert_masked(text, PiiKind::Ssn, ssn);
        }
        for text in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert_clean(text);
        }
        // Longer or glued numbers are not SSNs (they may still be other numbers).
        for text in [
            "1123-45-6789",
            "123-45-67890",
            "A123-45-6789",
            "123-45-6789-1",
        ] {
            assert!(
                find_pii(text).iter().all(|m| m.kind != PiiKind::Ssn),
                "in {text:?}"
            );
        }
    }

    #[test]
    fn cards() {
        for (text, card) in [
            ("card 4111111111111111 exp", "4111111111111111"),
            ("card 4111 1111 1111 1111.", "4111 1111 1111 1111"),
            ("card 4111-1111-1111-1111", "4111-1111-1111-1111"),
            ("mc 5500 0055 5555 5559", "5500 0055 5555 5559"),
            ("amex 3782 822463 10005", "3782 822463 10005"),
            ("amex 378282246310005", "378282246310005"),
            ("discover 6011111111111117", "6011111111111117"),
            ("visa13 4222222222222", "4222222222222"),
            ("4111 1111 1111 1111 2024", "4111 1111 1111 1111"),
        ] {
            assert_masked(text, PiiKind::CreditCard, card);
        }
        for text in [
            "4111111111111112",
            "4111 1111 1111 1112",
            "4111-1111 1111-1111",
            "1111111111111117",
            "41111111111111111111111",
            "x4111111111111111",
            "411 11111 1111 1111",
            "0.4111111111111111",
        ] {
            assert_clean(text);
        }
    }

    #[test]
    fn ibans() {
        for (text, iban) in [
            (
                "IBAN DE89 3704 0044 0532 0130 00 please",
                "DE89 3704 0044 0532 0130 00",
            ),
            ("IBAN DE89370400440532013000.", "DE89370400440532013000"),
            ("GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32"),
            (
                "FR14 2004 1010 0505 0001 3M02 606",
                "FR14 2004 1010 0505 0001 3M02 606",
            ),
            ("NL91 ABNA 0417 1643 00", "NL91 ABNA 0417 1643 00"),
            (
                "ES91 2100 0418 4502 0005 1332",
                "ES91 2100 0418 4502 0005 1332",
            ),
            (
                "IT60 X054 2811 1010 0000 0123 456",
                "IT60 X054 2811 1010 0000 0123 456",
            ),
            ("NO93 8601 1117 947", "NO93 8601 1117 947"),
            (
                "pay DE89 3704 0044 0532 0130 00 EUR 40",
                "DE89 3704 0044 0532 0130 00",
            ),
        ] {
            assert_masked(text, PiiKind::Iban, iban);
        }
        for text in [
            // Bad checksums.
            "DE88 3704 0044 0532 0130 00",
            "GB82 WEST 1234 5698 7654 33",
            // Valid checksum, wrong length for Germany (a digit dropped and fixed up is unlikely;
            // a known country with the wrong length is rejected whatever the checksum).
            "DE89 3704 0044 0532 0130 0",
            // Spaces not in groups of four.
            "DE89 370 40044 0532 0130 00",
            "XDE89 3704 0044 0532 0130 00",
        ] {
            assert!(
                find_pii(text).iter().all(|m| m.kind != PiiKind::Iban),
                "in {text:?}"
            );
        }
    }

    #[test]
    fn iban_generic_rule_for_unknown_countries() {
        // "ZZ" is not a registry country: any length 15–34 with a valid checksum.
        let mut body = *b"ZZ00123456789012";
        // Compute the check digits for ZZ + body.
        let bban = "123456789012";
        let mut rem = 0u32;
        for b in bban.bytes().chain(*b"ZZ00") {
            rem = match b {
                b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
                _ => (rem * 100 + u32::from(b - b'A') + 10) % 97,
            };
        }
        let check = 98 - rem;
        body[2] = b'0' + (check / 10) as u8;
        body[3] = b'0' + (check % 10) as u8;
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(kinds(text), vec![(PiiKind::Iban, text)]);
    }

    #[test]
    fn luhn() {
        assert!(luhn_ok(b"79927398713".iter().copied()));
        assert!(!luhn_ok(b"79927398710".iter().copied()));
    }

    #[test]
    fn masking_output_is_exact() {
        let text = "Contact jane@example.com or +1 555 123 4567; SSN 123-45-6789, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00. Year 2024, section 3.2.1.";
        let masked = mask_pii(text);
        assert_eq!(
            masked.text,
            "Contact [EMAIL] or [PHONE]; SSN [SSN], card [CARD], IBAN [IBAN]. Year 2024, section 3.2.1."
        );
        for kind in PiiKind::ALL {
            assert_eq!(masked.counts.get(&kind), Some(&1), "{kind}");
        }
        assert_eq!(masked.total(), 5);
        assert_eq!(mask_pii_cow(text), masked.text);
    }

    #[test]
    fn no_pii_borrows() {
        let text = "Plain prose with a year 2024 and a version 1.2.3.";
        assert!(matches!(mask_pii_cow(text), Cow::Borrowed(t) if t == text));
        let masked = mask_pii(text);
        assert_eq!(masked.text, text);
        assert!(masked.counts.is_empty());
    }

    #[test]
    fn matches_are_sorted_and_disjoint() {
        let text = "555-123-4567 a@b.co 123-45-6789 4111111111111111 a@b.co";
        let found = find_pii(text);
        assert_eq!(found.len(), 5);
        assert!(found.windows(2).all(|w| w[0].end <= w[1].start));
    }

    #[test]
    fn rejected_neighbours_are_masked_after_a_placeholder() {
        let masked = mask_pii("x@y.co555 123 4567");
        assert!(find_pii(&masked.text).is_empty(), "{}", masked.text);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn pii_soup() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("a@b.co".to_owned()),
                Just("+1 555 123 4567".to_owned()),
                Just("123-45-6789".to_owned()),
                Just("4111 1111 1111 1111".to_owned()),
                Just("DE89 3704 0044 0532 0130 00".to_owned()),
                "[0-9 .+()@-]{0,12}",
                "[a-zA-Z0-9 ]{0,6}",
                "\\PC{0,4}",
            ];
            prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
        }

        proptest! {
            #[test]
            fn masking_is_total_and_complete(text in "\\PC{0,200}") {
                let masked = mask_pii(&text);
                prop_assert!(find_pii(&masked.text).is_empty());
            }

            #[test]
            fn masking_pii_soup_is_complete(text in pii_soup()) {
                let found = find_pii(&text);
                for m in &found {
                    prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
                    prop_assert!(m.start < m.end);
                }
                prop_assert!(found.windows(2).all(|w| w[0].end <= w[1].start));
                let masked = mask_pii(&text);
                prop_assert!(find_pii(&masked.text).is_empty(), "{:?} -> {:?}", text, masked.text);
                prop_assert_eq!(mask_pii_cow(&text), masked.text.as_str());
            }
        }
    }
}
