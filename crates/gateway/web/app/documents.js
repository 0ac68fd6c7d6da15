// The documents page: uploads with per-file progress and live status, and the library
// (list, status, delete).

import { api, upload } from './api.js';
import { $, bytes, el, when } from './dom.js';

const POLL_MS = 1000;
const FINAL = new Set(['indexed', 'failed', 'deleted']);
let visible = false;
let refreshTimer = null;

export function init() {
  $('#upload-form').addEventListener('submit', (e) => {
    e.preventDefault();
    startUploads();
  });
  $('#refresh-documents').addEventListener('click', () => refresh());
  $('#documents-table tbody').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-delete]');
    if (button) remove(button.dataset.delete, button.dataset.title);
  });
}

export function show() {
  visible = true;
  refresh();
}

export function hide() {
  visible = false;
  clearTimeout(refreshTimer);
}

export function setDomains(domains) {
  const select = $('#upload-domain');
  const chosen = select.value;
  const names = domains.map((d) => d.name);
  if (!names.includes('general')) names.push('general');
  select.replaceChildren(...names.map((name) => el('option', { value: name, text: name })));
  select.value = names.includes(chosen) ? chosen : names[0];
}

function startUploads() {
  const input = $('#upload-files');
  const files = [...input.files];
  const note = $('#upload-status');
  if (files.length === 0) {
    note.textContent = 'Choose one or more files first.';
    note.dataset.kind = 'error';
    input.focus();
    return;
  }
  note.textContent = `Uploading ${files.length} file${files.length === 1 ? '' : 's'}…`;
  note.dataset.kind = '';
  const domain = $('#upload-domain').value;
  Promise.all(files.map((file) => track(file, domain))).then((ends) => {
    const tally = {};
    for (const end of ends) tally[end] = (tally[end] || 0) + 1;
    note.textContent = `${files.length} upload${files.length === 1 ? '' : 's'} done: ${Object.entries(tally).map(([k, v]) => `${v} ${k}`).join(', ')}.`;
  });
  input.value = '';
}

/** One upload's row: progress while sending, then the document's status until final (returned). */
async function track(file, domain) {
  const progress = el('progress', { max: 100, value: 0, 'aria-label': `Upload of ${file.name}` });
  const state = el('span', { class: 'state', text: 'uploading 0%' });
  const reason = el('p', { class: 'reason', hidden: true });
  const row = el(
    'li',
    { class: 'upload', dataset: { status: 'uploading' } },
    el('span', { class: 'name', text: file.name }),
    progress,
    state,
    reason,
  );
  $('#uploads').prepend(row);
  const set = (status, text) => {
    row.dataset.status = status;
    state.textContent = text;
  };
  let doc;
  try {
    doc = await upload(file, domain, (fraction) => {
      const pct = Math.round(fraction * 100);
      progress.value = pct;
      set('uploading', `uploading ${pct}%`);
    });
  } catch (e) {
    set('failed', 'failed');
    reason.hidden = false;
    reason.textContent = e.message;
    return 'failed';
  }
  row.dataset.id = doc.id;
  // Poll the document until it is indexed or failed.
  for (;;) {
    set(doc.status, label(doc));
    if (doc.status === 'failed') {
      reason.hidden = false;
      reason.textContent = doc.error || 'the document could not be read';
    }
    if (FINAL.has(doc.status)) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
    try {
      doc = await api.document(doc.id);
    } catch (e) {
      if (e.status === 404) {
        set('deleted', 'deleted');
        break;
      }
      set(doc.status, `${label(doc)} (status unavailable: ${e.message}; retrying)`);
    }
  }
  if (visible) refresh();
  return row.dataset.status;
}

function label(doc) {
  if (doc.status === 'indexed') return `indexed · ${doc.chunk_count} chunk${doc.chunk_count === 1 ? '' : 's'}`;
  return doc.status;
}

async function refresh() {
  clearTimeout(refreshTimer);
  const counts = $('#documents-counts');
  let listed;
  try {
    listed = await api.documents();
  } catch (e) {
    counts.textContent = `Could not list documents: ${e.message}`;
    counts.dataset.kind = 'error';
    return;
  }
  counts.dataset.kind = '';
  const summary = Object.entries(listed.counts).map(([k, v]) => `${v} ${k}`).join(', ');
  counts.textContent = `${listed.documents.length} document${listed.documents.length === 1 ? '' : 's'}${summary ? `: ${summary}` : ''}`;
  const docs = [...listed.documents].sort((a, b) => a.domain.localeCompare(b.domain) || a.title.localeCompare(b.title));
  $('#documents-table tbody').replaceChildren(
    ...docs.map((d) =>
      el(
        'tr',
        { dataset: { id: d.id, status: d.status } },
        el('th', { scope: 'row', 'data-label': 'Title' }, d.title),
        el('td', { 'data-label': 'Domain', text: d.domain }),
        el(
          'td',
          { 'data-label': 'Status' },
          el('span', { class: `badge ${d.status}`, text: d.status }),
          d.error ? el('span', { class: 'reason', text: ` ${d.error}` }) : null,
        ),
        el('td', { 'data-label': 'Chunks', text: d.chunk_count }),
        el('td', { 'data-label': 'Size', text: bytes(d.size_bytes) }),
        el('td', { 'data-label': 'Updated', text: when(d.updated_at_ms) }),
        el(
          'td',
          { class: 'row-actions' },
          el('button', {
            type: 'button',
            class: 'danger',
            dataset: { delete: d.id, title: d.title },
            'aria-label': `Delete ${d.title}`,
            disabled: d.status === 'deleting',
            text: 'Delete',
          }),
        ),
      ),
    ),
  );
  // Keep the statuses live while something is still moving.
  if (visible && listed.documents.some((d) => !FINAL.has(d.status))) {
    refreshTimer = setTimeout(refresh, 2000);
  }
}

async function remove(id, title) {
  if (!window.confirm(`Delete “${title}”? It leaves search results at once.`)) return;
  const counts = $('#documents-counts');
  try {
    await api.deleteDocument(id);
    counts.textContent = `Deleting ${title}…`;
  } catch (e) {
    counts.textContent = `Could not delete ${title}: ${e.message}`;
    counts.dataset.kind = 'error';
    return;
  }
  refresh();
}
