"""A whole OpenID Connect CIBA flow as a relying party would run it, with plain HTTP (urllib)
and a standard JOSE library (PyJWT) instead of anything from this project: discovery, the
backchannel authentication request with the OIDC `claims` parameter, token polling, the JWKS,
and the ID token's signature, issuer, audience, expiry and claims. The phone is the Python
bindings."""

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import jwt
import pytest
from jwt.utils import base64url_decode, base64url_encode

import sleutel
from conftest import CODE, RP_CLIENT_ID, RP_SECRET, TIMEOUT_SECS, next_request, with_code

CIBA_GRANT = "urn:openid:params:grant-type:ciba"


def post_form(url: str, form: dict) -> tuple:
    """A POST with client_secret_basic (RFC 6749 §2.3.1), returning (status, JSON body)."""
    credentials = f"{urllib.parse.quote_plus(RP_CLIENT_ID)}:{urllib.parse.quote_plus(RP_SECRET)}"
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        with answer:
            return answer.code, json.loads(answer.read())


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECS) as answer:
        return json.loads(answer.read())


def poll_until_answered(token_endpoint: str, started: dict) -> tuple:
    """CIBA poll mode: wait `interval` between polls, 5 s more after slow_down."""
    interval = max(int(started["interval"]), 1)
    deadline = time.monotonic() + TIMEOUT_SECS
    while True:
        status, body = post_form(
            token_endpoint, {"grant_type": CIBA_GRANT, "auth_req_id": started["auth_req_id"]}
        )
        if status == 200:
            return status, body
        if body.get("error") == "slow_down":
            interval += 5
        elif body.get("error") != "authorization_pending":
            return status, body
        if time.monotonic() + interval > deadline:
            raise TimeoutError("the citizen did not answer")
        time.sleep(interval)


def verify_with_pyjwt(id_token: str, discovery: dict) -> dict:
    """Verifies the ID token as any relying party would: the key its header names from the
    JWKS, ES256 only, issuer, audience, expiry."""
    jwks = jwt.PyJWKSet.from_dict(get_json(discovery["jwks_uri"]))
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    return jwt.decode(
        id_token,
        key=key.key,
        algorithms=["ES256"],
        audience=RP_CLIENT_ID,
        issuer=discovery["issuer"],
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )


async def test_a_ciba_flow_over_plain_http_gives_an_id_token_pyjwt_verifies(enrolled, server_url):
    discovery = get_json(f"{server_url}/.well-known/openid-configuration")
    assert "poll" in discovery["backchannel_token_delivery_modes_supported"]
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
    claims_request = {"id_token": {"birthdate": {"essential": True}, "age_over_18": None}}
    status, started = post_form(
        discovery["backchannel_authentication_endpoint"],
        {
            "scope": "openid",
            "login_hint": enrolled.phone_number,
            "binding_message": "Python 42",
            "claims": json.dumps(claims_request),
        },
    )
    assert status == 200, started

    request = await next_request(enrolled.authenticator)
    assert request.claims == ["birthdate"]
    assert request.optional_claims == ["age_over_18"]
    await enrolled.authenticator.approve(
        request.request_id,
        sleutel.Approval(verification=sleutel.Verification.CODE(CODE), optional_claims=[]),
    )
    status, tokens = poll_until_answered(discovery["token_endpoint"], started)

    assert status == 200, tokens
    claims = verify_with_pyjwt(tokens["id_token"], discovery)
    assert claims["birthdate"] == enrolled.citizen["birthdate"]
    assert "age_over_18" not in claims
    assert "name" not in claims
    assert claims["acr"] == "urn:sleutel:acr:code"
    assert "pin" in claims["amr"]
    assert claims["auth_time"] <= claims["iat"]
    assert claims["sub"]
    # What was approved, in the server's own namespaced claim: PyJWT passes it through.
    assert claims["sleutel_action"]["kind"] == "login"
    assert claims["sleutel_action"]["binding_message"] == "Python 42"
    assert len(base64url_decode(claims["sleutel_action"]["request_hash"])) == 32
    assert "transaction" not in claims["sleutel_action"]


async def test_a_tampered_id_token_fails_pyjwt_verification(enrolled, server_url):
    discovery = get_json(f"{server_url}/.well-known/openid-configuration")
    status, started = post_form(
        discovery["backchannel_authentication_endpoint"],
        {"scope": "openid profile", "login_hint": enrolled.phone_number},
    )
    assert status == 200, started
    request = await next_request(enrolled.authenticator)
    await enrolled.authenticator.approve(request.request_id, with_code(CODE))
    _, tokens = poll_until_answered(discovery["token_endpoint"], started)
    header, payload, signature = tokens["id_token"].split(".")
    claims = json.loads(base64url_decode(payload))
    claims["name"] = "Iemand Anders"
    forged_payload = base64url_encode(json.dumps(claims).encode()).decode()

    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(f"{header}.{forged_payload}.{signature}", discovery)
