"""Enrollment and logins through the Python bindings, against the real server: what the
relying party receives when the citizen approves, declines, or types a wrong code."""

import pytest

import sleutel
from conftest import (
    CODE,
    WRONG_CODE,
    ApiError,
    assert_still_pending,
    enroll,
    id_token_claims,
    next_request,
    with_code,
)


async def test_bank_enrollment_then_approved_login_gives_the_relying_party_an_id_token(
    authenticator, keystore, citizen, phone_number, sim, rp
):
    account = await enroll(authenticator, sim, citizen, phone_number)
    assert account.phone_number == phone_number
    assert account.status == sleutel.AccountStatus.ACTIVE
    assert citizen["family_name"] in account.display_name
    assert authenticator.enrollment_in_progress() is None
    assert [a.account_id for a in authenticator.accounts()] == [account.account_id]
    assert keystore.aliases, "the device key lives in the Python keystore"

    started = rp.backchannel_authorize(phone_number, binding_message="Aanmelden 4821")
    request = await next_request(authenticator)
    assert request.account_id == account.account_id
    assert request.binding_message == "Aanmelden 4821"
    await authenticator.approve(request.request_id, with_code(CODE))

    token = rp.wait_for_token(started)
    claims = id_token_claims(token["id_token"])
    assert claims["aud"] == "online-overheid"
    assert claims["given_name"] == citizen["given_name"]
    assert claims["family_name"] == citizen["family_name"]
    assert claims["name"] == f"{citizen['given_name']} {citizen['family_name']}"
    assert claims["sub"]
    assert authenticator.pending() == []
    history = authenticator.history()
    assert [entry.request_id for entry in history] == [request.request_id]


async def test_wrong_code_raises_wrong_code_with_attempts_left_and_the_request_stays_pending(
    enrolled, rp
):
    started = rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)

    with pytest.raises(sleutel.CoreError.WrongCode) as raised:
        await enrolled.authenticator.approve(request.request_id, with_code(WRONG_CODE))
    assert raised.value.attempts_left == 2
    assert isinstance(raised.value, sleutel.CoreError)

    assert_still_pending(enrolled, rp, started, request)
    refreshed = await enrolled.authenticator.refresh_pending()
    assert [r.request_id for r in refreshed] == [request.request_id]


async def test_decline_gives_the_relying_party_access_denied(enrolled, rp):
    started = rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)

    await enrolled.authenticator.decline(request.request_id, sleutel.DeclineReason.NOT_ME)

    with pytest.raises(ApiError) as refused:
        rp.wait_for_token(started)
    assert refused.value.error == "access_denied"
    assert enrolled.authenticator.pending() == []
    assert await enrolled.authenticator.refresh_pending() == []


async def test_right_code_after_a_wrong_one_still_approves(enrolled, rp):
    started = rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)
    with pytest.raises(sleutel.CoreError.WrongCode):
        await enrolled.authenticator.approve(request.request_id, with_code(WRONG_CODE))

    await enrolled.authenticator.approve(request.request_id, with_code(CODE))

    assert "id_token" in rp.wait_for_token(started)
