package be.sleutel.android

import android.hardware.biometrics.BiometricPrompt
import android.os.CancellationSignal
import be.sleutel.core.KeystoreException
import java.security.KeyPairGenerator
import java.security.Signature
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.yield
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner

/**
 * [BiometricGate] with the test playing the platform prompt's part, and the mapping of the
 * prompt's error codes ([biometricError]).
 */
@RunWith(RobolectricTestRunner::class)
class BiometricGateTest {

    /** The prompt as the gate showed it. */
    private class Shown(
        val crypto: BiometricPrompt.CryptoObject,
        val description: String?,
        val signal: CancellationSignal,
        val callback: BiometricPrompt.AuthenticationCallback,
        val onCancel: () -> Unit,
    )

    private val shown = CompletableDeferred<Shown>()
    private val gate = BiometricGate { crypto, description, signal, callback, onCancel ->
        shown.complete(Shown(crypto, description, signal, callback, onCancel))
    }

    private fun initialisedSignature(): Signature = Signature.getInstance("SHA256withECDSA").apply {
        initSign(KeyPairGenerator.getInstance("EC").generateKeyPair().private)
    }

    private val signature = initialisedSignature()

    private inline fun <reified E : KeystoreException> assertMapsTo(vararg codes: Int) {
        for (code in codes) {
            val error = biometricError(code)
            assertTrue("error $code gave $error", error is E)
        }
    }

    @Test
    fun personCancellingIsUserCancelled() {
        assertMapsTo<KeystoreException.UserCancelled>(
            BiometricPrompt.BIOMETRIC_ERROR_USER_CANCELED,
            BiometricPrompt.BIOMETRIC_ERROR_NEGATIVE_BUTTON,
            BiometricPrompt.BIOMETRIC_ERROR_CANCELED,
        )
    }

    @Test
    fun lockoutIsBiometricLockedOut() {
        assertMapsTo<KeystoreException.BiometricLockedOut>(
            BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT,
            BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT,
        )
    }

    @Test
    fun otherErrorsAreUnavailableNamingTheCode() {
        assertMapsTo<KeystoreException.Unavailable>(
            BiometricPrompt.BIOMETRIC_ERROR_HW_UNAVAILABLE,
            BiometricPrompt.BIOMETRIC_ERROR_TIMEOUT,
            BiometricPrompt.BIOMETRIC_ERROR_NO_BIOMETRICS,
            BiometricPrompt.BIOMETRIC_ERROR_HW_NOT_PRESENT,
            BiometricPrompt.BIOMETRIC_ERROR_VENDOR,
        )
        val error = biometricError(BiometricPrompt.BIOMETRIC_ERROR_NO_BIOMETRICS) as KeystoreException.Unavailable
        assertEquals("the biometric prompt failed with error 11", error.detail)
    }

    @Test
    fun promptShowsTheRequestTextAroundTheSignature() = runTest {
        val unlocking = async { gate.unlock(signature, "Log in to Tax-on-web?") }

        val prompt = shown.await()

        assertSame(signature, prompt.crypto.signature)
        assertEquals("Log in to Tax-on-web?", prompt.description)
        unlocking.cancel()
    }

    @Test
    fun successReturnsTheSignatureThePlatformAuthorised() = runTest {
        val unlocking = async { gate.unlock(signature, null) }
        val prompt = shown.await()

        // On a phone it is the same object, now authorised; what counts is that the gate hands
        // on what the platform returned.
        val authorised = initialisedSignature()
        prompt.callback.onAuthenticationSucceeded(
            BiometricPrompt.AuthenticationResult(
                BiometricPrompt.CryptoObject(authorised),
                BiometricPrompt.AUTHENTICATION_RESULT_TYPE_BIOMETRIC,
            ),
        )

        assertSame(authorised, unlocking.await())
    }

    @Test
    fun unmatchedFingerKeepsThePromptWaiting() = runTest {
        val unlocking = async { gate.unlock(signature, null) }
        val prompt = shown.await()

        prompt.callback.onAuthenticationFailed()
        yield()

        assertTrue(unlocking.isActive)
        unlocking.cancel()
    }

    @Test
    fun promptErrorEndsTheWaitWithTheMappedException() = runTest {
        // runCatching: a failed child would otherwise fail the test's own scope.
        val unlocking = async { runCatching { gate.unlock(signature, null) } }
        val prompt = shown.await()

        prompt.callback.onAuthenticationError(BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT, "Too many attempts")

        val failure = unlocking.await().exceptionOrNull()
        assertTrue("got $failure", failure is KeystoreException.BiometricLockedOut)
    }

    @Test
    fun dismissButtonIsUserCancelled() = runTest {
        val unlocking = async { runCatching { gate.unlock(signature, null) } }
        val prompt = shown.await()

        prompt.onCancel()

        val failure = unlocking.await().exceptionOrNull()
        assertTrue("got $failure", failure is KeystoreException.UserCancelled)
    }

    @Test
    fun cancellingTheWaitCancelsThePrompt() = runTest {
        val unlocking = async { gate.unlock(signature, null) }
        val prompt = shown.await()
        assertFalse(prompt.signal.isCanceled)

        unlocking.cancel()
        unlocking.join()

        assertTrue(prompt.signal.isCanceled)
    }
}
