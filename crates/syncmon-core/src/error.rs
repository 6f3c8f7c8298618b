//! The engine's errors: what happened, in words that say what to do next, and a closed set of
//! codes ([`ErrorCode`]) the front ends branch on (the CLI's exit status, the served UI's HTTP
//! status).

use crate::agent_lock::LockError;
use crate::config::ConfigError;
use crate::secrets;
use crate::store::StoreError;
use serde::Serialize;

/// The codes a front end may branch on; `as_str` is the word in the RPC's `ApiError.code`
/// (docs/api.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The config is invalid: fix the file or the form.
    Config,
    /// The command or its arguments cannot be carried out as asked.
    Usage,
    NotFound,
    /// The replica failed SQLite's integrity check.
    Damaged,
    Storage,
    Credentials,
    /// Another agent holds the data directory's lock.
    AgentRunning,
    Io,
    /// The served UI's token is missing or wrong.
    Unauthorized,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::Config,
        ErrorCode::Usage,
        ErrorCode::NotFound,
        ErrorCode::Damaged,
        ErrorCode::Storage,
        ErrorCode::Credentials,
        ErrorCode::AgentRunning,
        ErrorCode::Io,
        ErrorCode::Unauthorized,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::Config => "config",
            ErrorCode::Usage => "usage",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Damaged => "damaged",
            ErrorCode::Storage => "storage",
            ErrorCode::Credentials => "credentials",
            ErrorCode::AgentRunning => "agent_running",
            ErrorCode::Io => "io",
            ErrorCode::Unauthorized => "unauthorized",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors at the façade: a closed set of codes the front ends may branch on, plus a message
/// that says what happened and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Error::Config(_) => ErrorCode::Config,
            Error::Usage(_) => ErrorCode::Usage,
            Error::NotFound(_) | Error::Store(StoreError::NotFound(_) | StoreError::NoReplica { .. }) => ErrorCode::NotFound,
            Error::Store(StoreError::SchemaTooOld { .. } | StoreError::SchemaTooNew { .. } | StoreError::ReadOnly { .. }) => ErrorCode::Usage,
            Error::Store(StoreError::Damaged { .. }) => ErrorCode::Damaged,
            Error::Store(_) => ErrorCode::Storage,
            Error::Secret(_) => ErrorCode::Credentials,
            Error::Lock(LockError::Held { .. }) => ErrorCode::AgentRunning,
            Error::Lock(LockError::Io { .. }) => ErrorCode::Io,
            Error::Io(_) => ErrorCode::Io,
        }
    }

    /// [`Error::error_code`] as the word the RPC's `ApiError.code` carries.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_words_the_rpc_sends() {
        let words: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(words, ["config", "usage", "not_found", "damaged", "storage", "credentials", "agent_running", "io", "unauthorized"]);
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::Value::String(c.as_str().into()), "{c:?}");
        }
    }

    #[test]
    fn errors_map_to_their_codes() {
        assert_eq!(Error::Usage("x".into()).code(), "usage");
        assert_eq!(Error::NotFound("x".into()).code(), "not_found");
        assert_eq!(Error::Io("x".into()).code(), "io");
        assert_eq!(Error::Store(StoreError::NotFound("x".into())).code(), "not_found");
    }
}
