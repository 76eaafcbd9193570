package be.sleutel.android

import android.os.Build
import be.sleutel.core.Approval
import be.sleutel.core.Authenticator
import be.sleutel.core.Verification
import be.sleutel.core.protocol.Bank
import be.sleutel.core.test.CODE
import be.sleutel.core.test.Json
import be.sleutel.core.test.SleutelServer
import be.sleutel.core.test.StartedLogin
import be.sleutel.core.test.TokenAnswer
import be.sleutel.core.test.deleteDataDir
import be.sleutel.core.test.freshDataDir
import be.sleutel.core.test.randomMobileNumber
import be.sleutel.core.test.serverUrl
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.security.Signature
import java.time.Duration
import java.util.Base64
import java.util.Collections
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment

/**
 * The module as an app uses it, against the real sleutel-server on loopback (started by
 * scripts/test-android): the generated bindings and libsleutel_ffi, with [AndroidKeystore] over
 * [StandInKeyStore] and its secret slots in Robolectric's no-backup directory. A bank enrollment,
 * then a login of the relying party that reaches the phone as a push through [SleutelPush], and
 * the approval the relying party receives as an ID token.
 *
 * JNA under Robolectric needs no special care, and this is why. Robolectric loads the app's
 * classes, the generated bindings among them, in its sandbox class loader, but never acquires
 * `com.sun.*` (its InstrumentationConfiguration leaves that package to the JVM's class loader).
 * So JNA's classes, and the libjnidispatch they load, exist once in the JVM, outside every
 * sandbox. The generated code binds its native methods to its own classes
 * (`Native.register`), which JNA does for a class of any class loader, and libsleutel_ffi is
 * opened with dlopen, from `jna.library.path` (android/pom.xml), not by the JVM's loader.
 */
@RunWith(RobolectricTestRunner::class)
class EnrollmentAndLoginTest {
    private val phoneNumber = randomMobileNumber()
    private val dataDir = freshDataDir()
    private val store = StandInKeyStore()
    private val prompts: MutableList<String?> = Collections.synchronizedList(mutableListOf())

    /** The person at the biometric prompt: confirms every time, and remembers what was shown. */
    private val person = BiometricUnlock { signature: Signature, prompt: String? ->
        prompts += prompt
        signature
    }

    private val keystore = AndroidKeystore(
        store.provider,
        AndroidKeystore.secretsDir(RuntimeEnvironment.getApplication()),
        person,
        Build.VERSION_CODES.VANILLA_ICE_CREAM,
    )
    private val sleutel = Authenticator.open(dataDir, serverUrl, keystore)

    /**
     * The push glue over the authenticator, as an app wires it. The server has no FCM
     * credentials here, so a registered token changes nothing in delivery: every push still
     * reaches the simulator's outbox, from where [awaitPush] hands it over as FCM would.
     */
    private val push = SleutelPush(AuthenticatorPushCore(sleutel))

    @After
    fun closeThePhone() {
        sleutel.close()
        deleteDataDir(dataDir)
    }

    /** The bank enrollment of a new citizen, as the app drives it; returns the account id. */
    private suspend fun enroll(): String {
        val citizen = SleutelServer.createCitizen()
        val handoff = sleutel.startBankEnrollment(phoneNumber, Bank.KBC)
        val deepLink = SleutelServer.authorizeAtBank(handoff.handoffUrl, citizen)
        sleutel.completeBankHandoff(deepLink)
        sleutel.verifySmsCode(SleutelServer.smsCode(phoneNumber))
        return sleutel.chooseCode(CODE, CODE).accountId
    }

    /** The data of the push the server sent for [accountId], as FCM would deliver it. */
    private suspend fun awaitPush(accountId: String, timeout: Duration = Duration.ofSeconds(10)): Map<String, String> {
        val http = HttpClient.newHttpClient()
        val url = "$serverUrl/sim/outbox/push?account_id=${URLEncoder.encode(accountId, Charsets.UTF_8)}"
        val deadline = System.nanoTime() + timeout.toNanos()
        while (true) {
            val response = http.sendAsync(
                HttpRequest.newBuilder(URI.create(url)).GET().build(),
                HttpResponse.BodyHandlers.ofString(),
            ).await()
            val messages = Json.parseObject(response.body())["messages"] as List<*>
            val message = (messages.lastOrNull() as? Map<*, *>)?.get("message") as? Map<*, *>
            if (message != null) return message.entries.associate { (k, v) -> k as String to v as String }
            check(System.nanoTime() < deadline) { "no push reached account $accountId" }
            delay(100)
        }
    }

    /**
     * The relying party starts a login of [phoneNumber] that accepts a biometric answer. The
     * shared [SleutelServer.startLogin] asks for the code only (no `acr_values`).
     */
    private suspend fun startLoginAllowingBiometrics(): StartedLogin {
        val form = mapOf(
            "scope" to "openid",
            "login_hint" to phoneNumber,
            "acr_values" to "urn:sleutel:acr:code-or-biometric",
        ).entries.joinToString("&") { (k, v) -> "$k=${URLEncoder.encode(v, Charsets.UTF_8)}" }
        val clientAuth = Base64.getEncoder().encodeToString("online-overheid:demo-secret".toByteArray())
        val response = HttpClient.newHttpClient().sendAsync(
            HttpRequest.newBuilder(URI.create("$serverUrl/oidc/bc-authorize"))
                .header("Authorization", "Basic $clientAuth")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString(form))
                .build(),
            HttpResponse.BodyHandlers.ofString(),
        ).await()
        check(response.statusCode() == 200) { "bc-authorize: HTTP ${response.statusCode()}: ${response.body()}" }
        val body = Json.parseObject(response.body())
        return StartedLogin(body["auth_req_id"] as String, (body["interval"] as Number).toLong())
    }

    @Test
    fun bankEnrollmentThenLoginApprovedWithTheCodeFromAPushGivesTheRelyingPartyAnIdToken() =
        runTest(timeout = 60.seconds) {
            withContext(Dispatchers.IO) {
                val accountId = enroll()
                assertTrue(
                    "the device key is one of the keystore's",
                    store.entries.keys.any { it.startsWith("sleutel-device-") },
                )
                // The token FCM hands a new install, registered with the server over the
                // device's proof-bound API (a refusal would throw).
                push.onNewToken("fcm-install-1:APA91bH${accountId.filter { it.isLetterOrDigit() }}")

                val login = SleutelServer.startLogin(phoneNumber, bindingMessage = "Android 42")
                val request = push.onMessageReceived(awaitPush(accountId))
                assertEquals("Android 42", request.bindingMessage)
                sleutel.approve(request.requestId, Approval(Verification.Code(CODE)))

                val answer = SleutelServer.awaitAnswer(login)
                val token = answer as? TokenAnswer.Token ?: throw AssertionError("expected an ID token, got $answer")
                val claims = SleutelServer.idTokenClaims(token.idToken)
                assertEquals("online-overheid", claims["aud"])
                // The stand-in keeps keys in a TEE, as most phones do: the relying party learns
                // that the device key is in hardware.
                assertEquals(listOf("hwk", "pin", "mfa"), claims["amr"])
                assertTrue(sleutel.pending().isEmpty())
            }
        }

    @Test
    fun loginApprovedWithTheBiometricKeySignsThroughThePromptOffTheMainThread() =
        runTest(timeout = 60.seconds) {
            withContext(Dispatchers.IO) {
                val accountId = enroll()
                sleutel.enableBiometrics(accountId, CODE)
                prompts.clear()

                val login = startLoginAllowingBiometrics()
                val request = push.onMessageReceived(awaitPush(accountId))
                sleutel.approve(request.requestId, Approval(Verification.Biometric))

                assertTrue(SleutelServer.awaitAnswer(login) is TokenAnswer.Token)
                assertEquals("one prompt, for the approval", 1, prompts.size)
            }
        }
}
