// Server-Sent Events over any byte stream: the text/event-stream format parsed by hand,
// because EventSource can only GET and the answer stream is a POST.

/** Parses text/event-stream text fed in arbitrary pieces into `{event, data}` events. */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.event = '';
    this.data = [];
  }

  /** Feeds a piece of the stream; returns the events it completed, in order. */
  push(text) {
    this.buffer += text;
    const events = [];
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    let match;
    while ((match = lineEnd.exec(this.buffer)) !== null) {
      // A trailing "\r" may be the first half of a "\r\n" still to come.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, match.index), events);
      start = lineEnd.lastIndex;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** The end of the stream: a last "\r" ends its line (an unfinished event is dropped). */
  end() {
    const events = [];
    if (this.buffer.endsWith('\r')) this.line(this.buffer.slice(0, -1), events);
    this.buffer = '';
    return events;
  }

  line(line, events) {
    if (line === '') {
      if (this.data.length > 0) {
        events.push({ event: this.event || 'message', data: this.data.join('\n') });
      }
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    // `id` and `retry` do not apply to a one-shot POST stream.
  }
}

/** The events of a fetch Response whose body is text/event-stream, as they arrive. */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        yield* parser.end();
        return;
      }
      yield* parser.push(value);
    }
  } finally {
    reader.releaseLock();
  }
}
