"""The Python keystore as the core's platform keystore: its own behaviour, and what the core makes
of its failures (typed errors, never a crash)."""

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import sleutel
from conftest import CODE, assert_still_pending, next_request, with_code
from keystore import PythonKeystore


def keystore_error_inside(error: sleutel.CoreError) -> sleutel.KeystoreError:
    """The `KeystoreError` that `CoreError.Keystore` wraps, in its field `error`."""
    assert isinstance(error, sleutel.CoreError.Keystore), repr(error)
    inner = error.error
    assert isinstance(inner, sleutel.KeystoreError), repr(inner)
    return inner


def test_python_keystore_signs_es256_verifiable_with_its_public_key():
    keystore = PythonKeystore()
    public = keystore.generate_key("device", sleutel.KeyProtection.DEVICE)
    assert len(public) == 65 and public[0] == 0x04
    assert keystore.public_key("device") == public

    signature = keystore.sign("device", b"message", None)

    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    point.verify(signature, b"message", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(sleutel.KeystoreError.KeyNotFound):
        keystore.sign("other", b"message", None)


def test_python_keystore_secret_slots_put_get_delete():
    keystore = PythonKeystore()
    assert keystore.get_secret("salt") is None
    keystore.put_secret("salt", b"\x01\x02")
    keystore.put_secret("salt", b"\x03")
    assert keystore.get_secret("salt") == b"\x03"
    keystore.delete_secret("salt")
    keystore.delete_secret("salt")
    assert keystore.get_secret("salt") is None
    assert "\x03" not in repr(keystore)


async def test_user_cancelling_the_keystore_prompt_is_a_typed_error_and_the_request_stays_pending(
    enrolled, rp
):
    started = rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)
    enrolled.keystore.cancel_next_sign()

    with pytest.raises(sleutel.CoreError.Keystore) as raised:
        await enrolled.authenticator.approve(request.request_id, with_code(CODE))

    assert isinstance(keystore_error_inside(raised.value), sleutel.KeystoreError.UserCancelled)
    assert_still_pending(enrolled, rp, started, request)


async def test_approving_after_a_cancelled_keystore_prompt_works(enrolled, rp):
    started = rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)
    enrolled.keystore.cancel_next_sign()
    with pytest.raises(sleutel.CoreError.Keystore):
        await enrolled.authenticator.approve(request.request_id, with_code(CODE))

    await enrolled.authenticator.approve(request.request_id, with_code(CODE))

    assert "id_token" in rp.wait_for_token(started)
    assert enrolled.authenticator.pending() == []


async def test_biometric_lockout_in_the_keystore_reaches_the_caller_as_its_own_variant(
    enrolled, rp
):
    rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)
    enrolled.keystore.fail_next_sign_with(sleutel.KeystoreError.BiometricLockedOut())

    with pytest.raises(sleutel.CoreError.Keystore) as raised:
        await enrolled.authenticator.approve(request.request_id, with_code(CODE))

    inner = keystore_error_inside(raised.value)
    assert isinstance(inner, sleutel.KeystoreError.BiometricLockedOut)


async def test_unexpected_exception_in_the_keystore_becomes_keystore_unavailable(enrolled, rp):
    rp.backchannel_authorize(enrolled.phone_number)
    request = await next_request(enrolled.authenticator)
    enrolled.keystore.fail_next_sign_unexpectedly()

    with pytest.raises(sleutel.CoreError.Keystore) as raised:
        await enrolled.authenticator.approve(request.request_id, with_code(CODE))

    inner = keystore_error_inside(raised.value)
    assert isinstance(inner, sleutel.KeystoreError.Unavailable)
    assert "RuntimeError" in inner.detail
    assert "crashed" not in inner.detail, "the exception's message must not leak into the detail"
    assert [r.request_id for r in enrolled.authenticator.pending()] == [request.request_id]


async def test_unexpected_exception_while_generating_the_device_key_becomes_keystore_unavailable(
    authenticator, keystore, phone_number
):
    keystore.fail_everything_with(RuntimeError("no secure hardware today"))

    with pytest.raises(sleutel.CoreError.Keystore) as raised:
        await authenticator.start_bank_enrollment(phone_number, sleutel.Bank.KBC)

    assert isinstance(keystore_error_inside(raised.value), sleutel.KeystoreError.Unavailable)


def test_software_keystore_without_a_registered_credential_store_is_keystore_unavailable(
    data_dir, server_url
):
    with pytest.raises(sleutel.CoreError.Keystore) as raised:
        sleutel.Authenticator.open_with_software_keystore(data_dir, server_url)

    assert isinstance(keystore_error_inside(raised.value), sleutel.KeystoreError.Unavailable)
