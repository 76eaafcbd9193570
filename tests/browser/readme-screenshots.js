// Saves the README's pictures of the web login: the sign-in page's wait state (the short code
// the phone shows too) and the demo site's "Welkom", as docs/images/web-login-*.png.
// Run: node readme-screenshots.js (after cargo build -p sleutel-harness).

import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { launchBrowser } from './lib/browser.js';
import { repoRoot, setAnswer, shownRequest, startWebDemo } from './lib/webdemo.js';

const images = path.join(repoRoot, 'docs', 'images');
/** A phone-sized window: how most people see the sign-in page. */
const VIEWPORT = { width: 480, height: 640 };

mkdirSync(images, { recursive: true });
const demo = await startWebDemo(['--answer', 'wait']);
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: VIEWPORT });
  await page.goto(`${demo.site}/`);
  await page.getByRole('link', { name: 'Aanmelden via Sleutel' }).click();
  await page.locator('#phone_number').fill(demo.number);
  await page.getByRole('button', { name: 'Versturen' }).click();
  await page.locator('.code').waitFor();
  await page.screenshot({ path: path.join(images, 'web-login-wait.png') });

  await shownRequest(demo);
  await setAnswer(demo, 'approve');
  await page.getByRole('heading', { name: /^Welkom, / }).waitFor({ timeout: 20_000 });
  await page.screenshot({ path: path.join(images, 'web-login-welkom.png') });
  console.log(`saved ${images}/web-login-wait.png and web-login-welkom.png`);
} finally {
  await browser.close();
  await demo.stop();
}
