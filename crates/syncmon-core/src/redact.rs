//! Redaction: credential-looking query parameters and URL userinfo never reach a message, a log
//! or the request log. Config validation, the request log and errors all use it, so it imports
//! nothing of the crate.

/// Query parameter names that carry credentials, compared without case, `-` and `_`
/// (`api_key`, `API-Key`, `apikey` are one name). Page keys and versions (`pageKey`,
/// `lastRowVersion`, `sync`) are not in it and stay visible.
const SECRET_PARAMS: &[&str] = &[
    "apikey",
    "xapikey",
    "key",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "authtoken",
    "xauthtoken",
    "auth",
    "authorization",
    "bearer",
    "password",
    "passwd",
    "pwd",
    "secret",
    "clientsecret",
    "signature",
    "sig",
    "code",
    "sessionid",
    "session",
    "privatetoken",
    "subscriptionkey",
    "ocpapimsubscriptionkey",
    "credential",
    "credentials",
    "jwt",
];

/// Whether a query parameter of this name may carry a secret (see [`SECRET_PARAMS`]); names that
/// end in `secret`, `password`, `apikey`, `accesstoken` or `authtoken` count too.
pub fn is_secret_param(name: &str) -> bool {
    let n: String = name.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
    SECRET_PARAMS.contains(&n.as_str()) || ["secret", "password", "apikey", "accesstoken", "authtoken"].iter().any(|s| n.ends_with(s))
}

/// Replaces the user name, password and the values of query parameters that may carry secrets,
/// for logs, errors and the request log.
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username("REDACTED");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("REDACTED"));
    }
    if u.query().is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| is_secret_param(&k))) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = is_secret_param(&k);
                (k.into_owned(), if secret { "REDACTED".to_string() } else { v.into_owned() })
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// [`redact_url`] for text that may not parse as a URL (a broken `nextPageURL` in an error):
/// the part before `@` of the authority and the values of secret parameters are replaced.
pub fn redact_url_text(text: &str) -> String {
    if let Ok(u) = url::Url::parse(text) {
        return redact_url(&u);
    }
    let mut out = text.to_string();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..].find(['/', '?', '#']).map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@') {
            out.replace_range(start..start + at, "REDACTED");
        }
    }
    let Some(q) = out.find('?') else { return out };
    let (head, query) = out.split_at(q + 1);
    let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_param(&percent_decode(k)) => format!("{k}=REDACTED"),
            _ => pair.to_string(),
        })
        .collect();
    let mut s = format!("{head}{}", redacted.join("&"));
    if let Some(f) = fragment {
        s.push('#');
        s.push_str(f);
    }
    s
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("{s}=").as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_parameters_are_redacted() {
        let u = url::Url::parse("https://u:pw@api.example.com/items?sync=true&access_token=abc&lastRowVersion=5").unwrap();
        let r = redact_url(&u);
        assert!(!r.contains("abc") && !r.contains(":pw@"), "{r}");
        assert!(r.contains("lastRowVersion=5") && r.contains("sync=true"), "{r}");
    }

    #[test]
    fn every_credential_looking_parameter_is_redacted_and_paging_stays_visible() {
        let secret_names = [
            "x-api-key",
            "X-API-KEY",
            "auth",
            "Authorization",
            "api-key",
            "apiKey",
            "api_key",
            "key",
            "client_secret",
            "clientSecret",
            "signature",
            "sig",
            "password",
            "access_token",
            "refresh_token",
            "subscription-key",
            "my_secret",
        ];
        for name in secret_names {
            let u = url::Url::parse(&format!("https://h/items?sync=true&{name}=s3cr3t&pageKey=p1&lastRowVersion=9")).unwrap();
            let r = redact_url(&u);
            assert!(!r.contains("s3cr3t"), "{name}: {r}");
            assert!(r.contains("pageKey=p1") && r.contains("lastRowVersion=9") && r.contains("sync=true"), "{name}: {r}");
            let t = redact_url_text(&format!("::not a url::?{name}=s3cr3t&pageKey=p1"));
            assert!(!t.contains("s3cr3t") && t.contains("pageKey=p1"), "{name}: {t}");
        }
        let r = redact_url(&url::Url::parse("https://alice@h/x").unwrap());
        assert!(!r.contains("alice"), "{r}");
        let t = redact_url_text("http://bob:pw@ho st/x");
        assert!(!t.contains("bob") && !t.contains("pw@"), "{t}");
        for visible in ["pageKey", "pageToken", "nextPageKey", "lastRowVersion", "sync", "limit", "since", "order"] {
            assert!(!is_secret_param(visible), "{visible} must stay visible");
        }
    }
}
