//! What a snapshot poll of N unchanged records costs (`profile = "snapshot"`): the initial load,
//! then a second poll over the same snapshot, with its time, the process's peak RSS during it
//! (VmHWM, reset before the poll through /proc/self/clear_refs) and the bytes it wrote
//! (/proc/self/io write_bytes). It should write next to nothing. Linux only; asserts nothing.
//!
//!     cargo run --release -p syncmon-core --example snapshot_poll [-- 100000]
//!
//! The simulated source runs in the same process (its records and the pages it renders count in
//! the RSS, not in the bytes written: it writes no file).

use std::sync::Arc;
use std::time::Instant;
use syncmon_core::config::Config;
use syncmon_core::Syncmon;
use syncmon_mock::{FeedSpec, MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

fn proc_field(file: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').split_whitespace().next().unwrap_or("0").parse().unwrap_or(0)))
        .unwrap_or(0)
}

fn written_bytes() -> u64 {
    proc_field("/proc/self/io", "write_bytes")
}

/// Resets the peak RSS to the current RSS (Linux 4.0 and later).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[tokio::main]
async fn main() {
    let records: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mock = MockServer::start(MockConfig { entities: Vec::new(), feeds: vec![FeedSpec::snapshot("prices", records)], ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[connection]]\nid = \"bench\"\nbase_url = \"{}\"\nrequests_per_second = 100000\nprofile = \"snapshot\"\n\
         [connection.cursor]\nrecords_pointer = \"/items\"\npage_size_param = \"limit\"\nnext_url_pointer = \"/links/next\"\n\
         [[connection.entity]]\nname = \"prices\"\npage_size = 1000\n",
        mock.base_url()
    );
    let sm = Arc::new(Syncmon::open(Config::parse(&text).unwrap(), dir.path()).unwrap());
    let sel = sm.select(None, &["prices".to_string()]).unwrap();
    let db = dir.path().join("syncmon.db");
    let files = || ["", "-wal"].iter().map(|s| std::fs::metadata(format!("{}{s}", db.display())).map(|m| m.len()).unwrap_or(0)).sum::<u64>();

    let (t, w) = (Instant::now(), written_bytes());
    let load = sm.sync_once(&sel, &CancellationToken::new()).await.remove(0);
    println!("snapshot initial load: {records} records in {:.2} s, wrote {} ({})", t.elapsed().as_secs_f64(), mb(written_bytes() - w), load.summary());

    let rss_before = proc_field("/proc/self/status", "VmRSS") * 1024;
    reset_peak_rss();
    let (t, w, size) = (Instant::now(), written_bytes(), files());
    let poll = sm.sync_once(&sel, &CancellationToken::new()).await.remove(0);
    let secs = t.elapsed().as_secs_f64();
    let wrote = written_bytes() - w;
    let peak = proc_field("/proc/self/status", "VmHWM") * 1024;
    println!(
        "snapshot poll, {records} unchanged records: {secs:.2} s ({:.0} records/s), peak RSS {} (before the poll {}), wrote {} ({} bytes/record), \
         database files {:+} bytes; {}",
        records as f64 / secs,
        mb(peak),
        mb(rss_before),
        mb(wrote),
        wrote / records.max(1) as u64,
        files() as i64 - size as i64,
        poll.summary()
    );
}
