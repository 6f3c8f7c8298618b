//! The engine's errors: what happened, in words that say what to do next, and a closed set of
//! codes ([`ErrorCode`]) the front ends branch on (the CLI's exit status, the served UI's HTTP
//! status).

use crate::agent_lock::LockError;
use crate::config::ConfigError;
use crate::secrets;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Declares [`ErrorCode`] from one list: each code's variant, its word on the wire and what it
/// means. The meaning is the variant's doc and the description in docs/api.md's table of codes
/// (a test of `syncmon-serve` checks the table against it).
macro_rules! error_codes {
    ($( $variant:ident = $word:literal : $meaning:literal, )*) => {
        /// The codes a front end may branch on: the RPC's `ApiError.code` (`as_str` is its word),
        /// the CLI's exit status, the served UI's HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( #[doc = $meaning] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the list.
            pub const ALL: &'static [ErrorCode] = &[$( ErrorCode::$variant, )*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $word, )*
                }
            }

            /// What the code means, in one sentence (docs/api.md repeats it).
            pub fn meaning(&self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $meaning, )*
                }
            }
        }
    };
}

error_codes! {
    Config = "config": "The config is invalid: fix the file or the form (`field` names the form field).",
    Usage = "usage": "The call or its arguments cannot be carried out as asked.",
    NotFound = "not_found": "The entity, connection, failed item or API path does not exist.",
    Damaged = "damaged": "The replica failed SQLite's integrity check.",
    Storage = "storage": "The replica could not be read or written.",
    Credentials = "credentials": "A secret is missing or wrong, or the OS keyring failed.",
    AgentRunning = "agent_running": "Another agent holds the data directory's lock.",
    Io = "io": "A file, the keyring lookup or the engine's task failed; the message says which.",
    Unauthorized = "unauthorized": "The served UI's token is missing or wrong.",
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
        assert_eq!(Error::Usage("x".into()).error_code(), ErrorCode::Usage);
        assert_eq!(Error::NotFound("x".into()).error_code(), ErrorCode::NotFound);
        assert_eq!(Error::Io("x".into()).error_code(), ErrorCode::Io);
        assert_eq!(Error::Store(StoreError::NotFound("x".into())).error_code(), ErrorCode::NotFound);
    }
}
