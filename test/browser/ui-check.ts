/**
 * `npm run ui:check [-- --out <dir>]`: what the Temporal UI shows for Backroom jobs, checked in a real browser
 * (headless Chromium through puppeteer-core).
 *
 * Starts everything of its own, as `npm start` does but on free ports and in a temporary data dir: the local dev
 * server (which registers Backroom's search attributes) and a worker in this process. Starts two simpleTest jobs,
 * pauses one once it runs and leaves the other running, then checks that
 *   1. the paused job's workflow page shows its static summary (`count 120 s`): on its start event in the History
 *      tab, and in the User Metadata tab next to its current-details line (`**paused** · …`, rendered with "paused"
 *      in bold);
 *   2. the workflow list filtered by `BackroomState="paused"` lists the paused job and not the running one (which
 *      the unfiltered list does show);
 * takes a screenshot of each page, prints PASS or FAIL for each check and the screenshots' paths, and exits 1 on any
 * FAIL. It stops everything it started at the end (jobs terminated, worker and server shut down).
 *
 * Needs Chromium: /usr/bin/chromium (Debian's `chromium` package), or the binary named by BACKROOM_CHROMIUM_PATH.
 * Runs without payload encryption (the encryption variables are ignored), so the UI reads summaries as they are.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { workflowUrl } from '../../src/client/demo';
import { Jobs } from '../../src/client/jobs';
import { devServerSettings, ENCRYPTION_KEY_VARIABLES } from '../../src/config';
import { startDevServer, type RunningDevServer } from '../../src/devserver/dev-server';
import { freePort, isListening } from '../../src/ports';
import { createBackroomWorker } from '../../src/workers/worker';

const DEFAULT_CHROMIUM = '/usr/bin/chromium';
const PAUSED_SECONDS = 120;
const RUNNING_SECONDS = 300;
/** How long the UI may take to show what is checked (it polls the server and queries the worker). */
const PAGE_TIMEOUT_MS = 60_000;
const PAUSED_QUERY = 'BackroomState="paused"';

interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value, or throws after `timeoutMs` saying what it waited for. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

// The functions below up to `markdownPanels` run in the browser (puppeteer sends their source): they reach the DOM
// through `globalThis`, typed here with only what they use, since the project compiles without the DOM library.

/** The page's visible text. */
function visibleText(): string {
  return (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText;
}

/** The section an element is in, as the first text around it ("Summary", "Current Details ..."). */
function sectionHeading(element: unknown): string {
  interface DomElement {
    textContent: string | null;
    parentElement: DomElement | null;
  }
  let around = (element as DomElement).parentElement;
  for (let level = 0; around && level < 8; level++, around = around.parentElement) {
    const text = (around.textContent ?? '').replace(/\s+/g, ' ').trim();
    if (text) return text;
  }
  return '';
}

/** A rendered markdown frame's text and bold words. */
function renderedMarkdown(): { text: string; bold: string[] } {
  interface DomElement {
    textContent: string | null;
  }
  const { document } = globalThis as unknown as {
    document: { body: { innerText: string }; querySelectorAll(selector: string): ArrayLike<DomElement> };
  };
  return {
    text: document.body.innerText.replace(/\s+/g, ' ').trim(),
    bold: Array.from(document.querySelectorAll('strong, b')).map((element) => (element.textContent ?? '').trim()),
  };
}

/** Scrolls the first leaf element whose text is `wanted` to the middle of the screen, if there is one. */
function scrollToLeafText(wanted: string): void {
  interface DomElement {
    textContent: string | null;
    children: ArrayLike<unknown>;
    scrollIntoView(options: { block: string }): void;
  }
  const { document } = globalThis as unknown as {
    document: { querySelectorAll(selector: string): ArrayLike<DomElement> };
  };
  const target = Array.from(document.querySelectorAll('body *')).find(
    (element) => element.children.length === 0 && element.textContent?.trim() === wanted,
  );
  target?.scrollIntoView({ block: 'center' });
}

/**
 * A markdown panel of a workflow page: the UI renders summaries and details as markdown, each in a frame of its own
 * (`/render?content=…`), under a section heading.
 */
interface MarkdownPanel {
  heading: string;
  text: string;
  bold: string[];
}

async function markdownPanels(page: Page): Promise<MarkdownPanel[]> {
  const panels: MarkdownPanel[] = [];
  for (const handle of await page.$$('iframe')) {
    const heading = await handle.evaluate(sectionHeading).catch(() => '');
    const frame = await handle.contentFrame().catch(() => null);
    const content = await frame?.evaluate(renderedMarkdown).catch(() => undefined);
    if (content) panels.push({ heading, ...content });
  }
  return panels;
}

const pageText = (page: Page) => page.evaluate(visibleText).catch(() => '');

/**
 * Probes a page until `done` holds for what it sees, or PAGE_TIMEOUT_MS; returns the last value either way. With
 * `reloadEveryMs`, reloads the page that often meanwhile (a list the UI does not refresh by itself).
 */
async function watchPage<T>(
  page: Page,
  probe: (page: Page) => Promise<T>,
  done: (value: T) => boolean,
  reloadEveryMs?: number,
): Promise<T> {
  const deadline = Date.now() + PAGE_TIMEOUT_MS;
  let lastLoad = Date.now();
  for (;;) {
    const value = await probe(page);
    if (done(value) || Date.now() > deadline) return value;
    if (reloadEveryMs && Date.now() - lastLoad > reloadEveryMs) {
      await page.reload({ waitUntil: 'networkidle2' }).catch(() => undefined);
      lastLoad = Date.now();
    }
    await sleep(500);
  }
}

function excerpt(text: string, max = 600): string {
  const squeezed = text.replace(/\s+/g, ' ').trim();
  return squeezed.length > max ? `${squeezed.slice(0, max)}…` : squeezed;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('Usage: npm run ui:check [-- --out <dir>]   (screenshots go to <dir>, by default a temp dir)');
    return 0;
  }
  const chromium = process.env.BACKROOM_CHROMIUM_PATH || DEFAULT_CHROMIUM;
  if (!existsSync(chromium)) {
    console.error(
      `No Chromium at ${chromium}: install Debian's (apt-get install -y --no-install-recommends chromium) or set ` +
        `BACKROOM_CHROMIUM_PATH to a Chromium or Chrome binary.`,
    );
    return 1;
  }
  const outDir = path.resolve(values.out ?? mkdtempSync(path.join(os.tmpdir(), 'backroom-ui-check-')));
  mkdirSync(outDir, { recursive: true });

  // Everything of its own: a data dir, free ports, no encryption; read by devServerSettings() below.
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-ui-check-data-'));
  process.env.BACKROOM_DATA_DIR = dataDir;
  process.env.BACKROOM_DEV_SERVER_IP = '127.0.0.1';
  process.env.BACKROOM_DEV_SERVER_PORT = String(await freePort());
  process.env.BACKROOM_DEV_UI_PORT = String(await freePort());
  for (const name of ENCRYPTION_KEY_VARIABLES) delete process.env[name];
  delete process.env.BACKROOM_CODEC_ENDPOINT;
  Runtime.install({ logger: new DefaultLogger('WARN') });

  const checks: Check[] = [];
  const record = (name: string, pass: boolean, detail: string) => {
    checks.push({ name, pass, detail });
    console.log(`${pass ? 'PASS' : 'FAIL'}  ${name}\n      ${detail}`);
  };
  const screenshots: string[] = [];
  const shoot = async (page: Page, name: string) => {
    const file = path.join(outDir, name);
    await page.screenshot({ path: file });
    screenshots.push(file);
  };
  const jobIds: string[] = [];
  let server: RunningDevServer | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let nativeConnection: NativeConnection | undefined;
  let client: Client | undefined;
  let browser: Browser | undefined;
  try {
    const settings = devServerSettings();
    const logFile = path.join(dataDir, 'temporal-dev-server.log');
    server = await startDevServer(settings, { logFile });
    const { ip, uiPort, namespace } = settings;
    await waitFor('the Temporal UI to listen', async () => ((await isListening(ip, uiPort)) ? true : undefined));
    console.log(`Dev server on ${server.address}, UI ${server.uiUrl} (data dir ${dataDir})`);

    const taskQueue = `ui-check-${process.pid}`;
    nativeConnection = await NativeConnection.connect({ address: server.address });
    worker = await createBackroomWorker({
      connection: nativeConnection,
      namespace,
      settings: { taskQueue, shutdownGraceSeconds: 1, healthPort: 0 },
    });
    running = worker.run();
    const connection = await Connection.connect({ address: server.address });
    const temporal = new Client({ connection, namespace });
    client = temporal;
    const jobs = new Jobs(temporal, taskQueue);
    if (!(await jobs.searchAttributesRegistered())) {
      throw new Error("The dev server did not register Backroom's search attributes");
    }
    console.log(`Worker polling "${taskQueue}"`);

    const paused = await jobs.start('simpleTest', { message: 'ui check: paused', durationSeconds: PAUSED_SECONDS });
    jobIds.push(paused.id);
    const other = await jobs.start('simpleTest', { message: 'ui check: running', durationSeconds: RUNNING_SECONDS });
    jobIds.push(other.id);
    console.log(`Started ${paused.id} (to pause) and ${other.id} (left running)`);
    await waitFor('the job to count its first second', async () => {
      const view = await jobs.status(paused.id);
      return view.state === 'running' && view.progress.done >= 1 ? true : undefined;
    });
    await jobs.pause(paused.id);
    await waitFor('the job to be paused', async () =>
      (await jobs.status(paused.id)).state === 'paused' ? true : undefined,
    );
    // The UI's list asks visibility, which follows the job's upsert a moment later.
    await waitFor(`${PAUSED_QUERY} to find the paused job`, async () => {
      for await (const execution of temporal.workflow.list({ query: PAUSED_QUERY })) {
        if (execution.workflowId === paused.id) return true;
      }
      return undefined;
    });
    console.log(`${paused.id} is paused; ${other.id} is running\n`);

    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      // Chromium's sandbox refuses to run as root.
      args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'],
      defaultViewport: { width: 1440, height: 1000 },
    });
    const page = await browser.newPage();

    // 1. The paused job's page. Its History tab shows the summary on the start event...
    const summary = `count ${PAUSED_SECONDS} s`;
    const jobUrl = workflowUrl(server.uiUrl, namespace, paused.id);
    console.log(`Workflow page: ${jobUrl}`);
    await page.goto(jobUrl, { waitUntil: 'networkidle2' });
    const historyText = await watchPage(page, pageText, (text) => text.includes(summary));
    await page.evaluate(scrollToLeafText, summary).catch(() => undefined);
    await sleep(300);
    await shoot(page, '1-workflow-page-history.png');
    record(
      `the workflow page (History) shows the summary "${summary}" on its start event`,
      historyText.includes(summary),
      historyText.includes(summary) ? 'found in the event list' : `not in the page: ${excerpt(historyText)}`,
    );

    // ...and its User Metadata tab the summary and the current-details line, as rendered markdown.
    await page.click('a[href$="/user-metadata"]');
    const summaryPanel = (panels: MarkdownPanel[]) =>
      panels.find((panel) => panel.heading.startsWith('Summary') && panel.text === summary);
    const detailsPanel = (panels: MarkdownPanel[]) =>
      panels.find(
        (panel) =>
          panel.heading.startsWith('Current Details') && panel.bold[0] === 'paused' && /^paused · /.test(panel.text),
      );
    const panels = await watchPage(
      page,
      markdownPanels,
      (found) => summaryPanel(found) !== undefined && detailsPanel(found) !== undefined,
    );
    await shoot(page, '2-workflow-page-user-metadata.png');
    const seen = panels.map((panel) => `${panel.heading.slice(0, 20)}: "${panel.text.slice(0, 80)}"`).join('; ');
    record(
      `the workflow page (User Metadata) shows the summary "${summary}" under Summary`,
      summaryPanel(panels) !== undefined,
      summaryPanel(panels) ? page.url() : `panels seen: ${seen || 'none'}`,
    );
    const details = detailsPanel(panels);
    record(
      'the workflow page (User Metadata) shows the current-details line, "paused" in bold, under Current Details',
      details !== undefined,
      details ? `"${details.text}" (bold: ${details.bold.join(', ')})` : `panels seen: ${seen || 'none'}`,
    );

    // 2. The list: unfiltered first (both jobs, so that a job missing below is the filter's doing), then filtered.
    const listBase = `${server.uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows`;
    await page.goto(listBase, { waitUntil: 'networkidle2' });
    const allText = await watchPage(
      page,
      pageText,
      (text) => text.includes(paused.id) && text.includes(other.id),
      5_000,
    );
    record(
      'the unfiltered list lists both jobs',
      allText.includes(paused.id) && allText.includes(other.id),
      [paused.id, other.id].map((id) => `${id} ${allText.includes(id) ? 'listed' : 'missing'}`).join(', '),
    );

    const listUrl = `${listBase}?query=${encodeURIComponent(PAUSED_QUERY)}`;
    console.log(`Filtered list: ${listUrl}`);
    await page.goto(listUrl, { waitUntil: 'networkidle2' });
    await watchPage(page, pageText, (text) => text.includes(paused.id), 5_000);
    // A moment more, so that a row that should not be there has had the time to show.
    await sleep(1_000);
    const listText = await pageText(page);
    await shoot(page, '3-workflow-list-paused.png');
    const count = /\b\d+\s+Workflows?\b/.exec(listText)?.[0].replace(/\s+/g, ' ') ?? 'no count shown';
    record(
      `the list filtered by ${PAUSED_QUERY} lists the paused job`,
      listText.includes(paused.id),
      listText.includes(paused.id) ? `${paused.id} (the list says "${count}")` : `not listed: ${excerpt(listText)}`,
    );
    record(
      `the list filtered by ${PAUSED_QUERY} does not list the running job`,
      !listText.includes(other.id),
      `${other.id} ${listText.includes(other.id) ? 'is listed' : 'is not listed'}`,
    );
    const filterShown = /BackroomState\s*=\s*"paused"/.test(listText);
    record(
      'the list shows the query as its filter',
      filterShown,
      filterShown ? 'filter chip: BackroomState = "paused"' : `no such filter in the page (URL ${page.url()})`,
    );
  } catch (err) {
    record('the check ran to the end', false, err instanceof Error ? err.message : String(err));
  } finally {
    await browser?.close().catch(() => undefined);
    for (const id of jobIds) {
      await client?.workflow
        .getHandle(id)
        .terminate('ui check done')
        .catch(() => undefined);
    }
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running?.catch((err: unknown) => console.error(`The worker stopped with an error: ${String(err)}`));
    await client?.connection.close().catch(() => undefined);
    await nativeConnection?.close().catch(() => undefined);
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const failed = checks.filter((check) => !check.pass).length;
  console.log(`\nScreenshots (in ${outDir}):`);
  for (const shot of screenshots) console.log(`  ${shot}`);
  console.log(`\n${checks.length - failed} passed, ${failed} failed: ${failed ? 'FAIL' : 'PASS'}`);
  console.log('Stopped: jobs terminated, worker and dev server shut down.');
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
