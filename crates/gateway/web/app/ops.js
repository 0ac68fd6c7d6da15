// The operations page: cache hit ratio, tier mix, cost so far, ingestion queue
// (all from GET /v1/ops), refreshed every few seconds while it is shown.

import { api } from './api.js';
import { $, el, percent } from './dom.js';

const REFRESH_MS = 5000;
let timer = null;

export function init() {
  $('#refresh-ops').addEventListener('click', () => refresh());
}

export function show() {
  refresh();
}

export function hide() {
  clearTimeout(timer);
  timer = null;
}

async function refresh() {
  clearTimeout(timer);
  const note = $('#ops-status');
  try {
    render(await api.ops());
    note.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    note.dataset.kind = '';
  } catch (e) {
    note.textContent = `Figures unavailable: ${e.message}`;
    note.dataset.kind = 'error';
  }
  if (!$('[data-page="ops"]').hidden) timer = setTimeout(refresh, REFRESH_MS);
}

function render(o) {
  $('#ops-cache').textContent = percent(o.cache.hit_ratio);
  $('#ops-cache-detail').textContent =
    `${o.answers} answer${o.answers === 1 ? '' : 's'}: ${o.cache.exact} exact hits, ${o.cache.semantic} semantic hits, ${o.cache.miss} misses`;

  $('#ops-cost').textContent = `$${o.cost_usd.toFixed(4)}`;
  const models = Object.entries(o.cost_by_model);
  $('#ops-cost-detail').textContent = models.length
    ? models.map(([m, c]) => `${m || 'unknown'}: $${c.toFixed(4)}`).join(' · ')
    : 'No model cost since the service started.';

  const tiers = $('#ops-tiers');
  tiers.replaceChildren(
    ...(o.tiers.length
      ? o.tiers.map((t) => {
          const bar = el('meter', { min: 0, max: 1, value: t.share, 'aria-hidden': 'true' });
          return el(
            'li',
            {},
            el('span', { class: 'key', text: t.key || 'none' }),
            bar,
            el('span', { class: 'value', text: `${percent(t.share)} (${t.answers})` }),
          );
        })
      : [el('li', { class: 'meta', text: 'No answers yet.' })]),
  );

  const docs = o.documents;
  const waiting = (docs.queued || 0) + (docs.processing || 0);
  $('#ops-ingest').textContent = `${waiting} waiting`;
  $('#ops-ingest-detail').textContent =
    `Documents: ${docs.queued || 0} queued, ${docs.processing || 0} processing, ${docs.indexed || 0} indexed, ${docs.failed || 0} failed.`;
  $('#ops-queues tbody').replaceChildren(
    ...o.queues.map((q) =>
      el(
        'tr',
        {},
        el('th', { scope: 'row', text: q.queue }),
        el('td', { text: q.visible }),
        el('td', { text: q.in_flight }),
        el('td', { text: q.dead_lettered }),
      ),
    ),
  );
  $('#ops-queues').hidden = o.queues.length === 0;
}
