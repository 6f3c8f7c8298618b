#!/usr/bin/env bash
# The monitoring test (scripts/test.sh runs it; about 20 s): the example alert rules pass
# `promtool check rules` and their unit tests (packaging/monitoring/alerts.test.yml), the
# dashboard's queries parse; then the simulated source and `syncmon run --metrics` run on
# loopback, the exposition passes `promtool check metrics`, a throwaway Prometheus (Debian's
# `prometheus`, its own config and storage in a temp dir) scrapes the agent every second, and
# its query API must name every entity with its replica rows (non-zero) and answer the
# dashboard's queries. Everything it started is stopped, also on failure.
#   SYNCMON=target/release/syncmon scripts/test-prometheus.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
export SYNCMON=${SYNCMON:-$PWD/target/debug/syncmon}
[ -x "$SYNCMON" ] || { echo "no syncmon at $SYNCMON: cargo build -p syncmon-cli first" >&2; exit 2; }
for tool in prometheus promtool curl python3; do
  command -v "$tool" >/dev/null || { echo "no $tool: scripts/install-system-deps.sh installs it" >&2; exit 2; }
done

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
monitoring=$PWD/packaging/monitoring

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# A free loopback port (the kernel's pick; closed again before the server binds it).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits (at most $2 tenths of a second) until file $1 has a line matching $3; prints that line.
wait_line() {
  for _ in $(seq 1 "$2"); do
    if grep -m1 -E "$3" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

step "alert rules: promtool check rules, promtool test rules"
promtool check rules "$monitoring/alerts.yml"
(cd "$monitoring" && promtool test rules alerts.test.yml)

step "dashboard: every query parses"
python3 - "$monitoring/grafana-dashboard.json" >"$tmp/dashboard-rules.yml" <<'EOF'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert exprs, "the dashboard has no queries"
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    e = e.replace("$__rate_interval", "1m").replace("$connection", ".*").replace("$entity", ".*")
    print(f"      - record: dashboard:q{i}\n        expr: {json.dumps(e)}")
EOF
promtool check rules "$tmp/dashboard-rules.yml"

step "the simulated source and the agent with --metrics"
mock_port=$(free_port)
"$SYNCMON" mock --listen "127.0.0.1:$mock_port" --records 300 --entity items --entity customers --mutations-per-sec 2 >"$tmp/mock.log" 2>&1 &
pids+=($!)
wait_line "$tmp/mock.log" 100 "simulated source on" >/dev/null || fail "the mock did not start: $(cat "$tmp/mock.log")"
cat >"$tmp/syncmon.toml" <<EOF
[[connection]]
id = "sim"
base_url = "http://127.0.0.1:$mock_port"

[[connection.entity]]
name = "items"
poll_every = "1s"

[[connection.entity]]
name = "customers"
poll_every = "1s"
EOF
env -u SYNCMON_METRICS_TOKEN "$SYNCMON" --config "$tmp/syncmon.toml" --data-dir "$tmp/data" --log-file "$tmp/agent.log" run --metrics 127.0.0.1:0 \
  >"$tmp/agent.out" 2>/dev/null &
pids+=($!)
line=$(wait_line "$tmp/agent.out" 150 "Prometheus metrics at") || fail "no metrics address from the agent: $(cat "$tmp/agent.out")"
metrics_url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/metrics' <<<"$line")
metrics_addr=${metrics_url#http://}
metrics_addr=${metrics_addr%/metrics}
echo "agent metrics at $metrics_url"

step "promtool check metrics: the exposition follows Prometheus's naming conventions"
for _ in $(seq 1 100); do
  curl -sf "$metrics_url" >"$tmp/metrics.txt" && grep -q 'syncmon_entity_replica_rows{' "$tmp/metrics.txt" && break
  sleep 0.1
done
grep -q 'syncmon_entity_replica_rows{' "$tmp/metrics.txt" || fail "no replica rows in the exposition: $(head -c 2000 "$tmp/metrics.txt")"
# The lint reads the classic text format, which names a counter family by its `_total` samples
# where OpenMetrics names it without the suffix, and has no `# EOF`: converted, nothing else changed.
python3 - "$tmp/metrics.txt" >"$tmp/metrics.prom" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
counters = set(re.findall(r"^# TYPE (\S+) counter$", text, re.M))
for line in text.splitlines():
    m = re.match(r"^# (HELP|TYPE) (\S+)( .*)$", line)
    if m and m.group(2) in counters:
        line = f"# {m.group(1)} {m.group(2)}_total{m.group(3)}"
    if line != "# EOF":
        print(line)
EOF
promtool check metrics <"$tmp/metrics.prom" || fail "promtool check metrics found problems: $(promtool check metrics <"$tmp/metrics.prom" 2>&1)"

step "a throwaway Prometheus scraping the agent every second"
prom_port=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $monitoring/alerts.yml
scrape_configs:
  - job_name: syncmon
    static_configs:
      - targets: ["$metrics_addr"]
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" --web.listen-address="127.0.0.1:$prom_port" \
  >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$prom_port/api/v1"

# The entities Prometheus has with a non-zero replica-row count, one `connection/entity` a line.
scraped_entities() {
  curl -sf --get "$api/query" --data-urlencode 'query=syncmon_entity_replica_rows > 0' | python3 -c '
import json, sys
answer = json.load(sys.stdin)
assert answer["status"] == "success", answer
for r in answer["data"]["result"]:
    print(r["metric"]["connection"] + "/" + r["metric"]["entity"], r["value"][1])'
}
found=""
for _ in $(seq 1 300); do
  found=$(scraped_entities 2>/dev/null || true)
  if grep -q '^sim/items ' <<<"$found" && grep -q '^sim/customers ' <<<"$found"; then break; fi
  sleep 0.1
done
echo "$found"
grep -q '^sim/items ' <<<"$found" && grep -q '^sim/customers ' <<<"$found" \
  || fail "Prometheus never had both entities with replica rows: '$found'; $(tail -5 "$tmp/prometheus.log")"
up=$(curl -sf --get "$api/query" --data-urlencode 'query=up{job="syncmon"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')
[ "$up" = 1 ] || fail "the scrape job is not up: $up"

step "the dashboard's queries answer"
python3 - "$monitoring/grafana-dashboard.json" "$api" <<'EOF'
import json, sys, urllib.parse, urllib.request
dash, api = json.load(open(sys.argv[1])), sys.argv[2]
for p in dash["panels"]:
    for t in p.get("targets", []):
        e = t["expr"].replace("$__rate_interval", "1m").replace("$connection", ".*").replace("$entity", ".*")
        url = api + "/query?" + urllib.parse.urlencode({"query": e})
        answer = json.load(urllib.request.urlopen(url, timeout=10))
        assert answer["status"] == "success", (p["title"], e, answer)
print("all", sum(len(p.get("targets", [])) for p in dash["panels"]), "queries answered")
EOF
rules=$(curl -sf "$api/rules" | python3 -c 'import json, sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
[ "$rules" -ge 8 ] || fail "Prometheus loaded $rules alert rules, expected the 8 of alerts.yml"
echo "Prometheus loaded $rules alert rules"
echo "test-prometheus: ok"
