package be.sleutel.android

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import be.sleutel.core.KeyProtection
import java.security.spec.ECGenParameterSpec

/**
 * The parameters [AndroidKeystore] generates its keys with, for the API level [sdkInt] the app
 * runs on (a parameter so that tests can build the specs of every level on one framework).
 */
internal class KeySpecs(private val sdkInt: Int = Build.VERSION.SDK_INT) {

    /**
     * An EC P-256 key under [alias] that signs SHA-256 digests (ES256, what the core asks for),
     * in StrongBox when [strongBox] is set, protected as [protection]:
     *
     * - [KeyProtection.DEVICE]: usable only while the phone is unlocked, so that a phone picked
     *   up locked cannot answer for its owner.
     * - [KeyProtection.BIOMETRIC]: every single signature needs a strong biometric (class 3),
     *   proven through the prompt's `CryptoObject` for exactly that operation, and the key is
     *   invalidated when a fingerprint or face is added, so a person who learns the phone's PIN
     *   cannot enrol their own finger and use the key. The device credential (PIN, pattern) is
     *   deliberately not accepted: the 5-digit code already covers "something you know".
     */
    fun signingKey(alias: String, protection: KeyProtection, strongBox: Boolean): KeyGenParameterSpec {
        val builder = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec(CURVE))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setIsStrongBoxBacked(strongBox)
        when (protection) {
            KeyProtection.DEVICE -> builder.setUnlockedDeviceRequired(true)
            KeyProtection.BIOMETRIC -> {
                builder.setUserAuthenticationRequired(true)
                builder.setInvalidatedByBiometricEnrollment(true)
                if (sdkInt >= Build.VERSION_CODES.R) {
                    // A timeout of 0: authentication is bound to one operation, never a window.
                    builder.setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
                } else {
                    // API 28-29 have no setUserAuthenticationParameters; -1 is their way of
                    // saying "a biometric for every use".
                    @Suppress("DEPRECATION")
                    builder.setUserAuthenticationValidityDurationSeconds(EVERY_USE)
                }
            }
        }
        return builder.build()
    }

    /**
     * The AES-256-GCM key under [alias] that encrypts the secret slots. The keystore draws a
     * fresh random IV for every encryption (randomised encryption is required), so a caller can
     * never reuse one. No user authentication: the core reads the salt of the code on every
     * approval with the code, where no biometric prompt is shown.
     */
    fun secretsKey(alias: String): KeyGenParameterSpec =
        KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setKeySize(AES_KEY_BITS)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setRandomizedEncryptionRequired(true)
            .build()

    /** Names and sizes of the keys. */
    companion object {
        /** NIST P-256, the curve of ES256. */
        const val CURVE = "secp256r1"

        /** AES-256: the largest AES key the keystores (StrongBox included) support. */
        const val AES_KEY_BITS = 256

        /** The API 28-29 validity duration meaning "authenticate for every use". */
        private const val EVERY_USE = -1
    }
}
