import Foundation
import LocalAuthentication
import Security
import SleutelCore

/// The keystore operation that failed, named in the detail of an `Unavailable` error so that a
/// log says where it happened without saying which key (aliases stay out of logs).
public enum KeystoreOperation: String, Sendable {
    /// Making a key (``SecureEnclaveKeystore/generateKey(alias:protection:)``).
    case generateKey
    /// Reading a public key.
    case publicKey
    /// Signing, biometric check included.
    case sign
    /// Deleting a key.
    case deleteKey
    /// Asking where a key lives.
    case isHardwareBacked
    /// Storing a secret.
    case putSecret
    /// Reading a secret.
    case getSecret
    /// Deleting a secret.
    case deleteSecret
}

/// What went wrong in a call to the Security or LocalAuthentication framework, reduced to
/// facts: result codes, never key material, never the platform's own message (which may name
/// the key).
public enum KeystoreFailure: Equatable, Sendable {
    /// A Security framework call answered with this `OSStatus`.
    case status(OSStatus)
    /// LocalAuthentication refused with this code (a cancelled prompt, a lockout, ...).
    case authentication(LAError.Code)
    /// The biometric key was made for an enrolled set of fingerprints or faces that has since
    /// changed: the Secure Enclave will never use it again.
    case biometricsChanged
    /// The key has no usable private key reference or public key of the expected shape.
    case malformedKey
    /// The key cannot make ECDSA P-256 SHA-256 signatures.
    case signatureUnsupported
    /// The Keychain answered a query with something other than what it asked for.
    case malformedItem
    /// An error of another domain, by domain and code.
    case other(domain: String, code: Int)

    /// The failure an `Error` from the Security or LocalAuthentication framework stands for
    /// (a `CFError` from `SecKeyCreateRandomKey` or `SecKeyCreateSignature`, an `LAError`).
    /// `nil` (the framework said nothing) is an `other` failure.
    public init(_ error: Error?) {
        guard let error else {
            self = .other(domain: "none", code: 0)
            return
        }
        let nsError = error as NSError
        switch nsError.domain {
        case NSOSStatusErrorDomain:
            self = .status(OSStatus(truncatingIfNeeded: nsError.code))
        case LAErrorDomain:
            if let code = LAError.Code(rawValue: nsError.code) {
                self = .authentication(code)
            } else {
                self = .other(domain: nsError.domain, code: nsError.code)
            }
        default:
            self = .other(domain: nsError.domain, code: nsError.code)
        }
    }
}

/// The one place that turns platform failures into the core's `KeystoreError`. A pure
/// function, so that the table is tested on a Mac without a Secure Enclave or a face.
public enum KeystoreErrorMapping {
    /// The `KeystoreError` the core gets for `failure` during `operation`:
    ///
    /// - a prompt the person or the system cancelled (`errSecUserCanceled`, `LAError`
    ///   `.userCancel`, `.appCancel`, `.systemCancel`, and `.userFallback`: the person chose
    ///   another way, the app then offers the code) is `UserCancelled`, and the request stays
    ///   pending;
    /// - `LAError.biometryLockout` is `BiometricLockedOut`;
    /// - `errSecItemNotFound` is `KeyNotFound`;
    /// - biometrics changed since the key was made, or all of them removed when signing
    ///   (`LAError.biometryNotEnrolled`: the set the key was bound to is gone for good), is
    ///   `KeyInvalidated`: the core turns biometrics off and the person approves with the code;
    /// - everything else is `Unavailable`, whose detail names the operation and the code only.
    public static func keystoreError(
        for failure: KeystoreFailure,
        during operation: KeystoreOperation
    ) -> KeystoreError {
        switch failure {
        case .status(errSecUserCanceled):
            return .UserCancelled
        case .status(errSecItemNotFound):
            return .KeyNotFound
        case .status(let status):
            return unavailable(operation, "Security status \(status)")
        case .authentication(let code):
            return authenticationError(code, during: operation)
        case .biometricsChanged:
            return .KeyInvalidated
        case .malformedKey:
            return unavailable(operation, "the key is not a P-256 key")
        case .signatureUnsupported:
            return unavailable(operation, "the key cannot sign with ECDSA P-256 SHA-256")
        case .malformedItem:
            return unavailable(operation, "the Keychain returned an unexpected item")
        case .other(let domain, let code):
            return unavailable(operation, "\(domain) error \(code)")
        }
    }

    private static func authenticationError(
        _ code: LAError.Code,
        during operation: KeystoreOperation
    ) -> KeystoreError {
        switch code {
        case .userCancel, .appCancel, .systemCancel, .userFallback:
            return .UserCancelled
        case .biometryLockout:
            return .BiometricLockedOut
        case .biometryNotEnrolled where operation == .sign:
            // A key made with `.biometryCurrentSet` is bound to the biometrics enrolled when it
            // was made; with none enrolled now, that set is gone and the key with it.
            return .KeyInvalidated
        default:
            return unavailable(operation, "LocalAuthentication error \(code.rawValue)")
        }
    }

    private static func unavailable(
        _ operation: KeystoreOperation,
        _ what: String
    ) -> KeystoreError {
        .Unavailable(detail: "\(operation.rawValue): \(what)")
    }
}
