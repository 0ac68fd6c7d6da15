// The ask page: a question, its answer streamed in, numbered sources, feedback.

import { api, ask } from './api.js';
import { $, el } from './dom.js';

let controller = null;
let answer = null; // the `done` event's answer
let rating = null;

export function init() {
  const form = $('#ask-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  $('#question').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      submit();
    }
  });
  $('#stop-button').addEventListener('click', () => controller?.abort());
  for (const button of document.querySelectorAll('.thumb')) {
    button.addEventListener('click', () => choose(button.dataset.rating));
  }
  $('#feedback-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sendFeedback();
  });
  $('#answer').addEventListener('click', (e) => {
    const mark = e.target.closest('a.mark');
    if (!mark) return;
    e.preventDefault();
    openCitation(Number(mark.dataset.number));
  });
}

export function show({ first }) {
  // Not on the first load: the skip link is where keyboard users start.
  if (!first) $('#question').focus();
}

export function setDomains(domains) {
  const select = $('#domain');
  const chosen = select.value;
  select.replaceChildren(el('option', { value: '', text: 'All domains' }));
  for (const d of domains) {
    select.append(el('option', { value: d.name, text: d.description ? `${d.name} — ${d.description}` : d.name }));
  }
  select.value = chosen;
}

function status(text, kind = '') {
  const node = $('#ask-status');
  node.textContent = text;
  node.dataset.kind = kind;
}

async function submit() {
  const question = $('#question').value.trim();
  if (!question) {
    status('Type a question first.', 'error');
    $('#question').setAttribute('aria-invalid', 'true');
    $('#question').focus();
    return;
  }
  $('#question').removeAttribute('aria-invalid');
  controller?.abort();
  controller = new AbortController();
  answer = null;
  const text = $('#answer');
  text.replaceChildren();
  text.setAttribute('aria-busy', 'true');
  text.classList.add('streaming');
  $('#answer-panel').hidden = false;
  $('#answer-meta').textContent = '';
  $('#sources').hidden = true;
  $('#citations').replaceChildren();
  resetFeedback(true);
  $('#ask-button').disabled = true;
  $('#stop-button').hidden = false;
  status('Thinking…');
  let tokens = 0;
  try {
    answer = await ask(
      { question, domain: $('#domain').value },
      {
        signal: controller.signal,
        onToken: (piece) => {
          tokens += 1;
          text.append(piece);
          if (tokens === 1) status('Writing the answer…');
        },
      },
    );
    render(answer);
    status(answer.grounded ? 'Answered.' : 'The documents do not answer this.');
  } catch (e) {
    if (e.name === 'AbortError') status('Stopped.');
    else status(`Could not answer: ${e.message}`, 'error');
  } finally {
    text.setAttribute('aria-busy', 'false');
    text.classList.remove('streaming');
    $('#ask-button').disabled = false;
    $('#stop-button').hidden = true;
    controller = null;
  }
}

/** The whole answer: its text with [n] marks as links to the sources, and the sources. */
function render(a) {
  const text = $('#answer');
  const numbers = new Set(a.citations.map((c) => c.number));
  const parts = a.answer.split(/(\[\d+\])/);
  text.replaceChildren(
    ...parts.map((part) => {
      const m = /^\[(\d+)\]$/.exec(part);
      if (!m || !numbers.has(Number(m[1]))) return part;
      return el('a', {
        class: 'mark',
        href: `#cite-${m[1]}`,
        dataset: { number: m[1] },
        'aria-label': `source ${m[1]}`,
        text: part,
      });
    }),
  );
  const cache = a.cache === 'miss' ? '' : ` · from the ${a.cache} cache`;
  $('#answer-meta').textContent =
    `${a.tier} tier · ${a.model || 'no model'} · ${a.latency_ms} ms${cache}`;
  const list = $('#citations');
  list.replaceChildren(
    ...a.citations.map((c) =>
      el(
        'li',
        { id: `cite-${c.number}`, value: c.number },
        el(
          'details',
          {},
          el(
            'summary',
            {},
            el('span', { class: 'num', text: `[${c.number}]` }),
            ' ',
            el('span', { class: 'title', text: c.title }),
            el('span', { class: 'where', text: ` · ${c.domain}${c.page ? ` · page ${c.page}` : ''}` }),
          ),
          el('blockquote', { class: 'snippet', text: c.snippet }),
          el(
            'p',
            { class: 'meta' },
            `Document ${c.title} (${c.document_id}), passage ${c.chunk_index + 1}`,
            c.page ? `, page ${c.page}` : '',
            `, relevance ${c.score.toFixed(3)}`,
          ),
        ),
      ),
    ),
  );
  $('#sources').hidden = a.citations.length === 0;
  $('#feedback-form').hidden = false;
}

function openCitation(number) {
  const item = document.getElementById(`cite-${number}`);
  if (!item) return;
  const details = item.querySelector('details');
  details.open = true;
  details.querySelector('summary').focus();
  item.scrollIntoView({ block: 'nearest' });
}

function resetFeedback(hide) {
  rating = null;
  for (const b of document.querySelectorAll('.thumb')) {
    b.setAttribute('aria-pressed', 'false');
    b.disabled = false;
  }
  $('#feedback-comment').value = '';
  $('#feedback-comment').disabled = false;
  $('#feedback-send').disabled = true;
  $('#feedback-status').textContent = '';
  if (hide) $('#feedback-form').hidden = true;
}

function choose(value) {
  rating = value;
  for (const b of document.querySelectorAll('.thumb')) {
    b.setAttribute('aria-pressed', String(b.dataset.rating === value));
  }
  $('#feedback-send').disabled = false;
}

async function sendFeedback() {
  if (!answer || !rating) return;
  const note = $('#feedback-status');
  $('#feedback-send').disabled = true;
  try {
    const stored = await api.feedback(answer.query_id, rating, $('#feedback-comment').value.trim());
    note.dataset.kind = '';
    note.textContent = stored.evicted_from_cache
      ? 'Thank you. This answer will not be served again from the cache.'
      : 'Thank you for your feedback.';
    for (const b of document.querySelectorAll('.thumb')) b.disabled = true;
    $('#feedback-comment').disabled = true;
  } catch (e) {
    note.dataset.kind = 'error';
    note.textContent = `Feedback not saved: ${e.message}`;
    $('#feedback-send').disabled = false;
  }
}
