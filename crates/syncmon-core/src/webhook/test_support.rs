//! The receiver on loopback with a recording nudge target and a clock fixed at `NOW`, for the dialects' tests.

use super::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(crate) const CLIENT_STATE: &str = "bc-client-state-3f1c9a";
pub(crate) const NOW: i64 = 1_700_000_000;

#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) calls: Mutex<Vec<(String, String)>>,
    pub(crate) refuse: AtomicBool,
}

impl NudgeTarget for Recorder {
    fn nudge(&self, connection: &str, entity: &str) -> bool {
        if self.refuse.load(Ordering::SeqCst) {
            return false;
        }
        self.calls.lock().unwrap().push((connection.to_string(), entity.to_string()));
        true
    }
}

impl Recorder {
    pub(crate) fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().unwrap().clone()
    }
}

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) rec: Arc<Recorder>,
    pub(crate) client: reqwest::Client,
}

pub(crate) fn conn(id: &str) -> WebhookConnection {
    WebhookConnection {
        id: id.into(),
        entities: vec!["items".into(), "customers".into(), "salesOrders".into()],
        entity_pointer: "/entity".into(),
        signing_secret: Some(SECRET.into()),
        client_state: Some(CLIENT_STATE.into()),
    }
}

pub(crate) async fn serve(connections: Vec<WebhookConnection>) -> Server {
    let rec = Arc::new(Recorder::default());
    let clock = Arc::new(crate::clock::TestClock::fixed(NOW * 1000));
    let app = router(connections, rec.clone(), clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { base: format!("http://{addr}"), rec, client: reqwest::Client::new() }
}

pub(crate) async fn default_server() -> Server {
    let mut bare = conn("bare");
    bare.signing_secret = None;
    bare.client_state = None;
    let mut custom = conn("custom");
    custom.entity_pointer = "data/type".into();
    serve(vec![conn("erp"), bare, custom]).await
}

impl Server {
    pub(crate) async fn standard(&self, connection: &str, msg_id: &str, ts: i64, body: &str, signature: Option<String>) -> (u16, Value) {
        let sig = signature.unwrap_or_else(|| sign_standard(SECRET, msg_id, ts, body.as_bytes()));
        let r = self
            .client
            .post(format!("{}/webhooks/{connection}", self.base))
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "secret echoed: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A Standard Webhooks call signed with the connection's secret, which must be refused with
    /// `status` and the error `code`.
    pub(crate) async fn assert_refused(&self, connection: &str, msg_id: &str, ts: i64, body: &str, status: u16, code: &str) {
        let (st, b) = self.standard(connection, msg_id, ts, body, None).await;
        assert_eq!((st, b["code"].as_str()), (status, Some(code)), "{msg_id} to {connection}: {b}");
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.client.post(format!("{}{path}", self.base)).json(body).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains(CLIENT_STATE), "clientState echoed: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

pub(crate) fn nudge(c: &str, e: &str) -> (String, String) {
    (c.to_string(), e.to_string())
}

pub(crate) fn bc_entry(client_state: &str, resource: &str, change: &str) -> Value {
    json!({
        "subscriptionId": "webhook-items-1",
        "clientState": client_state,
        "expirationDateTime": "2024-03-01T10:00:00Z",
        "resource": resource,
        "changeType": change,
        "lastModifiedDateTime": "2024-02-27T09:59:58.123Z"
    })
}

pub(crate) const CO: &str = "api/v2.0/companies(5d115c9c-44e3-ea11-bb43-000d3a2feca1)";
