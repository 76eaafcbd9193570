package be.sleutel.android

import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.UserNotAuthenticatedException
import be.sleutel.core.KeystoreException

/**
 * How deep [keystoreErrorFor] looks into an exception's causes: providers wrap the platform's
 * exception once or twice (a `ProviderException` around a `KeyStoreException`, say), and a chain
 * longer than this is not one we would recognise anyway.
 */
private const val MAX_CAUSES_INSPECTED = 4

/**
 * The [KeystoreException] the core receives when [failure] stopped [operation] (a phrase such as
 * `"signing"`). Only exception classes are named, never their messages: a platform message may
 * name an alias or describe a key, and the detail of a keystore error ends up in logs.
 *
 * - `KeyPermanentlyInvalidatedException`: [KeystoreException.KeyInvalidated]. The biometrics
 *   enrolled on the phone changed (or the screen lock was removed), so the key can never be used
 *   again; the core turns biometrics off for the account and the person approves with the code.
 * - `UserNotAuthenticatedException`: [KeystoreException.UserCancelled]. The platform says the
 *   person has not authenticated: the phone is locked (the device key needs an unlocked device)
 *   or no prompt vouched for this use of the biometric key. Nothing is wrong with the key, so
 *   [KeystoreException.KeyInvalidated] would wrongly turn biometrics off, and
 *   [KeystoreException.Unavailable] would read as a broken keystore. Like a dismissed prompt it
 *   changes nothing (a request stays pending), and the same call succeeds once the person has
 *   unlocked the phone or confirmed.
 * - A [KeystoreException] is passed on unchanged (the biometric prompt's answers, a missing key).
 * - Anything else: [KeystoreException.Unavailable], naming [operation] and the exception's class.
 */
internal fun keystoreErrorFor(operation: String, failure: Exception): KeystoreException {
    if (failure is KeystoreException) return failure
    for (cause in generateSequence<Throwable>(failure) { it.cause }.take(MAX_CAUSES_INSPECTED)) {
        when (cause) {
            is KeyPermanentlyInvalidatedException -> return KeystoreException.KeyInvalidated()
            is UserNotAuthenticatedException -> return KeystoreException.UserCancelled()
        }
    }
    return KeystoreException.Unavailable("$operation failed: ${failure.javaClass.name}")
}

/**
 * Runs [block] for [operation], turning every failure into the [KeystoreException] the core
 * expects ([keystoreErrorFor]): the core is called back synchronously and can only tell these
 * apart (anything else reaches it as an unexplained `Unavailable`).
 */
internal inline fun <T> guarded(operation: String, block: () -> T): T {
    try {
        return block()
    } catch (e: Exception) {
        throw keystoreErrorFor(operation, e)
    }
}
