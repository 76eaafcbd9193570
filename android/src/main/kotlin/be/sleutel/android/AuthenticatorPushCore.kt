package be.sleutel.android

import be.sleutel.core.AccountStatus
import be.sleutel.core.ActionView
import be.sleutel.core.Authenticator
import be.sleutel.core.protocol.PushPlatform

/**
 * The [PushCore] of an app: the [authenticator] it opened, with FCM as the push platform.
 *
 * ```kotlin
 * val push = SleutelPush(AuthenticatorPushCore(sleutel))
 * ```
 */
class AuthenticatorPushCore(private val authenticator: Authenticator) : PushCore {

    /**
     * The accounts that can still receive a push: every account on this phone but those whose
     * device was revoked, which the server will never reach again.
     */
    override fun accountIds(): List<String> =
        authenticator.accounts().filter { it.status != AccountStatus.REVOKED }.map { it.accountId }

    /** The core's `handlePush`. */
    override suspend fun handlePush(payload: String): ActionView = authenticator.handlePush(payload)

    /** Registers the FCM [token] for [accountId] with the server. */
    override suspend fun registerPushToken(accountId: String, token: String) {
        authenticator.registerPushToken(accountId, PushPlatform.FCM, token)
    }
}
