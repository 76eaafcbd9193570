"""A `sleutel.Keystore` in Python, on the `cryptography` package, for the binding tests.

It plays the platform keystore of a phone (Android Keystore, Secure Enclave with the Keychain):
P-256 keys that sign ES256, and secret slots for small values such as the salt of the code. Keys
and secrets live in memory only, so the same instance must be handed to every `Authenticator`
opened on one data directory.

The switches (`cancel_next_sign`, `fail_next_sign_with`, `fail_next_sign_unexpectedly`,
`fail_everything_with`) make it behave like a platform that says no: the person cancels the
prompt, biometrics are locked out, or the implementation itself throws something unexpected.
Nothing here prints or logs key material; `repr` shows aliases and names only.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import sleutel


class PythonKeystore(sleutel.Keystore):
    """An in-memory `sleutel.Keystore` with P-256 keys and ECDSA over SHA-256.

    Signatures are returned in ASN.1 DER, as Android and iOS return them; the core accepts DER
    or raw `r || s`. Public keys are 65-byte uncompressed SEC1 points.

    Every method may be called from a thread the core drives, so state is guarded by a lock.
    """

    def __init__(self, hardware_backed: bool = False) -> None:
        """An empty keystore; `hardware_backed` is what `is_hardware_backed` answers."""
        self._lock = threading.Lock()
        self._keys: Dict[str, ec.EllipticCurvePrivateKey] = {}
        self._protection: Dict[str, sleutel.KeyProtection] = {}
        self._secrets: Dict[str, bytes] = {}
        self._hardware_backed = hardware_backed
        self._next_sign_failures: List[BaseException] = []
        self._failure_for_everything: Optional[BaseException] = None
        #: Every `sign` call as `(alias, prompt)`, oldest first: what the person was asked.
        self.sign_calls: List[tuple] = []

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"PythonKeystore(keys={sorted(self._keys)}, secrets={sorted(self._secrets)})"
            )

    # --- Switches the tests use to simulate the platform ---

    def cancel_next_sign(self) -> None:
        """The next `sign` fails as if the person cancelled the system prompt."""
        self.fail_next_sign_with(sleutel.KeystoreError.UserCancelled())

    def fail_next_sign_with(self, error: BaseException) -> None:
        """The next `sign` raises `error` (a `sleutel.KeystoreError` or anything else)."""
        with self._lock:
            self._next_sign_failures.append(error)

    def fail_next_sign_unexpectedly(self) -> None:
        """The next `sign` raises a plain `RuntimeError`, as a buggy platform layer would."""
        self.fail_next_sign_with(RuntimeError("the platform keystore crashed"))

    def fail_everything_with(self, error: Optional[BaseException]) -> None:
        """Every call raises `error` until this is called again with `None`."""
        with self._lock:
            self._failure_for_everything = error

    @property
    def aliases(self) -> List[str]:
        """The aliases of the keys held, sorted (no key material)."""
        with self._lock:
            return sorted(self._keys)

    @property
    def secret_names(self) -> List[str]:
        """The names of the secrets held, sorted (no values)."""
        with self._lock:
            return sorted(self._secrets)

    # --- sleutel.Keystore ---

    def generate_key(self, alias: str, protection: sleutel.KeyProtection) -> bytes:
        """Makes a P-256 key under `alias`, replacing any, and returns its public point."""
        self._maybe_fail()
        key = ec.generate_private_key(ec.SECP256R1())
        with self._lock:
            self._keys[alias] = key
            self._protection[alias] = protection
        return _sec1_uncompressed(key)

    def public_key(self, alias: str) -> bytes:
        """The uncompressed SEC1 public key under `alias`."""
        self._maybe_fail()
        return _sec1_uncompressed(self._key(alias))

    def sign(self, alias: str, message: bytes, prompt: Optional[str]) -> bytes:
        """ECDSA P-256 with SHA-256 over `message`, as ASN.1 DER."""
        self._maybe_fail()
        with self._lock:
            self.sign_calls.append((alias, prompt))
            failure = self._next_sign_failures.pop(0) if self._next_sign_failures else None
        if failure is not None:
            raise failure
        return self._key(alias).sign(bytes(message), ec.ECDSA(hashes.SHA256()))

    def delete_key(self, alias: str) -> None:
        """Forgets the key under `alias`; a missing key is not an error."""
        self._maybe_fail()
        with self._lock:
            self._keys.pop(alias, None)
            self._protection.pop(alias, None)

    def is_hardware_backed(self, alias: str) -> bool:
        """What the constructor was told; `KeyNotFound` for an unknown alias."""
        self._maybe_fail()
        self._key(alias)
        return self._hardware_backed

    def put_secret(self, name: str, value: bytes) -> None:
        """Keeps `value` under `name`, replacing any."""
        self._maybe_fail()
        with self._lock:
            self._secrets[name] = bytes(value)

    def get_secret(self, name: str) -> Optional[bytes]:
        """The secret under `name`, or `None`."""
        self._maybe_fail()
        with self._lock:
            return self._secrets.get(name)

    def delete_secret(self, name: str) -> None:
        """Forgets the secret under `name`; a missing one is not an error."""
        self._maybe_fail()
        with self._lock:
            self._secrets.pop(name, None)

    # --- Internals ---

    def _key(self, alias: str) -> ec.EllipticCurvePrivateKey:
        with self._lock:
            key = self._keys.get(alias)
        if key is None:
            raise sleutel.KeystoreError.KeyNotFound()
        return key

    def _maybe_fail(self) -> None:
        with self._lock:
            failure = self._failure_for_everything
        if failure is not None:
            raise failure


def _sec1_uncompressed(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
