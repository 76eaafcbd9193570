"""One `approve` with a `sleutel.Approval`: the number picked under number matching and the
optional claims the person keeps, against the real server."""

import pytest

import sleutel
from conftest import CODE, assert_still_pending, id_token_claims, next_request


async def test_a_number_matching_login_is_approved_with_the_number_the_relying_party_shows(
    enrolled, rp
):
    started = rp.backchannel_authorize(enrolled.phone_number, number_matching=True)
    shown = started["match_number"]
    request = await next_request(enrolled.authenticator)
    assert shown in request.number_options

    await enrolled.authenticator.approve(
        request.request_id,
        sleutel.Approval(verification=sleutel.Verification.CODE(CODE), number=shown),
    )

    assert "id_token" in rp.wait_for_token(started)
    assert enrolled.authenticator.pending() == []


async def test_a_number_matching_request_approved_without_a_number_is_invalid_input_and_stays_pending(
    enrolled, rp
):
    started = rp.backchannel_authorize(enrolled.phone_number, number_matching=True)
    request = await next_request(enrolled.authenticator)

    with pytest.raises(sleutel.CoreError.InvalidInput) as raised:
        await enrolled.authenticator.approve(
            request.request_id,
            sleutel.Approval(verification=sleutel.Verification.CODE(CODE)),
        )

    assert raised.value.field == "number"
    assert_still_pending(enrolled, rp, started, request)


async def test_optional_claims_left_out_are_missing_from_the_id_token(enrolled, rp):
    started = rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)
    assert request.optional_claims == ["name", "given_name", "family_name"]

    await enrolled.authenticator.approve(
        request.request_id,
        sleutel.Approval(
            verification=sleutel.Verification.CODE(CODE), optional_claims=["given_name"]
        ),
    )

    claims = id_token_claims(rp.wait_for_token(started)["id_token"])
    assert claims["given_name"] == enrolled.citizen["given_name"]
    assert "name" not in claims
    assert "family_name" not in claims


async def test_a_claim_not_offered_as_optional_is_invalid_input_and_nothing_is_sent(enrolled, rp):
    started = rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)

    with pytest.raises(sleutel.CoreError.InvalidInput) as raised:
        await enrolled.authenticator.approve(
            request.request_id,
            sleutel.Approval(
                verification=sleutel.Verification.CODE(CODE),
                optional_claims=["national_register_number"],
            ),
        )

    assert raised.value.field == "optional_claims"
    assert_still_pending(enrolled, rp, started, request)
