import XCTest

@testable import Sleutel

/// The APNs token as the server takes it.
final class PushRegistrationTests: XCTestCase {
    func testTheDeviceTokenBecomesLowercaseHexTwoDigitsAByte() {
        let token = Data([0x00, 0x0f, 0xa0, 0xff, 0x3c])
        XCTAssertEqual(PushRegistration.hexToken(token), "000fa0ff3c")
    }

    func testAThirtyTwoByteTokenBecomesSixtyFourDigits() {
        let token = Data((0..<32).map { UInt8($0 * 8) })
        let hex = PushRegistration.hexToken(token)
        XCTAssertEqual(hex.count, 64)
        XCTAssertEqual(hex, hex.lowercased())
    }
}
