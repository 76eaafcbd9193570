import Foundation
import LocalAuthentication
import SleutelCore

/// The biometric check (Face ID or Touch ID) in front of the biometric key: it asks the person
/// once, with the request's text as the reason, and hands the authenticated `LAContext` to the
/// key operation (`kSecUseAuthenticationContext`), so that the Secure Enclave signs without a
/// second prompt.
///
/// Failures are thrown as the core's `KeystoreError` (``KeystoreErrorMapping``): a cancelled
/// prompt is `UserCancelled`, too many failed tries `BiometricLockedOut`.
public struct BiometricGate: Sendable {
    /// Biometrics only, no device passcode: the biometric key opens with biometrics alone
    /// (`.biometryCurrentSet`), so a passcode would pass the gate and still leave the key shut.
    static let policy = LAPolicy.deviceOwnerAuthenticationWithBiometrics

    /// A gate that shows the system's biometric prompt.
    public init() {}

    /// Asks for the biometric check, showing `reason` (the request's text), and returns the
    /// context that passed it, to pass as `kSecUseAuthenticationContext`.
    public func authenticate(reason: String) async throws -> LAContext {
        try await withCheckedThrowingContinuation { continuation in
            evaluate(reason: reason) { outcome in
                continuation.resume(with: outcome)
            }
        }
    }

    /// The same check for the keystore, whose methods the core calls synchronously: it waits for
    /// the answer. The core calls it on the thread that drives an async call, never the main
    /// thread (uniffi runs Swift async calls off the main actor); on the main thread it refuses
    /// rather than freeze the screen that shows the prompt's result.
    func authenticateAndWait(reason: String) throws -> LAContext {
        if Thread.isMainThread {
            throw KeystoreError.Unavailable(
                detail: "sign: a biometric key was used on the main thread; call from a task"
            )
        }
        let answered = DispatchSemaphore(value: 0)
        let box = OutcomeBox()
        // The reply comes on LocalAuthentication's own queue, not on a Swift concurrency
        // thread, so waiting here cannot starve the thread that would deliver it.
        evaluate(reason: reason) { outcome in
            box.outcome = outcome
            answered.signal()
        }
        answered.wait()
        guard let outcome = box.outcome else {
            throw KeystoreError.Unavailable(detail: "sign: the biometric check gave no answer")
        }
        return try outcome.get()
    }

    /// The biometric enrollment state now: an opaque value that changes whenever a finger or a
    /// face is added or removed. Where biometrics cannot be used (none enrolled, locked out, no
    /// sensor), the reason is thrown as a `KeystoreError` for `operation`.
    static func enrolledState(during operation: KeystoreOperation) throws -> Data {
        let context = LAContext()
        var error: NSError?
        guard context.canEvaluatePolicy(policy, error: &error) else {
            throw KeystoreErrorMapping.keystoreError(for: KeystoreFailure(error), during: operation)
        }
        // Filled in by canEvaluatePolicy (iOS 9 and later).
        guard let state = context.evaluatedPolicyDomainState else {
            throw KeystoreErrorMapping.keystoreError(
                for: .authentication(.biometryNotAvailable),
                during: operation
            )
        }
        return state
    }

    private func evaluate(
        reason: String,
        reply: @escaping (Result<LAContext, KeystoreError>) -> Void
    ) {
        let context = LAContext()
        // No "Enter Password" button: the passcode cannot open the biometric key.
        context.localizedFallbackTitle = ""
        context.evaluatePolicy(Self.policy, localizedReason: reason) { passed, error in
            if passed {
                reply(.success(context))
            } else {
                reply(.failure(KeystoreErrorMapping.keystoreError(
                    for: KeystoreFailure(error),
                    during: .sign
                )))
            }
        }
    }
}

/// The answer of one biometric check, handed from LocalAuthentication's queue to the waiting
/// thread. The semaphore orders the write before the read, hence `@unchecked`.
private final class OutcomeBox: @unchecked Sendable {
    var outcome: Result<LAContext, KeystoreError>?
}
