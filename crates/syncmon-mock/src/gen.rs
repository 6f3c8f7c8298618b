//! Deterministic synthetic data: record ids (an invertible mapping from the record index, so no
//! id → index map is kept), and the record fields, written straight into a byte buffer from
//! (seed, entity, index, revision).

use std::fmt::Write as _;

const MASK62: u64 = (1 << 62) - 1;
const C1: u64 = 0x9E37_79B9_7F4A_7C15 | 1;
const C2: u64 = 0xBF58_476D_1CE4_E5B9 | 1;

pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub fn hash_str(s: &str) -> u64 {
    // FNV-1a, then mixed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    splitmix(h)
}

fn mod_inverse(c: u64) -> u64 {
    // Newton iteration for the inverse of an odd number modulo 2^64.
    let mut inv = c;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(c.wrapping_mul(inv)));
    }
    inv
}

fn unxorshift(y: u64, s: u32) -> u64 {
    let mut x = y;
    let mut shift = s;
    while shift < 62 {
        x ^= y >> shift;
        shift += s;
    }
    x & MASK62
}

/// Per-entity key material for ids and fields.
#[derive(Clone, Copy, Debug)]
pub struct Keys {
    pub seed: u64,
    pub ent: u64,
    k1: u64,
    k2: u64,
}

impl Keys {
    pub fn new(seed: u64, entity: &str) -> Keys {
        let ent = splitmix(seed ^ hash_str(entity));
        Keys { seed, ent, k1: splitmix(ent ^ 1) & MASK62, k2: splitmix(ent ^ 2) & MASK62 }
    }

    fn perm(&self, idx: u64) -> u64 {
        let mut x = (idx.wrapping_add(self.k1)) & MASK62;
        x = x.wrapping_mul(C1) & MASK62;
        x ^= x >> 29;
        x = (x.wrapping_add(self.k2)) & MASK62;
        x = x.wrapping_mul(C2) & MASK62;
        x ^= x >> 31;
        x
    }

    fn unperm(&self, y: u64) -> u64 {
        let mut x = unxorshift(y & MASK62, 31);
        x = x.wrapping_mul(mod_inverse(C2)) & MASK62;
        x = x.wrapping_sub(self.k2) & MASK62;
        x = unxorshift(x, 29);
        x = x.wrapping_mul(mod_inverse(C1)) & MASK62;
        x.wrapping_sub(self.k1) & MASK62
    }

    /// The UUID (v4 layout) of record `idx`.
    pub fn id(&self, idx: u32) -> u128 {
        let hi = (splitmix(self.ent ^ (idx as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)) & !0xF000) | 0x4000;
        let lo = self.perm(idx as u64) | (0b10 << 62);
        ((hi as u128) << 64) | lo as u128
    }

    /// The record index an id stands for, if it is one of ours (the caller still checks the index
    /// exists and that `id(idx) == id`).
    pub fn index_of(&self, id: u128) -> Option<u32> {
        let lo = id as u64;
        if lo >> 62 != 0b10 {
            return None;
        }
        let idx = self.unperm(lo);
        let idx = u32::try_from(idx).ok()?;
        (self.id(idx) == id).then_some(idx)
    }

    fn rng(&self, idx: u32, rev: u32, salt: u64) -> u64 {
        splitmix(self.ent ^ splitmix((idx as u64) << 32 | rev as u64) ^ salt.wrapping_mul(0xA076_1D64_78BD_642F))
    }
}

pub fn write_uuid(out: &mut String, id: u128) {
    let mut buf = [0u8; 36];
    out.push_str(uuid::Uuid::from_u128(id).as_hyphenated().encode_lower(&mut buf));
}

pub fn uuid_string(id: u128) -> String {
    uuid::Uuid::from_u128(id).as_hyphenated().to_string()
}

fn hash_uuid(h: u64, h2: u64) -> u128 {
    let hi = (splitmix(h) & !0xF000) | 0x4000;
    let lo = (splitmix(h2) & MASK62) | (0b10 << 62);
    ((hi as u128) << 64) | lo as u128
}

/// Writes a JSON string literal (escaping as needed).
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// Days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01 (the inverse of `civil_from_days`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u64;
    let mp = if m > 2 { m - 3 } else { m + 9 } as u64;
    let doy = (153 * mp + 2) / 5 + d as u64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

/// Writes an RFC 3339 UTC timestamp (`2024-05-01T10:20:30Z`, or with milliseconds).
pub fn write_datetime(out: &mut String, unix_secs: i64, millis: Option<u32>) {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if let Some(ms) = millis {
        let _ = write!(out, ".{ms:03}");
    }
    out.push('Z');
}

pub fn datetime_string(unix_secs: i64, millis: Option<u32>) -> String {
    let mut s = String::with_capacity(24);
    write_datetime(&mut s, unix_secs, millis);
    s
}

fn write_date(out: &mut String, unix_secs: i64) {
    let (y, m, d) = civil_from_days(unix_secs.div_euclid(86_400));
    let _ = write!(out, "\"{y:04}-{m:02}-{d:02}\"");
}

fn money(out: &mut String, cents: u64) {
    let _ = write!(out, "{}.{:02}", cents / 100, cents % 100);
}

fn pick<'a>(list: &[&'a str], h: u64) -> &'a str {
    list[(h % list.len() as u64) as usize]
}

const ADJ: &[&str] = &[
    "ATHENS",
    "PARIS",
    "LONDON",
    "ROME",
    "MUNICH",
    "OSLO",
    "AMSTERDAM",
    "BERLIN",
    "MADRID",
    "SEVILLE",
    "TOKYO",
    "LISBON",
    "Classic",
    "Modern",
    "Rustic",
    "Compact",
    "Deluxe",
    "Ergonomic",
];
const NOUN: &[&str] = &[
    "Desk",
    "Mobile Pedestal",
    "Swivel Chair",
    "Conference Table",
    "Guest Chair",
    "Storage Unit",
    "Whiteboard",
    "Lamp",
    "Bookcase",
    "Filing Cabinet",
    "Monitor Arm",
    "Footrest",
    "Coat Rack",
    "Side Table",
];
const MATERIAL: &[&str] = &["oak", "walnut", "steel", "aluminium", "beech", "bamboo", "glass", "ash", "birch", "recycled plastic"];
const CATEGORY: &[&str] = &["TABLE", "CHAIR", "STORAGE", "LIGHTING", "ACCESSORY", "MISC"];
const ITEM_TYPE: &[&str] = &["Inventory", "Inventory", "Inventory", "Service", "Non-Inventory"];
const UOM: &[(&str, &str, &str)] = &[("PCS", "Piece", "pcs"), ("BOX", "Box", "box"), ("SET", "Set", "set"), ("PACK", "Pack", "pk")];
const TAX_GROUP: &[&str] = &["TAXABLE", "FURNITURE", "MATERIALS", "LABOR", "NONTAXABLE"];
const COMPANY_A: &[&str] = &[
    "Adatum",
    "Trey",
    "School of Fine Art",
    "Alpine Ski",
    "Relecloud",
    "Fabrikam",
    "Contoso",
    "Northwind",
    "Tailspin",
    "Wide World",
    "Proseware",
    "Litware",
    "Coho",
    "Lamna",
    "Woodgrove",
];
const COMPANY_B: &[&str] = &["Corporation", "Research", "House", "Traders", "Importers", "Logistics", "Retail", "GmbH", "Ltd.", "& Sons"];
const STREET: &[&str] = &["Main Street", "Oak Avenue", "Harbour Road", "Station Road", "Mill Lane", "Church Street", "Park Drive", "King's Way"];
const CITY: &[(&str, &str, &str, &str)] = &[
    ("Atlanta", "GA", "US", "31772"),
    ("Chicago", "IL", "US", "61236"),
    ("Miami", "FL", "US", "37125"),
    ("Seattle", "WA", "US", "98101"),
    ("London", "", "GB", "W2 8HG"),
    ("Amsterdam", "", "NL", "1011 AB"),
    ("Munich", "BY", "DE", "80331"),
    ("Lyon", "", "FR", "69002"),
];
const FIRST: &[&str] = &["Jim", "Annette", "Mark", "Sofia", "Hiroshi", "Lena", "Pedro", "Aisha", "Tom", "Ingrid"];
const LAST: &[&str] = &["Olive", "Hill", "Hanson", "Berg", "Tanaka", "Moreau", "Silva", "Khan", "Larsen", "Novak"];
const CURRENCY: &[&str] = &["USD", "USD", "USD", "EUR", "GBP"];
const ORDER_STATUS: &[&str] = &["Draft", "Open", "Open", "Released", "In Review"];
const SALESPERSON: &[&str] = &["PS", "JO", "BC", "MH", "OF"];

/// Base time of the synthetic data set: 2024-01-01T00:00:00Z.
const EPOCH: i64 = 1_704_067_200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    Item,
    Customer,
    SalesOrder,
}

impl Template {
    pub fn for_entity(name: &str) -> Template {
        let n = name.to_ascii_lowercase();
        if n.contains("customer") || n.contains("vendor") || n.contains("contact") {
            Template::Customer
        } else if n.contains("order") || n.contains("invoice") || n.contains("sales") {
            Template::SalesOrder
        } else {
            Template::Item
        }
    }
}

/// Writes the record fields (after the id and version fields: each field starts with a comma).
pub fn write_fields(out: &mut String, t: Template, k: &Keys, idx: u32, rev: u32) {
    let stable = |salt: u64| k.rng(idx, 0, salt);
    let changing = |salt: u64| k.rng(idx, rev, salt);
    let modified = EPOCH + (idx as i64 % 500_000) * 17 + rev as i64 * 3_607 + (changing(99) % 3600) as i64;
    match t {
        Template::Item => {
            let _ = write!(out, ",\"number\":\"{}-{}\"", 1000 + idx / 26, (b'A' + (idx % 26) as u8) as char);
            let name_h = stable(1);
            let (adj, noun, material) = (pick(ADJ, name_h), pick(NOUN, name_h >> 16), pick(MATERIAL, name_h >> 32));
            let _ = write!(out, ",\"displayName\":\"{adj} {noun}\",\"displayName2\":\"{material}\"");
            let _ = write!(out, ",\"type\":\"{}\"", pick(ITEM_TYPE, stable(2)));
            let cat = pick(CATEGORY, stable(3));
            let _ = write!(out, ",\"itemCategoryId\":\"");
            write_uuid(out, hash_uuid(k.ent ^ hash_str(cat), 3));
            let _ = write!(out, "\",\"itemCategoryCode\":\"{cat}\"");
            let _ = write!(out, ",\"blocked\":{}", changing(4) % 29 == 0);
            let _ = write!(out, ",\"gtin\":\"{:013}\"", stable(5) % 10_000_000_000_000);
            out.push_str(",\"inventory\":");
            money(out, changing(6) % 250_000);
            let base = 500 + stable(7) % 150_000;
            out.push_str(",\"unitPrice\":");
            money(out, base + changing(8) % (base / 10 + 1));
            out.push_str(",\"priceIncludesTax\":false,\"unitCost\":");
            money(out, base * 6 / 10 + changing(9) % (base / 20 + 1));
            let _ = write!(out, ",\"taxGroupCode\":\"{}\"", pick(TAX_GROUP, stable(10)));
            let uom = UOM[(stable(11) % UOM.len() as u64) as usize];
            out.push_str(",\"baseUnitOfMeasureId\":\"");
            write_uuid(out, hash_uuid(k.ent ^ hash_str(uom.0), 11));
            let _ = write!(
                out,
                "\",\"baseUnitOfMeasure\":{{\"code\":\"{}\",\"displayName\":\"{}\",\"symbol\":\"{}\",\"unitConversion\":null}}",
                uom.0, uom.1, uom.2
            );
            let _ = write!(out, ",\"generalProductPostingGroupCode\":\"RETAIL\",\"inventoryPostingGroupCode\":\"RESALE\"");
            let _ = write!(out, ",\"vendorNumber\":\"V{:05}\"", 10_000 + stable(12) % 90_000);
            let _ = write!(
                out,
                ",\"description\":\"{adj} {noun} in {material}, {} finish. Assembled size {}x{}x{} cm, {} kg. Revision {rev}.\"",
                pick(&["matte", "satin", "gloss", "natural", "brushed"], changing(13)),
                40 + stable(14) % 160,
                30 + stable(15) % 90,
                40 + stable(16) % 120,
                1 + stable(17) % 60,
            );
            out.push_str(",\"lastModifiedDateTime\":\"");
            write_datetime(out, modified, Some((changing(18) % 1000) as u32));
            out.push('"');
        }
        Template::Customer => {
            let _ = write!(out, ",\"number\":\"C{:05}\"", 10_000 + idx);
            let h = stable(1);
            let person = h % 5 == 0;
            out.push_str(",\"displayName\":");
            let name = if person {
                format!("{} {}", pick(FIRST, h >> 8), pick(LAST, h >> 16))
            } else {
                format!("{} {}", pick(COMPANY_A, h >> 8), pick(COMPANY_B, h >> 16))
            };
            json_str(out, &name);
            let _ = write!(out, ",\"type\":\"{}\"", if person { "Person" } else { "Company" });
            let city = CITY[(stable(2) % CITY.len() as u64) as usize];
            let street_no = 1 + changing(3) % 400;
            let street = pick(STREET, changing(4));
            let _ = write!(
                out,
                ",\"address\":{{\"street\":\"{street_no} {street}\",\"city\":\"{}\",\"state\":\"{}\",\"countryLetterCode\":\"{}\",\"postalCode\":\"{}\"}}",
                city.0, city.1, city.2, city.3
            );
            let _ = write!(out, ",\"phoneNumber\":\"+1 {:03}-{:03}-{:04}\"", 200 + stable(5) % 700, stable(6) % 1000, changing(7) % 10_000);
            let slug: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
            let _ = write!(out, ",\"email\":\"info@{slug}.example\",\"website\":\"www.{slug}.example\"");
            let _ = write!(out, ",\"taxLiable\":{},\"taxAreaCode\":\"{}\"", stable(8) % 3 != 0, pick(&["ATLANTA", "CHICAGO", "EU", "UK", "NONTAX"], stable(9)));
            let _ = write!(out, ",\"currencyCode\":\"{}\"", pick(CURRENCY, stable(10)));
            out.push_str(",\"paymentTermsId\":\"");
            write_uuid(out, hash_uuid(k.ent ^ (stable(11) % 4), 11));
            out.push_str("\",\"shipmentMethodId\":\"");
            write_uuid(out, hash_uuid(k.ent ^ (stable(12) % 3), 12));
            let _ = write!(out, "\",\"blocked\":\"{}\"", if changing(13) % 31 == 0 { "All" } else { " " });
            out.push_str(",\"balanceDue\":");
            money(out, changing(14) % 5_000_000);
            out.push_str(",\"creditLimit\":");
            money(out, (stable(15) % 50) * 100_000);
            out.push_str(",\"lastModifiedDateTime\":\"");
            write_datetime(out, modified, Some((changing(18) % 1000) as u32));
            out.push('"');
        }
        Template::SalesOrder => {
            let _ = write!(out, ",\"number\":\"SO{:06}\",\"externalDocumentNumber\":\"PO-{}\"", 100_000 + idx, stable(1) % 1_000_000);
            let order_date = EPOCH + (idx as i64 % 700) * 86_400;
            out.push_str(",\"orderDate\":");
            write_date(out, order_date);
            out.push_str(",\"postingDate\":");
            write_date(out, order_date + (changing(2) % 3) as i64 * 86_400);
            let cust = (stable(3) % 5000) as u32;
            out.push_str(",\"customerId\":\"");
            write_uuid(out, hash_uuid(k.seed ^ hash_str("customers") ^ cust as u64, 3));
            let h = stable(4);
            let _ = write!(out, "\",\"customerNumber\":\"C{:05}\",\"customerName\":\"{} {}\"", 10_000 + cust, pick(COMPANY_A, h), pick(COMPANY_B, h >> 8));
            let city = CITY[(stable(5) % CITY.len() as u64) as usize];
            let _ = write!(
                out,
                ",\"sellToAddress\":{{\"street\":\"{} {}\",\"city\":\"{}\",\"state\":\"{}\",\"countryLetterCode\":\"{}\",\"postalCode\":\"{}\"}}",
                1 + stable(6) % 400,
                pick(STREET, stable(7)),
                city.0,
                city.1,
                city.2,
                city.3
            );
            let _ = write!(out, ",\"currencyCode\":\"{}\",\"pricesIncludeTax\":false", pick(CURRENCY, stable(8)));
            let _ = write!(out, ",\"salesperson\":\"{}\"", pick(SALESPERSON, stable(9)));
            out.push_str(",\"requestedDeliveryDate\":");
            write_date(out, order_date + (7 + changing(10) % 30) as i64 * 86_400);
            let _ = write!(out, ",\"status\":\"{}\",\"fullyShipped\":{}", pick(ORDER_STATUS, changing(11)), changing(12) % 7 == 0);
            let lines = 1 + changing(13) % 12;
            let net = lines * (1_000 + changing(14) % 90_000);
            let tax = net * 8 / 100;
            out.push_str(",\"lineCount\":");
            let _ = write!(out, "{lines}");
            out.push_str(",\"discountAmount\":");
            money(out, net / 50 * (changing(15) % 2));
            out.push_str(",\"totalAmountExcludingTax\":");
            money(out, net);
            out.push_str(",\"totalTaxAmount\":");
            money(out, tax);
            out.push_str(",\"totalAmountIncludingTax\":");
            money(out, net + tax);
            let _ = write!(out, ",\"phoneNumber\":\"+1 {:03}-555-{:04}\"", 200 + stable(16) % 700, stable(17) % 10_000);
            out.push_str(",\"lastModifiedDateTime\":\"");
            write_datetime(out, modified, Some((changing(18) % 1000) as u32));
            out.push('"');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_invert() {
        let k = Keys::new(42, "items");
        for idx in (0..5000u32).chain([u32::MAX - 1, 1_000_000, 123_456_789]) {
            let id = k.id(idx);
            assert_eq!(k.index_of(id), Some(idx));
            let s = uuid_string(id);
            assert_eq!(&s[14..15], "4");
            assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        }
        let other = Keys::new(42, "customers");
        assert_ne!(k.id(0), other.id(0));
        assert_eq!(k.index_of(other.id(7)), None);
    }

    #[test]
    fn dates() {
        assert_eq!(datetime_string(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(datetime_string(1_704_067_200 + 86_400 * 59 + 3661, Some(5)), "2024-02-29T01:01:01.005Z");
        for days in [-800_000, -1, 0, 59, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn fields_are_valid_json_of_realistic_size() {
        for (t, name) in [(Template::Item, "items"), (Template::Customer, "customers"), (Template::SalesOrder, "salesorders")] {
            let k = Keys::new(7, name);
            for idx in 0..200 {
                let mut s = String::from("{\"id\":\"x\"");
                write_fields(&mut s, t, &k, idx, idx % 3);
                s.push('}');
                let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
                assert!(v.as_object().unwrap().len() >= 16, "{name}: {s}");
                if t == Template::Item {
                    assert!(s.len() > 600 && s.len() < 1100, "{}", s.len());
                }
            }
        }
    }
}
