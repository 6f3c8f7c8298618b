#!/usr/bin/env python3
"""The plain script a competent user would write instead of Syncmon (the benchmark's baseline).

requests.Session over one keep-alive connection, the replication feed page by page
(sync=true&lastRowVersion=<checkpoint>&pageSize=1000, then nextPageURL), and per page ONE SQLite
transaction: an executemany upsert by id (INSERT ... ON CONFLICT(id) DO UPDATE) plus the
checkpoint. WAL on. Re-running it continues from the checkpoint (the incremental sync).

    plain_sync.py BASE_URL DB [--entity items] [--page-size 1000] [--fetch-only]

--fetch-only reads and parses the feed (response.json()) and stores nothing: Python's own floor.
Prints one JSON line: records, pages, seconds (the sync itself, not interpreter start-up).
"""
import argparse, json, sqlite3, sys, time

import requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url")
    ap.add_argument("db")
    ap.add_argument("--entity", default="items")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--fetch-only", action="store_true")
    a = ap.parse_args()

    start = time.perf_counter()
    db = None
    checkpoint = 0
    if not a.fetch_only:
        db = sqlite3.connect(a.db, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"CREATE TABLE IF NOT EXISTS {a.entity} (id TEXT PRIMARY KEY, row_version INTEGER NOT NULL, data TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS checkpoint (entity TEXT PRIMARY KEY, row_version INTEGER NOT NULL)")
        row = db.execute("SELECT row_version FROM checkpoint WHERE entity = ?", (a.entity,)).fetchone()
        checkpoint = row[0] if row else 0
    upsert = (f"INSERT INTO {a.entity} (id, row_version, data) VALUES (?, ?, ?) "
              f"ON CONFLICT(id) DO UPDATE SET row_version = excluded.row_version, data = excluded.data "
              f"WHERE excluded.row_version > {a.entity}.row_version")

    session = requests.Session()
    url = f"{a.base_url}/{a.entity}"
    params = {"sync": "true", "lastRowVersion": str(checkpoint), "pageSize": str(a.page_size)}
    records = pages = 0
    for _ in range(10_000_000):  # bounded: no real feed has ten million pages of this size
        r = session.get(url, params=params, timeout=60)
        r.raise_for_status()
        page = r.json()
        data = page.get("data") or []
        pages += 1
        records += len(data)
        if db is not None and data:
            rows = [(rec["id"], int(rec["rowVersion"]), json.dumps(rec, separators=(",", ":"))) for rec in data]
            top = max(v for _, v, _ in rows)
            db.execute("BEGIN")
            db.executemany(upsert, rows)
            db.execute("INSERT INTO checkpoint (entity, row_version) VALUES (?, ?) "
                       "ON CONFLICT(entity) DO UPDATE SET row_version = max(row_version, excluded.row_version)", (a.entity, top))
            db.execute("COMMIT")
        if not page.get("morePages") or not page.get("nextPageURL"):
            break
        url, params = page["nextPageURL"], None
    else:
        sys.exit("the feed did not end")
    if db is not None:
        db.close()
    took = time.perf_counter() - start
    print(json.dumps({"records": records, "pages": pages, "seconds": round(took, 4)}))


if __name__ == "__main__":
    main()
