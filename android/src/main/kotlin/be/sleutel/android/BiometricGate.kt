package be.sleutel.android

import android.content.Context
import android.hardware.biometrics.BiometricManager
import android.hardware.biometrics.BiometricPrompt
import android.os.Build
import android.os.CancellationSignal
import be.sleutel.core.KeystoreException
import java.security.Signature
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.suspendCancellableCoroutine

/**
 * Unlocks one signature with a biometric key: asks the person, and returns the signature
 * object the platform authorised for exactly that operation. [AndroidKeystore] calls it for
 * every signature with a [be.sleutel.core.KeyProtection.BIOMETRIC] key.
 */
fun interface BiometricUnlock {
    /**
     * Asks the person to confirm [prompt] (the request's text, when the core gave one) with a
     * strong biometric, and returns the [signature] (initialised for signing and not yet used)
     * once the platform authorised it.
     *
     * @throws KeystoreException.UserCancelled when the person dismissed the prompt.
     * @throws KeystoreException.BiometricLockedOut after too many failed attempts.
     * @throws KeystoreException.Unavailable when no prompt could be shown.
     */
    suspend fun unlock(signature: Signature, prompt: String?): Signature
}

/**
 * The platform's biometric prompt (`android.hardware.biometrics.BiometricPrompt`, API 28+) as a
 * [BiometricUnlock]: the signature goes into the prompt as a `CryptoObject`, so the keystore
 * lets the key sign once, for this operation only. Strong (class 3) biometrics only: the keys
 * demand them.
 *
 * Cancelling the coroutine that waits in [unlock] cancels the prompt. The prompt appears over
 * the app's current activity, so the app must be in the foreground.
 *
 * @param context Any context of the app; the prompt's callbacks run on its main thread.
 * @param title The prompt's title, such as the app's name.
 * @param cancelText The label of the prompt's button that dismisses it (the person then
 *   approves with the code, say).
 */
class BiometricGate internal constructor(private val show: ShowPrompt) : BiometricUnlock {

    /** A gate that shows the platform prompt with [title] and a [cancelText] button. */
    constructor(context: Context, title: CharSequence, cancelText: CharSequence) :
        this(platformPrompt(context, title, cancelText))

    /**
     * Shows a prompt for [CryptoObject][BiometricPrompt.CryptoObject] `crypto` with `description`,
     * reports to `callback` (and `onCancel` for the dismiss button) and stops when `signal` is
     * cancelled. A seam: the tests play the prompt's part.
     */
    internal fun interface ShowPrompt {
        fun show(
            crypto: BiometricPrompt.CryptoObject,
            description: String?,
            signal: CancellationSignal,
            callback: BiometricPrompt.AuthenticationCallback,
            onCancel: () -> Unit,
        )
    }

    /** Shows the prompt and waits for the person's answer; see [BiometricUnlock.unlock]. */
    override suspend fun unlock(signature: Signature, prompt: String?): Signature =
        suspendCancellableCoroutine { continuation ->
            val signal = CancellationSignal()
            continuation.invokeOnCancellation { signal.cancel() }
            val callback = object : BiometricPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                    if (!continuation.isActive) return
                    val unlocked = result.cryptoObject?.signature
                    if (unlocked == null) {
                        continuation.resumeWithException(
                            KeystoreException.Unavailable("the biometric prompt returned no signature"),
                        )
                    } else {
                        continuation.resume(unlocked)
                    }
                }

                override fun onAuthenticationError(errorCode: Int, errString: CharSequence?) {
                    // After a cancellation the platform reports BIOMETRIC_ERROR_CANCELED; the
                    // coroutine has already ended with its CancellationException.
                    if (continuation.isActive) continuation.resumeWithException(biometricError(errorCode))
                }

                // onAuthenticationFailed (a finger that did not match) is not an answer: the
                // prompt stays up and the person tries again, until the platform locks out.
            }
            val onCancel = {
                if (continuation.isActive) continuation.resumeWithException(KeystoreException.UserCancelled())
            }
            show.show(BiometricPrompt.CryptoObject(signature), prompt, signal, callback, onCancel)
        }

    /** The platform prompt. */
    private companion object {
        fun platformPrompt(context: Context, title: CharSequence, cancelText: CharSequence) =
            ShowPrompt { crypto, description, signal, callback, onCancel ->
                val executor = context.mainExecutor
                val builder = BiometricPrompt.Builder(context)
                    .setTitle(title)
                    // The platform calls this listener, not the callback, for its own button.
                    .setNegativeButton(cancelText, executor) { _, _ -> onCancel() }
                if (description != null) builder.setDescription(description)
                if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                    builder.setAllowedAuthenticators(BiometricManager.Authenticators.BIOMETRIC_STRONG)
                }
                val prompt = builder.build()
                // Shown from the main thread: the keystore calls from a background thread.
                executor.execute { prompt.authenticate(crypto, signal, executor, callback) }
            }
    }
}

/**
 * The [KeystoreException] for an error code of the biometric prompt
 * (`BiometricPrompt.BIOMETRIC_ERROR_*`): the person's own "no" (their cancel, the dismiss
 * button, or a cancellation by the system, as when the screen turns off) is
 * [KeystoreException.UserCancelled]; too many failed attempts, for a while or until the device
 * credential is entered, is [KeystoreException.BiometricLockedOut]; everything else (no sensor,
 * no enrolled biometric, a time-out, a hardware or vendor error) is
 * [KeystoreException.Unavailable] naming the code, and only the code: the platform's message is
 * for the screen, not for logs.
 */
internal fun biometricError(errorCode: Int): KeystoreException = when (errorCode) {
    BiometricPrompt.BIOMETRIC_ERROR_USER_CANCELED,
    BiometricPrompt.BIOMETRIC_ERROR_NEGATIVE_BUTTON,
    BiometricPrompt.BIOMETRIC_ERROR_CANCELED,
    -> KeystoreException.UserCancelled()

    BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT,
    BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT,
    -> KeystoreException.BiometricLockedOut()

    else -> KeystoreException.Unavailable("the biometric prompt failed with error $errorCode")
}
