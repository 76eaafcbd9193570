import Foundation
import SleutelCore

/// Hands the phone's APNs device token to the server for every account on the phone, so that
/// requests for any of them arrive as notifications.
///
/// Call ``register(deviceToken:)`` from
/// `application(_:didRegisterForRemoteNotificationsWithDeviceToken:)`, which iOS calls at every
/// launch after `registerForRemoteNotifications()` (the token can change, after a restore or a
/// reinstall), and again after an enrollment completes, so that a new account has the token too.
public struct PushRegistration: Sendable {
    private let authenticator: Authenticator

    /// Registration through `authenticator`, the app's one `Authenticator`.
    public init(authenticator: Authenticator) {
        self.authenticator = authenticator
    }

    /// The device token as the server takes it: lowercase hex, two digits a byte, the form APNs
    /// itself uses for tokens.
    public static func hexToken(_ deviceToken: Data) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(deviceToken.count * 2)
        for byte in deviceToken {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// Registers `deviceToken` for every account on the phone that can still receive requests
    /// (a revoked device cannot: the server no longer knows it). One account's failure does not
    /// stop the others; the accounts that failed are thrown together
    /// (``PushRegistrationError/notRegistered(_:)``), and calling again is safe.
    public func register(deviceToken: Data) async throws {
        let token = Self.hexToken(deviceToken)
        let accounts: [Account]
        do {
            accounts = try authenticator.accounts()
        } catch {
            throw PushRegistrationError.accountsUnreadable(error)
        }
        var failures: [PushRegistrationFailure] = []
        for account in accounts where account.status != .revoked {
            do {
                try await authenticator.registerPushToken(
                    accountId: account.accountId,
                    platform: PushPlatform.apns,
                    token: token
                )
            } catch {
                failures.append(PushRegistrationFailure(accountId: account.accountId, error: error))
            }
        }
        if !failures.isEmpty {
            throw PushRegistrationError.notRegistered(failures)
        }
    }
}

/// Why a push token did not reach the server.
public enum PushRegistrationError: Error {
    /// The accounts on the phone could not be read (the core's error, usually a `CoreError`).
    case accountsUnreadable(Error)
    /// These accounts did not get the token; the others did. Try again later (at the next
    /// launch, or when the network is back).
    case notRegistered([PushRegistrationFailure])
}

/// One account that did not get the push token, and why (usually a `CoreError`: `Network` to
/// try again later, `DeviceRevoked` to stop).
public struct PushRegistrationFailure: Error {
    /// The account's id.
    public let accountId: String
    /// What the core answered.
    public let error: Error
}
