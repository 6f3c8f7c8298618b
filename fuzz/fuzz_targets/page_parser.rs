#![no_main]
//! Any bytes through both profiles' page parsers: no panic, and an accepted page is coherent.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use syncmon_core::config::Config;
use syncmon_core::profile::Profile;
use syncmon_core::RowVersion;

fn profiles() -> &'static [Profile; 2] {
    static P: OnceLock<[Profile; 2]> = OnceLock::new();
    P.get_or_init(|| {
        let make = |extra: &str| {
            let text = format!("[[connection]]\nid = \"c\"\nbase_url = \"http://127.0.0.1:9/api\"\n{extra}\n[[connection.entity]]\nname = \"items\"\n");
            let cfg = Config::parse(&text).unwrap();
            Profile::new(&cfg.connections[0], &cfg.connections[0].entities[0]).unwrap()
        };
        [
            make(""),
            make("profile = \"cursor\"\n[connection.cursor]\nid_field = \"uid\"\nversion_field = \"seq\"\nrecords_pointer = \"/result/items\"\nfilter_param = \"since\"\nnext_url_pointer = \"/result/next\"\n"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    for p in profiles() {
        let first = p.first_url(&RowVersion::zero());
        if let Ok(page) = p.parse_page(data, &first, None) {
            let max = page.records.iter().map(|r| r.version.clone()).chain(page.rejected.iter().filter_map(|r| r.version.clone())).max();
            assert_eq!(page.max_version, max);
            if let Some(next) = &page.next {
                assert_eq!(next.host_str(), Some("127.0.0.1"));
            }
        }
    }
});
