// Starts `sleutel-harness web-demo` (the built debug binary) on free ports and reads the
// addresses it prints; each test gets its own server, phone and demo site.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..');

/** The harness binary: SLEUTEL_HARNESS, else the debug build in the shared target directory. */
export function harnessBinary() {
  if (process.env.SLEUTEL_HARNESS) return process.env.SLEUTEL_HARNESS;
  const target = process.env.CARGO_TARGET_DIR
    ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
    : path.join(repo, 'target');
  return path.join(target, 'debug', 'sleutel-harness');
}

/** Where screenshots and logs go: target/browser-artifacts/ (or BROWSER_ARTIFACTS). */
export function artifactsDir() {
  if (process.env.BROWSER_ARTIFACTS) return process.env.BROWSER_ARTIFACTS;
  const target = process.env.CARGO_TARGET_DIR
    ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
    : path.join(repo, 'target');
  return path.join(target, 'browser-artifacts');
}

/** The repository's root. */
export const repoRoot = repo;

// The labels `web-demo` prints (tests/src/web_demo.rs, the LABEL_ constants).
const READY = 'ready (Ctrl-C stops)';

/** How long the web demo may take to start: a server, an enrollment, two listeners. */
const START_TIMEOUT_MS = 60_000;

/**
 * Starts the web demo with `args` (e.g. ['--answer', 'wait']) and resolves once it printed its
 * ready line, with the addresses it printed and `stop()`.
 */
export async function startWebDemo(args = []) {
  const binary = harnessBinary();
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: build it with cargo build -p sleutel-harness`);
  }
  const child = spawn(binary, ['web-demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk) => { output += chunk; });
  const lines = {};
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`web-demo did not start in time:\n${output}`));
    }, START_TIMEOUT_MS);
    let pending = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        const colon = line.indexOf(': ');
        if (colon > 0) lines[line.slice(0, colon)] = line.slice(colon + 2);
        if (line === READY) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`web-demo exited (${code}) before it was ready:\n${output}`));
    });
  });
  const [clientId, clientSecret, redirectUri] = lines['other client'].split(' ');
  return {
    site: lines.open.replace(/\/$/, ''),
    server: lines.server,
    control: lines['phone control'],
    // "0470 12 34 56 (+32470123456, Given Family)": the number as typed, and the name.
    number: lines['phone number'].split(' (')[0],
    citizenName: lines['phone number'].replace(/^.*, (.*)\)$/, '$1'),
    otherClient: { clientId, clientSecret, redirectUri },
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGINT');
      await exited;
    },
  };
}

/** Sets how the demo's phone answers: approve, decline, not-me, wait. */
export async function setAnswer(demo, answer) {
  const response = await fetch(`${demo.control}/phone/answer`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ answer }),
  });
  if (response.status !== 204) throw new Error(`setting the answer: ${response.status}`);
}

/** What the demo's phone showed, and how it answers now. */
export async function phoneState(demo) {
  const response = await fetch(`${demo.control}/phone`);
  return response.json();
}

/** Waits until the phone has shown a request, and returns it. */
export async function shownRequest(demo, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await phoneState(demo);
    if (state.shown.length > 0) return state.shown[state.shown.length - 1];
    if (Date.now() > deadline) throw new Error('the phone showed no request');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Waits until the phone's last request has an outcome, and returns it. */
export async function settledRequest(demo, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await phoneState(demo);
    const last = state.shown[state.shown.length - 1];
    if (last?.outcome) return last;
    if (Date.now() > deadline) throw new Error('the phone did not answer');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Hands the demo's phone a sign-in link (a scanned QR code's, or an "open the app" link) and
 * resolves once the phone answered its request: `{ request, return_url }`. A link the phone
 * refuses rejects with the phone's error.
 */
export async function openLink(demo, link) {
  const response = await fetch(`${demo.control}/phone/open-link`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ link }),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`the phone refused the link: ${body.error}`);
  return body;
}

/**
 * Runs `body(demo, page)` with a web demo started with `args` and a fresh page of `browser` in a
 * new context (`contextOptions`: e.g. `{ javaScriptEnabled: false }`); both are closed after.
 */
export async function withDemo(browser, args, contextOptions, body) {
  const demo = await startWebDemo(args);
  const context = await browser.newContext(contextOptions);
  try {
    await body(demo, await context.newPage());
  } finally {
    await context.close();
    await demo.stop();
  }
}
