#!/usr/bin/env python3
"""Replication benchmark: syncmon against the simulated source on loopback.

Starts `syncmon mock` with N records (default 1,000,000; --quick: 100,000), then measures in one
run: syncmon's initial sync, an incremental sync of 10,000 changes, and `status`. Prints
records/s, wall time and the agent's peak RSS (from wait4, so it is the child's own peak).

    python3 bench/run.py [--records N] [--quick] [--repeat K]
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "syncmon")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS in MB, stdout)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    took = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.decode()}\n{err.decode()}")
    return took, usage.ru_maxrss / 1024.0, out.decode()


def wait_until_up(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_mock/entities", timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"the simulated source did not start at {url}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 records")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--changes", type=int, default=10_000)
    a = ap.parse_args()
    n = 100_000 if a.quick else a.records

    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "syncmon-cli"], cwd=ROOT, check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mock = subprocess.Popen([BIN, "mock", "--listen", f"127.0.0.1:{port}", "--records", str(n), "--entity", "items",
                             "--mutations-per-sec", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_until_up(url)
        for rep in range(a.repeat):
            work = tempfile.mkdtemp(prefix="syncmon-bench-")
            cfg = os.path.join(work, "syncmon.toml")
            with open(cfg, "w") as f:
                f.write(f'[[connection]]\nid = "bench"\nbase_url = "{url}"\nrequests_per_second = 10000\n'
                        f'[[connection.entity]]\nname = "items"\npage_size = 1000\n')
            base = [BIN, "--config", cfg, "--data-dir", os.path.join(work, "data")]
            t, rss, _ = timed(base + ["sync"])
            rows.append(("syncmon initial sync", n, t, rss))
            urllib.request.urlopen(urllib.request.Request(f"{url}/_mock/mutate/items?n={a.changes}", method="POST")).read()
            t, rss, _ = timed(base + ["sync"])
            rows.append((f"syncmon incremental ({a.changes} changes)", a.changes, t, rss))
            t, rss, _ = timed(base + ["status", "--json"])
            rows.append(("syncmon status (whole command)", 0, t, rss))
            db = os.path.join(work, "data", "syncmon.db")
            size = os.path.getsize(db) / 1e6
            rows.append((f"replica file size: {size:.0f} MB", 0, 0, 0))
            shutil.rmtree(work)
    finally:
        mock.send_signal(signal.SIGINT)
        mock.wait(timeout=30)

    print(f"\n{time.strftime('%Y-%m-%d')}  {n:,} records of the simulated source, pages of 1000, loopback, {os.cpu_count()} cores\n")
    print(f"| {'what':<42} | {'records/s':>10} | {'wall s':>8} | {'peak RSS MB':>11} |")
    print(f"| {'-'*42} | {'-'*10}: | {'-'*8}: | {'-'*11}: |")
    for what, count, t, rss in rows:
        rate = f"{count / t:,.0f}" if count and t else ""
        print(f"| {what:<42} | {rate:>10} | {t:>8.2f} | {rss:>11.1f} |" if t else f"| {what:<42} | {'':>10} | {'':>8} | {'':>11} |")


if __name__ == "__main__":
    main()
