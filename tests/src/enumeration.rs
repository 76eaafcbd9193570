//! The enumeration measurement (`sleutel-harness enumeration`): can a caller tell a registered
//! phone number from an unknown one, by what the server answers or by how long it takes?
//!
//! Citizens are enrolled (as many again then blocked, and as many deactivated, so that their
//! numbers have no usable key), and the same number of calls is sent for each kind of number, interleaved, to
//! the backchannel authentication endpoint (with one token poll after each request started) and
//! to the sign-in page's number form. For each endpoint and kind it reports the answers by
//! status and body shape (identifiers masked) and the latency distribution, and compares each
//! kind's latencies with the registered numbers' by the two-sample Kolmogorov-Smirnov statistic.
//!
//! Each sign-in comes from a loopback address of its own (`127.3.x.y`; Linux routes all of
//! 127.0.0.0/8 to loopback), so that the form's per-address limits measure nothing here.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use sleutel_core::Bank;
use sleutel_protocol::api::oidc;
use sleutel_protocol::api::sim::BlockMyKey;
use sleutel_server::RelyingPartyConfig;

use crate::load::Percentiles;
use crate::phone::{VirtualPhone, silent};
use crate::rp::{LoginRequest, RelyingParty};
use crate::{HarnessError, Result};

/// The first number of the enrolled citizens (`+32 471 9…`), apart from the load test's.
const FIRST_ENROLLED: u64 = 32_471_900_000;

/// The first of the numbers nobody enrolled (`+32 472 9…`).
const FIRST_UNKNOWN: u64 = 32_472_900_000;

/// The sign-in page's number form (not part of the protocol: only a browser follows it).
const PATH_NUMBER_FORM: &str = "/oidc/sign-in/number";

/// The level of every test here: 5 % of false alarms, for one comparison or for a whole run.
const ALPHA: f64 = 0.05;

/// What an enumeration run does.
#[derive(Debug, Clone)]
pub struct EnumerationOptions {
    /// The server's base URL.
    pub server: String,
    /// Where the phones keep their state.
    pub state_dir: PathBuf,
    /// Citizens with an active key.
    pub registered: usize,
    /// Calls per kind of number and endpoint.
    pub calls: usize,
}

/// The kinds of number compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberKind {
    /// An enrolled citizen with an active phone.
    Registered,
    /// A valid Belgian mobile number nobody enrolled.
    Unknown,
    /// An enrolled citizen whose key was blocked from the block page.
    Blocked,
    /// An enrolled citizen who deactivated the app: no active device.
    Deviceless,
}

impl NumberKind {
    fn name(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Unknown => "unknown",
            Self::Blocked => "blocked",
            Self::Deviceless => "deviceless",
        }
    }
}

/// What one endpoint answered one kind of number.
#[derive(Debug, Clone, Serialize)]
pub struct KindFigures {
    /// The answers by status and masked body.
    pub shapes: BTreeMap<String, u64>,
    /// The answer times.
    pub latency: Percentiles,
    /// Kolmogorov-Smirnov D against the registered numbers' answer times (none for them).
    pub ks_d: Option<f64>,
    /// The critical value of D at α = 0.05 for these sample sizes, for this comparison alone.
    pub ks_critical: Option<f64>,
    /// The critical value of D for these sample sizes that keeps the chance of any false alarm
    /// among all of the run's comparisons at 0.05 (Bonferroni: α = 0.05 / comparisons). With nine
    /// comparisons, one in three runs of identical distributions has some D above its own
    /// critical value; this is the value for "any kind told apart at any endpoint".
    pub ks_critical_run: Option<f64>,
}

/// The figures of one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointFigures {
    /// The endpoint measured.
    pub endpoint: &'static str,
    /// Per kind of number.
    pub kinds: BTreeMap<NumberKind, KindFigures>,
}

/// What an enumeration run found.
#[derive(Debug, Clone, Serialize)]
pub struct EnumerationReport {
    /// Calls per kind and endpoint.
    pub calls: usize,
    /// Per endpoint.
    pub endpoints: Vec<EndpointFigures>,
}

impl EnumerationReport {
    /// The report of `endpoints`, each comparison given the critical value of the whole run.
    fn of(calls: usize, mut endpoints: Vec<EndpointFigures>) -> Self {
        let comparisons = endpoints
            .iter()
            .flat_map(|e| e.kinds.values())
            .filter(|k| k.ks_d.is_some())
            .count();
        for endpoint in &mut endpoints {
            let registered = endpoint
                .kinds
                .get(&NumberKind::Registered)
                .map_or(0, |k| k.latency.count);
            for figures in endpoint.kinds.values_mut() {
                if figures.ks_d.is_some() {
                    figures.ks_critical_run = Some(ks_critical_at(
                        ALPHA / comparisons as f64,
                        registered,
                        figures.latency.count,
                    ));
                }
            }
        }
        Self { calls, endpoints }
    }

    /// The figures as text.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for endpoint in &self.endpoints {
            out.push_str(&format!("== {} ==\n", endpoint.endpoint));
            let registered = endpoint
                .kinds
                .get(&NumberKind::Registered)
                .map(|k| &k.shapes);
            for (kind, figures) in &endpoint.kinds {
                let l = &figures.latency;
                out.push_str(&format!(
                    "{:>10}: n {}, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    kind.name(),
                    l.count,
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.max_ms
                ));
                if let (Some(d), Some(c), Some(run)) =
                    (figures.ks_d, figures.ks_critical, figures.ks_critical_run)
                {
                    out.push_str(&format!(
                        ", KS D {d:.3} (critical {c:.3} alone, {run:.3} for the run: {})",
                        if d > run {
                            "DISTINGUISHABLE"
                        } else if d > c {
                            "above its own critical value, within the run's"
                        } else {
                            "not distinguished"
                        }
                    ));
                }
                out.push('\n');
                let same = registered == Some(&figures.shapes);
                if *kind != NumberKind::Registered {
                    out.push_str(&format!(
                        "{:>10}  answers {} the registered numbers'\n",
                        "",
                        if same {
                            "are the same as"
                        } else {
                            "DIFFER from"
                        }
                    ));
                }
                for (shape, count) in &figures.shapes {
                    out.push_str(&format!("{:>12}{count:>6} × {shape}\n", ""));
                }
            }
        }
        out
    }
}

/// The two-sample Kolmogorov-Smirnov statistic: the largest distance between the two samples'
/// empirical distribution functions.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        // Step past every sample equal to x in both, so ties move the two functions together.
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let fa = i as f64 / a.len() as f64;
        let fb = j as f64 / b.len() as f64;
        d = d.max((fa - fb).abs());
    }
    d
}

/// The critical value of the two-sample KS statistic at α = 0.05 for sample sizes `n` and `m`.
pub fn ks_critical(n: usize, m: usize) -> f64 {
    ks_critical_at(ALPHA, n, m)
}

/// The critical value of the two-sample KS statistic at level `alpha` for sample sizes `n` and
/// `m`: c(α)·√((n+m)/(n·m)), with the asymptotic c(α) = √(−ln(α/2)/2) (1.358 at α = 0.05).
pub fn ks_critical_at(alpha: f64, n: usize, m: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    let c = (-(alpha / 2.0).ln() / 2.0).sqrt();
    c * ((n + m) / (n * m)).sqrt()
}

/// `body` with what differs from call to call replaced: runs of 16 or more identifier
/// characters with a digit or a capital in them (request ids, session ids, CSRF tokens; not
/// words such as `error_description`) by `<id>`, and the 4-digit short code of the sign-in
/// pages by `<code>`.
pub fn mask(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let random = run
            .bytes()
            .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        if run.len() >= 16 && random {
            out.push_str("<id>");
        } else if run.len() == 4 && run.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str("<code>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in body.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn number(first: u64, index: usize) -> String {
    format!("+{}", first + index as u64)
}

/// The numbers of each kind: enrolls the citizens, then blocks and deactivates some.
async fn prepare(options: &EnumerationOptions) -> Result<Vec<(NumberKind, Vec<String>)>> {
    // As many blocked and deviceless citizens as registered ones, and as many unknown numbers:
    // the limits per person count per number, so each kind must spread its calls over as many
    // numbers for its answers to be comparable.
    let extra = options.registered;
    let mut kinds: Vec<(NumberKind, Vec<String>)> = Vec::new();
    let mut index = 0usize;
    for (kind, count) in [
        (NumberKind::Registered, options.registered),
        (NumberKind::Blocked, extra),
        (NumberKind::Deviceless, extra),
    ] {
        let mut numbers = Vec::with_capacity(count);
        for _ in 0..count {
            let phone_number = number(FIRST_ENROLLED, index);
            let dir = options.state_dir.join(format!("phone-{index:05}"));
            index += 1;
            let phone = VirtualPhone::open(&options.server, &dir)?;
            let (citizen, account) = phone
                .enroll_new_citizen(Bank::Kbc, &phone_number, crate::demo::DEMO_CODE, &silent)
                .await?;
            match kind {
                NumberKind::Blocked => {
                    phone
                        .sim()
                        .block_my_key(&BlockMyKey {
                            source: Some(sleutel_core::IdentitySource::Eid),
                            card_serial: Some(citizen.eid_card.serial.clone()),
                            card_pin: Some(citizen.eid_card.pin.clone()),
                            ..BlockMyKey::default()
                        })
                        .await?;
                }
                NumberKind::Deviceless => {
                    phone.authenticator().deactivate(account.account_id).await?;
                }
                _ => {}
            }
            numbers.push(phone_number);
        }
        kinds.push((kind, numbers));
    }
    let unknown = (0..options.registered.max(1))
        .map(|i| number(FIRST_UNKNOWN, i))
        .collect();
    kinds.insert(1, (NumberKind::Unknown, unknown));
    Ok(kinds)
}

/// One measured answer.
struct Sample {
    shape: String,
    took: Duration,
}

#[derive(Default)]
struct Samples(BTreeMap<NumberKind, Vec<Sample>>);

impl Samples {
    fn add(&mut self, kind: NumberKind, shape: String, took: Duration) {
        self.0.entry(kind).or_default().push(Sample { shape, took });
    }

    fn figures(self, endpoint: &'static str) -> EndpointFigures {
        let millis = |samples: &[Sample]| -> Vec<f64> {
            samples
                .iter()
                .map(|s| s.took.as_secs_f64() * 1000.0)
                .collect()
        };
        let registered = self
            .0
            .get(&NumberKind::Registered)
            .map(|s| millis(s))
            .unwrap_or_default();
        let kinds = self
            .0
            .into_iter()
            .map(|(kind, samples)| {
                let times = millis(&samples);
                let mut shapes = BTreeMap::new();
                for s in &samples {
                    *shapes.entry(s.shape.clone()).or_default() += 1;
                }
                let compared = kind != NumberKind::Registered && !registered.is_empty();
                let figures = KindFigures {
                    shapes,
                    latency: crate::load::percentiles(samples.iter().map(|s| s.took).collect()),
                    ks_d: compared.then(|| ks_statistic(&registered, &times)),
                    ks_critical: compared.then(|| ks_critical(registered.len(), times.len())),
                    // Filled in once every endpoint is measured and the comparisons counted.
                    ks_critical_run: None,
                };
                (kind, figures)
            })
            .collect();
        EndpointFigures { endpoint, kinds }
    }
}

async fn shape_of(response: reqwest::Response) -> Result<String> {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(|l| format!(" Location: {}", mask(l)))
        .unwrap_or_default();
    let body = response.text().await?;
    Ok(format!("{status}{location} {}", mask(&body)))
}

/// Runs the measurement.
pub async fn run(options: &EnumerationOptions) -> Result<EnumerationReport> {
    if options.registered == 0 || options.calls == 0 {
        return Err(HarnessError::Usage(
            "--registered and --calls must be at least 1".into(),
        ));
    }
    sleutel_core::testing::reuse_pin_keys();
    let kinds = prepare(options).await?;
    let rp = RelyingParty::demo(&options.server)?;

    let mut backchannel = Samples::default();
    let mut token = Samples::default();
    for call in 0..options.calls {
        // The kinds take turns, starting each round with another, so that no kind always
        // follows the same one.
        for turn in 0..kinds.len() {
            let Some((kind, numbers)) = kinds.get((call + turn) % kinds.len()) else {
                continue;
            };
            let Some(phone_number) = numbers.get(call % numbers.len()) else {
                continue;
            };
            let form = LoginRequest::new(phone_number).form();
            let at = Instant::now();
            let response = rp.backchannel_authorize_raw(&form).await?;
            let took = at.elapsed();
            let status = response.status();
            let body = response.text().await?;
            backchannel.add(*kind, format!("{} {}", status.as_u16(), mask(&body)), took);
            if status.is_success() {
                let started: oidc::BackchannelAuthResponse = serde_json::from_str(&body)
                    .map_err(|e| HarnessError::Verification(e.to_string()))?;
                let at = Instant::now();
                let polled = rp.token_raw(&started.auth_req_id).await?;
                let took = at.elapsed();
                token.add(*kind, shape_of(polled).await?, took);
            }
        }
    }

    let mut form = Samples::default();
    let mut source = 0u32;
    for call in 0..options.calls {
        for turn in 0..kinds.len() {
            let Some((kind, numbers)) = kinds.get((call + turn) % kinds.len()) else {
                continue;
            };
            let Some(phone_number) = numbers.get(call % numbers.len()) else {
                continue;
            };
            source += 1;
            let (shape, took) = sign_in(&options.server, source, phone_number).await?;
            form.add(*kind, shape, took);
        }
    }
    Ok(EnumerationReport::of(
        options.calls,
        vec![
            backchannel.figures("POST /oidc/bc-authorize"),
            token.figures("POST /oidc/token (first poll)"),
            form.figures("POST /oidc/sign-in/number"),
        ],
    ))
}

/// A loopback address of its own for the `n`th browser: 127.3.x.y.
fn source_address(n: u32) -> IpAddr {
    let [_, _, hi, lo] = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 3, hi, lo.max(1)))
}

/// A browser from its own address opens the demo relying party's sign-in page and posts
/// `phone_number`; returns the post's answer, masked, and how long it took.
async fn sign_in(server: &str, n: u32, phone_number: &str) -> Result<(String, Duration)> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(source_address(n))
        .timeout(Duration::from_secs(30))
        .build()?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", RelyingPartyConfig::DEMO_CLIENT_ID)
        .append_pair("redirect_uri", RelyingPartyConfig::DEMO_REDIRECT_URI)
        .append_pair("scope", "openid profile")
        .append_pair("state", "enumeration-state")
        .append_pair("nonce", "enumeration-nonce")
        .append_pair(
            "code_challenge",
            "xhUrj-o0xMrn2237aduIA29_XbviWkR_2LYXt5Ke63c",
        )
        .append_pair("code_challenge_method", "S256")
        .finish();
    let page = http
        .get(format!("{server}{}?{query}", oidc::PATH_AUTHORIZE))
        .send()
        .await?;
    let cookie = page
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| HarnessError::Missing("the sign-in session's cookie".into()))?;
    let body = page.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let csrf = body
        .find(marker)
        .map(|start| &body[start + marker.len()..])
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| HarnessError::Missing("the sign-in form's CSRF token".into()))?
        .to_owned();
    let at = Instant::now();
    let response = http
        .post(format!("{server}{PATH_NUMBER_FORM}"))
        .header(reqwest::header::COOKIE, cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("phone_number", phone_number),
        ])
        .send()
        .await?;
    let took = at.elapsed();
    Ok((shape_of(response).await?, took))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_of_equal_samples_is_zero_and_of_disjoint_ones_is_one() {
        let a: Vec<f64> = (1..=50).map(f64::from).collect();
        assert_eq!(ks_statistic(&a, &a), 0.0);
        let b: Vec<f64> = (101..=150).map(f64::from).collect();
        assert_eq!(ks_statistic(&a, &b), 1.0);
    }

    #[test]
    fn ks_of_half_shifted_samples_is_one_half() {
        let a: Vec<f64> = (1..=100).map(f64::from).collect();
        let b: Vec<f64> = (51..=150).map(f64::from).collect();
        assert!((ks_statistic(&a, &b) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_critical_value_shrinks_with_the_samples() {
        // 1.358 · √(200/10000) = 0.192.
        assert!((ks_critical(100, 100) - 0.1920).abs() < 1e-3);
        assert!(ks_critical(1000, 1000) < ks_critical(100, 100));
    }

    #[test]
    fn the_critical_value_of_nine_comparisons_is_that_of_alpha_over_nine() {
        // c(0.05/9) = √(−ln(0.05/18)/2) = 1.716; · √(200/10000) = 0.243.
        assert!((ks_critical_at(0.05 / 9.0, 100, 100) - 0.2426).abs() < 1e-3);
        assert!((ks_critical_at(0.05, 100, 100) - ks_critical(100, 100)).abs() < 1e-12);
    }

    #[test]
    fn ids_and_short_codes_are_masked_and_words_kept() {
        assert_eq!(
            mask(r#"{"auth_req_id":"3vPq0k9sJd-Xy_12abcd","expires_in":300}"#),
            r#"{"auth_req_id":"<id>","expires_in":300}"#
        );
        assert_eq!(mask("code 4821, status"), "code <code>, status");
        assert_eq!(
            mask(r#"{"error":"authorization_pending"}"#),
            r#"{"error":"authorization_pending"}"#
        );
    }
}
