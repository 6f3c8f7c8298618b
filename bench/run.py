#!/usr/bin/env python3
"""Replication benchmark: syncmon against a plain Python script, dlt and fetch-only baselines.

One command, everything on loopback against `syncmon mock` (a fixed dataset: --mutations-per-sec 0):

    python3 bench/run.py              # 1,000,000 records, every contender on all of them (~12 min)
    python3 bench/run.py --dlt-records 100000   # dlt on its own 100,000-record source (~5 min)
    python3 bench/run.py --quick      # 100,000 records, a few minutes
    python3 bench/run.py --repeat 3 --skip-dlt --records 500000 --no-build

Contenders, run interleaved (round r starts at contender r) and repeated --repeat times, each
initial sync into a fresh database, all against one source process (dlt: its own, see below):

- syncmon        `syncmon sync --json` (initial), then 10,000 changes and `sync` again (incremental)
- plain          bench/plain_sync.py: requests + sqlite3, one page + checkpoint per transaction
- dlt            bench/dlt_sync.py: dlt rest_api source, incremental cursor, merge, SQLite via sqlalchemy;
                 --dlt-changes (1,000) before its incremental run: its SQLite merge has no key to use
                 and takes tens of seconds; with --dlt-records below --records, on its own source
- fetch-only     crates/syncmon-mock/examples/fetch_only.rs: read + parse the feed in Rust, no storage
- python fetch   plain_sync.py --fetch-only: read + parse the feed with requests, no storage

Then, on syncmon's last replica with 1,000,000 failed items added: `status --json` and
`failed list --limit 100 --json` against `syncmon --help` (process start), and the agent's CPU with
50 idle entities (`syncmon run`, poll_every 5 s, CPU from /proc/<pid>/stat, also scaled to 60 s).

Wall times are whole commands (process start and, for Python, interpreter and imports included);
"own s" is the contender's own timing of the sync (syncmon: the cycle's duration_ms; the scripts:
from before the first request to the end). records/s and the ratios use wall time. dlt and the
plain script run in bench/.venv with the exact pins of bench/requirements.txt.

Peak RSS (max over the repeats): the child's ru_maxrss from wait4 when it is above this script's
own high-water mark, else the child's VmHWM sampled from /proc every 3 ms. On Linux a child's
ru_maxrss starts at its parent's RSS (the mm it had before exec is counted), so wait4 alone
reports at least the size of the Python process that started it; VmHWM belongs to the exec'd image
only and misses at most the last few milliseconds before exit.
"""
import argparse, json, os, random, signal, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, threading
import time, urllib.request, uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
BIN = os.path.join(ROOT, "target", "release", "syncmon")
FETCH = os.path.join(ROOT, "target", "release", "examples", "fetch_only")
VENV = os.path.join(BENCH, ".venv")
PY = os.path.join(VENV, "bin", "python")
# dlt compares its cursor as the string it is; versions of equal length make string order numeric.
START_VERSION = 1_000_000


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(attempts):
    cmd = ["cargo", "build", "--release", "--locked", "-q", "-p", "syncmon-cli", "-p", "syncmon-mock",
           "--bin", "syncmon", "--example", "fetch_only"]
    for attempt in range(1, attempts + 1):
        if subprocess.run(cmd, cwd=ROOT).returncode == 0:
            return
        if attempt < attempts:
            log(f"cargo build failed (attempt {attempt}/{attempts}); retrying in 60 s")
            time.sleep(60)
    sys.exit("cargo build failed")


def ensure_venv(with_dlt):
    """bench/.venv with the pinned requirements (only requests with --skip-dlt)."""
    with open(os.path.join(BENCH, "requirements.txt")) as f:
        pins = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    wanted = pins if with_dlt else [p for p in pins if p.startswith("requests")]
    stamp = os.path.join(VENV, ".bench-installed")
    if not os.path.exists(PY):
        log("creating bench/.venv")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    have = open(stamp).read().split() if os.path.exists(stamp) else []
    if not set(wanted) <= set(have):
        log(f"installing {' '.join(wanted)} into bench/.venv")
        subprocess.run([PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted], check=True)
        with open(stamp, "w") as f:
            f.write("\n".join(sorted(set(have) | set(wanted))) + "\n")


def dlt_version():
    out = subprocess.run([PY, "-c", "import dlt; print(dlt.__version__)"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def hwm_mb(pid="self"):
    """VmHWM of a process in MB, None when it has none (exited, zombie)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss(ru_maxrss_kb, floor_mb, sampled_mb):
    """The child's peak RSS: ru_maxrss is max(its own peak, the parent's RSS at fork)."""
    ru = ru_maxrss_kb / 1024.0
    return ru if ru > floor_mb + 1.0 else (sampled_mb or 0.0)


def timed(cmd, env=None, ok=(0,)):
    """Runs cmd to completion; returns (wall seconds, peak RSS in MB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        floor = hwm_mb()
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        sampled, done = [0.0], threading.Event()

        def sample():
            while not done.is_set():
                v = hwm_mb(p.pid)
                if v:
                    sampled[0] = max(sampled[0], v)
                done.wait(0.003)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        _, status, usage = os.wait4(p.pid, 0)
        took = time.perf_counter() - start
        done.set()
        th.join()
        p.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        o, e = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if code not in ok:
        sys.exit(f"{' '.join(cmd)} exited {code}:\n{o[-3000:]}\n{e[-3000:]}")
    return took, peak_rss(usage.ru_maxrss, floor, sampled[0]), o


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


class Mock:
    """`syncmon mock` with a fixed dataset on a free loopback port."""

    def __init__(self, records, entities=("items",)):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [BIN, "mock", "--listen", f"127.0.0.1:{self.port}", "--records", str(records), "--mutations-per-sec", "0",
               "--start-version", str(START_VERSION)]
        for e in entities:
            cmd += ["--entity", e]
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 600
        while time.time() < deadline:
            if self.p.poll() is not None:
                sys.exit(f"the simulated source exited with {self.p.returncode}")
            try:
                urllib.request.urlopen(self.url + "/_mock/entities", timeout=2).read()
                return
            except Exception:
                time.sleep(0.2)
        self.stop()
        sys.exit(f"the simulated source did not start at {self.url}")

    def mutate(self, entity, n):
        req = urllib.request.Request(f"{self.url}/_mock/mutate/{entity}?n={n}", method="POST")
        return len(json.loads(urllib.request.urlopen(req, timeout=120).read()))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=30)


def syncmon_config(path, url, entities, poll_every=None, conn="bench"):
    with open(path, "w") as f:
        f.write(f'[[connection]]\nid = "{conn}"\nbase_url = "{url}"\nrequests_per_second = 10000\n')
        for e in entities:
            f.write(f'\n[[connection.entity]]\nname = "{e}"\npage_size = 1000\n')
            if poll_every:
                f.write(f'poll_every = "{poll_every}"\n')


def syncmon_sync(base):
    t, rss, out = timed(base + ["sync", "--json"])
    res = json.loads(out)
    bad = [r for r in res if r["outcome"] != "caught_up"]
    if bad:
        sys.exit(f"syncmon sync did not catch up: {bad}")
    return t, rss, sum(r["records"] for r in res), max(r["duration_ms"] for r in res) / 1000.0


# --- contenders: each returns {row name: (records, wall s, own s, peak RSS MB)} -----------------

def c_syncmon(mock, work, n, changes, keep):
    cfg, data = os.path.join(work, "syncmon.toml"), os.path.join(work, "data")
    syncmon_config(cfg, mock.url, ["items"])
    base = [BIN, "--config", cfg, "--data-dir", data]
    t, rss, recs, own = syncmon_sync(base)
    check(recs, n, "syncmon initial")
    mutated = mock.mutate("items", changes)
    t2, rss2, recs2, own2 = syncmon_sync(base)
    check(recs2, mutated, "syncmon incremental")
    keep["syncmon"] = (work, base)
    return {"syncmon initial": (recs, t, own, rss), "syncmon incremental": (recs2, t2, own2, rss2)}


def c_plain(mock, work, n, changes, keep):
    db = os.path.join(work, "plain.db")
    cmd = [PY, os.path.join(BENCH, "plain_sync.py"), mock.url, db]
    t, rss, out = timed(cmd)
    r = last_json(out)
    check(r["records"], n, "plain initial")
    mutated = mock.mutate("items", changes)
    t2, rss2, out2 = timed(cmd)
    r2 = last_json(out2)
    check(r2["records"], mutated, "plain incremental")
    return {"plain initial": (r["records"], t, r["seconds"], rss), "plain incremental": (r2["records"], t2, r2["seconds"], rss2)}


def c_dlt(mock, work, n, changes, keep):
    db, pipes = os.path.join(work, "dlt.db"), os.path.join(work, "pipelines")
    cmd = [PY, os.path.join(BENCH, "dlt_sync.py"), mock.url, db, pipes]
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false")
    t, rss, out = timed(cmd, env=env)
    r = last_json(out)
    check(r["records"], n, "dlt initial")
    mutated = mock.mutate("items", changes)
    t2, rss2, out2 = timed(cmd, env=env)
    r2 = last_json(out2)
    check(r2["records"], mutated, "dlt incremental")
    return {"dlt initial": (r["records"], t, r["seconds"], rss), "dlt incremental": (r2["records"], t2, r2["seconds"], rss2)}


def c_fetch(mock, work, n, changes, keep):
    t, rss, out = timed([FETCH, mock.url, "items", "1000"])
    r = last_json(out)
    check(r["records"], n, "fetch-only")
    return {"fetch-only Rust": (r["records"], t, r["seconds"], rss)}


def c_pyfetch(mock, work, n, changes, keep):
    t, rss, out = timed([PY, os.path.join(BENCH, "plain_sync.py"), mock.url, "-", "--fetch-only"])
    r = last_json(out)
    check(r["records"], n, "python fetch-only")
    return {"fetch-only Python": (r["records"], t, r["seconds"], rss)}


def check(got, want, what):
    if got != want:
        sys.exit(f"{what}: {got} records, expected {want}")


# --- status / failed list with 1,000,000 failed items ---------------------------------------------

PAYLOAD = ('{{"id":"{id}","rowVersion":"{rv}","displayName":"BERLIN Filing Cabinet","displayName2":"aluminium",'
           '"type":"Non-Inventory","itemCategoryCode":"ACCESSORY","blocked":false,"gtin":"5542408301624",'
           '"inventory":1343.44,"unitPrice":907.58,"priceIncludesTax":false,"unitCost":531.02,"taxGroupCode":"NONTAXABLE",'
           '"baseUnitOfMeasure":{{"code":"PACK","displayName":"Pack","symbol":"pk","unitConversion":null}},'
           '"generalProductPostingGroupCode":"RETAIL","inventoryPostingGroupCode":"RESALE","vendorNumber":"V44572",'
           '"description":"BERLIN Filing Cabinet in aluminium, satin finish. Assembled size 187x80x64 cm, 15 kg.",'
           '"lastModifiedDateTime":"2024-01-01T00:54:54.958Z"}}')


def fill_failed(db_path, count, conn="bench", entity="items"):
    """count pending failed items (missing required field `number`), as syncmon itself records them."""
    rng = random.Random(7)
    now = int(time.time() * 1000)

    def rows():
        for i in range(count):
            rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            rv = str(5_000_000 + i)
            at = now - (count - i) * 100
            yield (conn, entity, rid, rv, PAYLOAD.format(id=rid, rv=rv), "validate", "missing_field",
                   "required field `number` is missing or null", 200, str(uuid.UUID(int=rng.getrandbits(128), version=4)), at)

    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA cache_size = -262144")  # 256 MB: the random-id indexes stay in memory while filling
    db.execute("BEGIN")
    db.executemany("INSERT INTO failed_items (connection, entity, record_id, row_version, payload, stage, error_kind, message, "
                   "http_status, tracking_id, first_failed_at, last_failed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?11)", rows())
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pending = db.execute("SELECT count(*) FROM failed_items WHERE state = 'pending'").fetchone()[0]
    db.close()
    return pending


def queries(base, failed, reps):
    """Median wall of `--help`, `status --json`, `failed list --limit 100 --json`, interleaved."""
    cmds = {"syncmon --help (process start, no database)": [BIN, "--help"],
            "syncmon status --json": base + ["status", "--json"],
            "syncmon failed list --limit 100 --json": base + ["failed", "list", "--limit", "100", "--json"]}
    got = {k: [] for k in cmds}
    for _ in range(reps):
        for k, cmd in cmds.items():
            # `status` exits 3 with failed items to review (needs attention, nothing broken).
            t, rss, out = timed(cmd, ok=(3,) if k.startswith("syncmon status") else (0,))
            got[k].append((t, rss))
            if k.startswith("syncmon status"):
                st = json.loads(out)
                check(sum(e["pending_failed"] for e in st), failed, "status pending_failed")
            elif k.startswith("syncmon failed"):
                check(len(json.loads(out)), 100, "failed list")
    return {k: (statistics.median(t for t, _ in v), max(r for _, r in v)) for k, v in got.items()}


# --- the idle agent ------------------------------------------------------------------------------

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu(work, entities, records, poll, warmup, measure):
    names = [f"e{i:02d}" for i in range(1, entities + 1)]
    mock = Mock(records, names)
    try:
        cfg, data = os.path.join(work, "idle.toml"), os.path.join(work, "idle-data")
        syncmon_config(cfg, mock.url, names, poll_every=f"{poll}s", conn="idle")
        base = [BIN, "--config", cfg, "--data-dir", data]
        syncmon_sync(base)  # the initial catch-up, not measured
        floor, hwm = hwm_mb(), None
        with open(os.path.join(work, "run.log"), "wb") as err:
            p = subprocess.Popen(base + ["run"], stdout=subprocess.DEVNULL, stderr=err)
            try:
                time.sleep(warmup)
                if p.poll() is not None:
                    sys.exit(f"syncmon run exited early ({p.returncode}); see {work}/run.log")
                c0, t0, ms0 = cpu_seconds(p.pid), time.perf_counter(), int(time.time() * 1000)
                time.sleep(measure)
                c1, t1, ms1 = cpu_seconds(p.pid), time.perf_counter(), int(time.time() * 1000)
                hwm = hwm_mb(p.pid)
            finally:
                p.send_signal(signal.SIGTERM)
                deadline = time.time() + 30
                usage = None
                while time.time() < deadline:
                    pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                    if pid:
                        p.returncode = os.waitstatus_to_exitcode(status)
                        break
                    time.sleep(0.05)
                else:
                    p.kill()
                    _, status, usage = os.wait4(p.pid, 0)
                    p.returncode = os.waitstatus_to_exitcode(status)
        db = sqlite3.connect(os.path.join(data, "syncmon.db"))
        requests = db.execute("SELECT count(*) FROM request_log WHERE at >= ? AND at < ?", (ms0, ms1)).fetchone()[0]
        db.close()
        wall = t1 - t0
        return {"cpu_s": c1 - c0, "wall": wall, "pct": 100.0 * (c1 - c0) / wall, "requests": requests,
                "rss": peak_rss(usage.ru_maxrss, floor, hwm)}
    finally:
        mock.stop()


# --- report --------------------------------------------------------------------------------------

def fmt_rate(count, t):
    return f"{count / t:,.0f}" if count and t else ""


def verdict(ok):
    return "yes" if ok else "**no**"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 records")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of every contender (default 3)")
    ap.add_argument("--changes", type=int, default=10_000, help="changes before each incremental sync")
    ap.add_argument("--dlt-records", type=int, default=None,
                    help="records for dlt (its own source process) when fewer than --records; dlt does ~10k/s (default: all)")
    ap.add_argument("--dlt-changes", type=int, default=1_000,
                    help="changes before dlt's incremental run (its sqlite merge is slow: default 1,000)")
    ap.add_argument("--skip-dlt", action="store_true")
    ap.add_argument("--failed-items", type=int, default=1_000_000, help="failed items for the status / failed list timing")
    ap.add_argument("--idle-entities", type=int, default=50)
    ap.add_argument("--idle-poll", type=int, default=5, help="poll_every in seconds for the idle measurement")
    ap.add_argument("--idle-seconds", type=int, default=None, help="measured period (default 60, --quick 30)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--build-attempts", type=int, default=5)
    # DB COUNT [CONNECTION ENTITY]: also used by tests/e2e/serve.test.mjs to fill the Failed items screen.
    ap.add_argument("--fill-failed", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.fill_failed:
        if len(a.fill_failed) not in (2, 4):
            sys.exit("--fill-failed DB COUNT [CONNECTION ENTITY]")
        print(fill_failed(a.fill_failed[0], int(a.fill_failed[1]), *a.fill_failed[2:]))
        return
    n = 100_000 if a.quick else a.records
    n_dlt = min(n, a.dlt_records or n)
    idle_seconds = a.idle_seconds or (30 if a.quick else 60)
    if not sys.platform.startswith("linux"):
        sys.exit("the benchmark reads /proc and wait4 rusage: Linux only")

    if not a.no_build:
        log("cargo build --release (syncmon, fetch_only)")
        build(a.build_attempts)
    ensure_venv(not a.skip_dlt)
    dltv = "" if a.skip_dlt else dlt_version()

    contenders = [("syncmon", c_syncmon), ("plain", c_plain)] + ([] if a.skip_dlt else [("dlt", c_dlt)]) + \
                 [("fetch-only Rust", c_fetch), ("fetch-only Python", c_pyfetch)]
    results, keep, mocks = {}, {}, []
    root = tempfile.mkdtemp(prefix="syncmon-bench-")
    started = time.time()
    try:
        log(f"starting the simulated source with {n:,} records")
        mock = Mock(n)
        mocks.append(mock)
        mock_dlt = mock
        if not a.skip_dlt and n_dlt != n:
            log(f"starting a second simulated source with {n_dlt:,} records for dlt")
            mock_dlt = Mock(n_dlt)
            mocks.append(mock_dlt)
        for rnd in range(a.repeat):
            order = contenders[rnd % len(contenders):] + contenders[:rnd % len(contenders)]
            for name, fn in order:
                work = tempfile.mkdtemp(prefix=name.replace(" ", "-") + "-", dir=root)
                src, count, changes = (mock_dlt, n_dlt, a.dlt_changes) if name == "dlt" else (mock, n, a.changes)
                old = keep.get("syncmon")
                rows = fn(src, work, count, changes, keep)
                for k, v in rows.items():
                    results.setdefault(k, []).append(v)
                    log(f"round {rnd + 1}/{a.repeat}  {k:<22} {v[0]:>9,} records  wall {v[1]:8.2f} s  own {v[2]:8.2f} s  "
                        f"{fmt_rate(v[0], v[1]):>9} rec/s  peak RSS {v[3]:6.1f} MB")
                if keep.get("syncmon") is not old and old:
                    shutil.rmtree(old[0], ignore_errors=True)
                elif name != "syncmon":
                    shutil.rmtree(work, ignore_errors=True)
        for m in mocks:
            m.stop()
        mocks = []

        work, base = keep["syncmon"]
        db_path = os.path.join(work, "data", "syncmon.db")
        replica_mb = sum(os.path.getsize(os.path.join(work, "data", f)) for f in os.listdir(os.path.join(work, "data"))) / 1e6
        log(f"adding {a.failed_items:,} failed items to syncmon's replica")
        t0 = time.perf_counter()
        # In a child process, so this script's own RSS stays small (see peak_rss).
        failed = int(subprocess.run([sys.executable, os.path.abspath(__file__), "--fill-failed", db_path, str(a.failed_items)],
                                    check=True, capture_output=True, text=True).stdout)
        log(f"  {failed:,} pending failed items in {time.perf_counter() - t0:.0f} s; timing status and failed list")
        q = queries(base, failed, reps=7)

        log(f"idle agent: {a.idle_entities} entities, poll every {a.idle_poll} s, {idle_seconds} s measured")
        idle = idle_cpu(root, a.idle_entities, 100, a.idle_poll, warmup=max(2 * a.idle_poll, 8), measure=idle_seconds)
    finally:
        for m in mocks:
            m.stop()
        shutil.rmtree(root, ignore_errors=True)

    # --- print ------------------------------------------------------------------------------------
    med = {k: (v[0][0], statistics.median(x[1] for x in v), statistics.median(x[2] for x in v), max(x[3] for x in v))
           for k, v in results.items()}
    rate = {k: (c / t if t else 0.0) for k, (c, t, _, _) in med.items()}
    own_rate = {k: (c / o if o else 0.0) for k, (c, _, o, _) in med.items()}
    cores = os.cpu_count()
    load = os.getloadavg()[0]
    print()
    print(f"{time.strftime('%Y-%m-%d')}: {n:,} records of the simulated source (~810 bytes each), pages of 1000, loopback, "
          f"{cores} cores (load {load:.1f}), median of {a.repeat} interleaved round(s), {(time.time() - started) / 60:.0f} min in all")
    if not a.skip_dlt and n_dlt != n:
        print(f"dlt ran on its own {n_dlt:,}-record source (same generator and settings): records/s stay comparable.")
    print()
    print(f"| {'initial sync':<38} | {'records':>9} | {'records/s':>9} | {'wall s':>7} | {'own s':>7} | {'peak RSS MB':>11} |")
    print(f"| {'-' * 38} | {'-' * 8}: | {'-' * 8}: | {'-' * 6}: | {'-' * 6}: | {'-' * 10}: |")
    labels = {"syncmon initial": "syncmon sync", "plain initial": "plain Python script",
              "dlt initial": f"dlt {dltv}", "fetch-only Rust": "fetch-only, Rust (no storage)",
              "fetch-only Python": "fetch-only, Python requests"}
    for k, label in labels.items():
        if k in med:
            c, t, o, r = med[k]
            print(f"| {label:<38} | {c:>9,} | {fmt_rate(c, t):>9} | {t:>7.2f} | {o:>7.2f} | {r:>11.1f} |")
    print()
    print(f"| {'incremental (' + format(a.changes, ',') + ' changes)':<38} | {'records':>9} | {'records/s':>9} | {'wall s':>7} | {'own s':>7} | {'peak RSS MB':>11} |")
    print(f"| {'-' * 38} | {'-' * 8}: | {'-' * 8}: | {'-' * 6}: | {'-' * 6}: | {'-' * 10}: |")
    for k, label in [("syncmon incremental", f"syncmon sync, into {n:,} rows"), ("plain incremental", f"plain script, into {n:,} rows"),
                     ("dlt incremental", f"dlt, {a.dlt_changes:,} changes into {n_dlt:,} rows")]:
        if k in med:
            c, t, o, r = med[k]
            print(f"| {label:<38} | {c:>9,} | {fmt_rate(c, t):>9} | {t:>7.2f} | {o:>7.3f} | {r:>11.1f} |")
    print()
    help_t = q["syncmon --help (process start, no database)"][0]
    print(f"| {'query (' + format(failed, ',') + ' failed items, ' + format(n, ',') + '-row replica)':<53} | {'wall ms':>7} | {'minus --help':>12} |")
    print(f"| {'-' * 53} | {'-' * 6}: | {'-' * 11}: |")
    for k, (t, r) in q.items():
        extra = "" if "--help" in k else f"{(t - help_t) * 1000:.1f}"
        print(f"| {k:<53} | {t * 1000:>7.1f} | {extra:>12} |")
    print()
    scaled = idle["pct"] * a.idle_poll / 60.0
    print(f"Idle agent: `syncmon run`, {a.idle_entities} entities x 100 records, poll_every = \"{a.idle_poll}s\", after the catch-up: "
          f"{idle['cpu_s']:.2f} s CPU in {idle['wall']:.0f} s = {idle['pct']:.2f} % of one core measured "
          f"({idle['requests']} requests in the window); scaled to poll_every = \"60s\": {scaled:.3f} % "
          f"(x {a.idle_poll}/60, as if all of it were polling). Peak RSS {idle['rss']:.1f} MB.")
    print()
    s_init = med.get("syncmon initial")
    ratios = []
    for k, label in [("plain initial", "plain script"), ("dlt initial", "dlt"), ("fetch-only Rust", "fetch-only Rust"),
                     ("fetch-only Python", "fetch-only Python")]:
        if k in rate and rate[k]:
            ratios.append(f"syncmon/{label} {rate['syncmon initial'] / rate[k]:.2f}x (own timing {own_rate['syncmon initial'] / own_rate[k]:.2f}x)")
    print("Ratios of records/s, initial sync, wall time: " + "; ".join(ratios) + ".")
    print()
    peak = max(v[3] for k, v in med.items() if k.startswith("syncmon"))
    peak = max(peak, idle["rss"])
    inc = med["syncmon incremental"]
    status_t = q["syncmon status --json"][0]
    failed_t = q["syncmon failed list --limit 100 --json"][0]
    print("| target | measured | met |")
    print("| --- | --- | --- |")
    print(f"| syncmon initial sync >= 100,000 records/s{'' if n >= 1_000_000 else ' (target is for 1,000,000)'} | {rate['syncmon initial']:,.0f}/s | {verdict(rate['syncmon initial'] >= 100_000)} |")
    if "plain initial" in rate:
        x = rate["syncmon initial"] / rate["plain initial"]
        print(f"| >= 5x the plain script | {x:.1f}x | {verdict(x >= 5)} |")
    if "dlt initial" in rate:
        x = rate["syncmon initial"] / rate["dlt initial"]
        print(f"| >= 20x dlt | {x:.1f}x | {verdict(x >= 20)} |")
    print(f"| incremental {a.changes:,} changes into {n:,} rows <= 0.15 s | {inc[1]:.3f} s command, {inc[2]:.3f} s cycle | "
          f"{verdict(inc[1] <= 0.15)} (command), {verdict(inc[2] <= 0.15)} (cycle) |")
    print(f"| agent peak RSS <= 64 MB | {peak:.1f} MB | {verdict(peak <= 64)} |")
    print(f"| {a.idle_entities} idle entities polled every minute < 1 % of a core | {scaled:.3f} % (scaled), {idle['pct']:.2f} % at {a.idle_poll} s | {verdict(scaled < 1)} |")
    print(f"| status <= 20 ms | {status_t * 1000:.0f} ms command, {(status_t - help_t) * 1000:.0f} ms over --help | "
          f"{verdict(status_t <= 0.020)} (command), {verdict(status_t - help_t <= 0.020)} (over --help) |")
    print(f"| 100 of {failed:,} failed items <= 20 ms | {failed_t * 1000:.0f} ms command, {(failed_t - help_t) * 1000:.0f} ms over --help | "
          f"{verdict(failed_t <= 0.020)} (command), {verdict(failed_t - help_t <= 0.020)} (over --help) |")
    print(f"\nsyncmon's replica of {n:,} records after the incremental sync: {replica_mb:.0f} MB (before the failed items).")


if __name__ == "__main__":
    main()
