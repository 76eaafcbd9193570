import Foundation
import SleutelCore
import UserNotifications

/// The work of the app's Notification Service Extension: the server's notification carries ids
/// only (`{"aps": {"alert": {...}, "mutable-content": 1}, "account_id": ..., "request_id": ...}`),
/// with a generic text; the extension fetches and verifies the request through the core and
/// shows what it really asks (the relying party and the request's text).
///
/// When anything fails (no ids, no account, no network, a request that does not verify, the
/// phone locked so that the keys are shut) or the extension's time runs out, the notification
/// keeps its generic text: opening the app shows the request (`refreshPending()`).
///
/// ```swift
/// final class NotificationService: UNNotificationServiceExtension {
///     private let helper = NotificationServiceHelper { try openSleutel() }
///     override func didReceive(
///         _ request: UNNotificationRequest,
///         withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void
///     ) {
///         helper.didReceive(request, withContentHandler: contentHandler)
///     }
///     override func serviceExtensionTimeWillExpire() { helper.serviceExtensionTimeWillExpire() }
/// }
/// ```
public final class NotificationServiceHelper: @unchecked Sendable {
    /// The key the server puts the account's id under, beside `aps`.
    public static let accountIdKey = "account_id"
    /// The key the server puts the request's id under, beside `aps`.
    public static let requestIdKey = "request_id"

    private let openAuthenticator: () throws -> Authenticator
    // Two locks, so that a slow opening never holds up the deadline's delivery.
    /// Guards `authenticator`.
    private let openingLock = NSLock()
    private var authenticator: Authenticator?
    /// Guards `waiting`: the core's answer and iOS's deadline come on different threads, and
    /// each content handler must be called exactly once.
    private let waitingLock = NSLock()
    /// The notifications whose content handler has not been called yet, each under a key of
    /// its own: not its identifier, which APNs sets to the collapse id (the request's id), so a
    /// push the server sent again arrives under the same identifier while the first may still
    /// be waiting, and would take its place and leave its handler uncalled.
    private var waiting: [UUID: Waiting] = [:]

    /// A helper that opens the `Authenticator` with `openAuthenticator` when the first
    /// notification arrives (on the data directory and Keychain access group the app shares with
    /// the extension) and keeps it for the next ones.
    public init(openAuthenticator: @escaping () throws -> Authenticator) {
        self.openAuthenticator = openAuthenticator
    }

    /// Call from `didReceive(_:withContentHandler:)`. Calls `contentHandler` once: with the
    /// request's text, or with the notification as it came.
    public func didReceive(
        _ request: UNNotificationRequest,
        withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void
    ) {
        let original = request.content
        let key = UUID()
        locked(waitingLock) {
            waiting[key] = Waiting(original: original, contentHandler: contentHandler)
        }
        guard let payload = Self.pushPayload(from: original.userInfo) else {
            deliver(nil, to: key)
            return
        }
        Task {
            var shown: UNNotificationContent?
            do {
                let authenticator = try self.openedAuthenticator()
                let view = try await authenticator.handlePush(payload: payload)
                shown = Self.content(showing: view, from: original)
            } catch {
                // The generic text stays; the error is the core's to log, and it says nothing
                // that the notification could show.
                shown = nil
            }
            self.deliver(shown, to: key)
        }
    }

    /// Call from `serviceExtensionTimeWillExpire()`: shows every notification still waiting as
    /// it came. The core's call goes on, and its answer, when it comes, is dropped.
    public func serviceExtensionTimeWillExpire() {
        let keys = locked(waitingLock) { Array(waiting.keys) }
        for key in keys {
            deliver(nil, to: key)
        }
    }

    /// The JSON the core's `handlePush(payload:)` takes, from the notification's `userInfo`:
    /// `{"account_id": ..., "request_id": ...}`, or `nil` when either id is missing, empty or not
    /// a string. The core checks the ids' form itself.
    public static func pushPayload(from userInfo: [AnyHashable: Any]) -> String? {
        guard
            let accountId = userInfo[accountIdKey] as? String, !accountId.isEmpty,
            let requestId = userInfo[requestIdKey] as? String, !requestId.isEmpty
        else {
            return nil
        }
        let message = [accountIdKey: accountId, requestIdKey: requestId]
        guard let json = try? JSONSerialization.data(
            withJSONObject: message,
            options: [.sortedKeys]
        ) else {
            return nil
        }
        return String(decoding: json, as: UTF8.self)
    }

    /// The notification `original` with what the request says: the relying party's name as the
    /// title, the request's text as the body, and the binding message (which the relying party
    /// shows too, to compare) as the subtitle. Everything else of `original` (sound, badge,
    /// category, the ids) stays.
    public static func content(
        showing view: ActionView,
        from original: UNNotificationContent
    ) -> UNNotificationContent {
        guard let content = original.mutableCopy() as? UNMutableNotificationContent else {
            return original
        }
        content.title = view.rpName
        content.body = view.text
        if let bindingMessage = view.bindingMessage {
            content.subtitle = bindingMessage
        }
        return content
    }

    private func openedAuthenticator() throws -> Authenticator {
        try locked(openingLock) {
            if let authenticator {
                return authenticator
            }
            let opened = try openAuthenticator()
            authenticator = opened
            return opened
        }
    }

    /// Hands `content` (`nil`: the notification as it came) to the content handler of the
    /// notification waiting under `key`, if it is still waiting.
    private func deliver(_ content: UNNotificationContent?, to key: UUID) {
        let taken = locked(waitingLock) { waiting.removeValue(forKey: key) }
        guard let taken else {
            return
        }
        taken.contentHandler(content ?? taken.original)
    }

    /// `NSLock.withLock` is iOS 16 and later; the package supports iOS 15.
    private func locked<T>(_ lock: NSLock, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// A notification whose content handler has not been called yet.
    private struct Waiting {
        let original: UNNotificationContent
        let contentHandler: (UNNotificationContent) -> Void
    }
}
