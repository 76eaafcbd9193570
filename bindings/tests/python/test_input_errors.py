"""Bad input from the app or the person reaches Python as typed `sleutel.CoreError` variants,
with their fields."""

import pytest

import sleutel
from conftest import CODE, SimClient, with_code


async def start_and_hand_off(authenticator, sim: SimClient, citizen, phone_number) -> None:
    """Enrollment up to the SMS step: the bank handoff is done and the SMS is on its way."""
    handoff = await authenticator.start_bank_enrollment(phone_number, sleutel.Bank.KBC)
    card = citizen["debit_card"]
    deep_link = sim.bank_authorize(handoff.handoff_url, card["number"], card["pin"])
    await authenticator.complete_bank_handoff(deep_link)


def test_plain_http_server_url_off_loopback_is_invalid_input(data_dir, keystore):
    with pytest.raises(sleutel.CoreError.InvalidInput) as raised:
        sleutel.Authenticator.open(data_dir, "http://sleutel.example", keystore)

    assert raised.value.field
    assert "https" in raised.value.reason


def test_server_url_that_is_not_a_url_is_invalid_input(data_dir, keystore):
    with pytest.raises(sleutel.CoreError.InvalidInput):
        sleutel.Authenticator.open(data_dir, "sleutel.example", keystore)


async def test_landline_number_is_refused_as_not_a_mobile_number(authenticator):
    with pytest.raises(sleutel.CoreError.InvalidPhoneNumber):
        await authenticator.start_bank_enrollment("+3225551234", sleutel.Bank.KBC)

    assert authenticator.enrollment_in_progress() is None


async def test_wrong_sms_code_raises_wrong_sms_code_with_attempts_left(
    authenticator, sim, citizen, phone_number
):
    await start_and_hand_off(authenticator, sim, citizen, phone_number)
    right = sim.wait_for_sms_code(phone_number, 0)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    with pytest.raises(sleutel.CoreError.WrongSmsCode) as raised:
        await authenticator.verify_sms_code(wrong)

    assert raised.value.attempts_left == 2
    assert authenticator.enrollment_in_progress().step == sleutel.EnrollmentStep.SMS_CODE
    await authenticator.verify_sms_code(right)
    assert authenticator.enrollment_in_progress().step == sleutel.EnrollmentStep.CHOOSE_CODE


async def test_weak_code_is_refused_and_a_good_one_is_then_accepted(
    authenticator, sim, citizen, phone_number
):
    await start_and_hand_off(authenticator, sim, citizen, phone_number)
    await authenticator.verify_sms_code(sim.wait_for_sms_code(phone_number, 0))

    with pytest.raises(sleutel.CoreError.WeakCode):
        await authenticator.choose_code("12345", "12345")

    account = await authenticator.choose_code(CODE, CODE)
    assert account.phone_number == phone_number


async def test_codes_that_differ_are_refused(authenticator, sim, citizen, phone_number):
    await start_and_hand_off(authenticator, sim, citizen, phone_number)
    await authenticator.verify_sms_code(sim.wait_for_sms_code(phone_number, 0))

    with pytest.raises(sleutel.CoreError.CodesDoNotMatch):
        await authenticator.choose_code(CODE, "73916")


async def test_step_out_of_order_says_which_step_the_enrollment_waits_for(
    authenticator, phone_number
):
    await authenticator.start_bank_enrollment(phone_number, sleutel.Bank.KBC)

    with pytest.raises(sleutel.CoreError.WrongStep) as raised:
        await authenticator.verify_sms_code("123456")

    assert raised.value.expected == sleutel.EnrollmentStep.BANK_HANDOFF


async def test_approving_an_unknown_request_is_unknown_request(enrolled):
    with pytest.raises(sleutel.CoreError.UnknownRequest):
        await enrolled.authenticator.approve("no-such-request", with_code(CODE))


async def test_a_qr_code_of_another_site_is_not_a_sign_in_link(authenticator):
    link = ("https://evil.example/app/sign-in?kind=app&id=AAAAAAAAAAAAAAAAAAAAAA"
            "&mac=BBBBBBBBBBBBBBBBBBBBBB")

    with pytest.raises(sleutel.CoreError.NotASignInLink) as raised:
        await authenticator.open_sign_in_link("no-account", link)

    assert raised.value.reason
