package be.sleutel.core.test

import be.sleutel.core.Account
import be.sleutel.core.ActionView
import be.sleutel.core.Authenticator
import be.sleutel.core.InMemoryKeyPairStore
import be.sleutel.core.InMemorySecretStore
import be.sleutel.core.JcaKeystore
import be.sleutel.core.UserPresenceGate
import be.sleutel.core.protocol.Bank
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.Files
import java.nio.file.Path
import java.security.KeyPairGenerator
import java.security.SecureRandom
import java.time.Duration
import java.util.Base64
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull

/** The server the tests run against: `SLEUTEL_SERVER_URL`, set by scripts/test-bindings. */
val serverUrl: String by lazy {
    System.getenv("SLEUTEL_SERVER_URL")?.trimEnd('/')
        ?: error("SLEUTEL_SERVER_URL is not set: run the tests through scripts/test-bindings")
}

/** A 5-digit code that is not trivial, chosen by the citizens of these tests. */
const val CODE = "27183"

private val random = SecureRandom()

/** A random Belgian mobile number (`+3247x xxxxxx`), so that tests do not meet on the server. */
fun randomMobileNumber(): String = "+3247" + (1..7).joinToString("") { random.nextInt(10).toString() }

/** A fresh, empty data directory for one authenticator. */
fun freshDataDir(): String = Files.createTempDirectory("sleutel-kotlin-test").toString()

/** Deletes a data directory made by [freshDataDir]. */
fun deleteDataDir(dir: String) {
    Path.of(dir).toFile().deleteRecursively()
}

/**
 * The storage a phone's [JcaKeystore] keeps its keys and secrets in, held by the test so that a
 * reopened authenticator finds them again.
 */
class PhoneStorage {
    /** The key pairs. */
    val keys = InMemoryKeyPairStore()

    /** The secret slots. */
    val secrets = InMemorySecretStore()

    /** A keystore over this storage with the JVM's default EC provider and [gate]. */
    fun keystore(gate: UserPresenceGate = UserPresenceGate.NONE): JcaKeystore {
        val provider = KeyPairGenerator.getInstance("EC").provider
        return JcaKeystore(
            keys = keys,
            secrets = secrets,
            keyPairGeneratorProvider = provider,
            signatureProvider = provider,
            userPresence = gate,
        )
    }
}

/** A simulated citizen, with the debit card the bank identifies them by. */
data class Citizen(
    val givenName: String,
    val familyName: String,
    val cardNumber: String,
    val cardPin: String,
)

/** What the relying party got from the token endpoint. */
sealed class TokenAnswer {
    /** The person approved: the ID token. */
    data class Token(val idToken: String) : TokenAnswer()

    /** The login ended with an OAuth error such as `access_denied`. */
    data class Error(val error: String) : TokenAnswer()
}

/**
 * A started CIBA login; [matchNumber] is the number the relying party shows under number
 * matching.
 */
data class StartedLogin(val authReqId: String, val intervalSecs: Long, val matchNumber: Int? = null)

/** The server's simulators (citizens, bank pages, SMS outbox) and a relying party. */
object SleutelServer {
    private val http: HttpClient = HttpClient.newBuilder()
        .followRedirects(HttpClient.Redirect.NEVER)
        .connectTimeout(Duration.ofSeconds(10))
        .build()

    /** The demo relying party "Online overheid". */
    private const val CLIENT_ID = "online-overheid"
    private const val CLIENT_SECRET = "demo-secret"

    private suspend fun send(request: HttpRequest): HttpResponse<String> =
        http.sendAsync(request, HttpResponse.BodyHandlers.ofString()).await()

    private fun request(url: String) = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(20))

    private fun form(vararg fields: Pair<String, String>): HttpRequest.BodyPublisher =
        HttpRequest.BodyPublishers.ofString(
            fields.joinToString("&") { (k, v) -> "${encode(k)}=${encode(v)}" },
        )

    private fun encode(value: String): String = URLEncoder.encode(value, UTF_8)

    private fun expectOk(response: HttpResponse<String>, what: String): Map<String, Any?> {
        check(response.statusCode() in 200..299) { "$what: HTTP ${response.statusCode()}: ${response.body().take(300)}" }
        return Json.parseObject(response.body())
    }

    /** Creates a citizen with a debit card at KBC. */
    suspend fun createCitizen(): Citizen {
        val response = send(
            request("$serverUrl/sim/citizens")
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("""{"bank":"kbc"}"""))
                .build(),
        )
        val body = expectOk(response, "creating a citizen")
        val card = body.obj("debit_card")
        return Citizen(body.str("given_name"), body.str("family_name"), card.str("number"), card.str("pin"))
    }

    /**
     * Plays the person at the bank: opens the handoff page, submits the card number and PIN, and
     * returns the deep link the bank sends them back to the app with.
     */
    suspend fun authorizeAtBank(handoffUrl: String, citizen: Citizen): String {
        val page = send(request(handoffUrl).GET().build())
        check(page.statusCode() == 200) { "bank page: HTTP ${page.statusCode()}" }
        val uri = URI.create(handoffUrl)
        val query = uri.rawQuery.split('&').associate {
            val (k, v) = it.split('=', limit = 2)
            java.net.URLDecoder.decode(k, UTF_8) to java.net.URLDecoder.decode(v, UTF_8)
        }
        val postUrl = handoffUrl.substringBefore('?')
        val response = send(
            request(postUrl)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(
                    form(
                        "enrollment_id" to query.getValue("enrollment_id"),
                        "nonce" to query.getValue("nonce"),
                        "redirect_uri" to query.getValue("redirect_uri"),
                        "card_number" to citizen.cardNumber,
                        "card_pin" to citizen.cardPin,
                    ),
                )
                .build(),
        )
        check(response.statusCode() == 303) { "bank form: HTTP ${response.statusCode()}: ${response.body().take(300)}" }
        return response.headers().firstValue("Location").orElseThrow()
    }

    /** Waits for an SMS to [phoneNumber] and returns the 6-digit control code in the newest. */
    suspend fun smsCode(phoneNumber: String, timeout: Duration = Duration.ofSeconds(10)): String {
        val deadline = System.nanoTime() + timeout.toNanos()
        while (true) {
            val body = expectOk(
                send(request("$serverUrl/sim/outbox/sms?phone_number=${encode(phoneNumber)}").GET().build()),
                "SMS outbox",
            )
            val text = (body["messages"] as List<*>).lastOrNull()?.let { (it as Map<*, *>)["text"] as String }
            val code = text?.let { Regex("""(?<!\d)\d{6}(?!\d)""").find(it)?.value }
            if (code != null) return code
            check(System.nanoTime() < deadline) { "no SMS reached $phoneNumber" }
            delay(100)
        }
    }

    private fun basicAuth(): String =
        "Basic " + Base64.getEncoder().encodeToString("${encode(CLIENT_ID)}:${encode(CLIENT_SECRET)}".toByteArray(UTF_8))

    /**
     * The relying party starts a CIBA login of [phoneNumber] asking for the name (optional
     * claims, from the `profile` scope), with number matching if [numberMatching].
     */
    suspend fun startLogin(
        phoneNumber: String,
        bindingMessage: String? = null,
        numberMatching: Boolean = false,
    ): StartedLogin {
        val fields = mutableListOf("scope" to "openid profile", "login_hint" to phoneNumber)
        if (bindingMessage != null) fields += "binding_message" to bindingMessage
        if (numberMatching) fields += "number_matching" to "true"
        val response = send(
            request("$serverUrl/oidc/bc-authorize")
                .header("Authorization", basicAuth())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(form(*fields.toTypedArray()))
                .build(),
        )
        val body = expectOk(response, "bc-authorize")
        return StartedLogin(
            body.str("auth_req_id"),
            (body["interval"] as Number).toLong(),
            (body["match_number"] as? Number)?.toInt(),
        )
    }

    /** Polls the token endpoint once; `null` while the person has not answered. */
    suspend fun pollToken(login: StartedLogin): TokenAnswer? {
        val response = send(
            request("$serverUrl/oidc/token")
                .header("Authorization", basicAuth())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(form("grant_type" to "urn:openid:params:grant-type:ciba", "auth_req_id" to login.authReqId))
                .build(),
        )
        val body = Json.parseObject(response.body())
        if (response.statusCode() == 200) return TokenAnswer.Token(body.str("id_token"))
        return when (val error = body.str("error")) {
            "authorization_pending", "slow_down" -> null
            else -> TokenAnswer.Error(error)
        }
    }

    /** Polls at the login's interval until the person answered. */
    suspend fun awaitAnswer(login: StartedLogin, timeout: Duration = Duration.ofSeconds(20)): TokenAnswer {
        val deadline = System.nanoTime() + timeout.toNanos()
        val intervalMillis = login.intervalSecs.coerceIn(1, 5) * 1000
        while (true) {
            pollToken(login)?.let { return it }
            check(System.nanoTime() < deadline) { "the relying party got no answer" }
            delay(intervalMillis)
        }
    }

    /** The claims of an ID token's payload (not verified: the Rust tests verify signatures). */
    fun idTokenClaims(idToken: String): Map<String, Any?> {
        val parts = idToken.split('.')
        check(parts.size == 3) { "an ID token has three parts" }
        return Json.parseObject(String(Base64.getUrlDecoder().decode(parts[1]), UTF_8))
    }
}

/** A phone with the app: an authenticator over [storage], enrolled by [enroll]. */
class Phone(val dataDir: String, val storage: PhoneStorage, val authenticator: Authenticator)

/** Opens an authenticator in [dataDir] with a [JcaKeystore] over [storage]. */
fun openPhone(
    dataDir: String,
    storage: PhoneStorage,
    gate: UserPresenceGate = UserPresenceGate.NONE,
): Phone = Phone(dataDir, storage, Authenticator.open(dataDir, serverUrl, storage.keystore(gate)))

/** The whole bank enrollment of a new citizen on [phone] for [phoneNumber], with [CODE]. */
suspend fun enroll(phone: Phone, phoneNumber: String): Pair<Citizen, Account> {
    val citizen = SleutelServer.createCitizen()
    val auth = phone.authenticator
    val handoff = auth.startBankEnrollment(phoneNumber, Bank.KBC)
    val deepLink = SleutelServer.authorizeAtBank(handoff.handoffUrl, citizen)
    auth.completeBankHandoff(deepLink)
    auth.verifySmsCode(SleutelServer.smsCode(phoneNumber))
    val account = auth.chooseCode(CODE, CODE)
    return citizen to account
}

/**
 * Nothing was answered: [request] is still the one pending on [auth], and the relying party of
 * [login] is still waiting.
 */
suspend fun assertStillPending(auth: Authenticator, login: StartedLogin, request: ActionView) {
    assertEquals(listOf(request.requestId), auth.pending().map { it.requestId })
    assertNull("the relying party is still waiting", SleutelServer.pollToken(login))
}

/** Refreshes until the request of a login started by the relying party reaches the phone. */
suspend fun awaitPendingRequest(auth: Authenticator, timeout: Duration = Duration.ofSeconds(10)): ActionView {
    val deadline = System.nanoTime() + timeout.toNanos()
    while (true) {
        auth.refreshPending().firstOrNull()?.let { return it }
        check(System.nanoTime() < deadline) { "no request reached the phone" }
        delay(250)
    }
}

/** Typed accessors for the few JSON fields the tests read. */
private fun Map<String, Any?>.str(key: String): String =
    this[key] as? String ?: error("no string $key in the answer")

@Suppress("UNCHECKED_CAST")
private fun Map<String, Any?>.obj(key: String): Map<String, Any?> =
    this[key] as? Map<String, Any?> ?: error("no object $key in the answer")

/**
 * A small JSON reader for the server's answers: objects become maps, arrays lists, numbers
 * `Long` or `Double`.
 */
object Json {
    /** Parses [text], which must hold one JSON object. */
    @Suppress("UNCHECKED_CAST")
    fun parseObject(text: String): Map<String, Any?> =
        Parser(text).parseDocument() as? Map<String, Any?> ?: error("not a JSON object: ${text.take(100)}")

    private class Parser(private val s: String) {
        private var i = 0

        fun parseDocument(): Any? {
            val value = value()
            skipSpace()
            check(i == s.length) { "trailing characters in JSON at $i" }
            return value
        }

        private fun skipSpace() {
            while (i < s.length && s[i].isWhitespace()) i++
        }

        private fun expect(c: Char) {
            skipSpace()
            check(i < s.length && s[i] == c) { "expected '$c' in JSON at $i" }
            i++
        }

        private fun value(): Any? {
            skipSpace()
            check(i < s.length) { "unexpected end of JSON" }
            return when (s[i]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> number()
            }
        }

        private fun literal(word: String, value: Any?): Any? {
            check(s.startsWith(word, i)) { "bad literal in JSON at $i" }
            i += word.length
            return value
        }

        private fun obj(): Map<String, Any?> {
            expect('{')
            val map = LinkedHashMap<String, Any?>()
            skipSpace()
            if (s[i] == '}') { i++; return map }
            while (true) {
                skipSpace()
                val key = string()
                expect(':')
                map[key] = value()
                skipSpace()
                if (s[i] == ',') { i++; continue }
                expect('}')
                return map
            }
        }

        private fun array(): List<Any?> {
            expect('[')
            val list = ArrayList<Any?>()
            skipSpace()
            if (s[i] == ']') { i++; return list }
            while (true) {
                list += value()
                skipSpace()
                if (s[i] == ',') { i++; continue }
                expect(']')
                return list
            }
        }

        private fun string(): String {
            expect('"')
            val out = StringBuilder()
            while (true) {
                val c = s[i++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        when (val e = s[i++]) {
                            'n' -> out.append('\n')
                            't' -> out.append('\t')
                            'r' -> out.append('\r')
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000C')
                            'u' -> { out.append(s.substring(i, i + 4).toInt(16).toChar()); i += 4 }
                            else -> out.append(e)
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        private fun number(): Number {
            val start = i
            while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
            val text = s.substring(start, i)
            check(text.isNotEmpty()) { "bad JSON value at $start" }
            return text.toLongOrNull() ?: text.toDouble()
        }
    }
}
