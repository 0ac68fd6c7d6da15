// The web app's SSE parser (crates/gateway/web/app/sse.js), fed the way a network delivers
// a stream: in pieces that split lines, "\r\n" pairs and multi-byte characters anywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, readEvents } from '../crates/gateway/web/app/sse.js';

const STREAM =
  ': keep-alive\n\n' +
  'event: token\ndata: {"text":"Hello"}\n\n' +
  'event: token\r\ndata: {"text":" wörld"}\r\n\r\n' +
  'data: line one\ndata: line two\n\n' +
  'event: done\ndata:{"answer":"Hello wörld"}\n\n' +
  'event: token\ndata: {"text":"unfinished"}\n';

const EXPECTED = [
  { event: 'token', data: '{"text":"Hello"}' },
  { event: 'token', data: '{"text":" wörld"}' },
  { event: 'message', data: 'line one\nline two' },
  { event: 'done', data: '{"answer":"Hello wörld"}' },
];

test('whole stream at once', () => {
  assert.deepEqual(new SseParser().push(STREAM), EXPECTED);
});

test('every split point gives the same events', () => {
  for (let i = 0; i <= STREAM.length; i += 1) {
    const parser = new SseParser();
    const events = [...parser.push(STREAM.slice(0, i)), ...parser.push(STREAM.slice(i))];
    assert.deepEqual(events, EXPECTED, `split at ${i}`);
  }
});

test('one character at a time', () => {
  const parser = new SseParser();
  const events = [];
  for (const ch of STREAM) events.push(...parser.push(ch));
  assert.deepEqual(events, EXPECTED);
});

test('a lone carriage return ends a line, at the end of the stream too', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('event: x\rdata: y\r\r'), []); // the last "\r" may be half a "\r\n"
  assert.deepEqual(parser.end(), [{ event: 'x', data: 'y' }]);
  assert.deepEqual(new SseParser().push('event: x\rdata: y\r\rdata: z'), [{ event: 'x', data: 'y' }]);
});

test('readEvents decodes bytes split inside a UTF-8 character', async () => {
  const bytes = new TextEncoder().encode(STREAM);
  const cut = bytes.indexOf(0xc3) + 1; // inside "ö"
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(bytes.slice(0, cut));
      controller.enqueue(bytes.slice(cut));
      controller.close();
    },
  });
  const events = [];
  for await (const e of readEvents({ body })) events.push(e);
  assert.deepEqual(events, EXPECTED);
});
