// Signing in without typing a number: the QR code for another device (decoded from the image the
// page shows, handed to the virtual phone as its camera would), and app-to-app on the phone
// itself (the page's "open the app" link handed to the phone, which returns the person through
// the return URL).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, screenshots } from '../lib/browser.js';
import { readQr } from '../lib/qr.js';
import {
  openLink, setAnswer, shownRequest, withDemo as withDemoIn,
} from '../lib/webdemo.js';

/** How long a page may take to reach its next state. */
const STEP_MS = 20_000;

/** An age by which a QR link is past the server's current and previous 2-second steps. */
const PHOTO_AGE_MS = 6_500;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** [withDemo] with this file's browser. */
function withDemo(args, contextOptions, body) {
  return withDemoIn(browser, args, contextOptions, body);
}

/** From the demo site to the server's sign-in page. */
async function signInPage(demo, page) {
  await page.goto(`${demo.site}/`);
  await page.getByRole('link', { name: 'Aanmelden via Sleutel' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${demo.server}/oidc/authorize?`));
}

for (const javaScript of [true, false]) {
  const how = javaScript ? 'with JavaScript' : 'without JavaScript';
  test(`a QR code scanned by the phone signs in, ${how}`, async () => {
    const shot = screenshots(`qr-${javaScript ? 'js' : 'no-js'}`);
    await withDemo(['--answer', 'wait'], { javaScriptEnabled: javaScript }, async (demo, page) => {
      await signInPage(demo, page);
      await page.getByRole('link', { name: 'Een QR-code gebruiken' }).click();
      const qr = page.locator('img#qr');
      await qr.waitFor();
      await shot(page, 'qr-page');

      const link = await readQr(page, qr);
      assert.match(link, /\/app\/scan\?kind=qr&/);
      const answered = openLink(demo, link);
      const shown = await shownRequest(demo);
      await page.locator('.code').waitFor({ timeout: STEP_MS });
      assert.equal((await page.locator('.code').textContent()).trim(), shown.binding_message);
      await shot(page, 'code-after-scan');
      await setAnswer(demo, 'approve');

      const { request, return_url: returnUrl } = await answered;
      assert.equal(request.outcome, 'approved');
      assert.equal(returnUrl, null);
      await page.getByRole('heading', { name: `Welkom, ${demo.citizenName}` })
        .waitFor({ timeout: STEP_MS });
      await shot(page, 'welkom');
    });
  });
}

test('a QR code the phone already used is refused the second time', async () => {
  await withDemo([], {}, async (demo, page) => {
    await signInPage(demo, page);
    await page.getByRole('link', { name: 'Een QR-code gebruiken' }).click();
    const qr = page.locator('img#qr');
    await qr.waitFor();
    const link = await readQr(page, qr);
    await openLink(demo, link);

    await assert.rejects(openLink(demo, link), /already used/);
  });
});

test('a photo of the QR code older than a few seconds is refused as expired', async () => {
  await withDemo([], {}, async (demo, page) => {
    await signInPage(demo, page);
    await page.getByRole('link', { name: 'Een QR-code gebruiken' }).click();
    const qr = page.locator('img#qr');
    await qr.waitFor();
    const link = await readQr(page, qr);

    // Past the current and the previous step (2 s each): the photo no longer signs in.
    await new Promise((resolve) => setTimeout(resolve, PHOTO_AGE_MS));

    await assert.rejects(openLink(demo, link), /has expired/);
  });
});

test('app-to-app: the phone opens the page\'s link, approves, and its return URL lands on Welkom', async () => {
  const shot = screenshots('app-to-app');
  await withDemo([], {}, async (demo, page) => {
    await signInPage(demo, page);
    const appLink = page.getByRole('link', { name: 'De app op deze gsm openen' });
    await shot(page, 'sign-in-page');
    // What the phone's system hands the app when the person taps the universal link.
    const link = await appLink.getAttribute('href');

    const { request, return_url: returnUrl } = await openLink(demo, link);
    assert.equal(request.outcome, 'approved');
    assert.ok(returnUrl, 'an app-to-app link gives a return URL');

    await page.goto(returnUrl);
    await page.getByRole('heading', { name: `Welkom, ${demo.citizenName}` })
      .waitFor({ timeout: STEP_MS });
    await shot(page, 'welkom');
  });
});

test('app-to-app declined: the return URL brings the person back with access_denied', async () => {
  const shot = screenshots('app-to-app-declined');
  await withDemo(['--answer', 'decline'], {}, async (demo, page) => {
    await signInPage(demo, page);
    const link = await page.getByRole('link', { name: 'De app op deze gsm openen' }).getAttribute('href');

    const { request, return_url: returnUrl } = await openLink(demo, link);
    assert.equal(request.outcome, 'declined');

    await page.goto(returnUrl);
    assert.match(await page.locator('[role=alert]').textContent(), /access_denied/);
    await shot(page, 'site-not-confirmed');
  });
});
