//! What a valid config may still get wrong: settings that work but put data or credentials at risk.

use super::{AuthKind, Config};

/// A risky but workable setting, by its key (e.g. `connections[0].base_url`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct ConfigWarning {
    pub key: String,
    // The line the key is on, shown by `syncmon status`; not sent over the RPC, so the generated
    // TypeScript type stays as it is.
    #[serde(skip)]
    pub line: Option<usize>,
    pub message: String,
}

/// The message, then " (line N)" when the key is written in the file.
impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        match self.line {
            Some(n) => write!(f, " (line {n})"),
            None => Ok(()),
        }
    }
}

impl Config {
    /// What may work but is risky: plain HTTP to another machine, a webhook listener other
    /// machines can reach. Logged when the agent starts, shown by `status` and the UI.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut out = Vec::new();
        let mut plain_http = |key: String, url: &str, what: &str| {
            if let Some(host) = url::Url::parse(url).ok().filter(|u| u.scheme() == "http").and_then(|u| remote_host(&u)) {
                out.push(ConfigWarning {
                    line: self.key_lines.get(&key).copied(),
                    message: format!(
                        "{key} uses plain http:// to {host}, a host that is not this machine: {what} and the data cross the network \
                         unencrypted; use https://"
                    ),
                    key,
                });
            }
        };
        // Connections, then targets: the same settings, the same risk.
        let connections = self.connections.iter().enumerate().map(|(i, c)| (format!("connections[{i}]"), c.auth, &c.base_url, &c.token_url));
        let targets = self.targets.iter().enumerate().map(|(i, t)| (format!("targets[{i}]"), t.auth, &t.base_url, &t.token_url));
        for (table, auth, base_url, token_url) in connections.chain(targets) {
            let what = if auth == AuthKind::None { "requests" } else { "the credentials" };
            plain_http(format!("{table}.base_url"), base_url, what);
            if let Some(t) = token_url {
                plain_http(format!("{table}.token_url"), t, "the client secret");
            }
        }
        if let Some(addr) = self.webhooks.as_ref().and_then(|w| w.listen.parse::<std::net::SocketAddr>().ok()) {
            if !addr.ip().is_loopback() {
                out.push(ConfigWarning {
                    key: "webhooks.listen".into(),
                    line: self.key_lines.get("webhooks.listen").copied(),
                    message: format!(
                        "webhooks.listen = {addr} accepts calls from other machines; unless they must reach it directly, listen on \
                         127.0.0.1 behind a reverse proxy that terminates TLS"
                    ),
                });
            }
        }
        out
    }
}

/// The host of a URL unless it is this machine (loopback address or `localhost`).
fn remote_host(u: &url::Url) -> Option<String> {
    match u.host()? {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost") => None,
        url::Host::Domain(d) => Some(d.to_string()),
        url::Host::Ipv4(ip) if ip.is_loopback() => None,
        url::Host::Ipv6(ip) if ip.is_loopback() => None,
        h => Some(h.to_string()),
    }
}
