// The sign-in in a real browser: the demo site "Online overheid", the server's sign-in page and
// wait page, and the virtual phone answering, each test on its own `web-demo`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, screenshots } from '../lib/browser.js';
import {
  setAnswer, settledRequest, shownRequest, withDemo as withDemoIn,
} from '../lib/webdemo.js';

/** How long a page may take to reach its next state (the wait page reloads every 2 s). */
const STEP_MS = 20_000;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** [withDemo] with this file's browser. */
function withDemo(args, contextOptions, body) {
  return withDemoIn(browser, args, contextOptions, body);
}

/**
 * From the demo site's home page to the server's wait page; returns the code it shows. With
 * `answered`, the demo's phone answers at once (a decline, "not me") and may do so before the
 * wait page is shown, which then shows the outcome instead of the code: nothing is returned.
 */
async function sendNumber(
  demo,
  page,
  shot,
  { buttonName = 'Aanmelden via Sleutel', send = 'Versturen', answered = false } = {},
) {
  await page.goto(`${demo.site}/`);
  await page.getByRole('link', { name: buttonName }).click();
  await page.waitForURL(`${demo.server}/oidc/authorize?**`);
  await shot(page, 'sign-in-page');
  await page.locator('#phone_number').fill(demo.number);
  await page.getByRole('button', { name: send }).click();
  await page.waitForURL(`${demo.server}/oidc/sign-in/status`);
  if (answered) {
    return undefined;
  }
  const code = (await page.locator('.code').textContent()).trim();
  assert.match(code, /^\d{4}$/);
  return code;
}

/** Signs in with the phone holding its answer, and returns the server's redirect unfollowed. */
async function heldBackAnswer(demo, page, shot) {
  await sendNumber(demo, page, shot);
  await shownRequest(demo);
  // Off the refreshing wait page, which would otherwise follow the redirect itself.
  await page.goto('about:blank');
  await setAnswer(demo, 'approve');
  await settledRequest(demo);
  const status = await page.request.get(`${demo.server}/oidc/sign-in/status`, { maxRedirects: 0 });
  assert.equal(status.status(), 303);
  return new URL(status.headers().location);
}

test('a login by phone number shows the same code on both sides and lands on Welkom', async () => {
  const shot = screenshots('login-by-number');
  await withDemo(['--answer', 'wait'], {}, async (demo, page) => {
    await page.goto(`${demo.site}/`);
    await shot(page, 'demo-site');
    const code = await sendNumber(demo, page, shot);
    await shot(page, 'wait-page');

    const shown = await shownRequest(demo);
    assert.equal(shown.binding_message, code);
    assert.equal(shown.service, 'Online overheid');
    assert.equal(shown.text, 'Ik log in op de online overheid');
    await setAnswer(demo, 'approve');

    await page.waitForURL(`${demo.site}/`, { timeout: STEP_MS });
    await assert.doesNotReject(
      page.getByRole('heading', { name: `Welkom, ${demo.citizenName}` }).waitFor(),
    );
    assert.equal(await page.locator('#claims th:text-is("name") + td').textContent(), demo.citizenName);
    await shot(page, 'welkom');

    await page.getByRole('button', { name: 'Afmelden' }).click();
    await page.getByRole('link', { name: 'Aanmelden via Sleutel' }).waitFor();
    await shot(page, 'signed-out');
  });
});

test('a login declined on the phone shows Geweigerd and the site says it was not confirmed', async () => {
  const shot = screenshots('decline');
  await withDemo(['--answer', 'decline'], {}, async (demo, page) => {
    await sendNumber(demo, page, shot, { answered: true });
    await page.getByRole('heading', { name: 'Geweigerd' }).waitFor({ timeout: STEP_MS });
    await shot(page, 'declined');
    assert.equal((await settledRequest(demo)).outcome, 'declined');

    await page.getByRole('link', { name: 'Terug naar de dienst' }).click();
    await page.waitForURL(`${demo.site}/callback?**`);
    assert.match(await page.locator('[role=alert]').textContent(), /niet bevestigd: access_denied/);
    await shot(page, 'site-not-confirmed');
  });
});

test('a login answered "not me" is refused like a decline', async () => {
  const shot = screenshots('not-me');
  await withDemo(['--answer', 'not-me'], {}, async (demo, page) => {
    await sendNumber(demo, page, shot, { answered: true });
    await page.getByRole('heading', { name: 'Geweigerd' }).waitFor({ timeout: STEP_MS });
    await shot(page, 'refused');
    assert.equal((await settledRequest(demo)).outcome, 'not-me');

    await page.getByRole('link', { name: 'Terug naar de dienst' }).click();
    assert.match(await page.locator('[role=alert]').textContent(), /access_denied/);
  });
});

test('a login nobody answers expires with a Verlopen page', async () => {
  const shot = screenshots('expiry');
  await withDemo(['--answer', 'wait', '--request-ttl', '2'], {}, async (demo, page) => {
    await sendNumber(demo, page, shot);
    await shot(page, 'wait-page');
    await page.getByRole('heading', { name: 'Verlopen' }).waitFor({ timeout: STEP_MS });
    await shot(page, 'expired');

    await page.getByRole('link', { name: 'Terug naar de dienst' }).click();
    assert.match(await page.locator('[role=alert]').textContent(), /access_denied/);
    await shot(page, 'site-not-confirmed');
  });
});

test('the demo site signs in with private_key_jwt as well', async () => {
  const shot = screenshots('private-key-jwt');
  await withDemo(['--client-auth', 'private-key-jwt'], {}, async (demo, page) => {
    await sendNumber(demo, page, shot);
    await page.getByRole('heading', { name: `Welkom, ${demo.citizenName}` })
      .waitFor({ timeout: STEP_MS });
    await shot(page, 'welkom');
  });
});

const LANGUAGES = [
  {
    lang: 'nl', signIn: 'Aanmelden via Sleutel', title: 'Aanmelden met Sleutel', send: 'Versturen',
    wait: 'Open de app', welcome: 'Welkom',
  },
  {
    lang: 'fr', signIn: 'Se connecter via Sleutel', title: 'Se connecter avec Sleutel', send: 'Envoyer',
    wait: "Ouvrez l'app", welcome: 'Bienvenue',
  },
  {
    lang: 'en', signIn: 'Sign in with Sleutel', title: 'Sign in with Sleutel', send: 'Send',
    wait: 'Open the app', welcome: 'Welcome',
  },
];

for (const l of LANGUAGES) {
  test(`the sign-in pages speak ${l.lang} when the site asks for it`, async () => {
    const shot = screenshots(`language-${l.lang}`);
    await withDemo(['--answer', 'wait', '--lang', l.lang], {}, async (demo, page) => {
      await sendNumber(demo, page, shot, { buttonName: l.signIn, send: l.send });
      assert.equal(await page.locator('html').getAttribute('lang'), l.lang);
      await page.getByRole('heading', { name: l.wait }).waitFor();
      await shot(page, 'wait-page');
      await setAnswer(demo, 'approve');

      await page.getByRole('heading', { name: `${l.welcome}, ${demo.citizenName}` })
        .waitFor({ timeout: STEP_MS });
      await shot(page, 'welcome');
    });
  });
}

test('the sign-in page is in the language picked on the demo site', async () => {
  const shot = screenshots('language-picked');
  await withDemo([], {}, async (demo, page) => {
    await page.goto(`${demo.site}/`);
    await page.getByRole('link', { name: 'FR' }).click();
    await page.getByRole('link', { name: 'Se connecter via Sleutel' }).click();
    await page.getByRole('heading', { name: 'Se connecter avec Sleutel' }).waitFor();
    await shot(page, 'sign-in-page-fr');
  });
});

test('a callback with a wrong state gets an error page and exchanges nothing', async () => {
  const shot = screenshots('wrong-state');
  await withDemo(['--answer', 'wait'], {}, async (demo, page) => {
    const answer = await heldBackAnswer(demo, page, shot);
    assert.ok(answer.searchParams.get('code'));

    const forged = new URL(answer);
    forged.searchParams.set('state', 'not-the-state-the-site-sent');
    const wrong = await page.goto(forged.href);
    assert.equal(wrong.status(), 400);
    assert.match(await page.locator('[role=alert]').textContent(), /verkeerde state/);
    await shot(page, 'wrong-state');

    const missing = new URL(answer);
    missing.searchParams.delete('state');
    assert.equal((await page.goto(missing.href)).status(), 400);

    // The code is single-use: had the forged callbacks exchanged it, this would fail.
    await page.goto(answer.href);
    await page.getByRole('heading', { name: `Welkom, ${demo.citizenName}` }).waitFor();
    await shot(page, 'real-answer-still-works');
  });
});

test('a callback whose iss is not the server is refused and ends the login', async () => {
  const shot = screenshots('wrong-issuer');
  await withDemo(['--answer', 'wait'], {}, async (demo, page) => {
    const answer = await heldBackAnswer(demo, page, shot);

    const forged = new URL(answer);
    forged.searchParams.set('iss', 'https://sleutel.example');
    assert.equal((await page.goto(forged.href)).status(), 400);
    assert.match(await page.locator('[role=alert]').textContent(), /komt niet van de Sleutel-server/);
    await shot(page, 'wrong-issuer');

    // Its state matched, so the state went to another issuer (a mix-up): the login is over.
    assert.equal((await page.goto(answer.href)).status(), 400);
    assert.match(await page.locator('[role=alert]').textContent(), /geen aanmelding bezig/);
  });
});

test('a callback in a browser that started no login gets an error page', async () => {
  const shot = screenshots('no-login');
  await withDemo([], {}, async (demo, page) => {
    const response = await page.goto(`${demo.site}/callback?code=some-code&state=some-state&iss=${encodeURIComponent(demo.server)}`);

    assert.equal(response.status(), 400);
    assert.match(await page.locator('[role=alert]').textContent(), /geen aanmelding bezig/);
    await shot(page, 'no-login');
  });
});

test('without JavaScript the sign-in still completes through the refreshing wait page', async () => {
  const shot = screenshots('no-javascript');
  await withDemo(['--answer', 'wait'], { javaScriptEnabled: false }, async (demo, page) => {
    await sendNumber(demo, page, shot);
    await shot(page, 'wait-page');
    await shownRequest(demo);
    await setAnswer(demo, 'approve');
    await page.getByRole('heading', { name: `Welkom, ${demo.citizenName}` })
      .waitFor({ timeout: STEP_MS });
    await shot(page, 'welkom');
  });
});
