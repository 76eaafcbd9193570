"""Fixtures for the Python binding tests, and the people around the phone.

The tests run against a real `sleutel-server` whose base URL is in `SLEUTEL_SERVER_URL`
(`scripts/test-bindings` starts one on loopback). Besides the phone, which is the `sleutel`
package under test, a test plays:

- the simulators (`SimClient`): a citizen with a debit card, the bank's authorize page, the SMS
  outbox;
- the relying party (`RelyingParty`), "Online overheid", which logs the citizen in through
  OpenID Connect CIBA in poll mode with `client_secret_basic`.

Both speak plain HTTP with `urllib` from the standard library. Test functions may be `async def`:
the hook at the end runs them with `asyncio.run`, so no pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Optional

import pytest

import sleutel
from keystore import PythonKeystore

#: The 5-digit code the tests choose at enrollment.
CODE = "73915"
#: A code that is not `CODE`.
WRONG_CODE = "28461"
#: The demo relying party every server has.
RP_CLIENT_ID = "online-overheid"
RP_SECRET = "demo-secret"
#: How long to wait for an SMS or for the citizen's answer before giving up.
TIMEOUT_SECS = 20.0


# --- HTTP ---------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer of the server: the HTTP status and the JSON `error` code."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"HTTP {status}: {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass
class Response:
    """An HTTP answer, whatever its status."""

    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or an `ApiError` for an error status."""
        if self.status >= 400:
            try:
                payload = json.loads(self.body)
                raise ApiError(
                    self.status, payload.get("error", ""), payload.get("error_description", "")
                )
            except (ValueError, AttributeError):
                raise ApiError(self.status, "", self.body[:200].decode(errors="replace"))
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Leaves redirects to the caller: the bank's 303 goes to an app deep link."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def http(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: Optional[Dict[str, str]] = None,
    basic_auth: Optional[tuple] = None,
) -> Response:
    """One request with `urllib`; never follows redirects, never raises on an HTTP status."""
    headers = {"Accept": "application/json"}
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if basic_auth is not None:
        # RFC 6749 §2.3.1: id and secret are form-encoded before the Basic encoding.
        user, password = (urllib.parse.quote_plus(part) for part in basic_auth)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECS) as answer:
            return Response(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as answer:
        with answer:
            return Response(answer.code, answer.headers, answer.read())


# --- The simulators -----------------------------------------------------------------------


class SimClient:
    """The server's `/sim/` endpoints: citizens, the bank's page and the SMS outbox."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def create_citizen(self, **fields: Any) -> Dict[str, Any]:
        """A new citizen with a debit and a credit card (fields of `NewCitizen`, all optional)."""
        return http("POST", f"{self.base}/sim/citizens", json_body=fields).json()

    def bank_authorize(self, handoff_url: str, card_number: str, card_pin: str) -> str:
        """Plays the person in the bank's app: opens the handoff page, posts the card number and
        card PIN to the same address without the query, and returns the deep link of the bank's
        `303 See Other` back to the app."""
        page = http("GET", handoff_url)
        assert page.status == 200, f"bank page: HTTP {page.status}"
        url = urllib.parse.urlsplit(handoff_url)
        query = dict(urllib.parse.parse_qsl(url.query))
        form = {
            "enrollment_id": query.get("enrollment_id", ""),
            "nonce": query.get("nonce", ""),
            "redirect_uri": query.get("redirect_uri", ""),
            "card_number": card_number,
            "card_pin": card_pin,
        }
        post_url = urllib.parse.urlunsplit((url.scheme, url.netloc, url.path, "", ""))
        answer = http("POST", post_url, form=form)
        if answer.status != 303:
            answer.json()  # raises the server's error
            raise AssertionError(f"bank answered HTTP {answer.status}, not 303")
        location = answer.headers.get("Location")
        assert location, "the bank's redirect has no Location"
        return location

    def sms_messages(self, phone_number: str) -> list:
        """Every SMS sent to `phone_number`, oldest first."""
        query = urllib.parse.urlencode({"phone_number": phone_number})
        return http("GET", f"{self.base}/sim/outbox/sms?{query}").json()["messages"]

    def wait_for_sms_code(self, phone_number: str, already_seen: int) -> str:
        """The 6-digit control code of the first SMS after the `already_seen` ones, as the person
        reads it off the screen."""
        deadline = time.monotonic() + TIMEOUT_SECS
        while True:
            messages = self.sms_messages(phone_number)
            if len(messages) > already_seen:
                match = re.search(r"(?<!\d)\d{6}(?!\d)", messages[-1]["text"])
                if match:
                    return match.group(0)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no SMS to {phone_number}")
            time.sleep(0.1)


# --- The relying party --------------------------------------------------------------------


class RelyingParty:
    """A relying party logging citizens in through OpenID Connect CIBA, poll mode."""

    def __init__(self, base: str, client_id: str = RP_CLIENT_ID, secret: str = RP_SECRET):
        self.base = base.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self._discovery: Optional[Dict[str, Any]] = None

    @property
    def discovery(self) -> Dict[str, Any]:
        """The server's discovery document, fetched once."""
        if self._discovery is None:
            url = f"{self.base}/.well-known/openid-configuration"
            self._discovery = http("GET", url).json()
        return self._discovery

    def backchannel_authorize(
        self,
        phone_number: str,
        scope: str = "openid profile",
        binding_message: Optional[str] = None,
        number_matching: bool = False,
    ) -> Dict[str, Any]:
        """Starts a login of the citizen with `phone_number`: the server sends the phone a
        request. Returns `auth_req_id`, `expires_in` and `interval`, and under number matching
        `match_number`, the number the relying party shows."""
        form = {"scope": scope, "login_hint": phone_number}
        if binding_message is not None:
            form["binding_message"] = binding_message
        if number_matching:
            form["number_matching"] = "true"
        endpoint = self.discovery["backchannel_authentication_endpoint"]
        return http(
            "POST", endpoint, form=form, basic_auth=(self.client_id, self.secret)
        ).json()

    def poll_token(self, auth_req_id: str) -> Dict[str, Any]:
        """One poll of the token endpoint: the tokens, or `ApiError` (`authorization_pending`,
        `slow_down`, `access_denied`, `expired_token`)."""
        form = {"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": auth_req_id}
        endpoint = self.discovery["token_endpoint"]
        return http(
            "POST", endpoint, form=form, basic_auth=(self.client_id, self.secret)
        ).json()

    def wait_for_token(self, started: Dict[str, Any]) -> Dict[str, Any]:
        """Polls until the citizen answered, as CIBA asks: at once, then every `interval`
        seconds while `authorization_pending`, 5 s more after `slow_down`. Raises the final
        `ApiError` (`access_denied`, ...) when the answer is a refusal."""
        interval = max(int(started.get("interval", 1)), 1)
        deadline = time.monotonic() + TIMEOUT_SECS
        while True:
            try:
                return self.poll_token(started["auth_req_id"])
            except ApiError as e:
                if e.error == "slow_down":
                    interval += 5
                elif e.error != "authorization_pending":
                    raise
            if time.monotonic() + interval > deadline:
                raise TimeoutError("the citizen did not answer")
            time.sleep(interval)


def id_token_claims(id_token: str) -> Dict[str, Any]:
    """The payload of a JWT, decoded without checking the signature (the Rust harness checks
    signatures; these tests check that the right person was logged in)."""
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- The phone ----------------------------------------------------------------------------


def random_mobile_number() -> str:
    """A random Belgian mobile number, +32 47x xx xx xx, so that tests never share a person."""
    return "+3247" + "".join(random.choice("0123456789") for _ in range(7))


@dataclass
class Phone:
    """A phone with the app: its authenticator, its keystore, where it keeps its data, its
    number, and the citizen holding it."""

    authenticator: sleutel.Authenticator
    keystore: PythonKeystore
    data_dir: str
    phone_number: str
    citizen: Dict[str, Any]


async def enroll(
    authenticator: sleutel.Authenticator, sim: SimClient, citizen: Dict[str, Any], phone: str
) -> sleutel.Account:
    """The whole bank enrollment as the person does it: phone number and bank in the app, card
    and card PIN in the bank's app, the SMS control code, then the 5-digit code twice."""
    sms_before = len(sim.sms_messages(phone))
    handoff = await authenticator.start_bank_enrollment(phone, sleutel.Bank.KBC)
    card = citizen["debit_card"]
    deep_link = sim.bank_authorize(handoff.handoff_url, card["number"], card["pin"])
    await authenticator.complete_bank_handoff(deep_link)
    await authenticator.verify_sms_code(sim.wait_for_sms_code(phone, sms_before))
    return await authenticator.choose_code(CODE, CODE)


def assert_still_pending(phone: Phone, rp: RelyingParty, started: Dict[str, Any], request) -> None:
    """Nothing was answered: `request` is still the one pending on the phone, and the relying
    party that `started` the login is still waiting."""
    assert [r.request_id for r in phone.authenticator.pending()] == [request.request_id]
    with pytest.raises(ApiError) as polled:
        rp.poll_token(started["auth_req_id"])
    assert polled.value.error == "authorization_pending"


def with_code(code: str) -> sleutel.Approval:
    """The person's yes with the 5-digit code, sharing every claim asked for (no number)."""
    return sleutel.Approval(verification=sleutel.Verification.CODE(code))


async def next_request(authenticator: sleutel.Authenticator, rp_name: Optional[str] = None):
    """The one pending request the phone finds when it asks the server."""
    pending = await authenticator.refresh_pending()
    assert len(pending) == 1, f"expected one pending request, found {len(pending)}"
    if rp_name is not None:
        assert pending[0].rp_name == rp_name
    return pending[0]


@pytest.fixture(scope="session")
def server_url() -> str:
    """The base URL of the server under test."""
    url = os.environ.get("SLEUTEL_SERVER_URL")
    if not url:
        pytest.fail("SLEUTEL_SERVER_URL is not set: run scripts/test-bindings")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def sim(server_url: str) -> SimClient:
    """The server's simulators."""
    return SimClient(server_url)


@pytest.fixture(scope="session")
def rp(server_url: str) -> RelyingParty:
    """The demo relying party, "Online overheid"."""
    return RelyingParty(server_url)


@pytest.fixture
def phone_number() -> str:
    """A fresh Belgian mobile number for this test."""
    return random_mobile_number()


@pytest.fixture
def citizen(sim: SimClient) -> Dict[str, Any]:
    """A fresh citizen with a debit card at KBC, with a name no other test uses, so that an
    ID token naming them is for this person."""
    return sim.create_citizen(
        given_name=random.choice(["Lies", "Jef", "Mieke", "Staf", "Nele", "Rik"]),
        family_name="Van " + "".join(random.choice("bdklmnprstvz") + random.choice("aeiou")
                                     for _ in range(3)).capitalize(),
        bank="kbc",
    )


@pytest.fixture
def keystore() -> PythonKeystore:
    """An empty Python keystore."""
    return PythonKeystore()


@pytest.fixture
def data_dir(tmp_path) -> str:
    """A fresh data directory for the authenticator."""
    path = tmp_path / "app-data"
    path.mkdir()
    return str(path)


@pytest.fixture
def authenticator(data_dir: str, server_url: str, keystore: PythonKeystore):
    """An authenticator on a fresh data directory with the Python keystore, not enrolled."""
    return sleutel.Authenticator.open(data_dir, server_url, keystore)


@pytest.fixture
def enrolled(authenticator, keystore, data_dir, phone_number, citizen, sim) -> Phone:
    """A phone enrolled for a fresh citizen with the code `CODE`."""
    asyncio.run(enroll(authenticator, sim, citizen, phone_number))
    return Phone(authenticator, keystore, data_dir, phone_number, citizen)


# --- async tests without a plugin ---------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Runs an `async def` test on a fresh event loop with `asyncio.run`."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True
