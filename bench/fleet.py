#!/usr/bin/env python3
"""Fleet benchmark: the initial load into PostgreSQL against SQLite, and how long a surviving
agent takes to take over a killed agent's entities. Everything on loopback:

    python3 bench/fleet.py                 # 1,000,000 records, 3 rounds each (~15 min)
    python3 bench/fleet.py --records 100000 --repeat 1 --no-build

- load: `syncmon sync --json` of one entity from `syncmon mock`, into a fresh SQLite data
  directory and into a fresh database of a throwaway PostgreSQL cluster (Debian's server, fsync
  on as in production, data directory in a temp dir), interleaved; records/s from wall time.
- takeover: two `syncmon run` agents with one config (lease 30 s, the default) share 4 entities;
  one is SIGKILLed; the time until `syncmon status --json` shows the survivor holding all four.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the Mock, timing and build helpers)

BIN = bench.BIN


class Postgres:
    """A throwaway cluster on a free loopback port (as crates/syncmon-testpg, but with fsync on)."""

    def __init__(self, work):
        versions = sorted((int(v), v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
        if not versions:
            sys.exit("PostgreSQL's server is not installed: run scripts/install-system-deps.sh")
        self.bin = f"/usr/lib/postgresql/{versions[-1][1]}/bin"
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(work, 0o755)
        self.port = bench.free_port()
        self.run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C")
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB", "start")

    def run(self, tool, *args):
        cmd = [f"{self.bin}/{tool}", *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=self.dir)

    def create(self, db):
        subprocess.run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q", "-c",
                        f'CREATE DATABASE "{db}"'], check=True)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")


def config(path, url, entities, replica=None, poll_every=None):
    bench.syncmon_config(path, url, entities, poll_every=poll_every)
    if replica:
        with open(path) as f:
            body = f.read()
        with open(path, "w") as f:
            f.write(f'[replica]\nurl = "{replica}"\n\n' + body)


def load(args, work, pg):
    mock = bench.Mock(args.records)
    rows = {"SQLite": [], "PostgreSQL": []}
    try:
        for r in range(args.repeat):
            for kind in (("SQLite", "PostgreSQL") if r % 2 == 0 else ("PostgreSQL", "SQLite")):
                d = os.path.join(work, f"load-{kind}-{r}")
                os.makedirs(d)
                cfg = os.path.join(d, "syncmon.toml")
                config(cfg, mock.url, ["items"], replica=pg.create(f"load_{r}") if kind == "PostgreSQL" else None)
                wall, rss, records, own = bench.syncmon_sync([BIN, "--config", cfg, "--data-dir", os.path.join(d, "data")])
                if records != args.records:
                    sys.exit(f"{kind}: {records} records synced, expected {args.records}")
                bench.log(f"{kind} round {r + 1}: {records:,} records in {wall:.1f} s ({records / wall:,.0f}/s), peak RSS {rss:.0f} MB")
                rows[kind].append((wall, rss))
    finally:
        mock.stop()
    print(f"\nInitial load of {args.records:,} records (median of {args.repeat}, wall time of `syncmon sync`):")
    print(f"{'replica':<12} {'wall s':>8} {'records/s':>11} {'peak RSS MB':>12}")
    med = {}
    for kind, v in rows.items():
        wall = statistics.median(w for w, _ in v)
        med[kind] = wall
        print(f"{kind:<12} {wall:>8.1f} {args.records / wall:>11,.0f} {max(r for _, r in v):>12.0f}")
    print(f"PostgreSQL / SQLite records/s: {med['SQLite'] / med['PostgreSQL']:.2f}")


def holders(cfg, data):
    out = subprocess.run([BIN, "--config", cfg, "--data-dir", data, "status", "--json"], capture_output=True, text=True)
    try:
        v = json.loads(out.stdout)
    except ValueError:
        return {}
    return {e["entity"]: e.get("holder") for e in (v.get("entities", v) if isinstance(v, dict) else v)}


def takeover(args, work, pg):
    entities = ["items", "customers", "vendors", "salesorders"]
    mock = bench.Mock(2000, entities=entities)
    cfg = os.path.join(work, "fleet.toml")
    config(cfg, mock.url, entities, replica=pg.create("fleet"), poll_every="1s")
    agents = []
    times = []
    try:
        for r in range(args.repeat):
            agents = [subprocess.Popen([BIN, "--config", cfg, "--data-dir", os.path.join(work, f"agent-{r}-{i}"), "run"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
            a, b = agents
            deadline = time.time() + 120
            while True:
                h = holders(cfg, os.path.join(work, f"agent-{r}-0"))
                mine = lambda p: sum(1 for v in h.values() if v and v.endswith(f"/{p.pid}"))
                if mine(a) + mine(b) == len(entities) and mine(b) > 0:
                    break
                if time.time() > deadline:
                    sys.exit(f"no split between the agents within 120 s: {h}")
                time.sleep(0.2)
            b.send_signal(signal.SIGKILL)
            b.wait()
            killed = time.perf_counter()
            while True:
                h = holders(cfg, os.path.join(work, f"agent-{r}-0"))
                if all(v and v.endswith(f"/{a.pid}") for v in h.values()) and len(h) == len(entities):
                    break
                if time.perf_counter() - killed > 300:
                    sys.exit(f"no takeover within 300 s: {h}")
                time.sleep(0.1)
            times.append(time.perf_counter() - killed)
            bench.log(f"takeover round {r + 1}: {times[-1]:.1f} s after the SIGKILL")
            a.send_signal(signal.SIGTERM)
            a.wait(timeout=60)
    finally:
        for p in agents:
            if p.poll() is None:
                p.kill()
        mock.stop()
    print(f"\nTakeover (lease 30 s, poll 1 s): the survivor held every entity {statistics.median(times):.1f} s after the other's SIGKILL"
          f" (median of {len(times)}; min {min(times):.1f} s, max {max(times):.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--skip-takeover", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        bench.log("building the release binaries")
        bench.build(5)
    work = tempfile.mkdtemp(prefix="syncmon-fleet-")
    pg = Postgres(work)
    try:
        load(a, work, pg)
        if not a.skip_takeover:
            takeover(a, work, pg)
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
