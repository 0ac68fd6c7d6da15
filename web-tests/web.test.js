// The web app in a real browser: Debian's headless Chromium driven by playwright-core,
// against a running system at BASE_URL (scripts/web-test.sh starts one). Uploads a document
// (and a broken one), waits for indexed (and failed, with its reason), asks about it and sees
// the answer stream in with a citation, rates it, visits every page (screenshots at desktop
// width and at 390 px), deletes the documents. Exits non-zero on the first failed check.

import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const SHOTS = path.resolve(process.env.SCREENSHOT_DIR || 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The gateway runs with API keys when set: the app must ask for one before anything works.
const API_KEY = process.env.API_KEY || '';
const WIDE = { width: 1280, height: 900 };
const NARROW = { width: 390, height: 844 };
const INDEX_TIMEOUT = 180_000;

const run = Math.random().toString(36).slice(2, 8);
const docName = `web-test-aurora-${run}.md`;
const brokenName = `web-test-broken-${run}.pdf`;
const DOC = `# Aurora cafeteria opening hours

The Aurora cafeteria on the fourth floor opens at 07:45 and closes at 15:30 on weekdays.
On Fridays the Aurora cafeteria serves blueberry pancakes until 10:00.
The cafeteria is closed on public holidays; the vending machines on the ground floor stay stocked.
`;
const QUESTION = 'When does the Aurora cafeteria open on weekdays, and what does it serve on Fridays?';

const step = (text) => console.log(`- ${text}`);

async function shoot(page, name) {
  for (const [suffix, size] of [['', WIDE], ['-narrow', NARROW]]) {
    await page.setViewportSize(size);
    // Let layout settle after the resize.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const file = path.join(SHOTS, `${name}${suffix}.png`);
    await page.screenshot({ path: file, fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} at ${size.width}px scrolls sideways by ${overflow}px`);
    console.log(`  screenshot ${path.relative(process.cwd(), file)}`);
  }
  await page.setViewportSize(WIDE);
}

async function main() {
  await mkdir(SHOTS, { recursive: true });
  const work = await mkdtemp(path.join(tmpdir(), 'rag-web-test-'));
  const profile = path.join(work, 'profile');
  const docPath = path.join(work, docName);
  const brokenPath = path.join(work, brokenName);
  await writeFile(docPath, DOC);
  // Passes the upload's type check (a PDF header) but cannot be parsed: ingestion fails.
  await writeFile(brokenPath, '%PDF-1.7\nthis is not really a PDF\n');

  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: WIDE,
    acceptDownloads: false,
  });
  const problems = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(30_000);
    // Any console error (a CSP violation is one), page error or failed request fails the test.
    // Until the key is given, the browser logs the gateway's 401s; those are expected.
    let keyGiven = !API_KEY;
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (!keyGiven && m.text().includes('401')) return;
      problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => {
      // A stream the app aborted on purpose is not a failure.
      if (!r.failure()?.errorText.includes('ERR_ABORTED')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
    });
    page.on('dialog', (d) => d.accept());

    step('the page and its policy');
    const response = await page.goto(`${BASE}/#/documents`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-type'], /^text\/html/);
    const csp = response.headers()['content-security-policy'] || '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    const js = await page.request.get(`${BASE}/app/main.js`);
    assert.match(js.headers()['content-type'], /^text\/javascript/);

    if (API_KEY) {
      step('the gateway wants an API key: the app asks for one');
      const input = page.getByLabel('API key');
      await input.waitFor({ state: 'visible' });
      assert.equal(await page.locator('#upload-domain option[value="engineering"]').count(), 0);
      await shoot(page, 'api-key');
      await input.fill(API_KEY);
      await input.press('Enter');
      keyGiven = true;
      await page.locator('#key-form').waitFor({ state: 'hidden' });
    }
    await page.locator('#upload-domain option[value="engineering"]').waitFor({ state: 'attached' });

    step(`upload ${docName} and ${brokenName}`);
    await page.selectOption('#upload-domain', 'engineering');
    await page.setInputFiles('#upload-files', [docPath, brokenPath]);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    const good = page.locator('.upload', { has: page.locator('.name', { hasText: docName }) });
    const bad = page.locator('.upload', { has: page.locator('.name', { hasText: brokenName }) });
    await good.and(page.locator('[data-status="indexed"]')).waitFor({ timeout: INDEX_TIMEOUT });
    assert.equal(await good.locator('progress').evaluate((p) => p.value), 100);
    assert.match(await good.locator('.state').innerText(), /indexed · \d+ chunk/);
    const docId = await good.getAttribute('data-id');
    assert.ok(docId, 'the upload row names its document');
    await bad.and(page.locator('[data-status="failed"]')).waitFor({ timeout: INDEX_TIMEOUT });
    const reason = (await bad.locator('.reason').innerText()).trim();
    assert.ok(reason.length > 0, 'a failed upload shows why');
    const brokenId = await bad.getAttribute('data-id');
    console.log(`  indexed ${docId}; failed ${brokenId}: ${reason}`);
    // The library lists both, with their statuses.
    await page.click('#refresh-documents');
    await page.locator(`tr[data-id="${docId}"][data-status="indexed"]`).waitFor();
    await page.locator(`tr[data-id="${brokenId}"][data-status="failed"]`).waitFor();
    await shoot(page, 'documents');

    step('ask, by keyboard, and watch the answer stream in');
    await page.goto(`${BASE}/#/ask`);
    await page.locator('#domain option[value="engineering"]').waitFor({ state: 'attached' });
    await page.selectOption('#domain', 'engineering');
    // Count the answer's DOM updates while it is marked busy (tokens arriving one by one).
    await page.evaluate(() => {
      window.__tokenUpdates = 0;
      const answer = document.getElementById('answer');
      new MutationObserver((records) => {
        if (answer.getAttribute('aria-busy') === 'true') {
          window.__tokenUpdates += records.filter((r) => r.addedNodes.length > 0).length;
        }
      }).observe(answer, { childList: true, characterData: true, subtree: true });
    });
    const streamed = page.waitForResponse((r) => r.url().endsWith('/v1/query/stream'));
    await page.focus('#question');
    await page.keyboard.type(QUESTION);
    await page.keyboard.press('Control+Enter');
    const stream = await streamed;
    assert.equal(stream.status(), 200);
    assert.match(stream.headers()['content-type'], /^text\/event-stream/);
    await page.locator('#answer[aria-busy="false"]').waitFor();
    await page.locator('#feedback-form:not([hidden])').waitFor();
    const frames = await stream.text();
    const tokenEvents = (frames.match(/^event: token$/gm) || []).length;
    // The extractive writer streams one sentence per token event.
    assert.ok(tokenEvents >= 1, `expected token events, got ${tokenEvents}`);
    assert.ok(frames.indexOf('event: token') < frames.indexOf('event: done'), 'tokens come before done');
    const updates = await page.evaluate(() => window.__tokenUpdates);
    assert.ok(updates >= tokenEvents, `${tokenEvents} tokens but the answer grew ${updates} times while streaming`);
    const answerText = await page.locator('#answer').innerText();
    assert.match(answerText, /07:45/, `the answer: ${answerText}`);
    console.log(`  ${tokenEvents} token events, ${updates} updates on screen: ${answerText.slice(0, 100)}`);

    step('the citation names the document and shows the snippet');
    await page.locator('#citations li').first().waitFor();
    const number = await page.evaluate((id) => {
      for (const li of document.querySelectorAll('#citations li')) {
        if (li.textContent.includes(id)) return li.getAttribute('value');
      }
      return null;
    }, docId);
    assert.ok(number, `no source cites ${docId}`);
    const citation = page.locator(`#cite-${number}`);
    const mark = page.locator(`#answer a.mark[data-number="${number}"]`).first();
    if (await mark.count()) await mark.click();
    else await citation.locator('summary').click();
    const snippet = citation.locator('.snippet');
    await snippet.waitFor({ state: 'visible' });
    assert.match(await snippet.innerText(), /Aurora/);
    assert.match(await citation.locator('.meta').innerText(), new RegExp(docId));

    step('feedback with a comment');
    await page.getByRole('button', { name: 'Helpful', exact: true }).click();
    assert.equal(await page.locator('.thumb[data-rating="up"]').getAttribute('aria-pressed'), 'true');
    await page.fill('#feedback-comment', 'Right answer, found by the browser test.');
    await page.click('#feedback-send');
    await page.locator('#feedback-status', { hasText: 'Thank you' }).waitFor();
    await shoot(page, 'ask');

    step('operations');
    await page.goto(`${BASE}/#/ops`);
    await page.locator('#ops-status', { hasText: 'Updated' }).waitFor();
    assert.match(await page.locator('#ops-cache').innerText(), /%$/);
    assert.ok((await page.locator('#ops-tiers meter').count()) >= 1, 'the tier mix has a bar');
    assert.match(await page.locator('#ops-cost').innerText(), /^\$\d/);
    assert.match(await page.locator('#ops-ingest-detail').innerText(), /indexed/);
    await shoot(page, 'ops');

    step('API docs');
    await page.goto(`${BASE}/#/api`);
    await page.locator('.operation').nth(13).waitFor();
    const operations = await page.locator('.operation').count();
    const streamOp = page.locator('#op-post--v1-query-stream');
    await streamOp.locator('summary').click();
    await streamOp.locator('a[data-schema="QueryBody"]').first().click();
    await page.locator('#schema-QueryBody[open]').waitFor();
    console.log(`  ${operations} operations documented`);
    await shoot(page, 'api');

    step('keyboard: the skip link and the navigation');
    await page.goto(`${BASE}/#/ask`);
    await page.reload();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip');
    await page.locator('[data-nav="documents"]').focus();
    await page.keyboard.press('Enter');
    await page.locator('[data-page="documents"]:not([hidden])').waitFor();
    assert.equal(await page.locator('[data-nav="documents"]').getAttribute('aria-current'), 'page');

    step('delete both documents');
    for (const id of [docId, brokenId]) {
      const row = page.locator(`tr[data-id="${id}"]`);
      await row.waitFor();
      await row.locator('button[data-delete]').click();
      await row.waitFor({ state: 'detached', timeout: 60_000 });
      const headers = API_KEY ? { Authorization: `Bearer ${API_KEY}` } : {};
      const gone = await page.request.get(`${BASE}/v1/documents/${id}`, { headers });
      if (gone.status() === 200) assert.match((await gone.json()).status, /deleting|deleted/);
      else assert.equal(gone.status(), 404);
    }
    await shoot(page, 'documents-after-delete');

    assert.deepEqual(problems, [], 'the browser reported problems');
    console.log('web test passed');
  } finally {
    await context.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
