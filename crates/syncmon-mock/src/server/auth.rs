//! Auth: the API-key and bearer checks on data and target calls, and the OAuth token endpoint.

use super::{param, parse_query, percent_decode, Reply, Shared};
use crate::MockAuth;
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use base64::Engine;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Shared {
    pub(super) fn check_auth(&self, headers: &HeaderMap) -> Option<Reply> {
        match &self.cfg.auth {
            MockAuth::None => None,
            MockAuth::ApiKey { header, key } => {
                let given = headers.get(header.to_ascii_lowercase().as_str()).and_then(|v| v.to_str().ok());
                match given {
                    Some(g) if g == key => None,
                    Some(_) => Some(Reply::error(401, "unauthorized", &format!("The API key in {header} is not valid."))),
                    None => Some(Reply::error(401, "unauthorized", &format!("The {header} header is missing."))),
                }
            }
            MockAuth::OAuth { .. } => {
                let bearer = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                    .map(str::trim);
                let valid = bearer.is_some_and(|t| self.tokens.lock().unwrap().get(t).is_some_and(|exp| *exp > Instant::now()));
                if valid {
                    None
                } else {
                    let mut r = Reply::error(
                        401,
                        "unauthorized",
                        if bearer.is_some() { "The access token is invalid or expired." } else { "A bearer token is required." },
                    );
                    r.headers.push(("www-authenticate", "Bearer error=\"invalid_token\"".into()));
                    Some(r)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth token endpoint

pub(super) async fn token(sh: &Shared, req: Request) -> Reply {
    if req.method() != Method::POST {
        return Reply::error(405, "method_not_allowed", "POST the client credentials here.");
    }
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (percent_decode(a, true), percent_decode(b, true))));
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return oauth_error(400, "invalid_request", "The body could not be read."),
    };
    let form = parse_query(&String::from_utf8_lossy(&body));
    if param(&form, "grant_type") != Some("client_credentials") {
        return oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported.");
    }
    let (id, secret) = match (basic, param(&form, "client_id"), param(&form, "client_secret")) {
        (Some(b), _, _) => b,
        (None, Some(i), Some(s)) => (i.to_string(), s.to_string()),
        _ => return oauth_error(401, "invalid_client", "Client credentials are missing."),
    };
    let ttl = match &sh.cfg.auth {
        MockAuth::OAuth { client_id, client_secret, token_ttl_secs } => {
            if &id != client_id || &secret != client_secret {
                return oauth_error(401, "invalid_client", "The client id or secret is wrong.");
            }
            *token_ttl_secs
        }
        _ => 3600,
    };
    let token = format!("mock_{}", uuid::Uuid::new_v4().simple());
    sh.tokens.lock().unwrap().insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
    sh.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let mut body = serde_json::json!({ "access_token": token, "token_type": "Bearer", "expires_in": ttl });
    if let Some(scope) = param(&form, "scope") {
        body["scope"] = scope.into();
    }
    let mut r = Reply::json(200, body.to_string());
    r.headers.push(("cache-control", "no-store".into()));
    r
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(status, serde_json::json!({ "error": error, "error_description": description }).to_string())
}
