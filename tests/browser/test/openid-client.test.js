// A relying party built on openid-client (npm; OpenID certified, not our code) signs a citizen in
// through the authorization code flow: discovery, an authorization URL with PKCE S256, state and
// nonce, the sign-in page completed by a plain HTTP form post or by the browser, then
// authorizationCodeGrant, which verifies the ID token (signature from the JWKS, iss, aud, exp,
// nonce, at_hash) and the response's iss, and UserInfo.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as client from 'openid-client';

import { launchBrowser, screenshots } from '../lib/browser.js';
import { startWebDemo } from '../lib/webdemo.js';

/** How long the citizen may take to approve. */
const APPROVAL_MS = 20_000;

/**
 * Discovery at the web demo's server. The issuer is plain http on loopback, which openid-client
 * refuses unless told: allowInsecureRequests is only for this test bench, where server and
 * client share the machine and nothing crosses a network; a real issuer is https.
 */
async function discover(demo, authentication) {
  const { clientId, clientSecret } = demo.otherClient;
  return client.discovery(
    new URL(demo.server),
    clientId,
    undefined,
    // The server takes client_secret_basic or private_key_jwt, as registered.
    authentication ?? client.ClientSecretBasic(clientSecret),
    { execute: [client.allowInsecureRequests] },
  );
}

/**
 * A P-256 key pair for private_key_jwt, and a JWK Set file with its public key for web-demo's
 * --other-client-jwks (the private key stays in this process).
 */
async function clientKey() {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign', 'verify'],
  );
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', publicKey);
  const kid = 'openid-client-test';
  const dir = mkdtempSync(path.join(tmpdir(), 'sleutel-jwks-'));
  const file = path.join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [{ kty, crv, x, y, kid, alg: 'ES256', use: 'sig' }] }));
  return { privateKey, kid, file };
}

/** A login's secrets and its authorization URL. */
async function startLogin(config, demo) {
  const login = {
    verifier: client.randomPKCECodeVerifier(),
    nonce: client.randomNonce(),
    state: client.randomState(),
  };
  login.url = client.buildAuthorizationUrl(config, {
    redirect_uri: demo.otherClient.redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(login.verifier),
    code_challenge_method: 'S256',
    nonce: login.nonce,
    state: login.state,
  });
  return login;
}

/** The code exchange and the ID token's checks, by openid-client, then UserInfo. */
async function finish(config, login, callbackUrl) {
  const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: login.verifier,
    expectedNonce: login.nonce,
    expectedState: login.state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return { claims, userinfo };
}

/** The sign-in page completed over plain HTTP: the number form, then the wait page. */
async function signInOverHttp(login, demo) {
  const first = await fetch(login.url, { redirect: 'manual' });
  assert.equal(first.status, 200);
  const cookie = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const csrf = (await first.text()).match(/name="csrf_token" value="([^"]+)"/)[1];
  const sent = await fetch(new URL('/oidc/sign-in/number', demo.server), {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf_token: csrf, phone_number: demo.number }),
  });
  assert.equal(sent.status, 303);
  const deadline = Date.now() + APPROVAL_MS;
  for (;;) {
    const status = await fetch(new URL('/oidc/sign-in/status', demo.server), {
      redirect: 'manual',
      headers: { cookie },
    });
    if (status.status === 303) return new URL(status.headers.get('location'));
    assert.ok(Date.now() < deadline, 'the citizen did not approve in time');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

test('openid-client signs in through a plain HTTP form post and verifies the ID token', async () => {
  const demo = await startWebDemo();
  try {
    const config = await discover(demo);
    const login = await startLogin(config, demo);

    const callback = await signInOverHttp(login, demo);
    const { claims, userinfo } = await finish(config, login, callback);

    assert.equal(claims.iss, demo.server);
    assert.equal(claims.aud, demo.otherClient.clientId);
    assert.equal(claims.nonce, login.nonce);
    assert.equal(claims.name, demo.citizenName);
    assert.equal(userinfo.sub, claims.sub);
    assert.equal(userinfo.name, demo.citizenName);
  } finally {
    await demo.stop();
  }
});

test('openid-client signs in through the browser and verifies the ID token', async () => {
  const shot = screenshots('openid-client-browser');
  const demo = await startWebDemo();
  const browser = await launchBrowser();
  try {
    const config = await discover(demo);
    const login = await startLogin(config, demo);
    // A Belgian browser: the sign-in page follows its Accept-Language (openid-client sends no
    // ui_locales).
    const page = await browser.newPage({ locale: 'nl-BE' });

    await page.goto(login.url.href);
    await shot(page, 'sign-in-page');
    await page.locator('#phone_number').fill(demo.number);
    // Nothing there uses the client's redirect URI (the demo site answers 404): the address
    // the browser is sent to is the answer.
    const redirect = new URL(demo.otherClient.redirectUri);
    const arrival = page.waitForRequest(
      (request) => new URL(request.url()).pathname === redirect.pathname,
      { timeout: APPROVAL_MS },
    );
    await page.getByRole('button', { name: 'Versturen' }).click();
    const callback = new URL((await arrival).url());
    const { claims } = await finish(config, login, callback);

    assert.equal(claims.name, demo.citizenName);
  } finally {
    await browser.close();
    await demo.stop();
  }
});

test('openid-client refuses an answer whose state is not the one it sent', async () => {
  const demo = await startWebDemo();
  try {
    const config = await discover(demo);
    const login = await startLogin(config, demo);
    const callback = await signInOverHttp(login, demo);

    const other = { ...login, state: client.randomState() };
    await assert.rejects(finish(config, other, callback), (e) => /state/.test(e.cause?.message));
  } finally {
    await demo.stop();
  }
});

// WebCrypto signs about half its assertions high-S, which the server accepts (its API test
// an_assertion_with_the_high_s_signature_web_crypto_may_sign_is_accepted sends one on purpose).
test('openid-client signs in with private_key_jwt and verifies the ID token', async () => {
  const key = await clientKey();
  const demo = await startWebDemo(['--other-client-jwks', key.file]);
  try {
    assert.equal(demo.otherClient.clientSecret, '-');
    const config = await discover(demo, client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }));
    const login = await startLogin(config, demo);

    const callback = await signInOverHttp(login, demo);
    const { claims, userinfo } = await finish(config, login, callback);

    assert.equal(claims.name, demo.citizenName);
    assert.equal(userinfo.sub, claims.sub);
  } finally {
    await demo.stop();
  }
});

test('openid-client with another key than the registered one is refused at the token endpoint', async () => {
  const registered = await clientKey();
  const other = await clientKey();
  const demo = await startWebDemo(['--other-client-jwks', registered.file]);
  try {
    const config = await discover(demo, client.PrivateKeyJwt({ key: other.privateKey, kid: registered.kid }));
    const login = await startLogin(config, demo);
    const callback = await signInOverHttp(login, demo);

    // 401 invalid_client, with the WWW-Authenticate challenge RFC 6749 §5.2 asks for.
    await assert.rejects(finish(config, login, callback), (e) => e.status === 401);
  } finally {
    await demo.stop();
  }
});
