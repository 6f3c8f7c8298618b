//! The `cursor` profile against sources shaped unlike the reference one: other field names,
//! integer versions, records under a JSON pointer or as a top-level array, and each way of
//! finding the next page.

mod common;

use common::*;
use syncmon_mock::{MockConfig, MockServer};

const ALT_FIELDS: &str = "id_field = \"uid\"\nversion_field = \"seq\"\nfilter_param = \"since\"\npage_size_param = \"limit\"\n";

async fn replicate(shape: &str, cursor: &str) {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 345)]), start_version: 99_900, ..Default::default() }).await.unwrap();
    let base = format!("{}/alt/{shape}", mock.base_url());
    let conn = format!("profile = \"cursor\"\n[connection.cursor]\n{ALT_FIELDS}{cursor}\n");
    let text = config_text(&base, &["items"], &conn, "");
    let h = Harness::with_config(mock, text).await;
    let r = h.sync_ok("items").await;
    assert!(r.pages >= 4, "{shape}: 345 records in pages of 100 ({} pages)", r.pages);
    h.mock.mutate("items", 30);
    h.mock.insert("items", 5);
    h.sync_ok("items").await;

    let replica = h.replica("items");
    let source = h.source("items");
    assert_eq!(replica.len(), source.len(), "{shape}");
    for (id, (version, _)) in source {
        let (rv, data) = replica.get(&id).unwrap_or_else(|| panic!("{shape}: {id} missing"));
        assert_eq!(rv, &version, "{shape}: {id}");
        assert_eq!(data["uid"].as_str(), Some(id.as_str()), "{shape}: the replica keeps the source's own record");
    }
}

#[tokio::test]
async fn a_token_in_the_body_pages_through_records_under_a_pointer() {
    replicate("token", "records_pointer = \"/result/items\"\nnext_token_pointer = \"/paging/next\"\nnext_token_param = \"token\"").await;
}

#[tokio::test]
async fn a_link_header_pages_through_a_top_level_array() {
    replicate("link", "next = \"link-header\"").await;
}

#[tokio::test]
async fn a_short_page_ends_the_feed() {
    replicate("short", "next = \"short-page\"\nextra_query = \"order=seq\"").await;
}
