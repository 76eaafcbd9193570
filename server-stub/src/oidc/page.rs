//! The sign-in pages of the authorization code flow: server-rendered HTML that needs no
//! JavaScript and loads nothing from elsewhere, in Dutch, French and English from one table
//! ([`Texts`]), with the headers that keep it from being framed, sniffed, cached or leaking its
//! address ([`html()`]).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use crate::html::{self, escape};

/// The Content-Security-Policy of every sign-in page: nothing but the server's own stylesheet,
/// images and live-status script (no inline script, no eval) and its status requests, forms
/// only to the server itself, never in a frame (clickjacking), no `<base>`.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Path of the pages' stylesheet, served by the server itself (no third-party resources).
pub(super) const PATH_STYLESHEET: &str = "/oidc/sign-in/style.css";

/// The stylesheet: readable type, a visible focus ring for keyboard use.
const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}\
h1{font-size:1.5rem}label{display:block;font-weight:600;margin-top:1rem}\
input{font-size:1.25rem;padding:.5rem;width:100%;box-sizing:border-box}\
button,a.button{display:inline-block;margin-top:1rem;font-size:1.1rem;padding:.6rem 1.2rem;\
background:#ff4612;color:#fff;border:0;border-radius:.3rem;text-decoration:none}\
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}\
.code{font-size:2.5rem;font-weight:700;letter-spacing:.3rem}.error{color:#a40000}\
img{display:block;max-width:100%;height:auto}";

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    /// Dutch, the default.
    Nl,
    /// French.
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The language's tag, as `ui_locales` and `lang` write it.
    pub(super) fn tag(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// The language of a tag (`nl`, `fr-BE`, `EN`), if it is one of ours.
    pub(super) fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim();
        [Lang::Nl, Lang::Fr, Lang::En]
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(primary))
    }

    /// The first of the space-separated `ui_locales` that is ours.
    pub(super) fn from_ui_locales(locales: &str) -> Option<Self> {
        locales.split(' ').find_map(Self::from_tag)
    }

    /// The language for a page: the stored `ui_locales` choice, then the browser's
    /// `Accept-Language` by weight, then Dutch.
    pub(super) fn choose(stored: Option<&str>, headers: &HeaderMap) -> Self {
        stored
            .and_then(Self::from_tag)
            .or_else(|| {
                let header = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
                let mut ranges: Vec<(f32, &str)> = header
                    .split(',')
                    .map(|range| {
                        let mut parts = range.split(';');
                        let tag = parts.next().unwrap_or_default().trim();
                        let weight = parts
                            .find_map(|p| p.trim().strip_prefix("q="))
                            .and_then(|q| q.parse::<f32>().ok())
                            .unwrap_or(1.0);
                        (weight, tag)
                    })
                    .filter(|(weight, _)| *weight > 0.0)
                    .collect();
                // A stable sort keeps the header's order among equal weights.
                ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
                ranges.into_iter().find_map(|(_, tag)| Self::from_tag(tag))
            })
            .unwrap_or(Lang::Nl)
    }

    /// The texts in this language.
    pub(super) fn texts(self) -> &'static Texts {
        match self {
            Lang::Nl => &NL,
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }
}

/// Every text of the sign-in pages, one table per language.
pub(super) struct Texts {
    pub(super) sign_in_title: &'static str,
    pub(super) sign_in_at: &'static str,
    pub(super) number_label: &'static str,
    pub(super) number_hint: &'static str,
    pub(super) send: &'static str,
    pub(super) invalid_number: &'static str,
    pub(super) wait_title: &'static str,
    pub(super) open_app: &'static str,
    pub(super) code_label: &'static str,
    pub(super) wait_refresh: &'static str,
    pub(super) check_now: &'static str,
    pub(super) declined_title: &'static str,
    pub(super) declined: &'static str,
    pub(super) expired_title: &'static str,
    pub(super) expired: &'static str,
    pub(super) blocked_title: &'static str,
    pub(super) blocked: &'static str,
    pub(super) back: &'static str,
    pub(super) error_title: &'static str,
    pub(super) bad_request: &'static str,
    pub(super) no_session: &'static str,
    pub(super) forbidden: &'static str,
    pub(super) too_many: &'static str,
    pub(super) internal: &'static str,
    pub(super) qr_offer: &'static str,
    pub(super) app_offer: &'static str,
    pub(super) number_offer: &'static str,
    pub(super) qr_title: &'static str,
    pub(super) qr_explain: &'static str,
    pub(super) qr_alt: &'static str,
    pub(super) link_title: &'static str,
    pub(super) link_text: &'static str,
    pub(super) scan_title: &'static str,
    pub(super) scan_text: &'static str,
    pub(super) app_wait: &'static str,
    pub(super) app_done_title: &'static str,
    pub(super) app_done: &'static str,
    pub(super) return_wait: &'static str,
}

const NL: Texts = Texts {
    sign_in_title: "Aanmelden met Sleutel",
    sign_in_at: "Aanmelden bij",
    number_label: "Uw gsm-nummer",
    number_hint: "Bijvoorbeeld 0470 12 34 56",
    send: "Versturen",
    invalid_number: "Dit is geen Belgisch gsm-nummer. Kijk het na en probeer opnieuw.",
    wait_title: "Open de app",
    open_app: "Open de Sleutel-app op uw gsm en bevestig met uw code of vingerafdruk.",
    code_label: "Controleer dat de app deze code toont:",
    wait_refresh: "Deze pagina ververst zichzelf.",
    check_now: "Nu nakijken",
    declined_title: "Geweigerd",
    declined: "U hebt de aanmelding op uw gsm geweigerd.",
    expired_title: "Verlopen",
    expired: "De tijd om te bevestigen is voorbij. Begin opnieuw bij de dienst.",
    blocked_title: "Geblokkeerd",
    blocked: "Uw digitale sleutel is geblokkeerd. Activeer hem opnieuw in de app.",
    back: "Terug naar de dienst",
    error_title: "Er ging iets mis",
    bad_request: "Deze aanmeldvraag is ongeldig. Begin opnieuw bij de dienst.",
    no_session: "Deze aanmelding is niet (meer) gekend. Begin opnieuw bij de dienst.",
    forbidden: "Dit formulier is niet geldig. Begin opnieuw bij de dienst.",
    too_many: "Te veel pogingen. Wacht even en probeer opnieuw.",
    internal: "Er ging iets mis bij ons. Probeer later opnieuw.",
    qr_offer: "Een QR-code gebruiken",
    app_offer: "De app op deze gsm openen",
    number_offer: "Toch met mijn gsm-nummer",
    qr_title: "Scan de QR-code",
    qr_explain: "Open de Sleutel-app op uw gsm en scan deze code. De code verandert om de paar \
                 seconden.",
    qr_alt: "QR-code om aan te melden met de Sleutel-app",
    link_title: "Open deze link op uw gsm",
    link_text: "Deze link opent de Sleutel-app. Open hem op de gsm waarop de app staat, of kies \
                op de aanmeldpagina voor de QR-code.",
    scan_title: "Scan deze code met de Sleutel-app",
    scan_text: "Deze link hoort bij een QR-code. Open de Sleutel-app en scan de code op het \
                scherm waar u zich aanmeldt; tikken op een QR-link opent de app niet.",
    app_wait: "Bevestig in de Sleutel-app. Daarna brengt de app u terug naar de dienst.",
    app_done_title: "Bevestigd in de app",
    app_done: "U hebt in de app bevestigd. De app bracht u terug naar de dienst; u mag deze \
               pagina sluiten.",
    return_wait: "Bevestig eerst in de Sleutel-app, en probeer dan opnieuw.",
};

const FR: Texts = Texts {
    sign_in_title: "Se connecter avec Sleutel",
    sign_in_at: "Se connecter à",
    number_label: "Votre numéro de GSM",
    number_hint: "Par exemple 0470 12 34 56",
    send: "Envoyer",
    invalid_number: "Ce n'est pas un numéro de GSM belge. Vérifiez-le et réessayez.",
    wait_title: "Ouvrez l'app",
    open_app: "Ouvrez l'app Sleutel sur votre GSM et confirmez avec votre code ou votre \
               empreinte digitale.",
    code_label: "Vérifiez que l'app affiche ce code :",
    wait_refresh: "Cette page se met à jour d'elle-même.",
    check_now: "Vérifier maintenant",
    declined_title: "Refusé",
    declined: "Vous avez refusé la connexion sur votre GSM.",
    expired_title: "Expiré",
    expired: "Le délai de confirmation est passé. Recommencez depuis le service.",
    blocked_title: "Bloqué",
    blocked: "Votre clé numérique est bloquée. Activez-la à nouveau dans l'app.",
    back: "Retour au service",
    error_title: "Une erreur est survenue",
    bad_request: "Cette demande de connexion n'est pas valable. Recommencez depuis le service.",
    no_session: "Cette connexion est inconnue ou terminée. Recommencez depuis le service.",
    forbidden: "Ce formulaire n'est pas valable. Recommencez depuis le service.",
    too_many: "Trop de tentatives. Attendez un peu et réessayez.",
    internal: "Une erreur est survenue chez nous. Réessayez plus tard.",
    qr_offer: "Utiliser un code QR",
    app_offer: "Ouvrir l'app sur ce GSM",
    number_offer: "Utiliser plutôt mon numéro de GSM",
    qr_title: "Scannez le code QR",
    qr_explain: "Ouvrez l'app Sleutel sur votre GSM et scannez ce code. Le code change toutes \
                 les quelques secondes.",
    qr_alt: "Code QR pour se connecter avec l'app Sleutel",
    link_title: "Ouvrez ce lien sur votre GSM",
    link_text: "Ce lien ouvre l'app Sleutel. Ouvrez-le sur le GSM où l'app est installée, ou \
                choisissez le code QR sur la page de connexion.",
    scan_title: "Scannez ce code avec l'app Sleutel",
    scan_text: "Ce lien appartient à un code QR. Ouvrez l'app Sleutel et scannez le code sur \
                l'écran où vous vous connectez ; toucher un lien QR n'ouvre pas l'app.",
    app_wait: "Confirmez dans l'app Sleutel. L'app vous ramène ensuite au service.",
    app_done_title: "Confirmé dans l'app",
    app_done: "Vous avez confirmé dans l'app. L'app vous a ramené au service ; vous pouvez \
               fermer cette page.",
    return_wait: "Confirmez d'abord dans l'app Sleutel, puis réessayez.",
};

const EN: Texts = Texts {
    sign_in_title: "Sign in with Sleutel",
    sign_in_at: "Signing in to",
    number_label: "Your mobile number",
    number_hint: "For example 0470 12 34 56",
    send: "Send",
    invalid_number: "This is not a Belgian mobile number. Check it and try again.",
    wait_title: "Open the app",
    open_app: "Open the Sleutel app on your phone and confirm with your code or fingerprint.",
    code_label: "Check that the app shows this code:",
    wait_refresh: "This page refreshes itself.",
    check_now: "Check now",
    declined_title: "Declined",
    declined: "You declined the sign-in on your phone.",
    expired_title: "Expired",
    expired: "The time to confirm has passed. Start again at the service.",
    blocked_title: "Blocked",
    blocked: "Your digital key is blocked. Activate it again in the app.",
    back: "Back to the service",
    error_title: "Something went wrong",
    bad_request: "This sign-in request is not valid. Start again at the service.",
    no_session: "This sign-in is unknown or over. Start again at the service.",
    forbidden: "This form is not valid. Start again at the service.",
    too_many: "Too many tries. Wait a moment and try again.",
    internal: "Something went wrong on our side. Try again later.",
    qr_offer: "Use a QR code instead",
    app_offer: "Open the app on this phone",
    number_offer: "Use my mobile number instead",
    qr_title: "Scan the QR code",
    qr_explain: "Open the Sleutel app on your phone and scan this code. The code changes every \
                 few seconds.",
    qr_alt: "QR code to sign in with the Sleutel app",
    link_title: "Open this link on your phone",
    link_text: "This link opens the Sleutel app. Open it on the phone that has the app, or \
                choose the QR code on the sign-in page.",
    scan_title: "Scan this code with the Sleutel app",
    scan_text: "This link belongs to a QR code. Open the Sleutel app and scan the code on the \
                screen where you are signing in; tapping a QR link does not open the app.",
    app_wait: "Confirm in the Sleutel app. The app then takes you back to the service.",
    app_done_title: "Confirmed in the app",
    app_done: "You confirmed in the app. The app took you back to the service; you may close \
               this page.",
    return_wait: "Confirm in the Sleutel app first, then try again.",
};

/// A whole page: `head_extra` is trusted markup (the refresh), `body` trusted markup built from
/// escaped parts.
pub(super) fn document(lang: Lang, title: &str, head_extra: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"{PATH_STYLESHEET}\">{head_extra}\
         </head><body><main>{body}</main></body></html>\n",
        lang = lang.tag(),
        title = escape(title),
    )
}

/// A page of one message, with an optional link back to the relying party.
pub(super) fn message(lang: Lang, title: &str, text: &str, back: Option<&str>) -> String {
    let link = back
        .map(|href| {
            format!(
                "<p><a class=\"button\" href=\"{}\">{}</a></p>",
                escape(href),
                escape(lang.texts().back)
            )
        })
        .unwrap_or_default();
    document(
        lang,
        title,
        "",
        &format!("<h1>{}</h1><p>{}</p>{link}", escape(title), escape(text)),
    )
}

/// An HTML answer with the sign-in pages' security headers, and a cookie to set if any.
pub(super) fn html(status: StatusCode, body: String, cookie: Option<String>) -> Response {
    html::page(status, body, CONTENT_SECURITY_POLICY, cookie)
}

/// The headers every sign-in answer carries, redirects included.
pub(super) fn security_headers(headers: &mut HeaderMap) {
    html::security_headers(headers, CONTENT_SECURITY_POLICY);
}

/// `GET /oidc/sign-in/style.css`.
pub(super) async fn stylesheet() -> Response {
    html::static_file(STYLESHEET, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn ui_locales_pick_the_first_language_of_ours() {
        assert_eq!(Lang::from_ui_locales("de fr-BE en"), Some(Lang::Fr));
        assert_eq!(Lang::from_ui_locales("de"), None);
    }

    #[test]
    fn accept_language_is_read_by_weight_and_dutch_is_the_default() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de;q=0.9, en;q=0.5, fr-BE;q=0.8"),
        );
        assert_eq!(Lang::choose(None, &headers), Lang::Fr);
        assert_eq!(Lang::choose(Some("en"), &headers), Lang::En);
        assert_eq!(Lang::choose(None, &HeaderMap::new()), Lang::Nl);
    }
}
