// INTEGRATOR: this file is finished but compiled by no build yet, because it calls
// `Authenticator.registerPushToken(accountId, PushPlatform.FCM, token)`, which the push-token
// branch adds to the core. Once that method is in the generated bindings, move this file to
// android/src/main/kotlin/be/sleutel/android/ (`git mv`): both the Gradle build and the Maven
// verification build (android/pom.xml) then compile it with the rest of the module. Check that
// the method's name, parameter order and `PushPlatform.FCM` match what was merged.
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
