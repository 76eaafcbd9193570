"""An authenticator opened again on the same data directory and keystore, as after the app was
closed: it finds what the first one left."""

import gc

import sleutel
from conftest import CODE, enroll, next_request, with_code


async def test_reopened_authenticator_on_the_same_data_directory_finds_the_account_and_approves(
    keystore, data_dir, server_url, phone_number, citizen, sim, rp
):
    first = sleutel.Authenticator.open(data_dir, server_url, keystore)
    account = await enroll(first, sim, citizen, phone_number)
    del first  # the app is closed: nothing of the first authenticator is left in memory
    gc.collect()

    reopened = sleutel.Authenticator.open(data_dir, server_url, keystore)

    assert [a.account_id for a in reopened.accounts()] == [account.account_id]
    assert reopened.accounts()[0].phone_number == phone_number
    started = rp.backchannel_authorize(phone_number)
    request = await next_request(reopened)
    await reopened.approve(request.request_id, with_code(CODE))
    assert "id_token" in rp.wait_for_token(started)


async def test_reopened_authenticator_resumes_an_enrollment_in_progress(
    authenticator, keystore, data_dir, server_url, phone_number
):
    await authenticator.start_bank_enrollment(phone_number, sleutel.Bank.KBC)

    reopened = sleutel.Authenticator.open(data_dir, server_url, keystore)

    progress = reopened.enrollment_in_progress()
    assert progress is not None
    assert progress.phone_number == phone_number
    assert progress.step == sleutel.EnrollmentStep.BANK_HANDOFF
