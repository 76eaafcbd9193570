import UserNotifications
import XCTest

@testable import Sleutel

/// The Notification Service Extension's part that needs no server: reading the ids, building the
/// text, and calling the content handler exactly once.
final class NotificationServiceHelperTests: XCTestCase {
    private struct NoAuthenticator: Error {}

    private func view(bindingMessage: String? = nil) -> ActionView {
        ActionView(
            requestId: "r1",
            accountId: "a1",
            rpId: "rp-bank",
            rpName: "Voorbeeldbank",
            kind: .login,
            text: "Aanmelden bij Voorbeeldbank",
            bindingMessage: bindingMessage,
            claims: [],
            optionalClaims: [],
            codeOnly: false,
            numberOptions: nil,
            transaction: nil,
            document: nil,
            issuedAt: 0,
            expiresAt: 60
        )
    }

    private func generic(userInfo: [AnyHashable: Any]) -> UNMutableNotificationContent {
        let content = UNMutableNotificationContent()
        content.title = "Sleutel"
        content.body = "You have a request"
        content.categoryIdentifier = "sleutel.request"
        content.userInfo = userInfo
        return content
    }

    func testThePayloadCarriesBothIdsAsTheCoreReadsThem() {
        let userInfo: [AnyHashable: Any] = [
            "aps": ["alert": ["title": "Sleutel"], "mutable-content": 1],
            "account_id": "a1",
            "request_id": "r1",
        ]
        XCTAssertEqual(
            NotificationServiceHelper.pushPayload(from: userInfo),
            #"{"account_id":"a1","request_id":"r1"}"#
        )
    }

    func testANotificationWithoutARequestIdHasNoPayload() {
        XCTAssertNil(NotificationServiceHelper.pushPayload(from: ["account_id": "a1"]))
    }

    func testAnIdThatIsNotAStringHasNoPayload() {
        let userInfo: [AnyHashable: Any] = ["account_id": "a1", "request_id": 7]
        XCTAssertNil(NotificationServiceHelper.pushPayload(from: userInfo))
    }

    func testTheShownNotificationNamesTheRelyingPartyAndTheRequest() {
        let shown = NotificationServiceHelper.content(showing: view(), from: generic(userInfo: [:]))
        XCTAssertEqual(shown.title, "Voorbeeldbank")
        XCTAssertEqual(shown.body, "Aanmelden bij Voorbeeldbank")
    }

    func testTheBindingMessageBecomesTheSubtitle() {
        let shown = NotificationServiceHelper.content(
            showing: view(bindingMessage: "K7Q2"),
            from: generic(userInfo: [:])
        )
        XCTAssertEqual(shown.subtitle, "K7Q2")
    }

    func testTheShownNotificationKeepsTheIdsAndTheCategory() {
        let original = generic(userInfo: ["account_id": "a1", "request_id": "r1"])
        let shown = NotificationServiceHelper.content(showing: view(), from: original)
        XCTAssertEqual(shown.userInfo["request_id"] as? String, "r1")
        XCTAssertEqual(shown.categoryIdentifier, "sleutel.request")
    }

    func testANotificationWithoutIdsIsShownAsItCame() {
        let helper = NotificationServiceHelper { throw NoAuthenticator() }
        let original = generic(userInfo: [:])
        var delivered: [UNNotificationContent] = []
        helper.didReceive(
            UNNotificationRequest(identifier: "n1", content: original, trigger: nil),
            withContentHandler: { delivered.append($0) }
        )
        XCTAssertEqual(delivered.map(\.body), ["You have a request"])
    }

    func testTwoNotificationsUnderOneIdentifierAreEachShownOnce() {
        // APNs makes the collapse id (the request's id) the identifier, so a push the server
        // sent again arrives under the identifier of the first.
        let helper = NotificationServiceHelper { throw NoAuthenticator() }
        let first = expectation(description: "the first notification")
        let second = expectation(description: "the second notification")
        for shown in [first, second] {
            shown.assertForOverFulfill = true
            helper.didReceive(
                UNNotificationRequest(
                    identifier: "r1",
                    content: generic(userInfo: ["account_id": "a1", "request_id": "r1"]),
                    trigger: nil
                ),
                withContentHandler: { _ in shown.fulfill() }
            )
        }
        wait(for: [first, second], timeout: 5)
    }

    func testWhenTimeRunsOutTheGenericTextIsShownOnceAndTheLateAnswerDropped() {
        let opening = DispatchSemaphore(value: 0)
        let failedLate = expectation(description: "the core's late answer")
        let helper = NotificationServiceHelper {
            // The core is slow: it answers only after the extension's time ran out.
            opening.wait()
            failedLate.fulfill()
            throw NoAuthenticator()
        }
        // A second call of the content handler would over-fulfil this and fail the test.
        let delivered = expectation(description: "content handler")
        delivered.assertForOverFulfill = true
        helper.didReceive(
            UNNotificationRequest(
                identifier: "n1",
                content: generic(userInfo: ["account_id": "a1", "request_id": "r1"]),
                trigger: nil
            ),
            withContentHandler: { content in
                XCTAssertEqual(content.body, "You have a request")
                delivered.fulfill()
            }
        )
        helper.serviceExtensionTimeWillExpire()
        opening.signal()
        wait(for: [delivered, failedLate], timeout: 5)
        // Time for the late answer to reach the helper, which must drop it.
        let settled = expectation(description: "nothing more")
        settled.isInverted = true
        wait(for: [settled], timeout: 0.5)
    }
}
