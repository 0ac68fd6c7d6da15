// The gateway's HTTP API, as the web app uses it.

import { readEvents } from './sse.js';

/** An error answer: `{"error": {"code", "message", "field"?, "trace_id"?}}`. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || 'unknown';
    this.field = error?.field;
    this.traceId = error?.trace_id;
  }
}

// The API key, when the gateway asks for one (401); kept for this browser tab only.
const KEY = 'rag-api-key';

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function withKey(headers) {
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

function unauthenticated(status) {
  if (status === 401) window.dispatchEvent(new CustomEvent('rag:unauthenticated'));
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  unauthenticated(response.status);
  return new ApiError(response.status, body?.error);
}

async function call(method, path, body) {
  const init = { method, headers: withKey({ Accept: 'application/json' }) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

const id = (value) => encodeURIComponent(value);

export const api = {
  domains: () => call('GET', '/v1/domains'),
  documents: () => call('GET', '/v1/documents'),
  document: (docId) => call('GET', `/v1/documents/${id(docId)}`),
  deleteDocument: (docId) => call('DELETE', `/v1/documents/${id(docId)}`),
  feedback: (queryId, rating, comment) =>
    call('POST', '/v1/feedback', { query_id: queryId, rating, ...(comment ? { comment } : {}) }),
  ops: () => call('GET', '/v1/ops'),
  openapi: () => call('GET', '/openapi.json'),
};

/**
 * Asks a question and streams the answer: `onToken(text)` for each piece as it is written;
 * resolves to the whole answer (the `done` event). Abort with `signal`.
 */
export async function ask({ question, domain }, { signal, onToken }) {
  const response = await fetch('/v1/query/stream', {
    method: 'POST',
    headers: withKey({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ question, ...(domain ? { domain } : {}) }),
    signal,
  });
  if (!response.ok) throw await failure(response);
  for await (const { event, data } of readEvents(response)) {
    const payload = JSON.parse(data);
    if (event === 'token') onToken(payload.text);
    else if (event === 'done') return payload;
    else if (event === 'error') throw new ApiError(200, payload);
  }
  throw new ApiError(0, { code: 'unavailable', message: 'the answer stream ended early' });
}

/**
 * Uploads one file (multipart: `file`, `domain`) with XMLHttpRequest, whose upload
 * progress fetch cannot report. `onProgress(fraction)`; resolves to the document.
 */
export function upload(file, domain, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('file', file, file.name);
    if (domain) form.append('domain', domain);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/documents');
    xhr.responseType = 'json';
    for (const [name, value] of Object.entries(withKey({ Accept: 'application/json' }))) {
      xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(xhr.response);
      } else {
        unauthenticated(xhr.status);
        reject(new ApiError(xhr.status, xhr.response?.error));
      }
    });
    xhr.addEventListener('error', () =>
      reject(new ApiError(0, { code: 'unavailable', message: 'the upload could not be sent' })));
    xhr.send(form);
  });
}
