//! Hostile documents through the real worker: each is put into the (embedded) object store,
//! whose event the worker consumes like any other. Every one must end `failed` with a reason
//! naming what was wrong, its event dead-lettered, the process's memory bounded (the bombs
//! expand to gigabytes if inflated), and the worker still alive: a normal document put after
//! them is chunked and queued for the embedder.
//!
//! Fixtures are generated here, never stored: ZIP archives and PDFs are written byte by
//! byte, and the deflate bombs are fixed-Huffman streams of "repeat the last byte 258
//! times" (13 bits per 258 bytes, so 1 GiB of zeros costs ~6.5 MB).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use rag_backends::rag_catalog::{Catalog, DocumentState};
use rag_backends::rag_object_store::ObjectStore;
use rag_backends::rag_queue::{DEAD_LETTER_REASON_ATTRIBUTE, Queue};
use rag_config::{EmbeddingSettings, Settings};
use rag_core::ObjectKey;
use rag_ingest_worker::Worker;
use rag_proto::{IndexJob, index_job};
use tokio_util::sync::CancellationToken;

const GIB: u64 = 1024 * 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Generators.

/// Bits written least significant first, as deflate packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl Bits {
    fn put(&mut self, value: u64, n: u32) {
        self.acc |= value << self.len;
        self.len += n;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    /// A Huffman code: its bits go most significant first.
    fn code(&mut self, code: u64, n: u32) {
        let reversed = (0..n).fold(0, |r, i| r | (((code >> i) & 1) << (n - 1 - i)));
        self.put(reversed, n);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.len > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A raw deflate stream of (at least) `n` zero bytes: one fixed-Huffman block, a literal
/// zero, then back-references of length 258 at distance 1.
fn deflate_zeros(n: u64) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    bits.code(0x30, 8); // literal 0
    // Length code 285 (258 bytes), then distance code 0 (distance 1): 13 bits.
    let mut repeat = Bits::default();
    repeat.code(0b1100_0101, 8);
    let repeat = u64::from(repeat.finish()[0]);
    for _ in 0..(n.saturating_sub(1)).div_ceil(258) {
        bits.put(repeat, 13);
    }
    bits.code(0, 7); // end of block
    bits.finish()
}

/// The same, zlib-wrapped (PDF's FlateDecode); the checksum is left wrong: no reader
/// should get that far.
fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut out = vec![0x78, 0x9c];
    out.extend(deflate_zeros(n));
    out.extend([0; 4]);
    out
}

struct Entry<'a> {
    name: &'a str,
    /// 0 stored, 8 deflated.
    method: u16,
    data: &'a [u8],
    /// What the headers claim the entry expands to.
    declared_size: u32,
}

/// A ZIP archive written by hand, so the headers can lie.
fn zip(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let offset = u32::try_from(out.len()).unwrap();
        let name = entry.name.as_bytes();
        let name_len = u16::try_from(name.len()).unwrap();
        let compressed = u32::try_from(entry.data.len()).unwrap();
        let mut fields = Vec::new();
        fields.extend(20u16.to_le_bytes()); // version needed
        fields.extend(0u16.to_le_bytes()); // flags
        fields.extend(entry.method.to_le_bytes());
        fields.extend([0; 4]); // time, date
        fields.extend([0; 4]); // crc (never reached)
        fields.extend(compressed.to_le_bytes());
        fields.extend(entry.declared_size.to_le_bytes());
        fields.extend(name_len.to_le_bytes());
        fields.extend(0u16.to_le_bytes()); // extra
        out.extend(b"PK\x03\x04");
        out.extend(&fields);
        out.extend(name);
        out.extend(entry.data);
        central.extend(b"PK\x01\x02");
        central.extend(20u16.to_le_bytes()); // version made by
        central.extend(&fields);
        central.extend([0; 10]); // comment length, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name);
    }
    let cd_offset = u32::try_from(out.len()).unwrap();
    let cd_len = u32::try_from(central.len()).unwrap();
    let count = u16::try_from(entries.len()).unwrap();
    out.extend(&central);
    out.extend(b"PK\x05\x06\0\0\0\0");
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A PDF of numbered objects (object `i + 1` is `objects[i]`), with a correct xref table;
/// object 1 is the catalog.
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
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
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

/// Catalog, page tree, one page drawing `content` with Helvetica and `xobjects`.
fn one_page_pdf(content: Vec<u8>, page_extra: &str, more: &[Vec<u8>]) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> {page_extra} >> >>"
        )
        .into_bytes(),
        content,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    objects.extend_from_slice(more);
    pdf(&objects)
}

fn text_content(text: &str) -> Vec<u8> {
    stream(
        "",
        format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET").as_bytes(),
    )
}

// ---------------------------------------------------------------------------------------
// The worker.

struct Rig {
    _dir: tempfile::TempDir,
    objects: Arc<dyn ObjectStore>,
    documents: Arc<dyn Queue>,
    chunks: Arc<dyn Queue>,
    catalog: Arc<dyn Catalog>,
    stop: CancellationToken,
    worker: tokio::task::JoinHandle<()>,
}

impl Rig {
    async fn start(timeout_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        // The approximate tokenizer: no model files needed, nothing fetched.
        settings.embedding = EmbeddingSettings::Bedrock {
            model_id: "amazon.titan-embed-text-v2:0".into(),
            dimensions: 256,
            concurrency: 1,
            max_attempts: 1,
            endpoint_url: None,
        };
        settings.queues.wait_ms = 100;
        settings.ingest.extract_timeout_ms = timeout_ms;
        settings.ingest.max_document_bytes = 48 * 1024 * 1024;
        settings.validate().unwrap();
        let worker = Worker::new(&settings).unwrap();
        let stop = CancellationToken::new();
        let handle = tokio::spawn(worker.consume(stop.clone()));
        Self {
            objects: rag_backends::object_store(&settings).unwrap(),
            documents: rag_backends::documents_queue(&settings).unwrap(),
            chunks: rag_backends::chunks_queue(&settings).unwrap(),
            catalog: rag_backends::catalog(&settings).unwrap(),
            _dir: dir,
            stop,
            worker: handle,
        }
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> ObjectKey {
        let key = ObjectKey::for_upload("acme", "hostile", name);
        self.objects
            .put(&key.to_key(), bytes, BTreeMap::new())
            .await
            .unwrap();
        key
    }

    /// Waits until the document has failed, and returns the reason.
    async fn failure(&self, key: &ObjectKey, within: Duration) -> String {
        let started = Instant::now();
        loop {
            let record = self
                .catalog
                .get(&key.tenant, key.document_id)
                .await
                .unwrap();
            match record {
                Some(r) if r.state == DocumentState::Failed => {
                    return r.error.unwrap_or_default();
                }
                Some(r)
                    if r.state != DocumentState::Processing && r.state != DocumentState::Queued =>
                {
                    panic!("{}: {:?}, not failed", key.file_name, r.state)
                }
                _ => {}
            }
            assert!(
                started.elapsed() < within,
                "{} did not fail within {within:?}",
                key.file_name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until chunks of the document are on the chunks queue; returns how many.
    async fn chunked(&self, key: &ObjectKey, within: Duration) -> usize {
        let started = Instant::now();
        loop {
            for delivery in self
                .chunks
                .receive(10, Duration::from_millis(100))
                .await
                .unwrap()
            {
                self.chunks.ack(&delivery.receipt).await.unwrap();
                let job = IndexJob::decode(delivery.body.as_slice()).unwrap();
                if let Some(index_job::Job::Upsert(batch)) = job.job
                    && batch.document_id == key.document_id.to_string()
                {
                    return batch.chunks.len();
                }
            }
            assert!(
                started.elapsed() < within,
                "{} was not chunked within {within:?}",
                key.file_name
            );
        }
    }

    async fn dead_letter_reasons(&self) -> Vec<String> {
        self.documents
            .dead_letters(1000)
            .await
            .unwrap()
            .into_iter()
            .map(|d| {
                d.attributes
                    .get(DEAD_LETTER_REASON_ATTRIBUTE)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.worker.await.unwrap();
    }
}

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

// ---------------------------------------------------------------------------------------

/// One hostile document: its name, bytes, and a part of the reason it must fail with.
struct Attack {
    name: &'static str,
    bytes: Vec<u8>,
    reason: &'static str,
}

fn attacks() -> Vec<Attack> {
    let bomb_size = 4 * GIB - 4096;
    let bomb = deflate_zeros(bomb_size);
    let many = deflate_zeros(64 * 1024 * 1024);
    let names: Vec<String> = (0..40)
        .map(|i| {
            if i == 39 {
                "word/document.xml".to_owned()
            } else {
                format!("word/media/image{i}.bin")
            }
        })
        .collect();
    let page_loop = pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        // The page tree's root claims a parent, whose parent is the root: a page without a
        // MediaBox would send the extractor up this chain forever.
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 5 0 R >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_vec(),
        text_content("looping"),
        b"<< /Type /Pages /Kids [] /Count 0 /Parent 2 0 R >>".to_vec(),
    ]);
    let kids_loop = pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
        b"<< /Type /Page /Parent 3 0 R >>".to_vec(),
    ]);
    let self_drawing_form = one_page_pdf(
        stream("", b"/X1 Do"),
        "/XObject << /X1 6 0 R >>",
        &[stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 10 10]",
            b"/X1 Do",
        )],
    );
    let deep_array = {
        let depth = 100_000;
        let mut objects = vec![b"<< /Type /Catalog /Pages 2 0 R /Deep 3 0 R >>".to_vec()];
        objects.push(b"<< /Type /Pages /Kids [] /Count 0 >>".to_vec());
        objects.push(["[".repeat(depth), "]".repeat(depth)].concat().into_bytes());
        pdf(&objects)
    };
    let normal_pdf = one_page_pdf(text_content("Hello hostile world"), "", &[]);
    let mut truncated_pdf = normal_pdf.clone();
    truncated_pdf.truncate(normal_pdf.len() / 3);
    let mut garbage_pdf = b"%PDF-1.7\n".to_vec();
    garbage_pdf.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let utf16: Vec<u8> = "Plain text in UTF-16, little endian, without a byte order mark.\n"
        .repeat(50)
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut invalid_utf8 = "Valid at first. ".repeat(1000).into_bytes();
    invalid_utf8.extend([0xC3, 0x28, 0xFF, 0xFE]);
    vec![
        Attack {
            name: "bomb.docx",
            // One entry of ~4 GiB of zeros in ~27 MB, whose headers say 1 KiB.
            bytes: zip(&[Entry {
                name: "word/document.xml",
                method: 8,
                data: &bomb,
                declared_size: 1024,
            }]),
            // The ZIP reader stops at the declared size: the headers' lie is caught.
            reason: "larger than its declared uncompressed size",
        },
        Attack {
            name: "honest-bomb.docx",
            // The same entry, declared at its real size.
            bytes: zip(&[Entry {
                name: "word/document.xml",
                method: 8,
                data: &bomb,
                declared_size: u32::try_from(bomb_size).unwrap(),
            }]),
            reason: "the DOCX file expands to more than 33554432 bytes of text",
        },
        Attack {
            name: "many-entries.docx",
            // 64 MiB of zeros in every one of 40 entries (2.5 GiB); the document is the
            // last of them, and its headers say 1 KiB. Only the document is inflated.
            bytes: zip(&names
                .iter()
                .map(|name| Entry {
                    name,
                    method: 8,
                    data: &many,
                    declared_size: if name.ends_with(".xml") {
                        1024
                    } else {
                        64 << 20
                    },
                })
                .collect::<Vec<_>>()),
            reason: "larger than its declared uncompressed size",
        },
        Attack {
            name: "flate-bomb.pdf",
            bytes: one_page_pdf(stream("/Filter /FlateDecode", &zlib_zeros(GIB)), "", &[]),
            reason: "the PDF file's compressed data expands to more than 268435456 bytes",
        },
        Attack {
            name: "page-loop.pdf",
            bytes: page_loop,
            reason: "its page tree loops",
        },
        Attack {
            name: "kids-loop.pdf",
            bytes: kids_loop,
            reason: "the PDF file is damaged or invalid",
        },
        Attack {
            name: "self-drawing-form.pdf",
            bytes: self_drawing_form,
            reason: "the PDF file is nested more than 16 levels deep",
        },
        Attack {
            name: "deep-array.pdf",
            bytes: deep_array,
            reason: "the PDF file is damaged or invalid",
        },
        Attack {
            name: "truncated.pdf",
            bytes: truncated_pdf,
            reason: "PDF",
        },
        Attack {
            name: "garbage.pdf",
            bytes: garbage_pdf,
            reason: "the PDF file is damaged or invalid",
        },
        Attack {
            name: "deep.html",
            // 100,000 nested <div>s (600 KB): minutes in the HTML parser, which looks
            // through every open element at each start tag.
            bytes: format!(
                "<!doctype html><html><body>{}Deep text.{}</body></html>",
                "<div>".repeat(100_000),
                "</div>".repeat(100_000)
            )
            .into_bytes(),
            reason: "the HTML file is nested more than 256 levels deep",
        },
        Attack {
            name: "utf16-no-bom.txt",
            bytes: utf16,
            reason: "unsupported file type: binary file",
        },
        Attack {
            name: "invalid.md",
            bytes: invalid_utf8,
            reason: "the file is not valid UTF-8 text",
        },
        Attack {
            name: "nul.md",
            bytes: b"# Title\n\nSome text\0with a NUL byte.\n".to_vec(),
            reason: "unsupported file type: binary file",
        },
        Attack {
            name: "headings.md",
            bytes: "# a\n".repeat(200_000).into_bytes(),
            reason: "the Markdown file has more than 100000 sections or pages",
        },
        Attack {
            name: "form-feeds.txt",
            bytes: "x\x0c".repeat(200_000).into_bytes(),
            reason: "the text file has more than 100000 sections or pages",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_fail_with_reasons_and_the_worker_goes_on() {
    let rig = Rig::start(60_000).await;
    let attacks = attacks();
    let mut keys = Vec::new();
    for attack in &attacks {
        keys.push(rig.put(attack.name, attack.bytes.clone()).await);
    }
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for (attack, key) in attacks.iter().zip(&keys) {
        let reason = rig.failure(key, Duration::from_secs(120)).await;
        if !reason.contains(attack.reason) {
            wrong.push(format!(
                "{}: {reason:?} does not say {:?}",
                attack.name, attack.reason
            ));
        }
        table.push(format!(
            "{:<24} {:>10} B  failed: {reason}",
            attack.name,
            attack.bytes.len()
        ));
    }
    println!("{}", table.join("\n"));
    assert!(wrong.is_empty(), "{wrong:#?}");
    drop(attacks);

    // Nothing the attacks held back: a normal document after them is read.
    let normal = rig
        .put(
            "after.md",
            b"# After\n\nThe worker survived every attack.\n".to_vec(),
        )
        .await;
    assert!(rig.chunked(&normal, Duration::from_secs(60)).await >= 1);
    let pdf_key = rig
        .put(
            "fine.pdf",
            one_page_pdf(text_content("Hello hostile world"), "", &[]),
        )
        .await;
    assert!(rig.chunked(&pdf_key, Duration::from_secs(60)).await >= 1);
    // Every hostile event was dead-lettered, with its reason.
    let reasons = rig.dead_letter_reasons().await;
    assert_eq!(reasons.len(), keys.len(), "{reasons:#?}");
    for key in &keys {
        let reason = rig.failure(key, Duration::ZERO).await;
        assert!(reasons.contains(&reason), "{reason} not dead-lettered");
    }

    // Gigabytes were promised; little was spent.
    let peak = peak_rss();
    println!("peak RSS: {} MiB", peak / (1024 * 1024));
    assert!(peak < 1536 * 1024 * 1024, "peak RSS {peak} bytes");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_document_times_out_and_the_next_one_is_read() {
    let rig = Rig::start(300).await;
    // 24 MB on one line, no spaces: chunking cuts it by characters, far past 0.3 s.
    let slow = rig
        .put("one-line.txt", "x".repeat(24 * 1024 * 1024).into_bytes())
        .await;
    let started = Instant::now();
    let reason = rig.failure(&slow, Duration::from_secs(60)).await;
    assert_eq!(reason, "extraction timed out after 0.3 s");
    // Failed at the deadline, not when the thread would have finished.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let normal = rig
        .put(
            "next.txt",
            b"A normal document after the slow one.".to_vec(),
        )
        .await;
    assert!(rig.chunked(&normal, Duration::from_secs(60)).await >= 1);
    assert_eq!(rig.dead_letter_reasons().await, [reason]);
    rig.stop().await;
}

#[test]
fn the_limits_are_validated() {
    let mut settings = Settings::default();
    settings.ingest.extract_timeout_ms = 0;
    let error = settings.validate().unwrap_err().to_string();
    assert!(error.contains("ingest.extract_timeout_ms"), "{error}");
    let mut settings = Settings::default();
    settings.ingest.max_extracted_bytes = 0;
    let error = settings.validate().unwrap_err().to_string();
    assert!(error.contains("ingest.max_extracted_bytes"), "{error}");
}
