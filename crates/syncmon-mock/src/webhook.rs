//! Outgoing webhook calls: Standard Webhooks and Business Central change notifications.

use crate::gen;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("an HTTP client")
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The HMAC key of a `whsec_<base64>` secret (the raw bytes when it is not base64).
pub fn secret_key(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let engines = [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::STANDARD_NO_PAD];
    engines.iter().find_map(|e| e.decode(b64).ok()).unwrap_or_else(|| b64.as_bytes().to_vec())
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret_key(secret)).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

pub async fn send_standard(url: &str, secret: &str, entity: &str) -> reqwest::Result<reqwest::StatusCode> {
    let ts = now_secs();
    let body = serde_json::json!({
        "type": "record.changed",
        "entity": entity,
        "timestamp": gen::datetime_string(ts, None),
    })
    .to_string();
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let sig = sign(secret, &id, ts, body.as_bytes());
    let resp = client()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await?;
    Ok(resp.status())
}

pub async fn send_bc(url: &str, client_state: &str, entity: &str, record: Option<u128>, seed: u64) -> reqwest::Result<reqwest::StatusCode> {
    let ts = now_secs();
    let company =
        gen::uuid_string(((gen::splitmix(seed ^ 0xC0) as u128) << 64 | gen::splitmix(seed ^ 0xC1) as u128) & !(0xF000u128 << 64) | (0x4000u128 << 64));
    let record = gen::uuid_string(record.unwrap_or_else(|| uuid::Uuid::new_v4().as_u128()));
    let body = serde_json::json!({
        "value": [{
            "subscriptionId": format!("syncmon-{entity}"),
            "clientState": client_state,
            "expirationDateTime": gen::datetime_string(ts + 3 * 86_400, None),
            "resource": format!("api/v2.0/companies({company})/{entity}({record})"),
            "changeType": "updated",
            "lastModifiedDateTime": gen::datetime_string(ts, Some(0)),
        }]
    })
    .to_string();
    let resp = client().post(url).header("content-type", "application/json").body(body).send().await?;
    Ok(resp.status())
}

pub async fn bc_validate(url: &str, token: &str) -> reqwest::Result<(reqwest::StatusCode, String)> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{sep}validationToken={}", crate::server::percent_encode(token));
    let resp = client().post(full).header("content-length", "0").send().await?;
    let status = resp.status();
    Ok((status, resp.text().await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let sig = super::sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
