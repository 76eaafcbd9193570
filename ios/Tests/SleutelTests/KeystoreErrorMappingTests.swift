import LocalAuthentication
import Security
import XCTest

@testable import Sleutel

/// The table from platform failures to the core's `KeystoreError`: pure, so it runs on any Mac
/// or simulator, without a Secure Enclave, a face or a finger.
final class KeystoreErrorMappingTests: XCTestCase {
    private func mapped(
        _ failure: KeystoreFailure,
        during operation: KeystoreOperation = .sign
    ) -> KeystoreError {
        KeystoreErrorMapping.keystoreError(for: failure, during: operation)
    }

    func testAKeychainPromptTheUserCancelledIsUserCancelled() {
        XCTAssertEqual(mapped(.status(errSecUserCanceled)), .UserCancelled)
    }

    func testABiometricPromptCancelledByThePersonTheAppOrTheSystemIsUserCancelled() {
        for code in [LAError.Code.userCancel, .appCancel, .systemCancel] {
            XCTAssertEqual(mapped(.authentication(code)), .UserCancelled, "\(code.rawValue)")
        }
    }

    func testChoosingTheFallbackIsUserCancelledSoTheAppOffersTheCode() {
        XCTAssertEqual(mapped(.authentication(.userFallback)), .UserCancelled)
    }

    func testABiometricLockoutIsBiometricLockedOut() {
        XCTAssertEqual(mapped(.authentication(.biometryLockout)), .BiometricLockedOut)
    }

    func testAnItemTheKeychainDoesNotHaveIsKeyNotFound() {
        XCTAssertEqual(mapped(.status(errSecItemNotFound), during: .publicKey), .KeyNotFound)
    }

    func testBiometricsChangedSinceTheKeyWasMadeInvalidateIt() {
        XCTAssertEqual(mapped(.biometricsChanged), .KeyInvalidated)
    }

    func testNoBiometricsEnrolledWhenSigningInvalidatesTheBiometricKey() {
        XCTAssertEqual(
            mapped(.authentication(.biometryNotEnrolled), during: .sign),
            .KeyInvalidated
        )
    }

    func testNoBiometricsEnrolledWhenMakingAKeyIsUnavailable() {
        let error = mapped(.authentication(.biometryNotEnrolled), during: .generateKey)
        guard case .Unavailable = error else {
            return XCTFail("expected Unavailable, got \(error)")
        }
    }

    func testAnyOtherStatusIsUnavailableNamingOnlyTheOperationAndTheCode() {
        XCTAssertEqual(
            mapped(.status(errSecInteractionNotAllowed), during: .getSecret),
            .Unavailable(detail: "getSecret: Security status \(errSecInteractionNotAllowed)")
        )
    }

    func testAFailedBiometricCheckIsUnavailable() {
        let code = LAError.Code.authenticationFailed.rawValue
        XCTAssertEqual(
            mapped(.authentication(.authenticationFailed)),
            .Unavailable(detail: "sign: LocalAuthentication error \(code)")
        )
    }

    func testAnLAErrorFromTheFrameworkIsReadAsAnAuthenticationFailure() {
        let error = NSError(domain: LAErrorDomain, code: LAError.Code.userCancel.rawValue)
        XCTAssertEqual(KeystoreFailure(error), .authentication(.userCancel))
    }

    func testAnOSStatusErrorFromTheFrameworkIsReadAsAStatus() {
        let error = NSError(domain: NSOSStatusErrorDomain, code: Int(errSecUserCanceled))
        XCTAssertEqual(KeystoreFailure(error), .status(errSecUserCanceled))
    }

    func testAnErrorOfAnotherDomainIsKeptByDomainAndCodeOnly() {
        // The platform's message may name the key: it is not kept.
        let error = NSError(
            domain: "Elsewhere",
            code: 7,
            userInfo: [NSLocalizedDescriptionKey: "key sleutel-device-1"]
        )
        XCTAssertEqual(KeystoreFailure(error), .other(domain: "Elsewhere", code: 7))
        XCTAssertEqual(
            mapped(KeystoreFailure(error)),
            .Unavailable(detail: "sign: Elsewhere error 7")
        )
    }
}
