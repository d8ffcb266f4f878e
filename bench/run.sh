#!/usr/bin/env bash
# litefuse_hook benchmark: one command, measured on this machine, Markdown table on stdout, progress on stderr.
#
#     bash bench/run.sh                  # full run: ~5-10 min on 2 cores (first run also generates ~1.2 GB of data)
#     BENCH_QUICK=1 bash bench/run.sh    # smoke test: smaller files, 1 warm-up + 5 runs
#
#   P1  hook wall time for one new turn (loopback receiver): (a) the command `install --print-hook-command`
#       prints (fallback: java -XX:TieredStopAtLevel=1 -cp <cp> litefuse_hook), (b) plain .ci/jbang, (c) a bare
#       JVM hello-world as the floor.                                          target (a) <= 3x floor
#   P2  P1(a) at the end of a primed ~200 MB transcript vs a ~50 KB one: ratio of medians.    target <= 1.1
#   P3  replay --json throughput (200 MB, default heap) and a ~1 GB file under -Xmx256m (GC log -> peak heap).
#                                                                 target >= 150 MB/s within a 256 MB heap
#   P4  export throughput to the loopback receiver: `backfill` if it exists, else `replay --send` of 200 MB;
#       spans counted at the receiver / export window.                           target >= 20,000 spans/s
#
# Options (environment): LITEFUSE_SCRIPT=/path/to/litefuse_hook.java (default: the repository's),
#   BENCH_RUNS=15 BENCH_WARMUP=3 BENCH_SMALL_BYTES=5e4 BENCH_MID_BYTES=2e8 BENCH_BIG_BYTES=1e9
#   BENCH_P4_BYTES (default: BENCH_MID_BYTES) BENCH_ONLY=P1,P2,P3,P4
#   BENCH_QUIET_WAIT=180 (before each measure, wait at most this many seconds for other work to leave the CPUs idle)
# Everything it writes goes to bench/out/ (git-ignored): build/ (a frozen copy of the script and its jar),
# data/ (generated transcripts, reused while the generator and sources are unchanged), tmp/ (temporary HOMEs,
# logs), results.json (raw numbers). It never touches ~/.claude and talks to 127.0.0.1 only.
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

command -v java >/dev/null || die "java is not on PATH"
command -v javac >/dev/null || die "javac is not on PATH"
command -v python3 >/dev/null || die "python3 is not on PATH"

if [[ -n "${BENCH_QUICK:-}" ]]; then
  : "${BENCH_RUNS:=5}" "${BENCH_WARMUP:=1}" "${BENCH_MID_BYTES:=5e7}" "${BENCH_BIG_BYTES:=3e8}"
fi
runs="${BENCH_RUNS:-15}"
warmup="${BENCH_WARMUP:-3}"
small_bytes="${BENCH_SMALL_BYTES:-5e4}"
mid_bytes="${BENCH_MID_BYTES:-2e8}"
big_bytes="${BENCH_BIG_BYTES:-1e9}"
p4_bytes="${BENCH_P4_BYTES:-$mid_bytes}"
only="${BENCH_ONLY:-P1,P2,P3,P4}"
quiet_wait="${BENCH_QUIET_WAIT:-180}"
script_src="$(readlink -f "${LITEFUSE_SCRIPT:-$root/litefuse_hook.java}")"
[[ -f "$script_src" ]] || die "no script at $script_src"

mkdir -p "$build" "$data"
rm -rf "$out/tmp"
mkdir -p "$out/tmp"

# ---- 1. Build a frozen copy of the script (the real one may be edited while the benchmark runs).
snapshot() {
  if grep -qE '^//(SOURCES|FILES) ' "$script_src"; then
    script="$script_src"   # relative //SOURCES or //FILES would break in a copy: build in place
  else
    cp "$script_src" "$build/litefuse_hook.java"
    script="$build/litefuse_hook.java"
  fi
}
start_sha="$(sha256sum "$script_src" | cut -c1-12)"
built=""
for attempt in 1 2 3; do
  snapshot
  msg "building $script_src (sha256 $(sha256sum "$script" | cut -c1-12)) with JBang, attempt $attempt/3"
  if "$jbang" build "$script" >"$build/build.log" 2>&1; then built=1; break; fi
  msg "build failed: $(grep -m1 -E 'error:|ERROR' "$build/build.log" || tail -1 "$build/build.log")"
  [[ $attempt -lt 3 ]] && { msg "retrying in 20 s (the script may be mid-edit)"; sleep 20; }
done
[[ -n "$built" ]] || die "could not build $script_src (log: $build/build.log); set LITEFUSE_SCRIPT to a buildable copy"
classpath="$("$jbang" info classpath "$script" 2>"$build/classpath.err" | tail -1)"
jar="${classpath%%:*}"
[[ -f "$jar" ]] || die "JBang's class path does not start with a built jar: $jar"
cp "$jar" "$build/litefuse_hook.jar"
classpath="$build/litefuse_hook.jar:${classpath#*:}"
printf '%s\n' "$classpath" >"$build/classpath.txt"
version="$(java -cp "$classpath" litefuse_hook --version 2>&1 | head -1)" || die "the built jar does not run: $version"
msg "built $version; class path in bench/out/build/classpath.txt"

# ---- 2. Helpers: the receiver and the hello-world floor.
javac -d "$out/classes" "$bench_dir/BenchReceiver.java" "$bench_dir/Hello.java"

# ---- 3. Transcripts (regenerated only when the generator, the sources or the size change).
gen() { # name bytes first-copy
  local file="$data/$1.jsonl" stamp
  stamp="$2 $3 $(sha256sum "$bench_dir/gen_transcripts.py" | cut -c1-16) $(ls -l /work/shared/transcripts/*.jsonl | sha256sum | cut -c1-16)"
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
header="## litefuse_hook benchmark — $(date '+%Y-%m-%d %H:%M %Z'), $(nproc) cores, $(java -version 2>&1 | head -1)

Script: \`${script_src#$root/}\` sha256 ${start_sha}… ($version; $( [[ "$start_sha" == "$head_sha" ]] && echo "same as HEAD $(git -C "$root" rev-parse --short HEAD 2>/dev/null)" || echo "uncommitted changes vs HEAD $(git -C "$root" rev-parse --short HEAD 2>/dev/null)" ))"
python3 "$bench_dir/bench.py" --script "$script" --classpath "$classpath" --classes "$out/classes" \
  --small "$small" --mid "$mid" --big "${big:-$mid}" --p4-file "$p4_file" \
  --runs "$runs" --warmup "$warmup" --only "$only" --quiet-wait "$quiet_wait" --header "$header"

end_sha="$(sha256sum "$script_src" | cut -c1-12)"
if [[ "$end_sha" != "$start_sha" ]]; then
  echo "- Note: $script_src changed during the run ($start_sha… → $end_sha…); all numbers are for the frozen copy $start_sha…."
fi
