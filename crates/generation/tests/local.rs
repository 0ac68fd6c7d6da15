//! `LocalLlm` with the real SmolLM2-135M-Instruct weights (`make llm`, found through
//! `RAG_LLM_PATH` or the default path). Without them these tests are skipped with a note,
//! except in CI (`CI=true`), where they fail.
//!
//! The tests of one binary share one copy of the weights and take turns on it, as callers
//! in a process do.

#![allow(clippy::unwrap_used)] // tests: a failure is the test failing

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rag_generation::local::{TextStream, default_llm_path};
use rag_generation::{
    GenerationError, GenerationEvent, GenerationRequest, GenerationStream, GenerationUsage,
    Generator, LocalLlm, LocalOptions,
};

/// The model file, or `None` (with a note) outside CI when it has not been fetched.
fn model_path() -> Option<PathBuf> {
    let path = default_llm_path();
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the local model {} is missing; CI must test it: run `make llm` (scripts/fetch-llm.sh) \
             or set RAG_LLM_PATH",
            path.display()
        );
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: the local model was not tested ({} is missing; run `make llm` or set RAG_LLM_PATH)",
        path.display()
    );
    None
}

fn model(options: impl FnOnce(&mut LocalOptions)) -> Option<LocalLlm> {
    let mut o = LocalOptions {
        model_path: model_path()?,
        // The tests take turns on one model, on a machine that may be busy: waiting is not
        // what they test.
        timeout: Duration::from_secs(600),
        ..LocalOptions::default()
    };
    options(&mut o);
    Some(LocalLlm::new(o).unwrap())
}

const SYSTEM: &str = "You answer questions for the employees of a company, using only the \
passages of its documents given in the context.\n\nRules:\n- Answer only from the context. If \
the context does not contain the answer, say \"I don't know based on the provided documents.\" \
and nothing else.\n- After each sentence that uses a passage, cite it by its number in square \
brackets, like [1].\n- Be brief: at most four sentences, plain text, no preamble.";

fn request(system: &str, user: &str, max_output_tokens: u32) -> GenerationRequest {
    GenerationRequest {
        system: system.into(),
        user: user.into(),
        max_output_tokens,
        temperature: 0.0,
    }
}

/// The text and the usage of a whole stream.
async fn collect(mut stream: GenerationStream) -> (String, GenerationUsage) {
    let mut text = String::new();
    let mut usage = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            GenerationEvent::Delta(delta) => {
                assert!(usage.is_none(), "text after the end");
                assert!(!delta.contains('\u{FFFD}'), "a split character: {delta:?}");
                text.push_str(&delta);
            }
            GenerationEvent::Done(done) => usage = Some(done),
        }
    }
    (text, usage.expect("a Done event"))
}

#[test]
fn the_tokenizer_round_trips_and_knows_its_special_tokens() {
    let Some(llm) = model(|_| {}) else { return };
    let t = llm.tokenizer();
    assert_eq!(t.vocab_size(), 49_152);
    for text in [
        "Hello world",
        " leading space, trailing space ",
        "The notice period is 30 days (see §4.2).",
        "naïve café — “quotes” 日本語 🦀 emoji",
        "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
        "tabs\tand\n\nblank lines\r\n",
    ] {
        let ids = t.encode(text).unwrap();
        assert_eq!(t.decode(&ids).unwrap(), text, "{ids:?}");
    }
    // Merges are applied: common words are one token; digits are split one by one.
    assert_eq!(t.encode(" the").unwrap().len(), 1);
    assert_eq!(t.encode("Hello").unwrap().len(), 1);
    assert_eq!(t.encode("2024").unwrap().len(), 4);
    // Special tokens: single ids in chat markup; text in prompts.
    for (token, id) in [("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)] {
        assert_eq!(t.token_id(token), Some(id));
        let encoded = t.inner().encode(format!("{token}user"), false).unwrap();
        assert_eq!(encoded.get_ids()[0], id, "{token}");
        assert!(!t.encode(token).unwrap().contains(&id), "{token} in text");
    }
    let prompt = t.chat_prompt("Be brief.", "Hi <|im_end|>", 4096).unwrap();
    let markers = |id: u32| prompt.ids.iter().filter(|&&i| i == id).count();
    assert_eq!((markers(1), markers(2)), (3, 2), "{:?}", prompt.ids);
    assert_eq!(
        t.inner().decode(&prompt.ids, false).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi <|im_end|><|im_end|>\n\
         <|im_start|>assistant\n"
    );

    // Incremental decoding never splits a character, whatever the token boundaries.
    let text = "Zürich → 東京 🦀🦀 ok";
    let mut stream = TextStream::default();
    let mut deltas = Vec::new();
    for id in t.encode(text).unwrap() {
        deltas.extend(stream.push(t, id).unwrap());
    }
    deltas.extend(stream.finish(t).unwrap());
    assert!(deltas.iter().all(|d| !d.contains('\u{FFFD}')), "{deltas:?}");
    assert_eq!(deltas.concat(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_generation_is_deterministic_and_stops_at_max_tokens() {
    let Some(llm) = model(|_| {}) else { return };
    let ask = request(
        "You are a helpful assistant.",
        "Write a long story about a robot.",
        12,
    );
    let (first, usage) = collect(llm.generate(ask.clone()).await.unwrap()).await;
    let (second, again) = collect(llm.generate(ask).await.unwrap()).await;
    assert!(!first.trim().is_empty());
    assert_eq!(first, second);
    assert_eq!(usage, again);
    assert_eq!(usage.output_tokens, 12, "{usage:?}");
    assert_eq!(usage.stop_reason, "length");
    assert_eq!(usage.model, "SmolLM2-135M-Instruct.Q4_1");
    let prompt = llm
        .tokenizer()
        .chat_prompt(
            "You are a helpful assistant.",
            "Write a long story about a robot.",
            4096,
        )
        .unwrap();
    assert_eq!(usage.input_tokens as usize, prompt.ids.len());
    eprintln!("greedy: {first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_fact_and_an_answer_in_the_answer_format() {
    let Some(llm) = model(|_| {}) else { return };
    // The model and its tokenizer read text as trained: it knows a famous fact.
    let (capital, usage) = collect(
        llm.generate(request(
            "You are a helpful assistant.",
            "What is the capital of France? Answer in one word.",
            16,
        ))
        .await
        .unwrap(),
    )
    .await;
    assert!(capital.contains("Paris"), "{capital:?}");
    assert_eq!(usage.stop_reason, "stop", "{usage:?}");

    let user = "Context:\n[1] Leave policy — Annual leave\nEmployees get twenty-five days of paid \
                annual leave per calendar year. Up to five unused days may be carried over to the \
                next year.\n\n[2] Travel policy\nEconomy class is booked for flights under six \
                hours.\n\nQuestion: How many days of paid annual leave do employees get?\n";
    let started = Instant::now();
    let (answer, usage) = collect(llm.generate(request(SYSTEM, user, 96)).await.unwrap()).await;
    eprintln!("answer in {:?} ({usage:?}): {answer:?}", started.elapsed());
    assert!(!answer.trim().is_empty());
    assert!(
        usage.input_tokens > 100 && usage.output_tokens > 0,
        "{usage:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_frees_the_model_for_the_next_caller() {
    // No one may wait: a second caller is refused while the first one runs.
    let Some(llm) = model(|o| {
        o.max_waiting = 0;
        o.context_tokens = 4096;
    }) else {
        return;
    };
    let long = request(
        "You are a helpful assistant.",
        "Write a very long essay about the history of every country in the world.",
        2000,
    );
    let mut stream = llm.generate(long.clone()).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(first, GenerationEvent::Delta(_)), "{first:?}");
    let busy = llm.generate(long).await.err();
    assert!(
        matches!(&busy, Some(GenerationError::Unavailable(m)) if m.contains("busy")),
        "{busy:?}"
    );
    // The client goes away: the model's thread stops at its next token.
    drop(stream);
    let dropped = Instant::now();
    let short = request("You are a helpful assistant.", "Say hello.", 4);
    let mut last_busy = Duration::ZERO;
    let next = loop {
        // "Busy" comes at once; otherwise `generate` returns at the first token.
        match llm.generate(short.clone()).await {
            Ok(stream) => break stream,
            Err(GenerationError::Unavailable(m)) if m.contains("busy") => {
                last_busy = dropped.elapsed();
                // The uncancelled answer would take minutes (2000 tokens).
                assert!(
                    last_busy < Duration::from_secs(10),
                    "the model was still busy {last_busy:?} after the stream was dropped"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let (_, usage) = collect(next).await;
    assert!(
        usage.output_tokens <= 4 && usage.output_tokens > 0,
        "{usage:?}"
    );
    eprintln!(
        "last busy {last_busy:?} after the drop; the next answer done {:?} after it",
        dropped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_longer_than_the_window_is_cut_not_refused() {
    let Some(llm) = model(|o| o.context_tokens = 512) else {
        return;
    };
    let passages: String = (1..=200)
        .map(|i| format!("[{i}] Policy {i}\nRule number {i} says that nothing applies.\n\n"))
        .collect();
    let user = format!("Context:\n{passages}Question: What does rule 1 say?\n");
    assert!(llm.tokenizer().encode(&user).unwrap().len() > 2000);
    let (_, usage) = collect(llm.generate(request(SYSTEM, &user, 16)).await.unwrap()).await;
    assert!(
        usage.input_tokens as usize <= 512 - 16 && usage.input_tokens > 300,
        "{usage:?}"
    );
    assert!(
        usage.output_tokens >= 1 && usage.output_tokens <= 16,
        "{usage:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_is_seeded() {
    let Some(llm) = model(|o| o.seed = 42) else {
        return;
    };
    let ask = GenerationRequest {
        temperature: 0.9,
        ..request("You are a helpful assistant.", "Name a colour.", 12)
    };
    let (a, _) = collect(llm.generate(ask.clone()).await.unwrap()).await;
    let (b, _) = collect(llm.generate(ask).await.unwrap()).await;
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
