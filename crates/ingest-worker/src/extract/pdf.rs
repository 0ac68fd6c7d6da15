//! PDF: the text layer, page by page, so chunks can cite their page.
//!
//! Text comes from `pdf-extract` (on `lopdf`), which places glyphs by their positions and so
//! puts spaces between words and line breaks between lines even when the PDF draws each word
//! or glyph separately (as Word's exporter does); `lopdf`'s own `extract_text` concatenates
//! the strings and runs such words together. The parser is not hardened against hostile
//! files and panics on some, so each page runs under `catch_unwind`: a page that cannot be
//! read is skipped with a warning, a document none of whose pages can be read is damaged.
//!
//! Running headers, footers and page numbers are removed here, across pages
//! ([`normalize::strip_page_furniture`]), before the per-page cleaning.
//!
//! Hostile PDFs are stopped before the parser sees what would hurt it (a panic is caught; a
//! stack overflow or an allocation of gigabytes is not):
//! * decompression bombs: every compressed stream is inflated first into a counter, and the
//!   file is refused once they expand past [`MAX_DECODED`] bytes together (the parser would
//!   inflate object streams on load and content streams per page, without a cap);
//! * loops: a page whose `Parent` chain loops or runs deeper than [`MAX_DEPTH`] (the text
//!   extractor looks up inherited attributes recursively), and form XObjects that draw
//!   themselves or nest deeper than [`MAX_FORM_DEPTH`] (drawn recursively too), or expand to
//!   more than [`MAX_FORMS_PER_PAGE`] drawings on one page (a small diamond-shaped graph
//!   drawn twice per level is exponential); the page tree itself is walked by `lopdf` with
//!   depth and iteration limits;
//! * nesting inside objects: `lopdf` caps brackets at 100 levels;
//! * time: the budget's clock is read between streams and between pages.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::content::Content;
use pdf_extract::{Dictionary, Document, Object, ObjectId, PlainTextOutput};

use super::{Budget, DocumentType, ExtractError, Extracted, MAX_DEPTH, paged_sections};
use crate::normalize;

const KIND: &str = "PDF";

/// Most bytes all compressed streams of one PDF may expand to together.
pub const MAX_DECODED: u64 = 256 * 1024 * 1024;
/// How deeply form XObjects may draw one another.
pub const MAX_FORM_DEPTH: usize = 16;
/// Form XObjects drawn on one page, counting each time one is drawn.
pub const MAX_FORMS_PER_PAGE: usize = 10_000;

pub(super) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    check_streams(bytes, budget)?;
    let pages = pages(bytes, budget)?;
    if pages.iter().all(|p| p.trim().is_empty()) {
        return Err(ExtractError::NoTextLayer);
    }
    let pages = normalize::strip_page_furniture(&pages);
    Ok(Extracted {
        kind: DocumentType::Pdf,
        title: None,
        sections: paged_sections(pages),
    })
}

fn corrupt(detail: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt {
        kind: KIND,
        detail: detail.to_string(),
    }
}

/// The text of every page, in page order (blank for a page without text).
fn pages(bytes: &[u8], budget: &Budget) -> Result<Vec<String>, ExtractError> {
    let mut document = catch_unwind(|| Document::load_mem(bytes))
        .map_err(|_| corrupt("the parser could not read its structure"))?
        .map_err(|e| match e {
            pdf_extract::Error::Decryption(_) | pdf_extract::Error::InvalidPassword => {
                ExtractError::Encrypted
            }
            other => corrupt(other),
        })?;
    if document.is_encrypted() {
        // Many PDFs are "encrypted" with an empty user password only to restrict printing
        // or copying; those open without one.
        let decrypted = catch_unwind(AssertUnwindSafe(|| document.decrypt("")));
        if !matches!(decrypted, Ok(Ok(()))) {
            return Err(ExtractError::Encrypted);
        }
        // The raw scan saw ciphertext, which inflates to nothing: count again, decrypted.
        check_loaded_streams(&document, budget)?;
    }
    budget.check_time()?;
    let page_ids = document.get_pages();
    if page_ids.is_empty() {
        return Err(corrupt("it has no pages"));
    }
    if page_ids.len() > super::MAX_SECTIONS {
        return Err(super::too_many_sections(KIND));
    }
    check_structure(&document, &page_ids, budget)?;
    let numbers: Vec<u32> = page_ids.into_keys().collect();
    let mut pages = Vec::with_capacity(numbers.len());
    let mut unreadable = 0usize;
    let mut text_bytes = 0usize;
    for number in numbers {
        budget.check_time()?;
        let mut text = String::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut output = PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&document, &mut output, number)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                unreadable += 1;
                tracing::warn!(page = number, error = %e, "skipping a PDF page that cannot be read");
                text.clear();
            }
            Err(_) => {
                unreadable += 1;
                tracing::warn!(page = number, "skipping a PDF page the parser failed on");
                text.clear();
            }
        }
        text_bytes += text.len();
        budget.check_text(KIND, text_bytes)?;
        pages.push(text);
    }
    if unreadable == pages.len() {
        return Err(corrupt("none of its pages can be read"));
    }
    Ok(pages)
}

/// Inflates every compressed stream into a counter; fails once they expand past
/// [`MAX_DECODED`] bytes together. Streams are found by their `stream` keyword after a
/// dictionary's `>>`, their filters read from the text before it (every `/Filter` entry
/// there is tried, the largest expansion counts, so a decoy entry cannot hide the real
/// one), and each is decoded from its start to the end of its own compressed data,
/// whatever its `/Length` says.
fn check_streams(bytes: &[u8], budget: &Budget) -> Result<(), ExtractError> {
    let bomb = ExtractError::Bomb {
        kind: KIND,
        limit: MAX_DECODED,
    };
    let mut total = 0u64;
    let mut previous = 0usize;
    let mut from = 0usize;
    while let Some(at) = find(&bytes[from..], b"stream") {
        let keyword = from + at;
        from = keyword + b"stream".len();
        let before = bytes[..keyword].trim_ascii_end();
        if !before.ends_with(b">>") {
            continue;
        }
        let mut start = from;
        if bytes.get(start) == Some(&b'\r') {
            start += 1;
        }
        if bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        let window = &bytes[previous.max(keyword.saturating_sub(64 * 1024))..keyword];
        previous = keyword;
        let data = &bytes[start.min(bytes.len())..];
        let mut largest = 0u64;
        for filters in filter_entries(window) {
            let decoded = decoded_len(data, &filters, MAX_DECODED - total + 1);
            largest = largest.max(decoded);
        }
        total += largest;
        if total > MAX_DECODED {
            return Err(bomb);
        }
        budget.check_time()?;
    }
    Ok(())
}

/// [`check_streams`] on a loaded document's streams, with their parsed filters.
fn check_loaded_streams(document: &Document, budget: &Budget) -> Result<(), ExtractError> {
    let mut total = 0u64;
    for object in document.objects.values() {
        let Object::Stream(stream) = object else {
            continue;
        };
        let filters: Vec<Filter> = stream
            .filters()
            .unwrap_or_default()
            .into_iter()
            .map_while(filter)
            .collect();
        total += decoded_len(&stream.content, &filters, MAX_DECODED - total + 1);
        if total > MAX_DECODED {
            return Err(ExtractError::Bomb {
                kind: KIND,
                limit: MAX_DECODED,
            });
        }
        budget.check_time()?;
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The filters `lopdf` decodes, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    Flate,
    Lzw,
    Ascii85,
}

fn filter(name: &[u8]) -> Option<Filter> {
    match name {
        b"FlateDecode" => Some(Filter::Flate),
        b"LZWDecode" => Some(Filter::Lzw),
        b"ASCII85Decode" => Some(Filter::Ascii85),
        _ => None,
    }
}

/// Each `/Filter` entry in `text`: a name or an array of names, in decoding order, up to
/// the first filter `lopdf` does not decode (where it stops too).
fn filter_entries(text: &[u8]) -> Vec<Vec<Filter>> {
    let mut entries = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&text[from..], b"/Filter") {
        let mut rest = text[from + at + b"/Filter".len()..].trim_ascii_start();
        from += at + 1;
        let names: Vec<&[u8]> = if let Some(array) = rest.strip_prefix(b"[") {
            let end = array.iter().position(|&b| b == b']').unwrap_or(array.len());
            array[..end]
                .split(|&b| b == b'/')
                .skip(1)
                .map(<[u8]>::trim_ascii)
                .collect()
        } else if let Some(name) = rest.strip_prefix(b"/") {
            rest = name;
            let end = rest
                .iter()
                .position(|&b| b.is_ascii_whitespace() || b"/[]<>()".contains(&b))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        } else {
            continue;
        };
        let filters: Vec<Filter> = names.into_iter().map_while(filter).collect();
        if !filters.is_empty() {
            entries.push(filters);
        }
    }
    entries
}

/// How many bytes `data` decodes to through `filters`, counting at most `limit`; every
/// stage but the last is kept in memory (at most `limit` bytes each).
fn decoded_len(data: &[u8], filters: &[Filter], limit: u64) -> u64 {
    let Some((last, first)) = filters.split_last() else {
        return 0;
    };
    let mut input = std::borrow::Cow::Borrowed(data);
    for filter in first {
        let mut stage = Capped::new(Vec::new(), limit);
        decode(*filter, &input, &mut stage);
        if stage.written >= limit {
            return stage.written;
        }
        input = std::borrow::Cow::Owned(stage.inner);
    }
    let mut counter = Capped::new(io::sink(), limit);
    decode(*last, &input, &mut counter);
    counter.written
}

/// Decodes `data` into `out` as `lopdf` would (zlib, else raw deflate; LZW with early
/// change; ASCII85), stopping at the end of the data, an error, or when `out` is full.
fn decode<W: Write>(filter: Filter, data: &[u8], out: &mut Capped<W>) {
    match filter {
        Filter::Flate => {
            let zlib = io::copy(&mut flate2::read::ZlibDecoder::new(data), out);
            // lopdf falls back to raw deflate only when zlib yielded nothing.
            if zlib.is_err() && out.written == 0 && data.len() > 2 {
                let _ = io::copy(&mut flate2::read::DeflateDecoder::new(&data[2..]), out);
            }
        }
        Filter::Lzw => {
            let mut decoder =
                weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let _ = decoder.into_stream(&mut *out).decode_all(data);
        }
        Filter::Ascii85 => {
            let _ = out.write_all(&ascii85(data));
        }
    }
}

/// ASCII85 (`~>` ends it), as far as it is valid.
fn ascii85(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 5 * 4 + 4);
    let (mut group, mut digits) = (0u64, 0usize);
    for &byte in data {
        match byte {
            b'~' => break,
            b'z' if digits == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group = group * 85 + u64::from(byte - b'!');
                digits += 1;
                if digits == 5 {
                    out.extend_from_slice(&(group as u32).to_be_bytes());
                    (group, digits) = (0, 0);
                }
            }
            b if b.is_ascii_whitespace() => {}
            _ => break,
        }
    }
    if digits > 1 {
        for _ in digits..5 {
            group = group * 85 + 84;
        }
        out.extend_from_slice(&(group as u32).to_be_bytes()[..digits - 1]);
    }
    out
}

/// A writer that takes at most `limit` bytes, then fails.
struct Capped<W> {
    inner: W,
    written: u64,
    limit: u64,
}

impl<W: Write> Capped<W> {
    fn new(inner: W, limit: u64) -> Self {
        Self {
            inner,
            written: 0,
            limit,
        }
    }
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = usize::try_from(self.limit - self.written).unwrap_or(usize::MAX);
        if room == 0 {
            return Err(io::Error::other("decoded size limit reached"));
        }
        let n = self.inner.write(&buf[..buf.len().min(room)])?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Refuses the loops and depths that would make the text extractor recurse without end.
fn check_structure(
    document: &Document,
    pages: &BTreeMap<u32, ObjectId>,
    budget: &Budget,
) -> Result<(), ExtractError> {
    let mut contents: HashMap<ObjectId, Vec<Vec<u8>>> = HashMap::new();
    for page in pages.values() {
        budget.check_time()?;
        let resources = inherited_resources(document, *page)?;
        let drawn = page_content(document, *page)
            .map(|content| xobject_names(&content))
            .unwrap_or_default();
        // (names drawn, resources they are looked up in, depth)
        let mut stack = vec![(drawn, resources, 0usize)];
        let mut forms = 0usize;
        while let Some((names, resources, depth)) = stack.pop() {
            for name in names {
                let Some((id, stream)) = xobject(document, resources, &name) else {
                    continue;
                };
                forms += 1;
                if depth + 1 > MAX_FORM_DEPTH {
                    return Err(ExtractError::TooDeep {
                        kind: KIND,
                        limit: MAX_FORM_DEPTH,
                    });
                }
                if forms > MAX_FORMS_PER_PAGE {
                    return Err(ExtractError::TooMany {
                        kind: KIND,
                        what: "form XObjects drawn on one page",
                        limit: MAX_FORMS_PER_PAGE,
                    });
                }
                let inner = contents
                    .entry(id)
                    .or_insert_with(|| {
                        let data = stream
                            .decompressed_content()
                            .unwrap_or_else(|_| stream.content.clone());
                        xobject_names(&data)
                    })
                    .clone();
                let inner_resources = stream
                    .dict
                    .get(b"Resources")
                    .ok()
                    .map(|o| deref(document, o))
                    .and_then(|o| o.as_dict().ok())
                    .or(resources);
                stack.push((inner, inner_resources, depth + 1));
            }
        }
    }
    Ok(())
}

fn deref<'a>(document: &'a Document, object: &'a Object) -> &'a Object {
    match object {
        Object::Reference(id) => document.get_object(*id).unwrap_or(object),
        other => other,
    }
}

/// The page's `Resources`, from the page or the nearest ancestor that has them; fails if
/// the `Parent` chain loops or is deeper than [`MAX_DEPTH`].
fn inherited_resources(
    document: &Document,
    page: ObjectId,
) -> Result<Option<&Dictionary>, ExtractError> {
    let mut seen = HashSet::new();
    let mut found = None;
    let mut current = document.get_dictionary(page).ok();
    while let Some(dict) = current {
        if found.is_none() {
            found = dict
                .get(b"Resources")
                .ok()
                .map(|o| deref(document, o))
                .and_then(|o| o.as_dict().ok());
        }
        let Ok(parent) = dict.get(b"Parent").and_then(Object::as_reference) else {
            break;
        };
        if !seen.insert(parent) {
            return Err(corrupt("its page tree loops (a page is its own ancestor)"));
        }
        if seen.len() > MAX_DEPTH {
            return Err(ExtractError::TooDeep {
                kind: KIND,
                limit: MAX_DEPTH,
            });
        }
        current = document.get_dictionary(parent).ok();
    }
    Ok(found)
}

fn page_content(document: &Document, page: ObjectId) -> Option<Vec<u8>> {
    catch_unwind(AssertUnwindSafe(|| document.get_page_content(page)))
        .ok()?
        .ok()
}

/// The names drawn with `Do` in a content stream.
fn xobject_names(content: &[u8]) -> Vec<Vec<u8>> {
    let Ok(Ok(content)) = catch_unwind(|| Content::decode(content)) else {
        return Vec::new();
    };
    content
        .operations
        .into_iter()
        .filter(|op| op.operator == "Do")
        .filter_map(|op| op.operands.first()?.as_name().ok().map(<[u8]>::to_vec))
        .collect()
}

/// The XObject stream `name` in `resources`, as the text extractor looks it up.
fn xobject<'a>(
    document: &'a Document,
    resources: Option<&'a Dictionary>,
    name: &[u8],
) -> Option<(ObjectId, &'a pdf_extract::Stream)> {
    let xobjects = deref(document, resources?.get(b"XObject").ok()?)
        .as_dict()
        .ok()?;
    let id = xobjects.get(name).ok()?.as_reference().ok()?;
    let stream = document.get_object(id).ok()?.as_stream().ok()?;
    Some((id, stream))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::extract::Limits;

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    /// A PDF of these objects (object `i + 1` is `objects[i]`, 1 the catalog).
    fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend(object);
            out.extend(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for offset in offsets {
            out.extend(format!("{offset:010} 00000 n \n").as_bytes());
        }
        let size = objects.len() + 1;
        out.extend(
            format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n")
                .as_bytes(),
        );
        out
    }

    fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        out.extend(data);
        out.extend(b"\nendstream");
        out
    }

    fn page(content: Vec<u8>, resources: &str, more: &[Vec<u8>]) -> Vec<u8> {
        let mut objects = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
            format!("<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> {resources} >> >>").into_bytes(),
            content,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        ];
        objects.extend_from_slice(more);
        pdf(&objects)
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    const HELLO: &[u8] = b"BT /F1 12 Tf 72 720 Td (Hello from a PDF) Tj ET";

    #[test]
    fn a_small_pdf_is_read_through_the_checks() {
        for content in [
            stream("", HELLO),
            stream("/Filter /FlateDecode", &zlib(HELLO)),
        ] {
            let doc = extract(&page(content, "", &[]), &budget()).unwrap();
            assert!(
                doc.sections[0].text.contains("Hello from a PDF"),
                "{:?}",
                doc.sections
            );
        }
    }

    #[test]
    fn a_flate_bomb_is_refused_before_the_parser_inflates_it() {
        let zeros = vec![0u8; 1 << 20];
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..=(MAX_DECODED >> 20) {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        let bomb_error = Err(ExtractError::Bomb {
            kind: KIND,
            limit: MAX_DECODED,
        });
        let plain = page(stream("/Filter /FlateDecode", &bomb), "", &[]);
        assert_eq!(extract(&plain, &budget()), bomb_error);
        // Behind ASCII85, behind a decoy /Filter, and with a /Length that lies.
        let hidden = ascii85_encode(&bomb);
        let chained = page(
            stream(
                "/Decoy << /Filter /LZWDecode >> /Filter [/ASCII85Decode /FlateDecode] /Length 3",
                &hidden,
            ),
            "",
            &[],
        );
        assert_eq!(extract(&chained, &budget()), bomb_error);
    }

    fn ascii85_encode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in data.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            let mut n = u32::from_be_bytes(word);
            let mut digits = [0u8; 5];
            for d in digits.iter_mut().rev() {
                *d = (n % 85) as u8 + b'!';
                n /= 85;
            }
            out.extend_from_slice(&digits[..chunk.len() + 1]);
        }
        out.extend_from_slice(b"~>");
        out
    }

    #[test]
    fn decoders_count_up_to_their_cap() {
        assert_eq!(ascii85(b"9jqo^~>"), b"Man ");
        assert_eq!(ascii85(b"z~>"), [0; 4]);
        assert_eq!(ascii85(&ascii85_encode(b"hostile!?")), b"hostile!?");
        let zeros = vec![0u8; 1 << 20];
        let mut lzw = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
        let lzw = lzw.encode(&zeros).unwrap();
        assert_eq!(decoded_len(&lzw, &[Filter::Lzw], u64::MAX), 1 << 20);
        assert_eq!(decoded_len(&lzw, &[Filter::Lzw], 1000), 1000);
        let flate = zlib(&zeros);
        assert_eq!(decoded_len(&flate, &[Filter::Flate], 4096), 4096);
        // A wrong checksum fails only after the data was inflated: it counts (but for the
        // decoder's last buffer, which the error swallows, as it does in lopdf).
        let mut bad_checksum = flate.clone();
        let n = bad_checksum.len();
        bad_checksum[n - 4..].copy_from_slice(&[0; 4]);
        assert!(decoded_len(&bad_checksum, &[Filter::Flate], u64::MAX) >= (1 << 20) - (64 << 10));
        assert_eq!(
            filter_entries(b"<< /Filter [ /ASCII85Decode /FlateDecode ] /F2 /Filter/LZWDecode"),
            [vec![Filter::Ascii85, Filter::Flate], vec![Filter::Lzw]]
        );
        assert_eq!(
            filter_entries(b"/Filter /DCTDecode"),
            Vec::<Vec<Filter>>::new()
        );
    }

    #[test]
    fn forms_drawing_themselves_are_refused() {
        let form = stream("/Type /XObject /Subtype /Form /BBox [0 0 9 9]", b"/X1 Do");
        let bytes = page(stream("", b"/X1 Do"), "/XObject << /X1 6 0 R >>", &[form]);
        let result = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || extract(&bytes, &budget()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            result,
            Err(ExtractError::TooDeep {
                kind: KIND,
                limit: MAX_FORM_DEPTH
            })
        );
    }

    #[test]
    fn forms_drawn_exponentially_often_are_refused() {
        // Each of 14 forms draws the next twice: 2^14 drawings from one page.
        let mut more = Vec::new();
        let mut resources = String::new();
        for i in 0..14 {
            let content = if i < 13 {
                format!("/X{} Do /X{} Do", i + 1, i + 1)
            } else {
                "BT /F1 12 Tf (leaf) Tj ET".to_owned()
            };
            more.push(stream(
                "/Type /XObject /Subtype /Form /BBox [0 0 9 9]",
                content.as_bytes(),
            ));
            resources.push_str(&format!("/X{i} {} 0 R ", 6 + i));
        }
        let bytes = page(
            stream("", b"/X0 Do"),
            &format!("/XObject << {resources} >>"),
            &more,
        );
        assert_eq!(
            extract(&bytes, &budget()),
            Err(ExtractError::TooMany {
                kind: KIND,
                what: "form XObjects drawn on one page",
                limit: MAX_FORMS_PER_PAGE
            })
        );
    }

    #[test]
    fn a_parent_chain_that_loops_is_refused() {
        let bytes = pdf(&[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 5 0 R >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
            stream("", HELLO),
            b"<< /Type /Pages /Kids [] /Count 0 /Parent 2 0 R >>".to_vec(),
        ]);
        let error = extract(&bytes, &budget()).unwrap_err();
        assert!(error.to_string().contains("its page tree loops"), "{error}");
    }
}
