#!/usr/bin/env bash
# litefuse_hook benchmark: one command, measured on this machine, Markdown table on stdout, progress on stderr.
#
#     bash bench/run.sh                  # full run: e.g. ~5-10 min on a 2-core machine (the first run also
#                                        #   generates ~1.2 GB of data)
#     BENCH_QUICK=1 bash bench/run.sh    # smoke test: smaller files, 1 warm-up + 5 runs
#     BENCH_BASELINE=HEAD bash bench/run.sh   # before/after in one run: HEAD's script vs the working tree's
#
#   P1  hook wall time for one new turn (loopback receiver): (a) the command `install --print-hook-command`
#       prints (fallback: java -XX:TieredStopAtLevel=1 -cp <cp> litefuse_hook), (b) plain .ci/jbang, (c) a bare
#       JVM hello-world as the floor, (d) the command of (a) with no new turn (start-up, state check, exit).
#                                                                              target (a) <= 3x floor
#   P2  P1(a) at the end of a primed ~200 MB transcript vs a ~50 KB one: ratio of medians.    target <= 1.1
#   P3  replay --json throughput (200 MB, default heap) and a ~1 GB file under -Xmx256m (GC log -> peak heap).
#                                                                 target >= 150 MB/s within a 256 MB heap
#   P4  export throughput to the loopback receiver: `backfill` if it exists, else `replay --send` of 200 MB;
#       spans counted at the receiver / export window.                           target >= 20,000 spans/s
#   P5  a firing that finds a finished workflow run of 50 agents (built from tests/staged/agents-print, a real
#       2.1.332 session): the launching turn sent first (untimed), then the run's files and the task notification's
#       turn written, then one timed hook run with the command of P1 (a), which must send all of the run.
#                                                      target: all in that firing, within the 3 s export budget
#   P6  one new turn over HTTPS, and over HTTPS behind a CONNECT proxy adding 40 ms per round trip
#       (tests/ConnectProxy.java), with the command of P1 (a) installed for the HTTPS endpoint: what Claude Code waits (the command's wall time)
#       and when the turn is delivered (its log line).                                 target: wait <= 80 ms
#   P7  the command of P1 (a), one new turn per run, in three HOMEs, runs interleaved round by round: (a) clean, as P1
#       has it; (b) plus 10,000 dead sessions in the state folder (10,000 <key>.json + .lock + seen-*.txt, their
#       transcripts gone) and a fresh pruned.json (pruning not due: the days between the daily passes); (c) as (b) with
#       pruned.json removed and the dead sessions topped back up to 10,000 before each run (untimed), so every run does
#       a pruning slice. Wait, delivered and when the firing's JVM ended; (b)/(a), (c)/(a); sessions removed per run.
#                                                        target: (b)/(a) <= 1.05 on delivered and on wait
# The table's header says which JDK each measure ran on: P1/P2/P7 the one the install launcher runs, P3/P4 PATH's.
#
# Options (environment): LITEFUSE_SCRIPT=/path/to/litefuse_hook.java (default: the repository's),
#   BENCH_RUNS=15 BENCH_WARMUP=3 BENCH_SMALL_BYTES=5e4 BENCH_MID_BYTES=2e8 BENCH_BIG_BYTES=1e9
#   BENCH_P4_BYTES (default: BENCH_MID_BYTES) BENCH_ONLY=P1,P2,P3,P4,P5,P6,P7 BENCH_P7_DEAD=10000
#   BENCH_QUIET_WAIT=180 (before each measure and before repeating a dropped round, wait at most this many seconds
#     for other work to leave the CPUs idle)
#   BENCH_BASELINE=<git revision | path to a litefuse_hook.java>: also build that version (`git show
#     REV:litefuse_hook.java`, or a copy of the file) and measure it with the same harness, its runs interleaved
#     with the current script's (P1, P2, P6 and P7 within each round, P3 and P4 alternating), so machine noise hits both
#     alike; the table then shows baseline, current and current / baseline side by side.
#   BENCH_P3_RUNS, BENCH_P4_RUNS (timed runs per variant of each P3 file and of P4: 1, or 5 with a baseline)
# Transcripts are generated from the repository's own tests/transcripts/*.jsonl (the crafted__* test fixtures
# left out; see gen_transcripts.py), so the benchmark needs nothing outside this clone but Linux with GNU
# coreutils, java, javac, python3, git (.ci/jbang runs the jbang on PATH, else JBang from Maven Central through
# hooks/jbang: curl, wget or java) and, the first time, network access for JBang's bootstrap and the script's dependencies.
# What it writes goes to bench/out/ (git-ignored): build/ (a frozen copy of the script and its jar),
# build-baseline/ (the same for BENCH_BASELINE),
# data/ (generated transcripts, reused while the generator and sources are unchanged), tmp/ (temporary HOMEs,
# logs), results.json (raw numbers); outside it only the caches of JBang (~/.jbang), Maven (~/.m2) and .ci/jbang's
# bootstrap (~/.cache/litefuse-hook). It never touches ~/.claude and talks to 127.0.0.1 only.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$bench_dir")"
out="$bench_dir/out"
build="$out/build"
data="$out/data"
jbang="$root/.ci/jbang"

msg() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { msg "ERROR: $*"; exit 1; }

missing=()
for tool in java javac python3 git sha256sum; do command -v "$tool" >/dev/null || missing+=("$tool"); done
# .ci/jbang runs the jbang on PATH, else JBang from Maven Central (hooks/jbang: pinned jars, fetched once).
[[ ${#missing[@]} -eq 0 ]] || die "missing on PATH: ${missing[*]}"

if [[ -n "${BENCH_QUICK:-}" ]]; then
  : "${BENCH_RUNS:=5}" "${BENCH_WARMUP:=1}" "${BENCH_MID_BYTES:=5e7}" "${BENCH_BIG_BYTES:=3e8}"
fi
runs="${BENCH_RUNS:-15}"
warmup="${BENCH_WARMUP:-3}"
small_bytes="${BENCH_SMALL_BYTES:-5e4}"
mid_bytes="${BENCH_MID_BYTES:-2e8}"
big_bytes="${BENCH_BIG_BYTES:-1e9}"
p4_bytes="${BENCH_P4_BYTES:-$mid_bytes}"
only="${BENCH_ONLY:-P1,P2,P3,P4,P5,P6,P7}"
p7_dead="${BENCH_P7_DEAD:-10000}"
quiet_wait="${BENCH_QUIET_WAIT:-180}"
script_src="$(readlink -f "${LITEFUSE_SCRIPT:-$root/litefuse_hook.java}")"
[[ -f "$script_src" ]] || die "no script at $script_src"
baseline="${BENCH_BASELINE:-}"
default_long_runs=1; [[ -n "$baseline" ]] && default_long_runs=5   # a comparison calls a difference only from 4 runs each (bench.py verdict)
p3_runs="${BENCH_P3_RUNS:-$default_long_runs}"
p4_runs="${BENCH_P4_RUNS:-$default_long_runs}"

mkdir -p "$build" "$data"
rm -rf "$out/tmp"
mkdir -p "$out/tmp"

# ---- 1. Build frozen copies of the script (the real one may be edited while the benchmark runs): the current
#         one in build/ and, with BENCH_BASELINE, the baseline in build-baseline/. Each variant's install launcher
#         is later made in its own directory, so it watches its own frozen copy.
shown() { local p="$1"; [[ "$p" == "$root/"* ]] && p="${p#"$root/"}"; printf '%s' "$p"; }   # repo-relative for display

# Snapshot helpers: put the frozen script into a directory and set frozen_script.
snapshot_file() { # source-file dir
  if grep -qE '^//(SOURCES|FILES) ' "$1"; then
    frozen_script="$1"   # relative //SOURCES or //FILES would break in a copy: build in place
  else
    cp "$1" "$2/litefuse_hook.java"
    frozen_script="$2/litefuse_hook.java"
  fi
}
snapshot_rev() { # git-revision dir
  git -C "$root" show "$1:./litefuse_hook.java" >"$2/litefuse_hook.java"
  frozen_script="$2/litefuse_hook.java"
  if grep -qE '^//(SOURCES|FILES) ' "$frozen_script"; then
    # Relative //SOURCES or //FILES need the files beside the script as they were at that revision: take its tree.
    rm -rf "$2/tree" && mkdir -p "$2/tree"
    git -C "$root" archive "$1" | tar -x -C "$2/tree"
    frozen_script="$2/tree/litefuse_hook.java"
  fi
}

# build_frozen NAME DIR SNAPSHOT-COMMAND...: snapshots (again before each attempt: the source may be mid-edit),
# builds with JBang, copies the jar into DIR (JBang may rebuild its cached one), and sets frozen_script,
# frozen_classpath and frozen_version.
build_frozen() {
  local name="$1" dir="$2" attempt built="" cp_line jar
  shift 2
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    "$@"
    msg "building the $name script $(shown "$frozen_script") (sha256 $(sha256sum "$frozen_script" | cut -c1-12)) with JBang, attempt $attempt/3"
    if "$jbang" build "$frozen_script" >"$dir/build.log" 2>&1; then built=1; break; fi
    msg "build failed: $(grep -m1 -E 'error:|ERROR' "$dir/build.log" || tail -1 "$dir/build.log")"
    [[ $attempt -lt 3 ]] && { msg "retrying in 20 s (the script may be mid-edit)"; sleep 20; }
  done
  [[ -n "$built" ]] || die "could not build the $name script (log: $(shown "$dir/build.log")); set LITEFUSE_SCRIPT (current) or BENCH_BASELINE to a buildable copy"
  cp_line="$("$jbang" info classpath "$frozen_script" 2>"$dir/classpath.err" | tail -1)"
  jar="${cp_line%%:*}"
  [[ -f "$jar" ]] || die "JBang's class path does not start with a built jar: $jar"
  cp "$jar" "$dir/litefuse_hook.jar"
  frozen_classpath="$dir/litefuse_hook.jar:${cp_line#*:}"
  printf '%s\n' "$frozen_classpath" >"$dir/classpath.txt"
  frozen_version="$(java -cp "$frozen_classpath" litefuse_hook --version 2>&1 | head -1)" \
    || die "the built $name jar does not run: $frozen_version"
  msg "built $frozen_version; class path in $(shown "$dir/classpath.txt")"
}

start_sha="$(sha256sum "$script_src" | cut -c1-12)"
build_frozen current "$build" snapshot_file "$script_src" "$build"
script="$frozen_script" classpath="$frozen_classpath" version="$frozen_version"

baseline_args=()
baseline_line=""
if [[ -n "$baseline" ]]; then
  baseline_build="$out/build-baseline"
  rm -rf "$baseline_build"
  if [[ -f "$baseline" ]]; then
    baseline_src="$(readlink -f "$baseline")"
    build_frozen baseline "$baseline_build" snapshot_file "$baseline_src" "$baseline_build"
    baseline_name="\`$(shown "$baseline_src")\`"
  elif rev="$(git -C "$root" rev-parse --verify --quiet "$baseline^{commit}")"; then
    git -C "$root" cat-file -e "$rev:./litefuse_hook.java" 2>/dev/null || die "revision $baseline has no litefuse_hook.java"
    build_frozen baseline "$baseline_build" snapshot_rev "$rev" "$baseline_build"
    baseline_name="\`$baseline\` ($(git -C "$root" rev-parse --short "$rev"))"
  else
    die "BENCH_BASELINE=$baseline is neither a file nor a git revision of $(basename "$root")"
  fi
  baseline_line="Baseline: $baseline_name, sha256 $(sha256sum "$frozen_script" | cut -c1-12)… ($frozen_version)"
  baseline_args=(--baseline-script "$frozen_script" --baseline-classpath "$frozen_classpath"
                 --baseline-name "$baseline_name")
fi

# ---- 2. Helpers: the receiver and the hello-world floor.
# --release 17: they run on the java on PATH (the receiver) and on the launcher's java (Hello), maybe not javac's.
javac --release 17 -d "$out/classes" "$bench_dir/BenchReceiver.java" "$bench_dir/Hello.java" "$root/tests/ConnectProxy.java"

# ---- 3. Transcripts (regenerated only when the generator, the sources or the size change), made from the
#         repository's tests/transcripts/*.jsonl (gen_transcripts.py chooses which).
sources_digest="$(python3 "$bench_dir/gen_transcripts.py" --sources-digest)" || die "no source transcripts"
gen() { # name bytes first-copy
  local file="$data/$1.jsonl" stamp
  stamp="$2 $3 $(sha256sum "$bench_dir/gen_transcripts.py" | cut -c1-16) $sources_digest"
  if [[ -f "$file" && -f "$file.stamp" && "$(cat "$file.stamp")" == "$stamp" ]]; then
    msg "reusing $file ($(stat -c %s "$file") bytes)"
  else
    msg "generating $file ($2 bytes)"
    python3 "$bench_dir/gen_transcripts.py" --out "$file" --bytes "$2" --first-copy "$3" --session-id "bench-$1"
    printf '%s' "$stamp" >"$file.stamp"
  fi
  printf '%s' "$file"
}
small="$(gen "small-$small_bytes" "$small_bytes" 1)"
mid="$(gen "mid-$mid_bytes" "$mid_bytes" 1001)"
big=""
if [[ "$only" == *P3* ]]; then big="$(gen "big-$big_bytes" "$big_bytes" 3001)"; fi
p4_file="$mid"
if [[ "$p4_bytes" != "$mid_bytes" ]]; then p4_file="$(gen "p4-$p4_bytes" "$p4_bytes" 5001)"; fi

# ---- 4. Measure.
head_sha="$(git -C "$root" show HEAD:litefuse_hook.java 2>/dev/null | sha256sum | cut -c1-12 || true)"
# bench.py adds the JDK each measure ran on below these lines (P1/P2 may run on another JDK than the PATH's).
header="## litefuse_hook benchmark — $(date '+%Y-%m-%d %H:%M %Z'), $(nproc) cores

Script: \`$(shown "$script_src")\` sha256 ${start_sha}… ($version; $( [[ "$start_sha" == "$head_sha" ]] && echo "same as HEAD $(git -C "$root" rev-parse --short HEAD 2>/dev/null)" || echo "uncommitted changes vs HEAD $(git -C "$root" rev-parse --short HEAD 2>/dev/null)" ))${baseline_line:+
$baseline_line}"
python3 "$bench_dir/bench.py" --script "$script" --classpath "$classpath" --classes "$out/classes" \
  --small "$small" --mid "$mid" --big "${big:-$mid}" --p4-file "$p4_file" \
  --runs "$runs" --warmup "$warmup" --p3-runs "$p3_runs" --p4-runs "$p4_runs" --p7-dead "$p7_dead" --only "$only" \
  --quiet-wait "$quiet_wait" --header "$header" ${baseline_args[@]+"${baseline_args[@]}"}

end_sha="$(sha256sum "$script_src" | cut -c1-12)"
if [[ "$end_sha" != "$start_sha" ]]; then
  echo "- Note: $(shown "$script_src") changed during the run ($start_sha… → $end_sha…); all numbers are for the frozen copy $start_sha…."
fi
