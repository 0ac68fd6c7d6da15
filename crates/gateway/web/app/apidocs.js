// The API page: the OpenAPI document (GET /openapi.json) rendered here, so the docs work
// offline and under the page's Content-Security-Policy.

import { api } from './api.js';
import { $, el } from './dom.js';

let loaded = false;

export function init() {}

export async function show() {
  if (loaded) return;
  try {
    render(await api.openapi());
    loaded = true;
  } catch (e) {
    $('#api-intro').textContent = `The API description is unavailable: ${e.message}`;
  }
}

const refName = (ref) => ref.split('/').pop();

/** A schema as a short type: `Answer`, `string[]`, `integer | null`, … */
function typeOf(schema) {
  if (!schema) return 'any';
  if (schema.$ref) return refName(schema.$ref);
  for (const key of ['oneOf', 'anyOf', 'allOf']) {
    if (schema[key]) return schema[key].map(typeOf).join(key === 'allOf' ? ' & ' : ' | ');
  }
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  const types = [].concat(schema.type || 'object');
  const text = types.map((t) => (t === 'array' ? `${typeOf(schema.items)}[]` : t)).join(' | ');
  return schema.format ? `${text} (${schema.format})` : text;
}

function schemaLink(schema) {
  const name = schema?.$ref ? refName(schema.$ref) : null;
  return name ? el('a', { href: `#/api`, 'data-schema': name, text: name }) : el('code', { text: typeOf(schema) });
}

function operation(path, method, op) {
  const params = op.parameters || [];
  const body = op.requestBody?.content || {};
  return el(
    'details',
    { class: 'operation', id: `op-${method}-${path.replace(/[^a-z0-9]+/gi, '-')}` },
    el(
      'summary',
      {},
      el('span', { class: `method ${method}`, text: method.toUpperCase() }),
      ' ',
      el('code', { class: 'path', text: path }),
      ' ',
      el('span', { class: 'summary', text: op.summary || '' }),
    ),
    op.description ? el('p', { text: op.description }) : null,
    params.length
      ? el(
          'table',
          { class: 'compact' },
          el('caption', { text: 'Parameters' }),
          el('thead', {}, el('tr', {}, ...['Name', 'In', 'Type', 'Description'].map((h) => el('th', { scope: 'col', text: h })))),
          el(
            'tbody',
            {},
            ...params.map((p) =>
              el(
                'tr',
                {},
                el('td', {}, el('code', { text: p.name }), p.required ? ' (required)' : ''),
                el('td', { text: p.in }),
                el('td', {}, el('code', { text: typeOf(p.schema) })),
                el('td', { text: p.description || '' }),
              ),
            ),
          ),
        )
      : null,
    Object.keys(body).length
      ? el(
          'p',
          {},
          'Request body: ',
          ...Object.entries(body).flatMap(([type, media]) => [el('code', { text: type }), ' ', schemaLink(media.schema), ' ']),
        )
      : null,
    el(
      'ul',
      { class: 'responses' },
      ...Object.entries(op.responses || {}).map(([status, r]) =>
        el(
          'li',
          {},
          el('span', { class: `status-code s${status[0]}`, text: status }),
          ' ',
          r.description || '',
          ...Object.entries(r.content || {}).flatMap(([type, media]) => [' — ', el('code', { text: type }), ' ', schemaLink(media.schema)]),
        ),
      ),
    ),
  );
}

function schemaBlock(name, schema) {
  const props = Object.entries(schema.properties || {});
  const required = new Set(schema.required || []);
  return el(
    'details',
    { class: 'schema', id: `schema-${name}` },
    el('summary', {}, el('code', { text: name }), schema.description ? ` — ${schema.description}` : ''),
    props.length
      ? el(
          'table',
          { class: 'compact' },
          el('thead', {}, el('tr', {}, ...['Field', 'Type', 'Description'].map((h) => el('th', { scope: 'col', text: h })))),
          el(
            'tbody',
            {},
            ...props.map(([field, s]) =>
              el(
                'tr',
                {},
                el('td', {}, el('code', { text: field }), required.has(field) ? '' : ' (optional)'),
                el('td', {}, el('code', { text: typeOf(s) })),
                el('td', { text: s.description || '' }),
              ),
            ),
          ),
        )
      : el('p', {}, el('code', { text: typeOf(schema) })),
  );
}

function render(doc) {
  $('#api-intro').textContent = `${doc.info.title} ${doc.info.version} · OpenAPI ${doc.openapi}. ${doc.info.description || ''}`;
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(path, method, op));
    }
  }
  const tags = new Map((doc.tags || []).map((t) => [t.name, t.description]));
  $('#api-operations').replaceChildren(
    ...[...byTag].map(([tag, ops]) =>
      el('section', { class: 'api-tag' }, el('h2', { text: tags.get(tag) ? `${tag} — ${tags.get(tag)}` : tag }), ...ops),
    ),
  );
  const schemas = Object.entries(doc.components?.schemas || {});
  $('#api-schemas').replaceChildren(...schemas.map(([name, s]) => schemaBlock(name, s)));
  $('[data-page="api"]').addEventListener('click', (e) => {
    const link = e.target.closest('a[data-schema]');
    if (!link) return;
    e.preventDefault();
    const target = document.getElementById(`schema-${link.dataset.schema}`);
    if (target) {
      target.open = true;
      target.querySelector('summary').focus();
      target.scrollIntoView({ block: 'start' });
    }
  });
}
