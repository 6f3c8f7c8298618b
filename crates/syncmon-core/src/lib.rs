//! Syncmon's engine: keeps a replica (a local SQLite file, or PostgreSQL) in step with rowVersion REST APIs.
//!
//! [`Syncmon`] is the one door into the engine: every front end (the CLI, the desktop app, the
//! served web UI) calls its queries and commands and subscribes to its event stream. The engine
//! knows nothing of Tauri or of HTTP handlers.

pub mod agent_lock;
pub mod api;
mod clock;
pub mod config;
pub mod context;
pub mod engine;
mod error;
pub mod events;
mod facade;
pub mod forward;
pub mod ingest;
pub mod leasing;
pub mod logfile;
pub mod metrics;
pub mod profile;
pub mod record;
pub mod record_schema;
pub mod redact;
pub mod replay;
pub mod retry;
pub mod rowversion;
pub mod scheduler;
pub mod secrets;
pub mod source;
pub mod state;
pub mod store;
pub mod timestamp;
pub mod two_way;
pub mod webhook;
pub mod write_back;

// What the front ends name, so that they need no module below the façade.
pub use agent_lock::AgentLock;
pub use clock::{Clock, SystemClock, TestClock};
pub use config::Config;
pub use engine::{CycleReport, Outcome};
pub use error::{Error, ErrorCode, Result};
pub use events::{Event, EventKind};
pub use facade::{
    default_config_path, default_data_dir, CardTones, DiagnosticsOptions, DiagnosticsReport, EntityStatus, ExportFormat, KindCount, OverallWord, ReplayReport,
    ResyncPreview, SavedDiagnostics, Syncmon, TargetStatus, Verdict, DB_FILE,
};
pub use rowversion::RowVersion;
pub use state::{FailedStage, FailedState, Health, IngestState, RunKind, Tone, UnknownState};
pub use store::{replica_url, EntityKey, EventQuery, FailedFilter, FailedItem, Found, FoundRow, IngestBatch, RequestRow, RunRow};
