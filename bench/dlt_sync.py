#!/usr/bin/env python3
"""The same replication with dlt (https://dlthub.com), as its documentation suggests.

A `rest_api` source: the cursor paginator follows nextPageKey as pageKey while morePages is true,
an incremental cursor on rowVersion feeds lastRowVersion, primary key id, write_disposition merge,
into SQLite through the sqlalchemy destination. Pipeline state lives in PIPELINES_DIR, so running
it again with the same directory is dlt's incremental sync.

    dlt_sync.py BASE_URL DB PIPELINES_DIR [--entity items] [--page-size 1000]

rowVersion is a decimal string and dlt compares cursors as the values they are; the benchmark's
source hands out versions of equal length (mock --start-version 1000000), so string order is
numeric order. Prints one JSON line: records loaded, seconds (the pipeline run, not imports).
"""
import argparse, json, os, time

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402
from dlt.sources.rest_api import rest_api_source  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url")
    ap.add_argument("db")
    ap.add_argument("pipelines_dir")
    ap.add_argument("--entity", default="items")
    ap.add_argument("--page-size", type=int, default=1000)
    a = ap.parse_args()

    start = time.perf_counter()
    source = rest_api_source({
        "client": {
            "base_url": a.base_url + "/",
            "paginator": {"type": "cursor", "cursor_path": "nextPageKey", "cursor_param": "pageKey",
                          "has_more_path": "morePages"},
        },
        "resources": [{
            "name": a.entity,
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {
                "path": a.entity,
                "data_selector": "data",
                "params": {
                    "sync": "true",
                    "pageSize": a.page_size,
                    "lastRowVersion": {"type": "incremental", "cursor_path": "rowVersion", "initial_value": "0"},
                },
            },
        }],
    })
    pipeline = dlt.pipeline(pipeline_name="bench", pipelines_dir=a.pipelines_dir,
                            destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{a.db}"),
                            dataset_name="bench", progress=None)
    info = pipeline.run(source)
    info.raise_on_failed_jobs()
    took = time.perf_counter() - start
    rows = pipeline.last_trace.last_normalize_info.row_counts.get(a.entity, 0)
    print(json.dumps({"records": rows, "seconds": round(took, 4)}))


if __name__ == "__main__":
    main()
