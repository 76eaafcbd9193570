package be.sleutel.android

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyInfo
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import java.io.InputStream
import java.io.OutputStream
import java.security.Key
import java.security.KeyFactorySpi
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.KeyPairGeneratorSpi
import java.security.KeyStoreSpi
import java.security.PrivateKey
import java.security.Provider
import java.security.PublicKey
import java.security.SecureRandom
import java.security.cert.Certificate
import java.security.spec.AlgorithmParameterSpec
import java.security.spec.ECGenParameterSpec
import java.security.spec.KeySpec
import java.util.Collections
import java.util.Date
import java.util.Enumeration
import java.util.concurrent.ConcurrentHashMap
import javax.crypto.KeyGenerator
import javax.crypto.KeyGeneratorSpi
import javax.crypto.SecretKey

/**
 * A stand-in for the `AndroidKeyStore` provider, which Robolectric does not have: the same JCA
 * services that [AndroidKeystore] asks of the real one (a `KeyStore` of that provider's type, EC
 * key pairs and AES keys generated from a `KeyGenParameterSpec` and kept by alias, `KeyInfo` from
 * its `KeyFactory`), done with the JDK's EC and AES implementations. Signatures and AES-GCM then
 * run on the JDK's providers, as they run on the keystore's own on a phone.
 *
 * What it cannot be: secure hardware. It reports the security level a phone would (StrongBox
 * when asked and [hasStrongBox], the TEE otherwise, unless [secureHardware] is off), refuses
 * StrongBox like a phone without one, and refuses specs the real provider refuses for an EC
 * signing key (another curve, no SHA-256 digest). It does not enforce user authentication.
 *
 * Each instance is its own keystore: tests never share keys through a global provider list.
 */
class StandInKeyStore(
    private val hasStrongBox: Boolean = false,
    private val secureHardware: Boolean = true,
) {
    /** A generated key with the spec it was generated with. */
    class Entry(val spec: KeyGenParameterSpec, val keyPair: KeyPair?, val secretKey: SecretKey?)

    /** The keys, by alias. */
    val entries = ConcurrentHashMap<String, Entry>()

    /** Every spec a key generator of this provider was initialised with, StrongBox refusals included. */
    val specsSeen: MutableList<KeyGenParameterSpec> = Collections.synchronizedList(mutableListOf())

    /** The provider to hand to [AndroidKeystore]. */
    val provider: Provider = object : Provider(NAME, "1.0", "a stand-in for AndroidKeyStore") {
        init {
            service("KeyStore", NAME) { StandInKeyStoreSpi() }
            service("KeyPairGenerator", KeyProperties.KEY_ALGORITHM_EC) { EcGenerator() }
            service("KeyGenerator", KeyProperties.KEY_ALGORITHM_AES) { AesGenerator() }
            service("KeyFactory", KeyProperties.KEY_ALGORITHM_EC) { InfoFactory() }
        }

        fun service(type: String, algorithm: String, create: () -> Any) {
            putService(object : Service(this, type, algorithm, create.javaClass.name, null, null) {
                override fun newInstance(constructorParameter: Any?): Any = create()
            })
        }
    }

    private fun securityLevel(spec: KeyGenParameterSpec): Int = when {
        spec.isStrongBoxBacked -> KeyProperties.SECURITY_LEVEL_STRONGBOX
        secureHardware -> KeyProperties.SECURITY_LEVEL_TRUSTED_ENVIRONMENT
        else -> KeyProperties.SECURITY_LEVEL_SOFTWARE
    }

    private fun admit(params: AlgorithmParameterSpec?): KeyGenParameterSpec {
        val spec = params as? KeyGenParameterSpec
            ?: throw java.security.InvalidAlgorithmParameterException("AndroidKeyStore takes a KeyGenParameterSpec")
        specsSeen += spec
        if (spec.isStrongBoxBacked && !hasStrongBox) throw StrongBoxUnavailableException("no StrongBox here")
        return spec
    }

    private inner class EcGenerator : KeyPairGeneratorSpi() {
        private var spec: KeyGenParameterSpec? = null

        override fun initialize(keysize: Int, random: SecureRandom?) =
            throw UnsupportedOperationException("AndroidKeyStore takes a KeyGenParameterSpec")

        override fun initialize(params: AlgorithmParameterSpec?, random: SecureRandom?) {
            spec = params as? KeyGenParameterSpec
                ?: throw java.security.InvalidAlgorithmParameterException("AndroidKeyStore takes a KeyGenParameterSpec")
        }

        override fun generateKeyPair(): KeyPair {
            // Like the real provider, StrongBox is refused when the pair is generated.
            val spec = admit(spec)
            val curve = (spec.algorithmParameterSpec as? ECGenParameterSpec)?.name
            require(curve == KeySpecs.CURVE) { "only P-256 here, got $curve" }
            require(KeyProperties.DIGEST_SHA256 in spec.digests) { "an ES256 key signs SHA-256 digests" }
            val jdk = KeyPairGenerator.getInstance("EC")
            jdk.initialize(ECGenParameterSpec(curve))
            val pair = jdk.generateKeyPair()
            entries[spec.keystoreAlias] = Entry(spec, pair, null)
            return pair
        }
    }

    private inner class AesGenerator : KeyGeneratorSpi() {
        private var spec: KeyGenParameterSpec? = null

        override fun engineInit(random: SecureRandom?) =
            throw UnsupportedOperationException("AndroidKeyStore takes a KeyGenParameterSpec")

        override fun engineInit(params: AlgorithmParameterSpec?, random: SecureRandom?) {
            spec = admit(params)
        }

        override fun engineInit(keysize: Int, random: SecureRandom?) =
            throw UnsupportedOperationException("AndroidKeyStore takes a KeyGenParameterSpec")

        override fun engineGenerateKey(): SecretKey {
            val spec = checkNotNull(spec) { "not initialised" }
            val jdk = KeyGenerator.getInstance("AES")
            jdk.init(spec.keySize)
            val key = jdk.generateKey()
            entries[spec.keystoreAlias] = Entry(spec, null, key)
            return key
        }
    }

    private inner class InfoFactory : KeyFactorySpi() {
        override fun engineGeneratePublic(keySpec: KeySpec?): PublicKey = throw UnsupportedOperationException()
        override fun engineGeneratePrivate(keySpec: KeySpec?): PrivateKey = throw UnsupportedOperationException()
        override fun engineTranslateKey(key: Key?): Key = throw UnsupportedOperationException()

        @Suppress("UNCHECKED_CAST")
        override fun <T : KeySpec?> engineGetKeySpec(key: Key?, keySpec: Class<T>?): T {
            require(keySpec == KeyInfo::class.java) { "only KeyInfo here" }
            val (alias, entry) = entries.entries.firstOrNull { it.value.keyPair?.private == key }
                ?.let { it.key to it.value }
                ?: throw java.security.spec.InvalidKeySpecException("not a key of this keystore")
            return keyInfo(alias, entry.spec) as T
        }
    }

    /** The `KeyInfo` the platform would report for a key generated with [spec]. */
    private fun keyInfo(alias: String, spec: KeyGenParameterSpec): KeyInfo {
        val level = securityLevel(spec)
        // KeyInfo's constructor is hidden in the SDK but public in the framework jar.
        return KeyInfo(
            alias,
            level != KeyProperties.SECURITY_LEVEL_SOFTWARE,
            KeyProperties.ORIGIN_GENERATED,
            256,
            null,
            null,
            null,
            spec.purposes,
            spec.encryptionPaddings,
            spec.signaturePaddings,
            spec.digests,
            spec.blockModes,
            spec.isUserAuthenticationRequired,
            spec.userAuthenticationValidityDurationSeconds,
            spec.userAuthenticationType,
            spec.isUserAuthenticationRequired,
            spec.isUserAuthenticationValidWhileOnBody,
            spec.isUnlockedDeviceRequired,
            spec.isUserPresenceRequired,
            spec.isInvalidatedByBiometricEnrollment,
            spec.isUserConfirmationRequired,
            level,
            0,
        )
    }

    private inner class StandInKeyStoreSpi : KeyStoreSpi() {
        override fun engineLoad(stream: InputStream?, password: CharArray?) {
            require(stream == null) { "AndroidKeyStore is loaded with null" }
        }

        override fun engineGetKey(alias: String?, password: CharArray?): Key? =
            entries[alias]?.let { it.keyPair?.private ?: it.secretKey }

        override fun engineGetCertificate(alias: String?): Certificate? =
            entries[alias]?.keyPair?.public?.let { PublicKeyCertificate(it) }

        override fun engineGetCertificateChain(alias: String?): Array<Certificate>? =
            engineGetCertificate(alias)?.let { arrayOf(it) }

        // Strict: KeyStore.deleteEntry may fail for an entry that is not there, so callers check.
        override fun engineDeleteEntry(alias: String?) {
            entries.remove(alias) ?: throw java.security.KeyStoreException("no entry to delete")
        }

        override fun engineContainsAlias(alias: String?): Boolean = entries.containsKey(alias)
        override fun engineAliases(): Enumeration<String> = Collections.enumeration(entries.keys.toList())
        override fun engineSize(): Int = entries.size
        override fun engineIsKeyEntry(alias: String?): Boolean = entries.containsKey(alias)
        override fun engineIsCertificateEntry(alias: String?): Boolean = false
        override fun engineGetCertificateAlias(cert: Certificate?): String? = null
        override fun engineGetCreationDate(alias: String?): Date? = entries[alias]?.let { Date() }

        override fun engineStore(stream: OutputStream?, password: CharArray?) =
            throw UnsupportedOperationException()

        override fun engineSetCertificateEntry(alias: String?, cert: Certificate?) =
            throw UnsupportedOperationException()

        override fun engineSetKeyEntry(
            alias: String?,
            key: Key?,
            password: CharArray?,
            chain: Array<out Certificate>?,
        ) = throw UnsupportedOperationException("keys are generated inside the keystore")

        override fun engineSetKeyEntry(alias: String?, key: ByteArray?, chain: Array<out Certificate>?) =
            throw UnsupportedOperationException("keys are generated inside the keystore")
    }

    /** The self-signed certificate AndroidKeyStore keeps for a key pair, reduced to its public key. */
    private class PublicKeyCertificate(private val key: PublicKey) : Certificate("X.509") {
        override fun getPublicKey(): PublicKey = key
        override fun getEncoded(): ByteArray = throw UnsupportedOperationException()
        override fun verify(key: PublicKey?) = throw UnsupportedOperationException()
        override fun verify(key: PublicKey?, sigProvider: String?) = throw UnsupportedOperationException()
        override fun toString(): String = "stand-in certificate"
    }

    /** The provider's name. */
    companion object {
        /** Not `AndroidKeyStore`: nothing can mistake this provider for the real one. */
        const val NAME = "StandInAndroidKeyStore"
    }
}
