#!/usr/bin/env bash
# Side-by-side benchmark: contactsdav (embedded Graph emulator) against
# Radicale, the same cards, the same clients (curl replay, vdirsyncer).
# See bench/README.md. Run by hand, not in CI:
#
#   bash bench/compare.sh            # N=10000, prints the table
#   BENCH_CONTACTS=1000 bash bench/compare.sh --save
#
# Everything listens on 127.0.0.1 only; all loops are bounded; processes and
# the temp folder are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export DEBIAN_FRONTEND=noninteractive
export PATH="/usr/local/go/bin:$PATH"
export LC_ALL=C.UTF-8 LANG=C.UTF-8

SAVE=0
for a in "$@"; do
  case "$a" in
    --save) SAVE=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
N=${BENCH_CONTACTS:-10000}
RUNS=${BENCH_RUNS:-3} # timed runs of the long steps (plain wall time)
HRUNS=${BENCH_HYPERFINE_RUNS:-5} # hyperfine runs of the cheap steps

START=$(date +%s)
log() { echo "bench [$(($(date +%s) - START))s]: $*" >&2; }

# --- tools ------------------------------------------------------------------
need=()
command -v vdirsyncer >/dev/null 2>&1 || need+=(vdirsyncer)
command -v radicale >/dev/null 2>&1 || need+=(radicale)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v bc >/dev/null 2>&1 || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- temp dir and cleanup ---------------------------------------------------
TMP=$(mktemp -d /tmp/contactsdav-bench.XXXXXX)
CD_PID="" RAD_PID=""
stop_pid() { # stop one process we started, by its id
  local p=$1
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}
cleanup() {
  stop_pid "$CD_PID"
  stop_pid "$RAD_PID"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }
fmt_s() { printf '%.3f s' "$1"; }

# helper.py: XML and JSON chores.
cat >"$TMP/helper.py" <<'PY'
import json, os, statistics, sys
import xml.etree.ElementTree as ET
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:carddav"}
cmd = sys.argv[1]
if cmd == "multiget":  # PROPFIND answer -> addressbook-multiget body of every card href
    hrefs = [r.find("D:href", NS).text for r in ET.parse(sys.argv[2]).getroot().findall("D:response", NS)]
    hrefs = [h for h in hrefs if not h.endswith("/")]
    with open(sys.argv[3], "w") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<C:addressbook-multiget xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop>\n')
        for h in hrefs:
            f.write("<D:href>%s</D:href>\n" % h)
        f.write("</C:addressbook-multiget>\n")
    print(len(hrefs))
elif cmd == "cards":  # multiget answer -> number of cards with data (and optionally write them)
    n, bad = 0, 0
    out = sys.argv[3] if len(sys.argv) > 3 else None
    for r in ET.parse(sys.argv[2]).getroot().findall("D:response", NS):
        ad = r.find(".//C:address-data", NS)
        if ad is None or not ad.text or "BEGIN:VCARD" not in ad.text:
            bad += 1
            continue
        n += 1
        if out:
            name = os.path.basename(r.find("D:href", NS).text)
            with open(os.path.join(out, name), "w", newline="") as f:
                f.write(ad.text)
    print(n, bad)
elif cmd == "synctoken":
    t = ET.parse(sys.argv[2]).getroot().find("D:sync-token", NS)
    print(t.text if t is not None else "")
elif cmd == "responses":
    print(len(ET.parse(sys.argv[2]).getroot().findall("D:response", NS)))
elif cmd == "counts-diff":  # emulator counts before/after -> "total (op status: n, ...)"
    a, b = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
    d = {k: b.get(k, 0) - a.get(k, 0) for k in b}
    d = {k: v for k, v in sorted(d.items()) if v}
    tot = sum(d.values())
    print("%d (%s)" % (tot, ", ".join("%s: %d" % kv for kv in d.items())) if d else "0")
elif cmd == "metrics-sum":  # Prometheus text -> sum of contactsdav_graph_requests_total
    s = 0.0
    for line in open(sys.argv[2]):
        if line.startswith("contactsdav_graph_requests_total{") or line.startswith("contactsdav_graph_requests_total "):
            s += float(line.rsplit(" ", 1)[1])
    print(int(s))
elif cmd == "median":  # hyperfine JSON -> median seconds
    print("%.6f" % json.load(open(sys.argv[2]))["results"][0]["median"])
elif cmd == "median-of":
    print("%.6f" % statistics.median(float(x) for x in sys.argv[2:]))
PY
py() { python3 "$TMP/helper.py" "$@"; }

# --- contactsdav ------------------------------------------------------------
log "building ./cmd/contactsdav"
go build -o "$TMP/contactsdav" ./cmd/contactsdav
CD_PORT=$(free_port)
CD_URL="http://127.0.0.1:$CD_PORT"
CD_BOOK="$CD_URL/demo/contacts/default/"
CD_DATA="$TMP/cd-data"
EMU_URL=""
USE_EMU=1

start_cd() { # $1 refresh interval; $2... extra flags
  local ri=$1; shift
  : >"$TMP/cd.out"
  "$TMP/contactsdav" serve --data "$CD_DATA" --listen "127.0.0.1:$CD_PORT" --demo-password bench \
    --refresh-interval "$ri" --log-level warn "$@" >"$TMP/cd.out" 2>>"$TMP/cd.err" &
  CD_PID=$!
  for _ in $(seq 1 1200); do # up to 120 s (seeding a large mailbox)
    if grep -q 'Graph emulator at' "$TMP/cd.out" 2>/dev/null && curl -fsS --max-time 2 "$CD_URL/healthz" >/dev/null 2>&1; then
      EMU_URL=$(grep -o 'Graph emulator at [^ ]*' "$TMP/cd.out" | awk '{print $4}')
      return 0
    fi
    kill -0 "$CD_PID" 2>/dev/null || { cat "$TMP/cd.err" >&2; echo "contactsdav exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "contactsdav did not come up" >&2; exit 1
}
stop_cd() { stop_pid "$CD_PID"; CD_PID=""; }

# Graph request counters: the emulator's own counts (every request it served,
# $batch members included, as Graph's throttling counts them) and
# contactsdav_graph_requests_total from contactsdav's /metrics (HTTP requests sent).
snap() { # $1 name
  if [ "$USE_EMU" = 1 ]; then curl -fsS --max-time 10 "$EMU_URL/_emulator/counts" >"$TMP/$1.counts"; fi
  curl -fsS --max-time 10 "$CD_URL/metrics" >"$TMP/$1.metrics"
}
graph_cost() { # $1 before, $2 after -> "H HTTP; emulator: ..."
  local h
  h=$(($(py metrics-sum "$TMP/$2.metrics") - $(py metrics-sum "$TMP/$1.metrics")))
  if [ "$USE_EMU" = 1 ]; then
    echo "$h HTTP; emulator $(py counts-diff "$TMP/$1.counts" "$TMP/$2.counts")"
  else
    echo "$h HTTP"
  fi
}

# --- Radicale ---------------------------------------------------------------
RAD_PORT=$(free_port)
RAD_URL="http://127.0.0.1:$RAD_PORT"
RAD_BOOK="$RAD_URL/demo/contacts/"
RAD_COL="$TMP/rad/collections"
mkdir -p "$RAD_COL/collection-root/demo/contacts"
cat >"$TMP/rad/config" <<EOF
[server]
hosts = 127.0.0.1:$RAD_PORT
[auth]
type = none
[storage]
filesystem_folder = $RAD_COL
[web]
type = none
[logging]
level = warning
EOF
start_rad() {
  radicale -C "$TMP/rad/config" >>"$TMP/rad.log" 2>&1 &
  RAD_PID=$!
  for _ in $(seq 1 200); do # up to 20 s
    if curl -sS --max-time 2 -o /dev/null "$RAD_URL/" 2>/dev/null; then return 0; fi
    kill -0 "$RAD_PID" 2>/dev/null || { cat "$TMP/rad.log" >&2; echo "radicale exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "radicale did not come up" >&2; exit 1
}
stop_rad() { stop_pid "$RAD_PID"; RAD_PID=""; }

# --- the client requests ----------------------------------------------------
# A Thunderbird-style PROPFIND Depth 1 for ETags, and a multiget.
PROPFIND_BODY='<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>'
propfind() { # $1 user:pass, $2 url, $3 out
  curl -fsS --max-time 300 -u "$1" -X PROPFIND -H 'Depth: 1' -H 'Content-Type: application/xml; charset=utf-8' \
    --data "$PROPFIND_BODY" -o "$3" "$2"
}
multiget() { # $1 user:pass, $2 url, $3 body file, $4 out
  curl -fsS --max-time 300 -u "$1" -X REPORT -H 'Depth: 1' -H 'Content-Type: application/xml; charset=utf-8' \
    --data-binary "@$3" -o "$4" "$2"
}
synccoll() { # $1 user:pass, $2 url, $3 token ("" for initial), $4 out
  curl -fsS --max-time 300 -u "$1" -X REPORT -H 'Content-Type: application/xml; charset=utf-8' \
    --data "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:sync-collection xmlns:D=\"DAV:\"><D:sync-token>$3</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>" \
    -o "$4" "$2"
}
CD_AUTH=demo:bench
RAD_AUTH=demo:bench

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); }

hf() { # $1 json out, then hyperfine args; prints the median in seconds
  local out=$1; shift
  hyperfine --style none --export-json "$out" "$@" >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
  py median "$out"
}

# --- 1. first start: server-cold Thunderbird pattern --------------------------
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting contactsdav with $N seeded contacts"
t0=$(now)
start_cd 30s --seed-contacts "$N"
t1=$(now)
log "contactsdav up in $(fmt_s "$(elapsed "$t0" "$t1")") (seeding included); emulator at $EMU_URL"
if ! curl -fsS --max-time 10 "$EMU_URL/_emulator/counts" >/dev/null 2>&1; then
  log "NOTE: $EMU_URL/_emulator/counts not reachable; Graph costs come from /metrics only"
  USE_EMU=0
fi

snap s0
t0=$(now); propfind "$CD_AUTH" "$CD_BOOK" "$TMP/cd.pf"; t1=$(now)
snap s1
CD_PF_T=$(elapsed "$t0" "$t1")
CD_CARDS=$(py multiget "$TMP/cd.pf" "$TMP/cd.mg")
t0=$(now); multiget "$CD_AUTH" "$CD_BOOK" "$TMP/cd.mg" "$TMP/cd.mgout"; t1=$(now)
snap s2
CD_MG_T=$(elapsed "$t0" "$t1")
read -r got bad < <(py cards "$TMP/cd.mgout" "$RAD_COL/collection-root/demo/contacts")
log "default book: $CD_CARDS hrefs; multiget returned $got cards, $bad without data"
[ "$got" = "$CD_CARDS" ] && [ "$bad" = 0 ] || { echo "contactsdav multiget returned $got of $CD_CARDS cards ($bad bad)" >&2; exit 1; }
printf '{"tag": "VADDRESSBOOK", "D:displayname": "Contacts"}' >"$RAD_COL/collection-root/demo/contacts/.Radicale.props"
G_PF=$(graph_cost s0 s1)
G_MG=$(graph_cost s1 s2)

log "starting Radicale on the same $CD_CARDS cards (fresh storage, no item cache yet)"
start_rad
t0=$(now); propfind "$RAD_AUTH" "$RAD_BOOK" "$TMP/rad.pf"; t1=$(now)
RAD_PF_T=$(elapsed "$t0" "$t1")
RAD_CARDS=$(py multiget "$TMP/rad.pf" "$TMP/rad.mg")
t0=$(now); multiget "$RAD_AUTH" "$RAD_BOOK" "$TMP/rad.mg" "$TMP/rad.mgout"; t1=$(now)
RAD_MG_T=$(elapsed "$t0" "$t1")
read -r rgot rbad < <(py cards "$TMP/rad.mgout")
[ "$RAD_CARDS" = "$CD_CARDS" ] && [ "$rgot" = "$CD_CARDS" ] || { echo "Radicale serves $RAD_CARDS hrefs, $rgot cards; want $CD_CARDS" >&2; exit 1; }
row "First PROPFIND Depth 1 (getetag, resourcetype) after first start: contactsdav lists Graph, Radicale builds its item cache" "$(fmt_s "$CD_PF_T")" "$(fmt_s "$RAD_PF_T")" "$G_PF"
row "First multiget of all $CD_CARDS cards after it" "$(fmt_s "$CD_MG_T")" "$(fmt_s "$RAD_MG_T")" "$G_MG"

# --- 2. warm Thunderbird pattern (hyperfine) ----------------------------------
log "Thunderbird pattern, warm: PROPFIND Depth 1, then multiget of every href, $RUNS runs each"
# No warmup: the first PROPFIND and multiget above warmed both servers.
pf_cmd() { echo "curl -fsS --max-time 300 -u $1 -X PROPFIND -H 'Depth: 1' -H 'Content-Type: application/xml' --data '$PROPFIND_BODY' -o /dev/null $2"; }
mg_cmd() { echo "curl -fsS --max-time 300 -u $1 -X REPORT -H 'Depth: 1' -H 'Content-Type: application/xml' --data-binary @$3 -o /dev/null $2"; }
snap s3
CD_TPF=$(hf "$TMP/hf-cd-pf.json" --runs "$RUNS" "$(pf_cmd "$CD_AUTH" "$CD_BOOK")")
CD_TMG=$(hf "$TMP/hf-cd-mg.json" --runs "$RUNS" "$(mg_cmd "$CD_AUTH" "$CD_BOOK" "$TMP/cd.mg")")
snap s4
RAD_TPF=$(hf "$TMP/hf-rad-pf.json" --runs "$RUNS" "$(pf_cmd "$RAD_AUTH" "$RAD_BOOK")")
RAD_TMG=$(hf "$TMP/hf-rad-mg.json" --runs "$RUNS" "$(mg_cmd "$RAD_AUTH" "$RAD_BOOK" "$TMP/rad.mg")")
row "Thunderbird pattern, warm server: PROPFIND Depth 1 (getetag, resourcetype) (median of $RUNS)" "$(fmt_s "$CD_TPF")" "$(fmt_s "$RAD_TPF")" "$(graph_cost s3 s4) for both rows, $((2 * RUNS)) requests"
row "Thunderbird pattern, warm server: one multiget of every href (median of $RUNS)" "$(fmt_s "$CD_TMG")" "$(fmt_s "$RAD_TMG")" "(above)"

# --- 3. sync-collection -------------------------------------------------------
log "sync-collection: initial and with the token"
synccoll "$CD_AUTH" "$CD_BOOK" "" "$TMP/cd.sc"
synccoll "$RAD_AUTH" "$RAD_BOOK" "" "$TMP/rad.sc"
CD_TOK=$(py synctoken "$TMP/cd.sc")
RAD_TOK=$(py synctoken "$TMP/rad.sc")
[ -n "$CD_TOK" ] && [ -n "$RAD_TOK" ] || { echo "no sync-token (contactsdav '$CD_TOK', Radicale '$RAD_TOK')" >&2; exit 1; }
n1=$(py responses "$TMP/cd.sc"); n2=$(py responses "$TMP/rad.sc")
log "initial sync-collection: contactsdav $n1 responses, Radicale $n2"
sc_cmd() { echo "curl -fsS --max-time 300 -u $1 -X REPORT -H 'Content-Type: application/xml' --data '<?xml version=\"1.0\"?><D:sync-collection xmlns:D=\"DAV:\"><D:sync-token>$3</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>' -o /dev/null $2"; }
snap s5
CD_SC0=$(hf "$TMP/hf-cd-sc0.json" --runs "$HRUNS" --warmup 1 "$(sc_cmd "$CD_AUTH" "$CD_BOOK" "")")
snap s6
CD_SC1=$(hf "$TMP/hf-cd-sc1.json" --runs "$HRUNS" --warmup 1 "$(sc_cmd "$CD_AUTH" "$CD_BOOK" "$CD_TOK")")
snap s7
RAD_SC0=$(hf "$TMP/hf-rad-sc0.json" --runs "$HRUNS" --warmup 1 "$(sc_cmd "$RAD_AUTH" "$RAD_BOOK" "")")
RAD_SC1=$(hf "$TMP/hf-rad-sc1.json" --runs "$HRUNS" --warmup 1 "$(sc_cmd "$RAD_AUTH" "$RAD_BOOK" "$RAD_TOK")")
row "sync-collection REPORT, no token (all $CD_CARDS hrefs + etags; median of $HRUNS)" "$(fmt_s "$CD_SC0")" "$(fmt_s "$RAD_SC0")" "$(graph_cost s5 s6) over $((HRUNS + 1)) runs"
row "sync-collection REPORT with the token, nothing changed (median of $HRUNS)" "$(fmt_s "$CD_SC1")" "$(fmt_s "$RAD_SC1")" "$(graph_cost s6 s7) over $((HRUNS + 1)) runs"

# --- 4. vdirsyncer -----------------------------------------------------------
vds_conf() { # $1 name, $2 url, $3 user, $4 password
  local d="$TMP/vds-$1"
  mkdir -p "$d/local" "$d/status"
  cat >"$d/config" <<EOF
[general]
status_path = "$d/status/"

[pair book]
a = "local"
b = "remote"
collections = null
conflict_resolution = "b wins"

[storage local]
type = "filesystem"
path = "$d/local/"
fileext = ".vcf"

[storage remote]
type = "carddav"
url = "$2"
username = "$3"
password = "$4"
EOF
  # discover asks questions: answer "y" (a bounded list, not yes(1), whose
  # SIGPIPE would fail the pipeline under pipefail).
  printf 'y\n%.0s' $(seq 1 20) | timeout 120 vdirsyncer -c "$d/config" discover >"$d/discover.log" 2>&1 || { cat "$d/discover.log" >&2; exit 1; }
}
vds_sync() { # $1 name, $2 log; prints wall seconds
  local d="$TMP/vds-$1" t0 t1
  t0=$(now)
  timeout 600 vdirsyncer -c "$d/config" sync >"$2" 2>&1 || { cat "$2" >&2; echo "vdirsyncer sync ($1) failed" >&2; exit 1; }
  t1=$(now)
  if grep -qiE 'error|warning|traceback' "$2"; then log "vdirsyncer ($1) said:"; grep -iE 'error|warning|traceback' "$2" | head -5 >&2; fi
  elapsed "$t0" "$t1"
}
vds_count() { find "$TMP/vds-$1/local" -name '*.vcf' | wc -l; }

# One client folder per cold run: deleting 10000 files and writing them
# again at the same paths made each later run slower (10.8, 14.6, 17.5 s on
# the same warm server), fresh folders do not (10.2, 9.8, 10.0, 9.8 s).
# Discovered here, before the restart, so that the timed syncs do all the work.
for i in $(seq 0 "$RUNS"); do
  vds_conf "cd$i" "$CD_BOOK" demo bench
  vds_conf "rad$i" "$RAD_BOOK" demo bench
done

log "restarting both servers (contactsdav: same data, empty in-memory cache)"
stop_cd; stop_rad
start_cd 30s; start_rad

log "vdirsyncer cold full sync: first after the restart, then $RUNS more"
cold_one() { # $1 name, $2 run number; prints wall seconds
  local t
  sync # flush what earlier steps wrote, so that this run does not pay for it
  t=$(vds_sync "$1$2" "$TMP/vds-$1.cold$2.log")
  [ "$(vds_count "$1$2")" = "$CD_CARDS" ] || { echo "$1: cold sync left $(vds_count "$1$2") cards, want $CD_CARDS" >&2; exit 1; }
  echo "$t"
}
cold_rest() { # $1 name; prints the space-separated wall seconds of RUNS runs
  local i t all=""
  for i in $(seq 1 "$RUNS"); do
    t=$(cold_one "$1" "$i")
    all="$all $(printf '%.2f' "$t")"
  done
  echo "$all"
}
snap s8
CD_C0=$(cold_one cd 0)
snap s9
CD_CR_ALL=$(cold_rest cd)
snap s10
RAD_C0=$(cold_one rad 0)
RAD_CR_ALL=$(cold_rest rad)
CD_CR=$(py median-of $CD_CR_ALL)
RAD_CR=$(py median-of $RAD_CR_ALL)
row "vdirsyncer cold full sync into an empty folder, first after a server restart" "$(fmt_s "$CD_C0")" "$(fmt_s "$RAD_C0")" "$(graph_cost s8 s9)"
row "vdirsyncer cold full sync, server warm (median of $RUNS; runs in s:$CD_CR_ALL /$RAD_CR_ALL)" "$(fmt_s "$CD_CR")" "$(fmt_s "$RAD_CR")" "$(graph_cost s9 s10) over $RUNS runs"

log "vdirsyncer idle sync within the refresh interval (30s)"
snap s11
CD_I=$(hf "$TMP/hf-cd-idle.json" --runs "$RUNS" "timeout 300 vdirsyncer -c $TMP/vds-cd0/config sync")
snap s12
RAD_I=$(hf "$TMP/hf-rad-idle.json" --runs "$RUNS" "timeout 300 vdirsyncer -c $TMP/vds-rad0/config sync")
row "vdirsyncer idle sync, nothing changed, within contactsdav's 30s refresh interval (median of $RUNS)" "$(fmt_s "$CD_I")" "$(fmt_s "$RAD_I")" "$(graph_cost s11 s12) over $RUNS runs"

log "vdirsyncer idle sync past the refresh interval: contactsdav restarted with --refresh-interval 1s"
stop_cd
start_cd 1s
timeout 300 vdirsyncer -c "$TMP/vds-cd0/config" sync >"$TMP/vds-cd.warm.log" 2>&1 # untimed: reload after restart
snap s13
CD_I1=$(hf "$TMP/hf-cd-idle1.json" --runs "$RUNS" --prepare 'sleep 1.2' "timeout 300 vdirsyncer -c $TMP/vds-cd0/config sync")
snap s14
row "vdirsyncer idle sync, each run after contactsdav's refresh interval (1s) has passed (median of $RUNS)" "$(fmt_s "$CD_I1")" "— (no such interval: row above)" "$(graph_cost s13 s14) over $RUNS runs"

# Final consistency check: the idle syncs changed nothing.
for s in cd0 rad0; do
  [ "$(vds_count "$s")" = "$CD_CARDS" ] || { echo "$s: after the idle syncs $(vds_count "$s") cards, want $CD_CARDS" >&2; exit 1; }
done
errs=$(grep -ciE 'level=error|panic' "$TMP/cd.err" || true)

# --- report -------------------------------------------------------------------
{
  echo "### contactsdav vs Radicale, $CD_CARDS cards in the default book (seed N=$N)"
  echo
  dirty=""; git -C "$REPO" diff --quiet HEAD -- . ':!bench' || dirty="+changes"
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores (load average $LOAD0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end), contactsdav $(git -C "$REPO" rev-parse --short HEAD)$dirty, $(radicale --version 2>/dev/null | sed 's/^/Radicale /'), $(vdirsyncer --version 2>/dev/null | sed 's/, version//'), $(hyperfine --version)."
  echo "Command: \`BENCH_CONTACTS=$N BENCH_RUNS=$RUNS BENCH_HYPERFINE_RUNS=$HRUNS bash bench/compare.sh\`. Graph requests: HTTP requests contactsdav sent (contactsdav_graph_requests_total), and the emulator's own counts (\$batch members counted one by one)."
  echo
  echo "| step | contactsdav | Radicale | Graph requests (contactsdav) |"
  echo "|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "contactsdav log: $errs error/panic lines."
} >"$TMP/table.md"
cat "$TMP/table.md"
if [ "$errs" != 0 ]; then log "contactsdav errors:"; grep -iE 'level=error|panic' "$TMP/cd.err" | head -20 >&2; fi
if [ "$SAVE" = 1 ]; then
  out="$REPO/bench/results-$(date -u +%Y-%m-%d).md"
  cat "$TMP/table.md" >>"$out"
  echo >>"$out"
  log "saved to $out"
fi
