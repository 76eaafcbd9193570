package be.sleutel.android

import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.UserNotAuthenticatedException
import be.sleutel.core.KeystoreException
import java.security.ProviderException
import java.security.SignatureException
import org.junit.Assert.assertEquals
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner

/** How platform failures reach the core: [keystoreErrorFor]. */
@RunWith(RobolectricTestRunner::class)
class KeystoreErrorsTest {

    @Test
    fun permanentlyInvalidatedKeyIsKeyInvalidated() {
        val error = keystoreErrorFor("signing", KeyPermanentlyInvalidatedException("fingerprint added"))

        assertTrue("got $error", error is KeystoreException.KeyInvalidated)
    }

    @Test
    fun invalidationWrappedByTheProviderIsStillKeyInvalidated() {
        val wrapped = ProviderException("keystore failed", KeyPermanentlyInvalidatedException())

        assertTrue(keystoreErrorFor("signing", wrapped) is KeystoreException.KeyInvalidated)
    }

    @Test
    fun userNotAuthenticatedIsUserCancelled() {
        val error = keystoreErrorFor("signing", UserNotAuthenticatedException("device locked"))

        assertTrue("got $error", error is KeystoreException.UserCancelled)
    }

    @Test
    fun keystoreExceptionIsPassedOnUnchanged() {
        val locked = KeystoreException.BiometricLockedOut()

        assertSame(locked, keystoreErrorFor("signing", locked))
    }

    @Test
    fun otherFailureIsUnavailableNamingTheOperationAndClassButNotTheMessage() {
        val error = keystoreErrorFor("storing a secret", SignatureException("alias sleutel-device-1"))

        assertEquals(
            "storing a secret failed: java.security.SignatureException",
            (error as KeystoreException.Unavailable).detail,
        )
    }
}
