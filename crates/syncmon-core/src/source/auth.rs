//! How a call proves who it is: an API key header, a bearer token, or an OAuth2
//! client-credentials token fetched from `token_url` and cached until shortly before it expires.

use super::response::{describe_reqwest_error, error_summary, method_after_redirect, redirect_location, tracking_id};
use super::{SourceClient, MAX_REDIRECTS};
use crate::config::AuthKind;
use crate::retry::{Failure, FailureClass};
use crate::secrets::{self, Secret, SecretKind};
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::{Duration, Instant};
use url::Url;

pub(super) struct CachedToken {
    value: Secret,
    /// On the engine's clock, in ms.
    refresh_at_ms: i64,
}

impl SourceClient {
    fn secret(&self) -> Result<Secret, Failure> {
        let mut cached = self.secret.lock().unwrap();
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let s = secrets::resolve(&self.cfg, SecretKind::Connection).map_err(|e| Failure::new(FailureClass::Auth, e.to_string()))?;
        *cached = Some(s.clone());
        Ok(s)
    }

    pub(super) async fn auth_headers(&self, headers: &mut HeaderMap, entity: Option<&str>) -> Result<(), Failure> {
        let value = match self.cfg.auth {
            AuthKind::None => return Ok(()),
            AuthKind::ApiKey => {
                let name = reqwest::header::HeaderName::from_bytes(self.cfg.api_key_header.as_bytes())
                    .map_err(|_| Failure::new(FailureClass::Config, format!("api_key_header `{}` is not a header name", self.cfg.api_key_header)))?;
                let mut v = HeaderValue::from_str(self.secret()?.expose())
                    .map_err(|_| Failure::new(FailureClass::Auth, "the stored API key has characters a header cannot carry"))?;
                v.set_sensitive(true);
                headers.insert(name, v);
                return Ok(());
            }
            AuthKind::Bearer => format!("Bearer {}", self.secret()?.expose()),
            AuthKind::Oauth2 => format!("Bearer {}", self.oauth_token(entity).await?.expose()),
        };
        let mut v = HeaderValue::from_str(&value).map_err(|_| Failure::new(FailureClass::Auth, "the credential has characters a header cannot carry"))?;
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
        Ok(())
    }

    /// A cached client-credentials token, fetched when missing or about to expire.
    async fn oauth_token(&self, entity: Option<&str>) -> Result<Secret, Failure> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.refresh_at_ms > self.clock.now_ms()) {
            return Ok(t.value.clone());
        }
        let token_url = self.cfg.token_url.clone().unwrap_or_default();
        let url = Url::parse(&token_url).map_err(|e| Failure::new(FailureClass::Config, format!("token_url is not a URL: {e}")))?;
        let secret = self.secret()?;
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.cfg.client_id.clone().unwrap_or_default()),
            ("client_secret", secret.expose().to_string()),
        ];
        if let Some(s) = &self.cfg.scope {
            form.push(("scope", s.clone()));
        }
        // The token request follows redirects itself, like `call_once`: only within token_url's
        // origin, so that the client secret is never posted anywhere else.
        let (mut method, mut url, mut hops) = (reqwest::Method::POST, url, 0);
        let mut unreached: Option<String> = None;
        let (status, tracking_id, body) = loop {
            let started = Instant::now();
            let mut req = self.http.request(method.clone(), url.clone());
            if method == reqwest::Method::POST {
                req = req.form(&form);
            }
            let resp = match req.timeout(self.cfg.timeout).send().await {
                Ok(resp) => resp,
                Err(e) => {
                    let msg = describe_reqwest_error(&e, Some(&self.reach("token_url")));
                    self.log(&url, method.as_str(), entity, None, started, 1, None, None, Some(msg.clone()));
                    unreached = Some(msg);
                    break (None, None, None);
                }
            };
            let status = resp.status().as_u16();
            let tid = tracking_id(resp.headers());
            let Some(next) = redirect_location(&resp, &url) else {
                let body = resp.bytes().await.ok();
                self.log(&url, method.as_str(), entity, Some(status), started, 1, body.as_ref().map(|b| b.len()), tid.clone(), None);
                break (Some(status), tid, body);
            };
            let refused = if next.origin() != url.origin() {
                Some(format!(
                    "the token endpoint redirected {} → {}, another origin; Syncmon does not send the client secret to another origin: set token_url to the URL that issues the tokens",
                    url.origin().ascii_serialization(),
                    next.origin().ascii_serialization()
                ))
            } else if hops == MAX_REDIRECTS {
                Some(format!("the token endpoint redirected more than {MAX_REDIRECTS} times; set token_url to the URL the redirects end at"))
            } else {
                None
            };
            self.log(&url, method.as_str(), entity, Some(status), started, 1, None, tid.clone(), refused.clone());
            if let Some(message) = refused {
                return Err(Failure { class: FailureClass::Config, message, http_status: Some(status), tracking_id: tid, retry_after: None });
            }
            hops += 1;
            method = method_after_redirect(status, &method);
            url = next;
        };
        let fail = |msg: String| Failure { class: FailureClass::Auth, message: msg, http_status: status, tracking_id: tracking_id.clone(), retry_after: None };
        match status {
            Some(200..=299) => {}
            Some(s) if s >= 500 => {
                return Err(Failure { class: FailureClass::Transient, ..fail("the token endpoint is failing".into()) });
            }
            Some(_) => return Err(fail(format!("the token endpoint refused the client credentials: {}", error_summary(body.as_deref().unwrap_or_default())))),
            None => {
                let why = unreached.map(|m| format!(": {m}")).unwrap_or_default();
                return Err(Failure { class: FailureClass::Transient, ..fail(format!("cannot reach the token endpoint{why}")) });
            }
        }
        #[derive(serde::Deserialize)]
        struct TokenBody {
            access_token: String,
            expires_in: Option<u64>,
        }
        let parsed: TokenBody =
            serde_json::from_slice(body.as_deref().unwrap_or_default()).map_err(|_| fail("the token endpoint answered without an access_token".into()))?;
        let life = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        // Refresh shortly before expiry: at 90 % of the lifetime, at most a minute early.
        let margin = (life / 10).min(Duration::from_secs(60));
        let token = Secret::new(parsed.access_token);
        *slot = Some(CachedToken { value: token.clone(), refresh_at_ms: self.clock.now_ms() + (life - margin).as_millis() as i64 });
        Ok(token)
    }

    pub(super) async fn forget_token(&self) {
        *self.token.lock().await = None;
    }
}
