// The web app's entry: hash routes (#/ask, #/documents, #/ops, #/api) over one page,
// and the domains every page's pickers offer.

import { api, setApiKey } from './api.js';
import * as ask from './ask.js';
import * as documents from './documents.js';
import * as ops from './ops.js';
import * as apidocs from './apidocs.js';

const pages = { ask, documents, ops, api: apidocs };
const titles = { ask: 'Ask', documents: 'Documents', ops: 'Operations', api: 'API' };
let current = null;

function route() {
  const hash = location.hash;
  // Other fragments (the skip link's #main) are not pages.
  if (hash && !hash.startsWith('#/')) return;
  const name = hash.slice(2) in pages ? hash.slice(2) : 'ask';
  if (name === current) return;
  const first = current === null;
  if (current) pages[current].hide?.();
  current = name;
  for (const section of document.querySelectorAll('[data-page]')) {
    section.hidden = section.dataset.page !== name;
  }
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${titles[name]} · Ask your documents`;
  pages[name].show({ first });
  // Move focus to the new page's heading area for keyboard and screen-reader users.
  if (!first) document.getElementById('main').focus();
}

async function loadDomains() {
  try {
    const { domains } = await api.domains();
    ask.setDomains(domains);
    documents.setDomains(domains);
  } catch (e) {
    ask.setDomains([]);
    documents.setDomains([]);
    console.warn('domains unavailable', e);
  }
}

// A gateway with API keys answers 401 until the user gives one; it is kept for this tab.
const keyForm = document.getElementById('key-form');
window.addEventListener('rag:unauthenticated', () => {
  if (!keyForm.hidden) return;
  keyForm.hidden = false;
  keyForm.elements.key.focus();
});
keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey(keyForm.elements.key.value.trim());
  keyForm.reset();
  keyForm.hidden = true;
  loadDomains();
  if (current) pages[current].show({ first: false });
});

for (const page of Object.values(pages)) page.init();
window.addEventListener('hashchange', route);
route();
loadDomains();
