import CryptoKit
import Foundation
import LocalAuthentication
import Security
import SleutelCore

/// The Sleutel keystore on iOS: the core's `Keystore` protocol over the Secure Enclave and the
/// Keychain. Pass one to `Authenticator.open(dataDir:serverUrl:keystore:)`.
///
/// - Keys are P-256 keys made in the Secure Enclave (`kSecAttrTokenIDSecureEnclave`), permanent
///   and tagged by their alias; the private key never leaves the chip. Where there is no Secure
///   Enclave (the simulator) they are software keys in the Keychain, and
///   ``isHardwareBacked(alias:)`` says `false`, so that the server can tell.
/// - Every key and secret is `kSecAttrAccessibleWhenUnlockedThisDeviceOnly`: usable only while the
///   phone is unlocked, never synced to iCloud and never restored from a backup onto another
///   phone, since the digital key belongs to this phone alone.
/// - The biometric key (`KeyProtection.biometric`) also needs `.biometryCurrentSet`: a finger or
///   face added or removed invalidates it for good. Signing with it goes through the
///   ``BiometricGate`` (one prompt with the request's text).
/// - Signatures are ECDSA P-256 SHA-256 in ASN.1 DER (`.ecdsaSignatureMessageX962SHA256`), which
///   the core accepts; public keys are 65-byte uncompressed SEC1 points.
/// - Deleting a key or secret that is not there is not an error.
///
/// Errors are the core's `KeystoreError`, from one table (``KeystoreErrorMapping``).
///
/// An app and its Notification Service Extension share the keys when both pass the same
/// `accessGroup` (a Keychain access group both are entitled to).
public final class SecureEnclaveKeystore: Keystore {
    /// The Keychain service the keys' tags and the secrets are named under, unless the app
    /// chooses another.
    public static let defaultService = "be.sleutel.keystore"

    /// ES256 as the core asks for it: ECDSA over SHA-256 of the message, DER-encoded.
    static let signatureAlgorithm = SecKeyAlgorithm.ecdsaSignatureMessageX962SHA256
    /// P-256, the only curve the Secure Enclave has and the one ES256 needs.
    static let keySizeInBits = 256
    /// An uncompressed SEC1 point: 0x04, then x and y of 32 bytes each.
    static let publicKeyLength = 65
    /// The first byte of an uncompressed SEC1 point.
    static let uncompressedPointTag: UInt8 = 0x04

    private let service: String
    private let accessGroup: String?
    private let usesSecureEnclave: Bool
    private let gate: BiometricGate

    /// A keystore whose items are named under `service` and, when `accessGroup` is given, kept in
    /// that Keychain access group (to share them with the app's Notification Service Extension).
    public init(
        service: String = SecureEnclaveKeystore.defaultService,
        accessGroup: String? = nil
    ) {
        self.service = service
        self.accessGroup = accessGroup
        self.usesSecureEnclave = SecureEnclave.isAvailable
        self.gate = BiometricGate()
    }

    // MARK: - Keys

    /// Makes a P-256 key under `alias`, replacing any key there, and returns its public key as
    /// an uncompressed SEC1 point. A biometric key also records the biometric enrollment state
    /// it was made under (see ``sign(alias:message:prompt:)``).
    public func generateKey(alias: String, protection: KeyProtection) throws -> Data {
        let operation = KeystoreOperation.generateKey
        // Asked before anything is deleted: without usable biometrics no biometric key can be
        // made, and the key already there stays.
        var enrolledState: Data?
        if protection == .biometric {
            enrolledState = try BiometricGate.enrolledState(during: operation)
        }
        try deleteKey(alias: alias)

        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil,
            kSecAttrAccessibleWhenUnlockedThisDeviceOnly,
            accessFlags(for: protection),
            &error
        ) else {
            throw failure(error, during: operation)
        }
        var privateKeyAttributes: [String: Any] = [
            kSecAttrIsPermanent as String: true,
            kSecAttrApplicationTag as String: keyTag(alias),
            kSecAttrAccessControl as String: access,
        ]
        if let accessGroup {
            privateKeyAttributes[kSecAttrAccessGroup as String] = accessGroup
        }
        var attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: Self.keySizeInBits,
            kSecPrivateKeyAttrs as String: privateKeyAttributes,
        ]
        if usesSecureEnclave {
            attributes[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
        }
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw failure(error, during: operation)
        }
        if let enrolledState {
            try storeItem(
                service: biometricStateService,
                account: alias,
                value: enrolledState,
                during: operation
            )
        }
        return try publicKeyBytes(of: key, during: operation)
    }

    /// The uncompressed SEC1 public key of the key under `alias`. Never prompts.
    public func publicKey(alias: String) throws -> Data {
        let key = try privateKey(alias, context: Self.silentContext(), during: .publicKey)
        return try publicKeyBytes(of: key, during: .publicKey)
    }

    /// Signs `message` with the key under `alias` (ECDSA P-256 SHA-256, DER).
    ///
    /// A biometric key is used only after the ``BiometricGate`` passed, showing `prompt`, and
    /// with the context that passed it, so the person is asked once. How a change of biometrics
    /// is told apart from other failures (`KeystoreError.KeyInvalidated`): when the key was made
    /// it recorded the device's biometric enrollment state (`evaluatedPolicyDomainState`, an
    /// opaque value that changes whenever a finger or face is added or removed); after the check
    /// passes, the state of that same context is compared with the record, and a difference
    /// means the key was bound to biometrics that are gone. The Secure Enclave would refuse the
    /// key anyway (`.biometryCurrentSet`), but with an error that does not say why. A recorded
    /// biometric key that the Keychain no longer finds is invalidated too, and so is a biometric
    /// key when no biometrics are enrolled at all (``KeystoreErrorMapping``).
    public func sign(alias: String, message: Data, prompt: String?) throws -> Data {
        let operation = KeystoreOperation.sign
        let recordedState = try readItem(
            service: biometricStateService,
            account: alias,
            during: operation
        )
        let context: LAContext
        if let recordedState {
            guard let prompt else {
                throw KeystoreError.Unavailable(detail: "sign: a biometric key needs a prompt")
            }
            context = try gate.authenticateAndWait(reason: prompt)
            guard context.evaluatedPolicyDomainState == recordedState else {
                throw mapped(.biometricsChanged, during: operation)
            }
        } else {
            context = Self.silentContext()
        }

        let key: SecKey
        do {
            key = try privateKey(alias, context: context, during: operation)
        } catch KeystoreError.KeyNotFound where recordedState != nil {
            throw KeystoreError.KeyInvalidated
        }
        guard SecKeyIsAlgorithmSupported(key, .sign, Self.signatureAlgorithm) else {
            throw mapped(.signatureUnsupported, during: operation)
        }
        var error: Unmanaged<CFError>?
        guard let signature = SecKeyCreateSignature(
            key,
            Self.signatureAlgorithm,
            message as CFData,
            &error
        ) as Data? else {
            throw failure(error, during: operation)
        }
        return signature
    }

    /// Deletes the key under `alias` and, for a biometric key, its record of the enrollment
    /// state. Nothing there is not an error.
    public func deleteKey(alias: String) throws {
        try deleteItems(keyQuery(alias), during: .deleteKey)
        try deleteItems(
            itemQuery(service: biometricStateService, account: alias),
            during: .deleteKey
        )
    }

    /// Whether the key under `alias` is in the Secure Enclave, from the key's token id. Never
    /// prompts.
    public func isHardwareBacked(alias: String) throws -> Bool {
        var query = keyQuery(alias)
        query[kSecAttrKeyClass as String] = kSecAttrKeyClassPrivate
        query[kSecReturnAttributes as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        query[kSecUseAuthenticationContext as String] = Self.silentContext()
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        guard status == errSecSuccess else {
            throw mapped(.status(status), during: .isHardwareBacked)
        }
        guard let attributes = item as? [String: Any] else {
            throw mapped(.malformedItem, during: .isHardwareBacked)
        }
        let token = attributes[kSecAttrTokenID as String] as? String
        return token == (kSecAttrTokenIDSecureEnclave as String)
    }

    // MARK: - Secrets

    /// Stores `value` under `name` as a Keychain generic password, replacing any value there.
    public func putSecret(name: String, value: Data) throws {
        try storeItem(service: secretService, account: name, value: value, during: .putSecret)
    }

    /// The secret under `name`, or `nil` if there is none.
    public func getSecret(name: String) throws -> Data? {
        try readItem(service: secretService, account: name, during: .getSecret)
    }

    /// Deletes the secret under `name`. Nothing there is not an error.
    public func deleteSecret(name: String) throws {
        try deleteItems(itemQuery(service: secretService, account: name), during: .deleteSecret)
    }

    // MARK: - Keychain plumbing

    private var secretService: String { "\(service).secret" }
    private var biometricStateService: String { "\(service).biometric-state" }

    private func keyTag(_ alias: String) -> Data {
        Data("\(service).key.\(alias)".utf8)
    }

    private func accessFlags(for protection: KeyProtection) -> SecAccessControlCreateFlags {
        // `.privateKeyUsage` exists for Secure Enclave keys only; a software key refuses it.
        var flags: SecAccessControlCreateFlags = usesSecureEnclave ? [.privateKeyUsage] : []
        if protection == .biometric {
            flags.insert(.biometryCurrentSet)
        }
        return flags
    }

    /// A context that lets no prompt appear: reading a public key or a token id must never ask
    /// the person anything.
    private static func silentContext() -> LAContext {
        let context = LAContext()
        context.interactionNotAllowed = true
        return context
    }

    private func keyQuery(_ alias: String) -> [String: Any] {
        var query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrApplicationTag as String: keyTag(alias),
        ]
        if let accessGroup {
            query[kSecAttrAccessGroup as String] = accessGroup
        }
        return query
    }

    private func privateKey(
        _ alias: String,
        context: LAContext,
        during operation: KeystoreOperation
    ) throws -> SecKey {
        var query = keyQuery(alias)
        query[kSecAttrKeyClass as String] = kSecAttrKeyClassPrivate
        query[kSecReturnRef as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        query[kSecUseAuthenticationContext as String] = context
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        guard status == errSecSuccess else {
            throw mapped(.status(status), during: operation)
        }
        guard let item, CFGetTypeID(item) == SecKeyGetTypeID() else {
            throw mapped(.malformedKey, during: operation)
        }
        // The type id was checked above: the cast cannot fail. (A conditional cast to a
        // CoreFoundation type always succeeds, so `as?` would check nothing.)
        return item as! SecKey
    }

    private func publicKeyBytes(
        of key: SecKey,
        during operation: KeystoreOperation
    ) throws -> Data {
        guard let publicKey = SecKeyCopyPublicKey(key) else {
            throw mapped(.malformedKey, during: operation)
        }
        var error: Unmanaged<CFError>?
        guard let bytes = SecKeyCopyExternalRepresentation(publicKey, &error) as Data? else {
            throw failure(error, during: operation)
        }
        guard bytes.count == Self.publicKeyLength, bytes.first == Self.uncompressedPointTag else {
            throw mapped(.malformedKey, during: operation)
        }
        return bytes
    }

    private func itemQuery(service: String, account: String) -> [String: Any] {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            // Never in iCloud Keychain: the digital key is this phone's alone.
            kSecAttrSynchronizable as String: false,
        ]
        if let accessGroup {
            query[kSecAttrAccessGroup as String] = accessGroup
        }
        return query
    }

    private func storeItem(
        service: String,
        account: String,
        value: Data,
        during operation: KeystoreOperation
    ) throws {
        let query = itemQuery(service: service, account: account)
        let contents: [String: Any] = [
            kSecValueData as String: value,
            kSecAttrAccessible as String: kSecAttrAccessibleWhenUnlockedThisDeviceOnly,
        ]
        // Update first, add only when absent: a delete and an add would lose the value if the
        // app died between the two.
        let updated = SecItemUpdate(query as CFDictionary, contents as CFDictionary)
        if updated == errSecSuccess {
            return
        }
        guard updated == errSecItemNotFound else {
            throw mapped(.status(updated), during: operation)
        }
        let item = query.merging(contents) { _, new in new }
        let added = SecItemAdd(item as CFDictionary, nil)
        guard added == errSecSuccess else {
            throw mapped(.status(added), during: operation)
        }
    }

    private func readItem(
        service: String,
        account: String,
        during operation: KeystoreOperation
    ) throws -> Data? {
        var query = itemQuery(service: service, account: account)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecItemNotFound {
            return nil
        }
        guard status == errSecSuccess else {
            throw mapped(.status(status), during: operation)
        }
        guard let data = item as? Data else {
            throw mapped(.malformedItem, during: operation)
        }
        return data
    }

    private func deleteItems(_ query: [String: Any], during operation: KeystoreOperation) throws {
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw mapped(.status(status), during: operation)
        }
    }

    private func mapped(
        _ failure: KeystoreFailure,
        during operation: KeystoreOperation
    ) -> KeystoreError {
        KeystoreErrorMapping.keystoreError(for: failure, during: operation)
    }

    private func failure(
        _ error: Unmanaged<CFError>?,
        during operation: KeystoreOperation
    ) -> KeystoreError {
        // The Security framework hands its errors over retained (+1).
        mapped(KeystoreFailure(error?.takeRetainedValue()), during: operation)
    }
}
