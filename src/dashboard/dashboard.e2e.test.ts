/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a real Neuro
 * and real agent processes: the pool appears and updates live; a session created through the CLI
 * shows up without a reload; sessions are created from the page; a HYBRID simulator is taken over
 * with the keyboard, demonstrations are recorded, control is released; the caller token is asked for.
 * Screenshots go to artifacts/dashboard/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BIN, client, poolUntil, startSimAgent, startTrainerAgent, type AgentProc, type Api } from '../testing/processes.js';
import { chromiumOptions, REPO, screenshotPath, startDashboardNeuro, type DashboardNeuroProc } from './testing/harness.js';

const run = promisify(execFile);
const SIMS = 6;
const TRAINERS = 2;

function cli(neuro: DashboardNeuroProc, ...args: string[]) {
  return run(process.execPath, [BIN, '--address', neuro.address, ...args], { cwd: REPO, timeout: 30_000 });
}

/** A screenshot of the whole page, from the top (the top bar is sticky). */
async function shot(page: Page, path: string, opts: { fullPage?: boolean } = {}): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, ...opts });
}

async function tileStatus(page: Page, id: string): Promise<string | null> {
  return page.locator(`.tile[data-id="${id}"]`).getAttribute('data-status');
}

describe('the dashboard in Chromium', () => {
  let neuro: DashboardNeuroProc;
  let sims: AgentProc;
  let trainers: AgentProc | undefined;
  let api: Api;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    neuro = await startDashboardNeuro();
    process.stdout.write(`# ${neuro.wired ? "Neuro's own HTTP port serves the dashboard" : 'Neuro without the dashboard wired in: src/dashboard/testing/serve.ts'}\n`);
    sims = await startSimAgent(neuro.address, SIMS);
    trainers = await startTrainerAgent(neuro.address, TRAINERS);
    api = client(neuro.address);
    await poolUntil(api, (s, t) => s.idleInstances === SIMS && t.idleInstances === TRAINERS);
    browser = await chromium.launch(chromiumOptions());
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => void d.accept());
    page.setDefaultTimeout(20_000);
  });

  after(async () => {
    await browser?.close();
    api?.close();
    await trainers?.kill('SIGKILL');
    await sims?.kill('SIGKILL');
    await neuro?.kill('SIGKILL');
  });

  it('shows every instance of the pool as a tile, with the counts', async () => {
    await page.goto(neuro.url);
    await page.locator('.tile').nth(SIMS + TRAINERS - 1).waitFor();
    assert.equal(await page.locator('.tile').count(), SIMS + TRAINERS);
    assert.equal(await page.locator('[data-pool="simulators"] [data-count="total"]').textContent(), String(SIMS));
    assert.equal(await page.locator('[data-pool="simulators"] [data-count="idle"]').textContent(), String(SIMS));
    assert.equal(await tileStatus(page, 'isaac-sim-1'), 'idle');
    assert.match((await page.locator('[data-testid="link"]').textContent()) ?? '', /live/);
    // Filters: only trainers, then a text filter.
    await page.locator('.seg button', { hasText: 'Simulators' }).click();
    await page.waitForFunction((n) => document.querySelectorAll('.tile').length === n, SIMS);
    await page.locator('.seg button', { hasText: 'All' }).click();
    await page.fill('input[type="search"]', 'isaac-sim-3');
    await page.waitForFunction(() => document.querySelectorAll('.tile').length === 1);
    await page.fill('input[type="search"]', '');
    await shot(page, screenshotPath('pools.png'));
  });

  it('shows a session created through the CLI without a reload, on the sessions page and in the pool', async () => {
    await page.goto(`${neuro.url}#/sessions`);
    await page.locator('[data-testid="sessions-table"]').waitFor();
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const { stdout } = await cli(neuro, 'session', 'create', '--id', 'cli-x');
    const instance = /(isaac-sim-\d+)/.exec(stdout)?.[1];
    assert.ok(instance, stdout);
    await page.locator('tr[data-session="cli-x"]').waitFor({ timeout: 10_000 });
    assert.match((await page.locator('tr[data-session="cli-x"]').textContent()) ?? '', /MANUAL.*ready/i);
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'the page was not reloaded');
    await shot(page, screenshotPath('sessions.png'));
    // The pool shows it too, live.
    await page.locator('nav a', { hasText: 'Pools' }).click();
    await page.waitForFunction((id) => document.querySelector(`.tile[data-id="${id}"]`)?.getAttribute('data-status') === 'running', instance);
    assert.match((await page.locator(`.tile[data-id="${instance}"]`).textContent()) ?? '', /cli-x/);
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'the page was not reloaded');
  });

  it('shows a session: allocation, placements, events and the simulator scene; drives a MANUAL simulator', async () => {
    await page.goto(`${neuro.url}#/sessions/cli-x`);
    await page.locator('[data-testid="allocation"] [data-node="Operator"]').waitFor();
    assert.ok((await page.locator('[data-testid="placements"] tbody tr').count()) >= 1);
    assert.ok((await page.locator('[data-testid="events"] tbody tr').count()) >= 1);
    const card = page.locator('.sim-card').first();
    await card.locator('.scene canvas').waitFor();
    await page.waitForFunction(() => /episode/.test(document.querySelector('.sim-card .overlay')?.textContent ?? ''));
    const before = await card.locator('.overlay').textContent();
    await card.locator('[data-action="drive"]').click();
    for (let k = 0; k < 5; k++) await page.keyboard.press('KeyW');
    await page.waitForFunction((b) => document.querySelector('.sim-card .overlay')?.textContent !== b, before);
    await shot(page, screenshotPath('session-manual.png'), { fullPage: true });
    // Terminate from the page.
    await page.locator('[data-action="terminate"]').click();
    await page.locator('.page-head [data-state="TERMINATED"]').waitFor();
  });

  it('drains and undrains an instance from its panel', async () => {
    await page.goto(neuro.url);
    await page.locator('.tile[data-id="isaac-sim-6"]').click();
    await page.locator('[data-action="drain"]').click();
    await page.waitForFunction(() => document.querySelector('.tile[data-id="isaac-sim-6"]')?.getAttribute('data-status') === 'draining');
    const pool = await api.getResourcePoolStatus({ includeIsaacPool: true });
    assert.equal(pool.isaacPool?.instances.find((i) => i.instanceId === 'isaac-sim-6')?.draining, true);
    await shot(page, screenshotPath('pools-drain.png'));
    await page.locator('[data-action="undrain"]').click();
    await page.waitForFunction(() => document.querySelector('.tile[data-id="isaac-sim-6"]')?.getAttribute('data-status') === 'idle');
  });

  it('names the bad field when a create is refused', async () => {
    await page.goto(`${neuro.url}#/sessions`);
    await page.locator('[data-action="new-session"]').click();
    const dlg = page.locator('[data-testid="create-dialog"]');
    await dlg.locator('[data-mode="TRAINING"]').click();
    await dlg.locator('input[name="parallel_envs"]').fill('3');
    await dlg.locator('input[name="isaac_sim_instances"]').fill('2');
    await dlg.locator('[data-action="create"]').click();
    await dlg.locator('[data-field="training_config.parallel_envs"].bad').waitFor();
    assert.match((await dlg.locator('[data-testid="create-error"]').textContent()) ?? '', /InvalidArgument/);
    await shot(page, screenshotPath('create-error.png'));
    await page.keyboard.press('Escape');
  });

  it('creates a MANUAL session from the page, and terminates it from the table', async () => {
    await page.goto(`${neuro.url}#/sessions`);
    await page.locator('[data-action="new-session"]').click();
    const dlg = page.locator('[data-testid="create-dialog"]');
    await dlg.locator('[data-mode="MANUAL"]').click();
    await dlg.locator('input[name="session_id"]').fill('ui-manual');
    await dlg.locator('select[name="robot_urdf"]').selectOption('ur5.urdf');
    await dlg.locator('input[name="width"]').fill('1280');
    await dlg.locator('input[name="height"]').fill('720');
    await dlg.locator('[data-action="create"]').click();
    await page.waitForURL(/#\/sessions\/ui-manual$/);
    await page.locator('.page-head [data-state="READY"]').waitFor();
    const s = await api.getSession({ sessionId: 'ui-manual' });
    assert.equal(s.session?.sceneConfig?.robotUrdf, 'ur5.urdf');
    assert.equal(s.session?.streamConfig?.width, 1280);
    await page.locator('nav a', { hasText: 'Sessions' }).click();
    await page.locator('tr[data-session="ui-manual"] [data-action="terminate"]').click();
    await page.locator('tr[data-session="ui-manual"] [data-state="TERMINATED"]').waitFor();
  });

  it('creates a TRAINING session from the page and draws its reward curve live', async () => {
    await page.goto(`${neuro.url}#/sessions`);
    await page.locator('[data-action="new-session"]').click();
    const dlg = page.locator('[data-testid="create-dialog"]');
    await dlg.locator('[data-mode="TRAINING"]').click();
    await dlg.locator('input[name="session_id"]').fill('ui-train');
    await dlg.locator('input[name="total_episodes"]').fill('1000000');
    await dlg.locator('input[name="parallel_envs"]').fill('4');
    await dlg.locator('input[name="isaac_sim_instances"]').fill('2');
    await dlg.locator('[data-action="create"]').click();
    await page.waitForURL(/#\/sessions\/ui-train$/);
    await page.locator('.page-head [data-state="RUNNING"]').waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="training"] svg[data-points]')?.getAttribute('data-points') ?? 0) >= 5, undefined, { timeout: 30_000 });
    assert.equal(await page.locator('[data-testid="allocation"] path[data-channel-state="CONNECTED"]').count(), 2);
    await shot(page, screenshotPath('session-training.png'), { fullPage: true });
    await page.locator('[data-action="terminate"]').click();
    await page.locator('.page-head [data-state="TERMINATED"]').waitFor();
    const s = await api.getSession({ sessionId: 'ui-train' });
    assert.equal(s.session?.state, 6 /* TERMINATED */);
  });

  it('takes a HYBRID simulator over with the keyboard, records demonstrations, and releases it', async () => {
    await page.goto(`${neuro.url}#/sessions`);
    await page.fill('.user input', 'tester');
    await page.locator('.user input').press('Tab');
    await page.locator('[data-action="new-session"]').click();
    const dlg = page.locator('[data-testid="create-dialog"]');
    await dlg.locator('[data-mode="HYBRID"]').click();
    await dlg.locator('input[name="session_id"]').fill('ui-hybrid');
    await dlg.locator('input[name="total_episodes"]').fill('1000000');
    await dlg.locator('input[name="parallel_envs"]').fill('2');
    await dlg.locator('input[name="isaac_sim_instances"]').fill('2');
    await dlg.locator('[data-action="create"]').click();
    await page.waitForURL(/#\/sessions\/ui-hybrid$/);
    await page.locator('.page-head [data-state="RUNNING"]').waitFor({ timeout: 30_000 });
    const live = page.locator('.sim-card[data-link="live"]').first();
    await live.waitFor();
    const sim = await live.getAttribute('data-sim');
    assert.ok(sim);
    const card = page.locator(`.sim-card[data-sim="${sim}"]`);
    await card.locator('[data-testid="controller"][data-controller="ai"]').waitFor();
    await card.locator('[data-action="take"]').click();
    await card.locator('[data-testid="controller"][data-controller="tester"]').waitFor();
    await card.locator('[data-action="release"]').waitFor();
    const demos = async () => Number((await card.locator('[data-testid="demonstrations"]').getAttribute('data-value')) ?? 0);
    const start = await demos();
    // Drive: hold a key (actions repeat while held), then a few presses.
    await page.keyboard.down('KeyQ');
    await page.waitForTimeout(700);
    await page.keyboard.up('KeyQ');
    for (const k of ['KeyW', 'KeyE', 'ArrowUp', 'KeyS']) await page.keyboard.press(k);
    await page.waitForFunction(
      ({ sel, min }) => Number(document.querySelector(sel)?.getAttribute('data-value') ?? 0) >= min,
      { sel: `.sim-card[data-sim="${sim}"] [data-testid="demonstrations"]`, min: start + 5 },
    );
    const mid = await demos();
    await page.keyboard.press('KeyA');
    await page.keyboard.press('KeyD');
    await page.waitForFunction(({ sel, min }) => Number(document.querySelector(sel)?.getAttribute('data-value') ?? 0) > min, { sel: `.sim-card[data-sim="${sim}"] [data-testid="demonstrations"]`, min: mid });
    assert.ok((await demos()) > mid, 'the count rises as you drive');
    // Neuro knows who drives.
    const s1 = await api.getSession({ sessionId: 'ui-hybrid' });
    assert.equal(s1.session?.controllers.find((c) => c.isaacInstanceId === sim)?.controller, 'tester');
    // The learner receives them (the trainer fetches demonstrations while the human drives).
    await page.waitForFunction(() => Number((document.querySelector('[data-testid="learner-demos"] b')?.textContent ?? '0').replace(/,/g, '')) > 0, undefined, { timeout: 20_000 });
    await shot(page, screenshotPath('session-hybrid.png'), { fullPage: true });
    await card.locator('[data-action="release"]').click();
    await card.locator('[data-testid="controller"][data-controller="ai"]').waitFor();
    const s2 = await api.getSession({ sessionId: 'ui-hybrid' });
    assert.equal(s2.session?.controllers.find((c) => c.isaacInstanceId === sim)?.controller, 'ai');
    assert.ok(s2.session?.events.some((e) => e.type === 'control' && e.controller === 'tester'), 'the take-over is in the history');
    // After release, keys do nothing.
    const after = await demos();
    await page.keyboard.press('KeyQ');
    await page.waitForTimeout(400);
    assert.equal(await demos(), after);
    await api.terminateSession({ sessionId: 'ui-hybrid' });
  });

  it('raised no page errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});

describe('the dashboard with a caller token', () => {
  let neuro: DashboardNeuroProc;
  let sims: AgentProc;
  let browser: Browser;

  before(async () => {
    neuro = await startDashboardNeuro({ token: 'letmein' });
    sims = await startSimAgent(neuro.address, 2);
    browser = await chromium.launch(chromiumOptions());
  });

  after(async () => {
    await browser?.close();
    await sims?.kill('SIGKILL');
    await neuro?.kill('SIGKILL');
  });

  it('asks for the token and shows nothing without it', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(20_000);
    await page.goto(neuro.url);
    await page.locator('[data-testid="login"]').waitFor();
    assert.equal(await page.locator('.topbar').count(), 0);
    assert.equal(await page.locator('.tile').count(), 0);
    await shot(page, screenshotPath('login.png'));
    await page.fill('input[name="token"]', 'wrong');
    await page.locator('[data-testid="login"] button[type="submit"]').click();
    await page.locator('[data-testid="login-error"]', { hasText: 'not valid' }).waitFor();
    assert.equal(await page.locator('.tile').count(), 0);
    await page.fill('input[name="token"]', 'letmein');
    await page.locator('[data-testid="login"] button[type="submit"]').click();
    await page.locator('.tile').nth(1).waitFor();
    assert.equal(await page.locator('[data-testid="login"]').count(), 0);
    await page.close();
  });
});
