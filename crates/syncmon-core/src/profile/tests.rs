//! Profile unit tests: first URLs, page parsing and record validation per profile.

use super::*;
use crate::config::Config;

fn profile(extra_conn: &str, extra_entity: &str) -> Profile {
    let text = format!(
        "[[connection]]\nid = \"c\"\nbase_url = \"http://127.0.0.1:9/api\"\n{extra_conn}\n[[connection.entity]]\nname = \"items\"\npage_size = 2\n{extra_entity}\n"
    );
    let cfg = Config::parse(&text).unwrap();
    Profile::new(&cfg.connections[0], &cfg.connections[0].entities[0]).unwrap()
}

#[test]
fn the_reference_first_url_asks_for_changes_since_the_checkpoint() {
    let p = profile("", "");
    let u = p.first_url(&RowVersion::from(1234));
    assert_eq!(u.as_str(), "http://127.0.0.1:9/api/items?sync=true&lastRowVersion=1234&pageSize=2");
}

#[test]
fn a_reference_page_yields_records_and_the_next_url() {
    let p = profile("", "");
    let body = br#"{"morePages":true,"nextPageKey":"abc","nextPageURL":"http://127.0.0.1:9/api/items?pageKey=abc",
        "data":[{"id":"a","rowVersion":"999999","x":{"y":1}},{"id":"b","rowVersion":"1000000"}]}"#;
    let page = p.parse_page(body, &p.first_url(&RowVersion::zero()), None).unwrap();
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.max_version.unwrap().as_str(), "1000000");
    assert_eq!(page.records[0].data, r#"{"id":"a","rowVersion":"999999","x":{"y":1}}"#);
    assert_eq!(page.next.unwrap().as_str(), "http://127.0.0.1:9/api/items?pageKey=abc");
}

#[test]
fn the_end_of_the_feed_ignores_an_empty_key() {
    let p = profile("", "");
    let page = p.parse_page(br#"{"morePages":false,"nextPageKey":"","data":[]}"#, &p.first_url(&RowVersion::zero()), None).unwrap();
    assert!(page.next.is_none());
}

#[test]
fn records_without_id_or_version_are_rejected_not_fatal() {
    let p = profile("", "required_fields = [\"name\"]");
    let body = br#"{"morePages":false,"data":[{"rowVersion":"5"},{"id":"b"},{"id":"c","rowVersion":"x7"},{"id":"d","rowVersion":"8"},{"id":"e","rowVersion":"9","name":"ok"},7]}"#;
    let page = p.parse_page(body, &p.first_url(&RowVersion::zero()), None).unwrap();
    let kinds: Vec<_> = page.rejected.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["missing_id", "missing_row_version", "missing_row_version", "missing_field", "not_an_object"]);
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.rejected[3].id.as_deref(), Some("d"));
}

#[test]
fn a_next_url_on_another_server_is_refused() {
    let p = profile("", "");
    let body = br#"{"morePages":true,"nextPageURL":"https://evil.example.com/steal","data":[]}"#;
    let err = p.parse_page(body, &p.first_url(&RowVersion::zero()), None).unwrap_err();
    assert!(err.contains("another server"), "{err}");
}

#[test]
fn cursor_token_paging_repeats_the_first_query() {
    let p = profile(
        "profile = \"cursor\"\n[connection.cursor]\nid_field = \"uid\"\nversion_field = \"seq\"\nrecords_pointer = \"/result/items\"\nfilter_param = \"since\"\npage_size_param = \"limit\"\nnext_token_pointer = \"/paging/next\"\nnext_token_param = \"token\"\nextra_query = \"order=seq\"",
        "",
    );
    let first = p.first_url(&RowVersion::from(7));
    assert_eq!(first.as_str(), "http://127.0.0.1:9/api/items?since=7&limit=2&order=seq");
    let body = br#"{"result":{"items":[{"uid":"a","seq":8},{"uid":"b","seq":9}]},"paging":{"next":"T"}}"#;
    let page = p.parse_page(body, &first, None).unwrap();
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.next.unwrap().as_str(), "http://127.0.0.1:9/api/items?since=7&limit=2&order=seq&token=T");
    let end = br#"{"result":{"items":[]},"paging":{"next":""}}"#;
    assert!(p.parse_page(end, &first, None).unwrap().next.is_none());
}

#[test]
fn link_header_and_short_page_paging() {
    let p = profile("profile = \"cursor\"\n[connection.cursor]\nfilter_param = \"since\"\nnext = \"link-header\"", "");
    let first = p.first_url(&RowVersion::zero());
    let page = p
        .parse_page(br#"[{"id":"a","rowVersion":1}]"#, &first, Some(r#"<http://127.0.0.1:9/api/items?c=2>; rel="next", <http://127.0.0.1:9/x>; rel="prev""#))
        .unwrap();
    assert_eq!(page.next.unwrap().as_str(), "http://127.0.0.1:9/api/items?c=2");

    let p = profile("profile = \"cursor\"\n[connection.cursor]\nfilter_param = \"since\"\npage_size_param = \"limit\"\nnext = \"short-page\"", "");
    let full = p.parse_page(br#"[{"id":"a","rowVersion":1},{"id":"b","rowVersion":3}]"#, &first, None).unwrap();
    assert_eq!(full.next.unwrap().as_str(), "http://127.0.0.1:9/api/items?since=3&limit=2");
    let short = p.parse_page(br#"[{"id":"c","rowVersion":4}]"#, &first, None).unwrap();
    assert!(short.next.is_none());
}

#[test]
fn a_snapshot_always_starts_at_the_first_page_and_reads_no_version() {
    let p = profile(
        "profile = \"snapshot\"\n[connection.cursor]\nrecords_pointer = \"/items\"\npage_size_param = \"limit\"\nnext_url_pointer = \"/links/next\"",
        "",
    );
    let first = p.first_url(&RowVersion::from(99));
    assert_eq!(first.as_str(), "http://127.0.0.1:9/api/items?limit=2", "no filter, whatever the checkpoint");
    let body = br#"{"items":[{"id":"a","price":1},{"id":"b","rowVersion":"x"},{"price":3}],"links":{"next":"http://127.0.0.1:9/api/items?page=2&limit=2"}}"#;
    let page = p.parse_page(body, &first, None).unwrap();
    assert_eq!(page.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "b"], "records need an id, not a version");
    assert_eq!(page.rejected[0].kind, "missing_id");
    assert!(page.max_version.is_none());
    assert_eq!(page.next.unwrap().as_str(), "http://127.0.0.1:9/api/items?page=2&limit=2");
}

#[test]
fn a_timestamp_feed_is_asked_inclusively_in_its_own_format_and_from_the_start_without_a_filter() {
    let conn = "profile = \"timestamp\"\noverlap = \"1500ms\"\n[connection.cursor]\nversion_field = \"modified\"\nrecords_pointer = \"/items\"\n\
                filter_param = \"since\"\nnext_url_pointer = \"/next\"";
    let p = profile(conn, "");
    assert_eq!(p.first_url(&RowVersion::zero()).as_str(), "http://127.0.0.1:9/api/items", "a first read asks for everything");
    let at = RowVersion::from(1_704_067_205_000_000);
    assert_eq!(p.first_url(&at).as_str(), "http://127.0.0.1:9/api/items?since=2024-01-01T00%3A00%3A03.500Z", "the checkpoint less the overlap");
    assert_eq!(p.display_version(&at), "2024-01-01T00:00:05Z");
    let body = br#"{"items":[{"id":"a","modified":"2024-01-01T00:00:05Z"},{"id":"b","modified":1704067205000},{"id":"c"}],"next":null}"#;
    let page = p.parse_page(body, &p.first_url(&at), None).unwrap();
    assert_eq!((page.records.len(), page.max_version), (1, Some(at)));
    assert!(page.rejected[0].message.contains("set timestamp_format = \"epoch_millis\""), "{}", page.rejected[0].message);
    assert_eq!(page.rejected[1].message, "the record has no `modified`");

    let p = profile(&conn.replace("next_url_pointer", "timestamp_format = \"epoch_seconds\"\nnext_url_pointer"), "");
    assert_eq!(p.first_url(&RowVersion::from(1_704_067_205_000_000)).as_str(), "http://127.0.0.1:9/api/items?since=1704067203");
    assert!(p.record_url("a").is_none(), "no single-record URL is known for this profile");
}

#[test]
fn garbage_bodies_are_errors() {
    let p = profile("", "");
    let first = p.first_url(&RowVersion::zero());
    assert!(p.parse_page(b"<html>502 Bad Gateway</html>", &first, None).is_err());
    assert!(p.parse_page(br#"{"morePages":true,"data":[{"id":"a""#, &first, None).is_err());
    assert!(p.parse_page(br#"{"morePages":true,"data":[]}"#, &first, None).is_err());
}
