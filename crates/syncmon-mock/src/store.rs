//! The simulated database: per record only its version, revision and liveness (ids and fields are
//! derived), an index by version per entity, and one version counter shared by all entities.

use crate::gen::{self, Keys, Template};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

#[derive(Clone, Copy, Debug)]
pub struct Rec {
    pub version: u64,
    pub rev: u32,
    pub live: bool,
    /// Served without its `rowVersion` in every version: a record that never passes validation.
    pub poisoned: bool,
}

/// What rendering a record needs, copied out of the lock.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub idx: u32,
    pub version: u64,
    pub rev: u32,
    pub poisoned: bool,
}

/// How an entity's records are rendered (copied out of the lock).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub keys: Keys,
    pub template: Template,
}

pub struct Entity {
    pub name: String,
    pub shape: Shape,
    recs: Vec<Rec>,
    by_version: BTreeMap<u64, u32>,
    live: usize,
    /// The highest version served in a page of this entity.
    pub max_served: u64,
}

pub struct Store {
    pub entities: Vec<Entity>,
    start_version: u64,
    next_version: u64,
    late: HashSet<u64>,
    pub rng: StdRng,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `id` + `rowVersion` (a string).
    RowVersion,
    /// `uid` + `seq` (an integer).
    Alt,
}

/// Per-record damage for the record-level faults.
#[derive(Clone, Copy, Debug, Default)]
pub struct Damage {
    pub no_id: bool,
    pub no_version: bool,
}

pub fn render(out: &mut String, shape: &Shape, row: &Row, style: Style, damage: Damage) {
    let damage = Damage { no_version: damage.no_version || row.poisoned, ..damage };
    out.push('{');
    let mut first = true;
    let (id_field, version_field) = match style {
        Style::RowVersion => ("\"id\":\"", "\"rowVersion\":\""),
        Style::Alt => ("\"uid\":\"", "\"seq\":"),
    };
    if !damage.no_id {
        out.push_str(id_field);
        gen::write_uuid(out, shape.keys.id(row.idx));
        out.push('"');
        first = false;
    }
    if !damage.no_version {
        if !first {
            out.push(',');
        }
        out.push_str(version_field);
        out.push_str(itoa_u64(row.version, &mut [0u8; 20]));
        if style == Style::RowVersion {
            out.push('"');
        }
        first = false;
    }
    let start = out.len();
    gen::write_fields(out, shape.template, &shape.keys, row.idx, row.rev);
    if first && out.len() > start {
        // No leading field was written: drop the leading comma of the fields.
        out.remove(start);
    }
    out.push('}');
}

fn itoa_u64(mut v: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("digits")
}

impl Store {
    pub fn new(seed: u64, start_version: u64, specs: &[(String, usize)]) -> Store {
        let mut next = start_version;
        let mut entities = Vec::with_capacity(specs.len());
        for (name, n) in specs {
            let mut recs = Vec::with_capacity(*n);
            let mut by_version = BTreeMap::new();
            for idx in 0..*n {
                recs.push(Rec { version: next, rev: 0, live: true, poisoned: false });
                by_version.insert(next, idx as u32);
                next += 2;
            }
            entities.push(Entity {
                name: name.clone(),
                shape: Shape { keys: Keys::new(seed, name), template: Template::for_entity(name) },
                recs,
                by_version,
                live: *n,
                max_served: 0,
            });
        }
        Store { entities, start_version, next_version: next, late: HashSet::new(), rng: StdRng::seed_from_u64(seed ^ 0x5EED_5EED_5EED_5EED) }
    }

    pub fn entity_index(&self, name: &str) -> Option<usize> {
        self.entities.iter().position(|e| e.name == name)
    }

    fn take_version(&mut self) -> u64 {
        let v = self.next_version;
        self.next_version += 2;
        v
    }

    /// Records with a version above `after` (all when None), at most `limit`, in version order;
    /// and whether more follow.
    pub fn page(&mut self, e: usize, after: Option<u64>, limit: usize) -> (Vec<Row>, bool) {
        let ent = &mut self.entities[e];
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        let mut rows = Vec::with_capacity(limit.min(ent.live) + 1);
        let mut more = false;
        for (&version, &idx) in ent.by_version.range((lower, Bound::Unbounded)) {
            if rows.len() == limit {
                more = true;
                break;
            }
            let rec = &ent.recs[idx as usize];
            rows.push(Row { idx, version, rev: rec.rev, poisoned: rec.poisoned });
        }
        if let Some(last) = rows.last() {
            ent.max_served = ent.max_served.max(last.version);
        }
        (rows, more)
    }

    pub fn get(&self, e: usize, id: u128) -> Option<Row> {
        let ent = &self.entities[e];
        let idx = ent.shape.keys.index_of(id)?;
        let rec = ent.recs.get(idx as usize)?;
        rec.live.then_some(Row { idx, version: rec.version, rev: rec.rev, poisoned: rec.poisoned })
    }

    pub fn live_rows(&self, e: usize) -> Vec<Row> {
        let ent = &self.entities[e];
        ent.recs.iter().enumerate().filter(|(_, r)| r.live).map(|(i, r)| Row { idx: i as u32, version: r.version, rev: r.rev, poisoned: r.poisoned }).collect()
    }

    pub fn live_count(&self, e: usize) -> usize {
        self.entities[e].live
    }

    pub fn max_version(&self, e: usize) -> Option<u64> {
        self.entities[e].by_version.keys().next_back().copied()
    }

    /// Up to `n` distinct random live record indexes.
    fn pick_live(&mut self, e: usize, n: usize) -> Vec<u32> {
        let live = self.entities[e].live;
        let n = n.min(live);
        if n == 0 {
            return Vec::new();
        }
        let len = self.entities[e].recs.len();
        let mut chosen = Vec::with_capacity(n);
        let mut seen = HashSet::with_capacity(n);
        if n * 2 <= live {
            let mut attempts = n * 64 + 1024;
            while chosen.len() < n && attempts > 0 {
                attempts -= 1;
                let idx = self.rng.gen_range(0..len) as u32;
                if self.entities[e].recs[idx as usize].live && seen.insert(idx) {
                    chosen.push(idx);
                }
            }
            if chosen.len() == n {
                return chosen;
            }
        }
        // Many wanted, or many deleted: sample from the full list of live records.
        let all: Vec<u32> = self.entities[e].recs.iter().enumerate().filter(|(i, r)| r.live && !seen.contains(&(*i as u32))).map(|(i, _)| i as u32).collect();
        let need = n - chosen.len();
        for i in rand::seq::index::sample(&mut self.rng, all.len(), need.min(all.len())).into_iter() {
            chosen.push(all[i]);
        }
        chosen
    }

    pub fn mutate(&mut self, e: usize, n: usize) -> Vec<u32> {
        let picked = self.pick_live(e, n);
        for &idx in &picked {
            let v = self.take_version();
            let ent = &mut self.entities[e];
            let rec = &mut ent.recs[idx as usize];
            ent.by_version.remove(&rec.version);
            rec.version = v;
            rec.rev += 1;
            ent.by_version.insert(v, idx);
        }
        picked
    }

    fn push_record(&mut self, e: usize, version: u64, poisoned: bool) -> u32 {
        let ent = &mut self.entities[e];
        let idx = u32::try_from(ent.recs.len()).expect("fewer than 2^32 records");
        ent.recs.push(Rec { version, rev: 0, live: true, poisoned });
        ent.by_version.insert(version, idx);
        ent.live += 1;
        idx
    }

    pub fn insert(&mut self, e: usize, n: usize) -> Vec<u32> {
        self.insert_as(e, n, false)
    }

    /// New records that are served without `rowVersion` whatever happens to them later (poison).
    pub fn insert_poisoned(&mut self, e: usize, n: usize) -> Vec<u32> {
        self.insert_as(e, n, true)
    }

    fn insert_as(&mut self, e: usize, n: usize, poisoned: bool) -> Vec<u32> {
        (0..n)
            .map(|_| {
                let v = self.take_version();
                self.push_record(e, v, poisoned)
            })
            .collect()
    }

    /// The live poisoned records' indexes.
    pub fn poisoned(&self, e: usize) -> Vec<u32> {
        let ent = &self.entities[e];
        ent.recs.iter().enumerate().filter(|(_, r)| r.live && r.poisoned).map(|(i, _)| i as u32).collect()
    }

    pub fn delete(&mut self, e: usize, n: usize) -> Vec<u32> {
        let picked = self.pick_live(e, n);
        let ent = &mut self.entities[e];
        for &idx in &picked {
            let rec = &mut ent.recs[idx as usize];
            rec.live = false;
            ent.by_version.remove(&rec.version);
            ent.live -= 1;
        }
        picked
    }

    pub fn delete_all(&mut self, e: usize) {
        let ent = &mut self.entities[e];
        for rec in ent.recs.iter_mut() {
            rec.live = false;
        }
        ent.by_version.clear();
        ent.live = 0;
    }

    fn version_used(&self, v: u64) -> bool {
        (v >= self.start_version && (v - self.start_version).is_multiple_of(2) && v < self.next_version) || self.late.contains(&v)
    }

    /// A new record whose version is below the highest one served for the entity and unused
    /// (a transaction that committed late).
    pub fn late_commit(&mut self, e: usize) -> Row {
        let ceiling = match self.entities[e].max_served {
            0 => self.max_version(e).unwrap_or(0),
            v => v,
        };
        let mut found = None;
        let mut v = ceiling;
        for _ in 0..100_000 {
            if v <= 1 {
                break;
            }
            v -= 1;
            if !self.version_used(v) {
                found = Some(v);
                break;
            }
        }
        let v = match found {
            Some(v) => {
                self.late.insert(v);
                v
            }
            None => self.take_version(),
        };
        let idx = self.push_record(e, v, false);
        Row { idx, version: v, rev: 0, poisoned: false }
    }

    /// The most recently changed live record of an entity.
    pub fn newest(&self, e: usize) -> Option<Row> {
        let ent = &self.entities[e];
        let (&version, &idx) = ent.by_version.iter().next_back()?;
        let rec = &ent.recs[idx as usize];
        Some(Row { idx, version, rev: rec.rev, poisoned: rec.poisoned })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shapes() {
        let s = Store::new(1, 999_998, &[("items".into(), 3)]);
        let shape = s.entities[0].shape;
        let row = Row { idx: 2, version: 1_000_002, rev: 0, poisoned: false };
        for style in [Style::RowVersion, Style::Alt] {
            for (no_id, no_version) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut out = String::new();
                render(&mut out, &shape, &row, style, Damage { no_id, no_version });
                let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
                let (idf, vf) = if style == Style::RowVersion { ("id", "rowVersion") } else { ("uid", "seq") };
                assert_eq!(v.get(idf).is_none(), no_id);
                assert_eq!(v.get(vf).is_none(), no_version);
                if !no_version {
                    if style == Style::RowVersion {
                        assert_eq!(v[vf], "1000002");
                    } else {
                        assert_eq!(v[vf], 1_000_002);
                    }
                }
            }
        }
    }

    #[test]
    fn late_commit_is_below_the_served_maximum_and_unused() {
        let mut s = Store::new(1, 1000, &[("items".into(), 10), ("customers".into(), 10)]);
        let (rows, _) = s.page(0, None, 5);
        let max = rows.last().unwrap().version;
        let mut seen = HashSet::new();
        for _ in 0..5 {
            let r = s.late_commit(0);
            assert!(r.version < max);
            assert!(seen.insert(r.version));
            assert!(!(r.version >= 1000 && (r.version - 1000).is_multiple_of(2)));
        }
    }
}
