package be.sleutel.core.test

import be.sleutel.core.Authenticator
import be.sleutel.core.CoreException
import be.sleutel.core.protocol.Bank
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** Arguments the core refuses reach the app as typed errors. */
class InputValidationTest {
    private val dataDir = freshDataDir()

    @After
    fun deleteDir() = deleteDataDir(dataDir)

    @Test
    fun plainHttpServerUrlOffLoopbackRaisesInvalidInput() {
        try {
            Authenticator.open(dataDir, "http://sleutel.example.be", PhoneStorage().keystore()).close()
            fail("a plain http server URL was accepted")
        } catch (e: CoreException.InvalidInput) {
            assertTrue(e.field.isNotEmpty())
            assertTrue(e.reason.contains("https"))
        }
    }

    @Test
    fun landlineNumberRaisesInvalidPhoneNumber() = runBlocking {
        Authenticator.open(dataDir, serverUrl, PhoneStorage().keystore()).use { auth ->
            try {
                auth.startBankEnrollment("+3221234567", Bank.KBC)
                fail("a landline number was accepted")
            } catch (e: CoreException.InvalidPhoneNumber) {
                // expected
            }
            assertNull(auth.enrollmentInProgress())
            assertEquals(emptyList<Any>(), auth.accounts())
        }
    }

    @Test
    fun aQrCodeOfAnotherSiteRaisesNotASignInLink() = runBlocking {
        Authenticator.open(dataDir, serverUrl, PhoneStorage().keystore()).use { auth ->
            try {
                auth.openSignInLink(
                    "no-account",
                    "https://evil.example/app/sign-in?kind=app&id=AAAAAAAAAAAAAAAAAAAAAA" +
                        "&mac=BBBBBBBBBBBBBBBBBBBBBB",
                )
                fail("a link of another site was accepted")
            } catch (e: CoreException.NotASignInLink) {
                assertTrue(e.reason.isNotEmpty())
            }
        }
    }

    @Test
    fun weakCodeRaisesWeakCode() = runBlocking {
        Authenticator.open(dataDir, serverUrl, PhoneStorage().keystore()).use { auth ->
            val phoneNumber = randomMobileNumber()
            val citizen = SleutelServer.createCitizen()
            val handoff = auth.startBankEnrollment(phoneNumber, Bank.KBC)
            auth.completeBankHandoff(SleutelServer.authorizeAtBank(handoff.handoffUrl, citizen))
            auth.verifySmsCode(SleutelServer.smsCode(phoneNumber))
            try {
                auth.chooseCode("12345", "12345")
                fail("a straight run was accepted as a code")
            } catch (e: CoreException.WeakCode) {
                // expected
            }
            assertEquals(emptyList<Any>(), auth.accounts())
        }
    }
}
