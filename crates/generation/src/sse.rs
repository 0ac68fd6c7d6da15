//! A Server-Sent Events decoder (the `text/event-stream` format of the WHATWG HTML
//! standard), fed the response body chunk by chunk: a line or an event may be split across
//! chunks anywhere, even inside a UTF-8 character.
//!
//! Only what chat completion streams use is kept: the `data` of each event (several `data:`
//! lines joined with `\n`) and its `event` name. Comments (`:` lines), `id` and `retry` are
//! skipped. An event is dispatched at a blank line; an unfinished one at the end of the body
//! is dropped, as the standard says.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, empty when absent (the default type, `message`).
    pub event: String,
    pub data: String,
}

/// A line longer than this is refused, so a broken server cannot grow the buffer for ever.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes of the line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event line longer than {MAX_LINE_BYTES} bytes")]
pub(crate) struct LineTooLong;

impl SseDecoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the body; returns the events it completes, in order.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(end);
            if self.line.len() + head.len() > MAX_LINE_BYTES {
                return Err(LineTooLong);
            }
            self.line.extend_from_slice(head);
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut events);
            // `tail` starts with the terminator; `\r\n` is one terminator.
            rest = match tail {
                [b'\r', b'\n', more @ ..] => more,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, more @ ..] => more,
                [] => &[],
            };
        }
        if self.line.len() + rest.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        self.line.extend_from_slice(rest);
        Ok(events)
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                events.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = value.to_owned(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    fn decode_in_pieces(body: &[u8], sizes: &[usize]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut rest = body;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            events.extend(decoder.push(chunk).expect("short lines"));
            rest = tail;
            i += 1;
        }
        events
    }

    const BODY: &str = "data: {\"a\":1}\n\n: keep-alive comment\n\ndata: {\"b\":\"caf\u{e9} \u{1f600}\"}\r\n\r\nevent: error\ndata: line one\ndata:line two\n\ndata: [DONE]\n\n";

    #[test]
    fn decodes_events_comments_and_multiline_data() {
        let events = decode_in_pieces(BODY.as_bytes(), &[BODY.len()]);
        assert_eq!(
            data(&events),
            vec![
                "{\"a\":1}",
                "{\"b\":\"caf\u{e9} \u{1f600}\"}",
                "line one\nline two",
                "[DONE]"
            ]
        );
        assert_eq!(events[2].event, "error");
        assert_eq!(
            events[3].event, "",
            "the event name does not leak into the next"
        );
    }

    #[test]
    fn events_split_anywhere_across_chunks_decode_the_same() {
        let whole = decode_in_pieces(BODY.as_bytes(), &[BODY.len()]);
        for sizes in [&[1][..], &[2], &[3, 1, 7], &[5, 11], &[13]] {
            assert_eq!(
                decode_in_pieces(BODY.as_bytes(), sizes),
                whole,
                "chunk sizes {sizes:?}"
            );
        }
    }

    #[test]
    fn cr_lf_split_between_chunks_is_one_terminator() {
        let mut decoder = SseDecoder::new();
        assert!(decoder.push(b"data: x\r").expect("short").is_empty());
        assert!(decoder.push(b"\n\r").expect("short").len() == 1);
        assert!(decoder.push(b"\ndata: y\r\r").expect("short").len() == 1);
    }

    #[test]
    fn bare_cr_terminates_lines_and_unfinished_events_are_dropped() {
        let mut decoder = SseDecoder::new();
        let events = decoder.push(b"data: a\r\rdata: b").expect("short");
        assert_eq!(data(&events), vec!["a"]);
        assert_eq!(
            decoder.push(b"").expect("short"),
            vec![],
            "no blank line yet"
        );
    }

    #[test]
    fn a_field_without_colon_and_empty_data_lines() {
        let events = decode_in_pieces(b"data\n\ndata:\ndata:\n\n", &[64]);
        assert_eq!(data(&events), vec!["", "\n"]);
    }

    proptest::proptest! {
        /// Any payloads, any line terminators, the body cut at any points: the same events.
        #[test]
        fn any_split_of_any_events_decodes_to_the_events(
            payloads in proptest::collection::vec("[^\r\n]{0,24}", 0..8),
            terminators in proptest::collection::vec(0usize..3, 8),
            cuts in proptest::collection::vec(1usize..9, 1..6),
        ) {
            let mut body = String::new();
            for (i, payload) in payloads.iter().enumerate() {
                let eol = ["\n", "\r\n", "\r"][terminators[i % terminators.len()]];
                body.push_str(&format!(": comment{eol}data: {payload}{eol}{eol}"));
            }
            let events = decode_in_pieces(body.as_bytes(), &cuts);
            let decoded: Vec<String> = events.into_iter().map(|e| e.data).collect();
            proptest::prop_assert_eq!(decoded, payloads);
        }
    }

    #[test]
    fn endless_lines_are_refused() {
        let mut decoder = SseDecoder::new();
        let big = vec![b'x'; MAX_LINE_BYTES / 2 + 1];
        assert!(decoder.push(b"data: ").is_ok());
        assert!(decoder.push(&big).is_ok());
        assert_eq!(decoder.push(&big), Err(LineTooLong));
    }
}
