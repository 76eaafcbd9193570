// Debian's Chromium driven by playwright-core (`npx playwright install` cannot work here: no
// browser download), headless, with a fresh profile, and screenshots kept as artifacts.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { artifactsDir } from './webdemo.js';

/** Debian's Chromium, or CHROMIUM. */
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Launches Chromium headless. Playwright's launch() gives each browser a new, empty temporary
 * profile (a fresh user-data-dir) and removes it on close. The flags keep Chromium from calling
 * Google's services, which this machine's closed network refuses, many at a time.
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** A helper that saves numbered screenshots of a test's key pages under its own folder. */
export function screenshots(testName) {
  const dir = path.join(artifactsDir(), testName);
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, label) => {
    n += 1;
    const file = path.join(dir, `${String(n).padStart(2, '0')}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
}
