package be.sleutel.core

import java.math.BigInteger
import java.security.InvalidKeyException
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Provider
import java.security.PublicKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.AlgorithmParameterSpec
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.ConcurrentHashMap

/**
 * A key pair kept by a [KeyPairStore], with the protection it was generated with.
 *
 * @property keyPair The key pair. On a hardware-backed provider the private key is only a handle:
 *   its material never leaves the provider.
 * @property protection How the key was protected when it was generated.
 */
class StoredKeyPair(val keyPair: KeyPair, val protection: KeyProtection)

/**
 * Where the key pairs of a [JcaKeystore] live.
 *
 * On the JVM, [InMemoryKeyPairStore] keeps the pairs the generator returned. On Android, the
 * `AndroidKeyStore` provider keeps every key it generates: an implementation there does nothing
 * in [save], reads the entry back from `java.security.KeyStore.getInstance("AndroidKeyStore")` in
 * [load] (with the protection from the key's `KeyInfo`), deletes the entry in [delete], and
 * answers [isHardwareBacked] from `KeyInfo`'s security level.
 *
 * Implementations must be safe to call from several threads. They may throw a
 * [KeystoreException] to report a platform failure precisely; any other exception becomes
 * [KeystoreException.Unavailable].
 */
interface KeyPairStore {
    /** Keeps [keyPair], generated with [protection], under [alias], replacing any pair there. */
    fun save(alias: String, keyPair: KeyPair, protection: KeyProtection)

    /** The key pair under [alias], or `null` if there is none. */
    fun load(alias: String): StoredKeyPair?

    /** Deletes the key pair under [alias]; deleting a missing pair is not an error. */
    fun delete(alias: String)

    /**
     * Whether the private key under [alias] lives in secure hardware (TEE, StrongBox), as the
     * provider that holds it reports.
     */
    fun isHardwareBacked(alias: String, key: StoredKeyPair): Boolean
}

/**
 * Where the secret slots of a [JcaKeystore] live: small values such as the salt of the code.
 *
 * On the JVM, [InMemorySecretStore]. On Android, values encrypted under an AES key of the
 * `AndroidKeyStore` and kept in the app's private storage. Implementations must be safe to call
 * from several threads; they may throw a [KeystoreException].
 */
interface SecretStore {
    /** Stores [value] under [name], replacing any value there. */
    fun put(name: String, value: ByteArray)

    /** The value under [name], or `null` if there is none. */
    fun get(name: String): ByteArray?

    /** Deletes the value under [name]; deleting a missing value is not an error. */
    fun delete(name: String)
}

/**
 * What [UserPresenceGate.confirm] is asked to confirm: one signature with one key.
 *
 * @property alias The key about to sign.
 * @property protection How that key is protected.
 * @property prompt The text to show in the system prompt, when the core gave one.
 * @property signature The signature object, initialised for signing with the key and not yet
 *   used. On Android, wrap it in a `BiometricPrompt.CryptoObject` so that a key requiring
 *   authentication for every use is unlocked for exactly this operation.
 */
class PresenceRequest(
    val alias: String,
    val protection: KeyProtection,
    val prompt: String?,
    val signature: Signature,
)

/**
 * Confirms that the person is present before a key signs: a biometric or device-credential
 * prompt on a phone, nothing at all where there is no such prompt.
 *
 * [confirm] is called on the thread that drives the core's call (never the UI thread) and may
 * block until the person answers. It returns when the key may sign and throws a
 * [KeystoreException] otherwise: [KeystoreException.UserCancelled] when the person dismissed the
 * prompt, [KeystoreException.BiometricLockedOut] after too many failed attempts,
 * [KeystoreException.KeyInvalidated] when the enrolled biometrics changed.
 */
fun interface UserPresenceGate {
    /** Returns when the signature described by [request] may go ahead; throws otherwise. */
    fun confirm(request: PresenceRequest)

    /** Gates that need no platform. */
    companion object {
        /** Lets every signature go ahead: for keys that need no user presence. */
        val NONE: UserPresenceGate = UserPresenceGate { }
    }
}

/**
 * Says which parameters a key pair generator is initialised with for a new key.
 *
 * The JVM uses [SECP256R1]. On Android, an implementation returns a `KeyGenParameterSpec` for the
 * alias with `PURPOSE_SIGN`, `DIGEST_SHA256` and the `secp256r1` curve, and for
 * [KeyProtection.BIOMETRIC] user authentication for every use by a strong biometric,
 * invalidated when the enrolled biometrics change.
 */
fun interface KeyGenSpecFactory {
    /** The generator parameters for a new key under [alias] protected as [protection]. */
    fun spec(alias: String, protection: KeyProtection): AlgorithmParameterSpec

    /** Parameter factories that need no platform. */
    companion object {
        /** The NIST P-256 curve, whatever the alias and protection. */
        val SECP256R1: KeyGenSpecFactory = KeyGenSpecFactory { _, _ -> ECGenParameterSpec("secp256r1") }
    }
}

/**
 * The [Keystore] the core signs with, implemented with `java.security`: EC keys on the P-256
 * curve (`secp256r1`) and `SHA256withECDSA` signatures in ASN.1 DER, which the core accepts.
 *
 * Everything platform-specific is injected, so the same class serves the JVM and Android:
 *
 * ```kotlin
 * // JVM: the default provider, keys and secrets in memory.
 * val keystore = JcaKeystore(InMemoryKeyPairStore(), InMemorySecretStore())
 *
 * // Android: keys generated inside AndroidKeyStore and looked up there by alias; the stores,
 * // the parameters and the biometric gate are the Android module's.
 * val keystore = JcaKeystore(
 *     keys = AndroidKeyPairStore(),
 *     secrets = AndroidSecretStore(context),
 *     keyPairGeneratorProvider = java.security.Security.getProvider("AndroidKeyStore"),
 *     keyGenSpecs = AndroidKeyGenSpecs(),
 *     userPresence = BiometricGate(activity),
 * )
 * ```
 *
 * Failures reach the core as [KeystoreException]s: a missing key is
 * [KeystoreException.KeyNotFound], a key the platform invalidated is
 * [KeystoreException.KeyInvalidated], anything else is [KeystoreException.Unavailable] with an
 * explanation that names the failing operation and the exception's class, never its message or
 * any key material. What the [userPresence] gate throws is passed on unchanged.
 *
 * @param keys Where the key pairs live.
 * @param secrets Where the secret slots live.
 * @param keyPairGeneratorProvider The provider that generates keys (`AndroidKeyStore` on
 *   Android); `null` lets the JCA pick the most preferred provider of `EC` key pairs.
 * @param signatureProvider The provider that signs; `null` lets the JCA pick the provider that
 *   accepts the key, which is what `AndroidKeyStore` keys need.
 * @param keyGenSpecs The parameters each new key is generated with.
 * @param userPresence Called before every signature, with the prompt text the core gave.
 */
class JcaKeystore(
    private val keys: KeyPairStore,
    private val secrets: SecretStore,
    private val keyPairGeneratorProvider: Provider? = null,
    private val signatureProvider: Provider? = null,
    private val keyGenSpecs: KeyGenSpecFactory = KeyGenSpecFactory.SECP256R1,
    private val userPresence: UserPresenceGate = UserPresenceGate.NONE,
) : Keystore {

    /** Generates a P-256 key pair under [alias] and returns its uncompressed SEC1 public key. */
    override fun generateKey(alias: String, protection: KeyProtection): ByteArray = guarded("generating a key") {
        val generator = if (keyPairGeneratorProvider != null) {
            KeyPairGenerator.getInstance(KEY_ALGORITHM, keyPairGeneratorProvider)
        } else {
            KeyPairGenerator.getInstance(KEY_ALGORITHM)
        }
        generator.initialize(keyGenSpecs.spec(alias, protection))
        val pair = generator.generateKeyPair()
        val point = uncompressedPoint(pair.public)
        keys.save(alias, pair, protection)
        point
    }

    /** The uncompressed SEC1 public key (65 bytes) of the key under [alias]. */
    override fun publicKey(alias: String): ByteArray = guarded("reading a public key") {
        uncompressedPoint(require(alias).keyPair.public)
    }

    /**
     * Signs [message] with `SHA256withECDSA` and the key under [alias], after the
     * [UserPresenceGate] confirmed with [prompt]. Returns the ASN.1 DER signature.
     */
    override fun sign(alias: String, message: ByteArray, prompt: String?): ByteArray = guarded("signing") {
        val stored = require(alias)
        val signature = if (signatureProvider != null) {
            Signature.getInstance(SIGNATURE_ALGORITHM, signatureProvider)
        } else {
            Signature.getInstance(SIGNATURE_ALGORITHM)
        }
        signature.initSign(stored.keyPair.private)
        userPresence.confirm(PresenceRequest(alias, stored.protection, prompt, signature))
        signature.update(message)
        signature.sign()
    }

    /** Deletes the key under [alias]; a missing key is not an error. */
    override fun deleteKey(alias: String) = guarded("deleting a key") {
        keys.delete(alias)
    }

    /** Whether the key under [alias] lives in secure hardware, as its provider reports. */
    override fun isHardwareBacked(alias: String): Boolean = guarded("reading the key's storage") {
        keys.isHardwareBacked(alias, require(alias))
    }

    /** Stores the secret [value] under [name], replacing any value there. */
    override fun putSecret(name: String, value: ByteArray) = guarded("storing a secret") {
        secrets.put(name, value)
    }

    /** The secret under [name], or `null` if there is none. */
    override fun getSecret(name: String): ByteArray? = guarded("reading a secret") {
        secrets.get(name)
    }

    /** Deletes the secret under [name]; a missing secret is not an error. */
    override fun deleteSecret(name: String) = guarded("deleting a secret") {
        secrets.delete(name)
    }

    private fun require(alias: String): StoredKeyPair =
        keys.load(alias) ?: throw KeystoreException.KeyNotFound()

    /** Names of the algorithms and the failure mapping. */
    private companion object {
        const val KEY_ALGORITHM = "EC"
        const val SIGNATURE_ALGORITHM = "SHA256withECDSA"

        /** Length of one coordinate of a P-256 point. */
        const val COORDINATE_LEN = 32

        /** The first byte of an uncompressed SEC1 point. */
        const val UNCOMPRESSED: Byte = 0x04

        /**
         * Platform exceptions that mean the key can no longer be used, by class name so that
         * this file compiles without the Android SDK.
         */
        val INVALIDATED_KEY_EXCEPTIONS = setOf(
            "android.security.keystore.KeyPermanentlyInvalidatedException",
        )

        /**
         * Runs [block], turning every failure into a [KeystoreException]. Messages of platform
         * exceptions are left out: they may describe keys, and the detail reaches logs.
         */
        inline fun <T> guarded(operation: String, block: () -> T): T {
            try {
                return block()
            } catch (e: KeystoreException) {
                throw e
            } catch (e: Exception) {
                if (e is InvalidKeyException && e.javaClass.name in INVALIDATED_KEY_EXCEPTIONS) {
                    throw KeystoreException.KeyInvalidated()
                }
                throw KeystoreException.Unavailable("$operation failed: ${e.javaClass.name}")
            }
        }

        /** The 65-byte uncompressed SEC1 encoding (`04 || x || y`) of a P-256 public key. */
        fun uncompressedPoint(key: PublicKey): ByteArray {
            if (key !is ECPublicKey || key.params.curve.field.fieldSize != COORDINATE_LEN * 8) {
                throw KeystoreException.Unavailable("the provider returned a public key that is not on P-256")
            }
            val point = ByteArray(1 + 2 * COORDINATE_LEN)
            point[0] = UNCOMPRESSED
            writeCoordinate(key.w.affineX, point, 1)
            writeCoordinate(key.w.affineY, point, 1 + COORDINATE_LEN)
            return point
        }

        /** Writes [value] big-endian, left-padded to [COORDINATE_LEN] bytes, at [offset]. */
        fun writeCoordinate(value: BigInteger, into: ByteArray, offset: Int) {
            // toByteArray() is two's complement: it may add a leading zero byte or be shorter.
            val bytes = value.toByteArray()
            val start = bytes.indexOfFirst { it != 0.toByte() }.let { if (it < 0) bytes.size else it }
            val length = bytes.size - start
            if (value.signum() < 0 || length > COORDINATE_LEN) {
                throw KeystoreException.Unavailable("the provider returned a malformed public key")
            }
            System.arraycopy(bytes, start, into, offset + COORDINATE_LEN - length, length)
        }
    }
}

/**
 * A [KeyPairStore] in memory, for the JVM: the key pairs live as long as this object. Keys are
 * software keys, so [isHardwareBacked] is always `false`.
 */
class InMemoryKeyPairStore : KeyPairStore {
    private val pairs = ConcurrentHashMap<String, StoredKeyPair>()

    /** Keeps [keyPair] under [alias]. */
    override fun save(alias: String, keyPair: KeyPair, protection: KeyProtection) {
        pairs[alias] = StoredKeyPair(keyPair, protection)
    }

    /** The key pair under [alias], or `null`. */
    override fun load(alias: String): StoredKeyPair? = pairs[alias]

    /** Forgets the key pair under [alias]. */
    override fun delete(alias: String) {
        pairs.remove(alias)
    }

    /** Always `false`: these keys are in the JVM's memory. */
    override fun isHardwareBacked(alias: String, key: StoredKeyPair): Boolean = false

    /** The aliases of the keys kept, for tests and diagnostics. */
    val aliases: Set<String> get() = pairs.keys.toSet()
}

/** A [SecretStore] in memory, for the JVM: the secrets live as long as this object. */
class InMemorySecretStore : SecretStore {
    private val values = ConcurrentHashMap<String, ByteArray>()

    /** Keeps a copy of [value] under [name]. */
    override fun put(name: String, value: ByteArray) {
        values[name] = value.copyOf()
    }

    /** A copy of the value under [name], or `null`. */
    override fun get(name: String): ByteArray? = values[name]?.copyOf()

    /** Forgets the value under [name]. */
    override fun delete(name: String) {
        values.remove(name)
    }
}
