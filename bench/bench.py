#!/usr/bin/env python3
"""Benchmark driver for litefuse_hook (run it through bench/run.sh, which builds and passes the class path).

Measures P1..P4 (see bench/README.md), prints progress on stderr and a Markdown table on stdout, and writes
the raw numbers to bench/out/results.json. Everything it creates lives under bench/out/; every measure has
its own temporary HOME under bench/out/tmp/; the only network peer is a loopback receiver it starts itself.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid as uuidlib

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_transcripts import make_turn, last_uuid  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
TMP = os.path.join(OUT, "tmp")
JBANG = os.path.join(ROOT, ".ci", "jbang")


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- helpers

def percentile(values, p):
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(samples_s):
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "median": statistics.median(ms), "min": min(ms), "max": max(ms),
            "p10": percentile(ms, 0.10), "p90": percentile(ms, 0.90), "samples": [round(x, 1) for x in ms]}


def fmt_ms(s):
    return (f"median {s['median']:.0f} ms (p10–p90 {s['p10']:.0f}–{s['p90']:.0f}, "
            f"min–max {s['min']:.0f}–{s['max']:.0f}; n={s['n']})")


def fresh_dir(*parts):
    path = os.path.join(TMP, *parts)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


class Receiver:
    """The loopback OTLP receiver (bench/BenchReceiver.java), started once; it also exits by itself."""

    def __init__(self, classes, lifetime_s):
        self.port_file = os.path.join(TMP, "receiver.port")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        self.log = open(os.path.join(TMP, "receiver.log"), "wb")
        self.proc = subprocess.Popen(["java", "-Xmx512m", "-cp", classes, "BenchReceiver", self.port_file,
                                      str(int(lifetime_s))], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                self.close()
                raise RuntimeError("the loopback receiver did not start (see bench/out/tmp/receiver.log)")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read().strip())
        self.base_url = f"http://127.0.0.1:{self.port}"
        log(f"loopback receiver on {self.base_url} (pid {self.proc.pid})")

    def _get(self, path):
        with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
            return json.loads(response.read())

    def reset(self):
        self._get("/bench/reset")

    def stats(self):
        return self._get("/bench/stats")

    def close(self):
        if self.proc.poll() is None:
            try:
                self._get("/bench/stop")
            except Exception:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # only the receiver this script started, by its pid
                self.proc.wait(timeout=5)
        self.log.close()


class HookSession:
    """A transcript, a temporary HOME and a session id: one isolated place to time hook runs."""

    def __init__(self, name, base_transcript, base_env, receiver_url, copy_base=True):
        self.name = name
        self.dir = fresh_dir(name)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.transcript = os.path.join(self.dir, "transcript.jsonl")
        if base_transcript:
            if copy_base:
                shutil.copyfile(base_transcript, self.transcript)
            else:
                os.link(base_transcript, self.transcript)
        else:
            open(self.transcript, "wb").close()
        self.session_id = f"bench-{name}-{uuidlib.uuid4()}"
        self.parent = last_uuid(self.transcript) if base_transcript else None
        self.turns = 0
        self.env = dict(base_env, HOME=self.home, TRACE_TO_LANGFUSE="true", LANGFUSE_PUBLIC_KEY="pk-lf-x",
                        LANGFUSE_SECRET_KEY="sk-lf-x", LANGFUSE_BASE_URL=receiver_url)
        self.env.pop("CC_LANGFUSE_EXPORT_BUDGET_MS", None)
        self.log_file = os.path.join(self.home, ".claude", "state", "litefuse_hook.log")
        self.payload = json.dumps({"session_id": self.session_id, "transcript_path": self.transcript,
                                   "cwd": self.dir, "hook_event_name": "Stop", "stop_hook_active": False}).encode()

    def append_turn(self):
        self.turns += 1
        rows, self.parent = make_turn(self.session_id, self.parent, self.turns)
        with open(self.transcript, "ab") as f:
            f.write(rows)

    def log_lines(self):
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def run(self, command, timeout=120, extra_env=None):
        """Runs the hook command (through bash -c, as Claude Code runs hook commands); returns (seconds, ok, why)."""
        before = len(self.log_lines())
        env = dict(self.env, **(extra_env or {}))
        started = time.perf_counter()
        try:
            proc = subprocess.run(["bash", "-c", command], input=self.payload, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env, timeout=timeout, cwd=self.dir)
        except subprocess.TimeoutExpired:
            return timeout, False, f"timed out after {timeout}s"
        elapsed = time.perf_counter() - started
        new = self.log_lines()[before:]
        if proc.returncode != 0:
            return elapsed, False, f"exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}"
        processed = [line for line in new if "Processed " in line]
        errors = [line for line in new if "[ERROR]" in line]
        if errors:
            return elapsed, False, errors[-1][-300:]
        if not processed:
            return elapsed, False, "no 'Processed' line in the hook log: " + " | ".join(new)[-300:]
        return elapsed, True, processed[-1]

    def state(self):
        """The session's state file (the only *.json directly under state/litefuse), or None."""
        folder = os.path.join(self.home, ".claude", "state", "litefuse")
        try:
            files = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".json")]
        except FileNotFoundError:
            return None
        for path in files:
            try:
                data = json.load(open(path))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("session_id") == self.session_id:
                return data
        return None


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (Linux /proc), or None."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_busy(interval):
    """Fraction of all CPUs busy (any process) over `interval` seconds, from /proc/stat."""
    def sample():
        values = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(interval)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_until_quiet(results, measure, max_wait):
    """Waits (bounded) until other work leaves the CPUs mostly idle; records how busy they were."""
    started = time.time()
    busy = cpu_busy(2)
    while busy > 0.15 and time.time() - started < max_wait:
        log(f"{measure}: the CPUs are {busy:.0%} busy with other work; waiting (at most {max_wait}s more in all)")
        time.sleep(8)
        busy = cpu_busy(2)
    if busy > 0.15:
        log(f"{measure}: still {busy:.0%} busy after {max_wait}s; measuring anyway (numbers will be inflated)")
    if results is not None:
        results.setdefault("cpu_busy_before", {})[measure] = round(busy, 3)


# ----------------------------------------------------------------------------- P1 / P2

HZ = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(receiver):
    """CPU seconds so far: all CPUs busy (incl. steal), our waited-for children, the receiver, this process."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system [idle iowait] irq softirq steal
    t = os.times()
    return busy / HZ, t.children_user + t.children_system, cpu_seconds(receiver.proc.pid) or 0.0, t.user + t.system


def foreign_cpu(before, after):
    """CPU seconds used between two snapshots by processes that are not ours (other work on the machine)."""
    total, children, receiver, own = (a - b for a, b in zip(after, before))
    return total - children - receiver - own


def run_one(session, command, verify, append=True):
    """One timed hook run after appending a turn (unless `append` is false); `verify` requires a 'Processed' log
    line (a real run that sent the turn)."""
    if append:
        session.append_turn()
    if verify:
        return session.run(command)
    started = time.perf_counter()
    try:
        proc = subprocess.run(["bash", "-c", command], input=session.payload, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=session.env, timeout=60, cwd=session.dir)
        why = f"exit {proc.returncode}: " + proc.stderr.decode(errors="replace")[-200:]
        return time.perf_counter() - started, proc.returncode == 0, why
    except subprocess.TimeoutExpired:
        return 60, False, "timed out after 60s"


def run_rounds(measure, runners, args, receiver, results):
    """Warm-ups, then rounds of all `runners` (key -> (session, command, verify, append)) interleaved, until `args.runs`
    undisturbed rounds. A round is disturbed when other processes used more than max(50 ms, 15 % of the run's
    wall time) of CPU during one of its runs; it is dropped and repeated, at most `args.runs` extra times (then
    disturbed rounds are kept and counted)."""
    samples = {key: [] for key in runners}
    failures = {key: [] for key in runners}
    kept_disturbed = dropped = 0
    log(f"{measure}: {args.warmup} warm-up + {args.runs} timed rounds, {'/'.join(runners)} interleaved per round")
    for i in range(args.warmup):
        for key, (session, command, verify, append) in runners.items():
            _, ok, why = run_one(session, command, verify, append)
            if not ok:
                log(f"{measure} ({key}) warm-up {i + 1}: FAILED: {why}")
    done = 0
    while done < args.runs:
        round_samples, disturbed = {}, []
        for key, (session, command, verify, append) in runners.items():
            before = cpu_snapshot(receiver)
            elapsed, ok, why = run_one(session, command, verify, append)
            foreign = foreign_cpu(before, cpu_snapshot(receiver))
            if foreign > max(0.05, 0.15 * elapsed):
                disturbed.append(f"{key}: {foreign:.2f}s CPU of other work in {elapsed:.2f}s")
            round_samples[key] = (elapsed, ok, why)
            if not ok:
                log(f"{measure} ({key}): FAILED: {why}")
        if disturbed and dropped < args.runs:
            dropped += 1
            log(f"{measure}: round dropped, disturbed by other work ({'; '.join(disturbed)}); repeating it")
            wait_until_quiet(None, measure, 60)
            continue
        if disturbed:
            kept_disturbed += 1
        done += 1
        for key, (elapsed, ok, why) in round_samples.items():
            (samples[key] if ok else failures[key]).append(elapsed if ok else why)
        if done % 5 == 0 or done == args.runs:
            log(f"{measure}: round {done}/{args.runs}: " + ", ".join(
                f"{k}={statistics.median(v) * 1000:.0f}ms" for k, v in samples.items() if v))
    results.setdefault("disturbance", {})[measure] = {"dropped_rounds": dropped, "kept_disturbed_rounds": kept_disturbed}
    return samples, failures

def hook_command_a(args, base_env, home=None):
    """The command `install --print-hook-command` prints, or the fallback; its label; why install was not used.

    install runs with HOME=`home` (it may write a launcher there) and in the frozen script's directory, so the
    launcher watches the frozen copy, not the file being edited."""
    home = home or fresh_dir("p1-install-probe")
    env = dict(base_env, HOME=home)
    try:
        proc = subprocess.run([JBANG, args.script, "install", "--print-hook-command"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=180, stdin=subprocess.DEVNULL,
                              cwd=os.path.dirname(os.path.abspath(args.script)))
        lines = [line.strip() for line in proc.stdout.decode(errors="replace").splitlines() if line.strip()]
        if proc.returncode == 0 and lines:
            if len(lines) > 1:
                log(f"install --print-hook-command printed {len(lines)} lines; using the last one")
            return lines[-1], "install --print-hook-command", None
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[0]
    except subprocess.TimeoutExpired:
        why = "timed out"
    fallback = f"java -XX:TieredStopAtLevel=1 -cp {args.classpath} litefuse_hook"
    return fallback, "fallback `java -XX:TieredStopAtLevel=1 -cp <cp> litefuse_hook`", why[:160]


def launcher_java(command):
    """The java a launcher script runs (its `java='...'` line), else the `java` on PATH: the floor uses the same."""
    try:
        path = shlex.split(command)[0]
        if os.path.isfile(path) and os.path.getsize(path) < 1 << 20:
            for line in open(path, errors="replace"):
                m = re.match(r"""\s*java=(['"])(.+?)\1\s*$""", line)
                if m and os.access(m.group(2), os.X_OK):
                    return m.group(2)
        if os.path.basename(path) == "java" and os.access(path, os.X_OK):
            return path
    except (ValueError, IndexError, OSError):
        pass
    return shutil.which("java") or "java"


def p1(args, receiver, base_env, results):
    sessions = {key: HookSession(f"p1{key}", args.small, base_env, receiver.base_url) for key in "abcd"}
    command_a, label_a, install_problem = hook_command_a(args, base_env, sessions["a"].home)
    if install_problem:
        log(f"P1: `install --print-hook-command` unavailable ({install_problem}); using the fallback command")
    log(f"P1: (a) command: {command_a}")
    java = launcher_java(command_a)
    log(f"P1: floor runs Hello on {java}")
    # key, label, command, must the run log "Processed ..." (it sent the new turn), append a turn first
    variants = [
        ("a", label_a, command_a, True, True),
        ("b", "plain `.ci/jbang litefuse_hook.java`", f"{JBANG} {args.script}", True, True),
        ("c", f"floor: bare JVM hello-world (`{java}`)", f"{shlex.quote(java)} -cp {args.classes} Hello", False, True),
        ("d", "command of (a), no new turn: start-up, state check, exit", command_a, False, False),
    ]
    receiver.reset()
    runners = {key: (sessions[key], command, verify, append) for key, _, command, verify, append in variants}
    samples, failures = run_rounds("P1", runners, args, receiver, results)
    out = {"command_a": command_a, "label_a": label_a, "install_unavailable": install_problem,
           "receiver": receiver.stats(), "variants": {}}
    for key, label, command, *_ in variants:
        out["variants"][key] = {"label": label, "command": command, "failures": failures[key][:5],
                                "failed_runs": len(failures[key]),
                                "stats": summary_ms(samples[key]) if samples[key] else None}
    results["P1"] = out
    return command_a, label_a


def p2(args, receiver, base_env, results, command_a, label_a):
    log("P2: priming two sessions (50 KB and 200 MB transcripts) with one full hook run each")
    sessions = {"small": HookSession("p2small", args.small, base_env, receiver.base_url),
                "big": HookSession("p2big", args.mid, base_env, receiver.base_url)}
    prime_cmd = f"java -cp {args.classpath} litefuse_hook"
    priming = {}
    for key, session in sessions.items():
        receiver.reset()
        elapsed, ok, why = session.run(prime_cmd, timeout=900, extra_env={"CC_LANGFUSE_EXPORT_BUDGET_MS": "600000"})
        state = session.state()
        size = os.path.getsize(session.transcript)
        stats = receiver.stats()
        offset_ok = state is None or state.get("offset") == size
        priming[key] = {"seconds": round(elapsed, 2), "ok": ok, "log": why, "transcript_bytes": size,
                        "state_offset": None if state is None else state.get("offset"), "receiver": stats}
        log(f"P2: primed {key} ({size:,} bytes) in {elapsed:.1f}s: {why}; receiver got {stats['spans']} spans"
            + ("" if state is not None else " (no state file found to check the offset)"))
        if not ok or not offset_ok:
            log(f"P2: priming of {key} did not reach the end of the transcript (offset "
                f"{priming[key]['state_offset']} of {size}); P2 will include that backlog")
    time.sleep(3)  # let the receiver settle (GC, JIT) after taking the backlog, so it does not steal CPU
    log(f"P2: timing `{label_a}` on both")
    runners = {key: (session, command_a, True, True) for key, session in sessions.items()}
    samples, failures = run_rounds("P2", runners, args, receiver, results)
    out = {"priming": priming, "failures": {k: v[:5] for k, v in failures.items()},
           "failed_runs": {k: len(v) for k, v in failures.items()},
           "stats": {k: summary_ms(v) if v else None for k, v in samples.items()}}
    if samples["small"] and samples["big"]:
        out["ratio"] = statistics.median(samples["big"]) / statistics.median(samples["small"])
    results["P2"] = out
    return sessions


# ----------------------------------------------------------------------------- P3

GC_LINE = re.compile(r"(\d+(?:\.\d+)?)([KMG])->(\d+(?:\.\d+)?)([KMG])\((\d+(?:\.\d+)?)([KMG])\)")


def parse_gc_log(path):
    unit = {"K": 1 / 1024, "M": 1, "G": 1024}
    peak_before = max_after = capacity = 0.0
    full_gcs = 0
    try:
        for line in open(path, errors="replace"):
            m = GC_LINE.search(line)
            if not m:
                continue
            before = float(m.group(1)) * unit[m.group(2)]
            after = float(m.group(3)) * unit[m.group(4)]
            cap = float(m.group(5)) * unit[m.group(6)]
            peak_before, max_after, capacity = max(peak_before, before), max(max_after, after), max(capacity, cap)
            if "Pause Full" in line:
                full_gcs += 1
    except FileNotFoundError:
        return None
    return {"peak_used_mb": peak_before, "max_after_gc_mb": max_after, "max_capacity_mb": capacity,
            "full_gcs": full_gcs}


def replay_run(args, name, transcript, heap_opts, timeout):
    folder = fresh_dir(name)
    gc_log = os.path.join(folder, "gc.log")
    err_path = os.path.join(folder, "stderr.txt")
    with open(transcript, "rb") as f:  # page cache: measure parsing, not the disk
        while f.read(1 << 24):
            pass
    command = ["java", *heap_opts, "-XX:+ExitOnOutOfMemoryError", "-XX:+DisplayVMOutputToStderr",
               f"-Xlog:gc:file={gc_log}",
               "-cp", args.classpath, "litefuse_hook", "replay", "--json", transcript]
    env = dict(os.environ, HOME=os.path.join(folder))
    log(f"P3: {' '.join(heap_opts) or 'default heap'}: replay --json {os.path.basename(transcript)} "
        f"({os.path.getsize(transcript) / 1e6:.0f} MB) > /dev/null (timeout {timeout}s)")
    started = time.perf_counter()
    with open(err_path, "wb") as err:
        try:
            proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
    elapsed = time.perf_counter() - started
    stderr = open(err_path, errors="replace").read()
    size = os.path.getsize(transcript)
    result = {"file": transcript, "bytes": size, "seconds": round(elapsed, 2), "returncode": rc,
              "oom": "OutOfMemoryError" in stderr or rc == 3, "timed_out": rc is None, "heap_opts": heap_opts,
              "mb_per_s": size / 1e6 / elapsed if rc == 0 else None, "gc": parse_gc_log(gc_log),
              "stderr_tail": stderr[-400:]}
    what = (f"{result['mb_per_s']:.1f} MB/s" if rc == 0 else
            "OutOfMemoryError" if result["oom"] else "timed out" if rc is None else f"exit {rc}")
    log(f"P3: {elapsed:.1f}s, {what}; gc: {result['gc']}")
    return result


def p3(args, results):
    results["P3"] = {
        "mid_default_heap": replay_run(args, "p3-mid", args.mid, [], args.replay_timeout),
        "big_256m": replay_run(args, "p3-big", args.big, ["-Xmx256m"], args.replay_timeout),
    }


# ----------------------------------------------------------------------------- P4

def p4(args, receiver, base_env, results):
    folder = fresh_dir("p4")
    home = os.path.join(folder, "home")
    os.makedirs(home)
    env = dict(base_env, HOME=home, TRACE_TO_LANGFUSE="true", LANGFUSE_PUBLIC_KEY="pk-lf-x",
               LANGFUSE_SECRET_KEY="sk-lf-x", LANGFUSE_BASE_URL=receiver.base_url,
               CC_LANGFUSE_EXPORT_BUDGET_MS="600000")
    java = ["java", "-cp", args.classpath, "litefuse_hook"]
    probe = subprocess.run(java + ["backfill", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=60, stdin=subprocess.DEVNULL)
    transcript = args.p4_file
    help_text = probe.stdout.decode(errors="replace")
    # picocli answers `--help` of the top command (exit 0) when there is no backfill: check the usage line.
    if probe.returncode == 0 and re.search(r"(?m)^Usage: .*\bbackfill\b", help_text):
        # Put the transcript where Claude Code keeps them, in case backfill scans ~/.claude/projects.
        project = os.path.join(home, ".claude", "projects", "-bench-project")
        os.makedirs(project)
        placed = os.path.join(project, f"{uuidlib.uuid4()}.jsonl")
        os.link(transcript, placed)
        usage = help_text.split("\n\n")[0]
        mode = "backfill"
        if "--projects-dir" in usage:
            command = java + ["backfill", "--projects-dir", os.path.dirname(project)]
        elif re.search(r"(?<![=\w-])[\[<]?(FILE|PATH|TRANSCRIPT)S?[>\]]?\.\.\.", usage):
            command = java + ["backfill", placed]  # positional transcript paths
        else:
            command = java + ["backfill"]  # scans $HOME/.claude/projects
    else:
        mode = "replay --send"
        command = java + ["replay", "--send", transcript]
    receiver.reset()
    receiver_cpu = cpu_seconds(receiver.proc.pid)
    log(f"P4: {mode} of {os.path.basename(transcript)} ({os.path.getsize(transcript) / 1e6:.0f} MB) "
        f"to the loopback receiver: {' '.join(command[3:])}")
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                              timeout=args.export_timeout, stdin=subprocess.DEVNULL, cwd=folder)
        rc, stderr = proc.returncode, proc.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, stderr = None, (e.stderr or b"").decode(errors="replace")
    elapsed = time.perf_counter() - started
    stats = receiver.stats()
    receiver_cpu_after = cpu_seconds(receiver.proc.pid)
    window = stats["window_ms"] / 1000
    out = {"mode": mode, "command": command[3:], "returncode": rc, "seconds": round(elapsed, 2),
           "receiver": stats, "stderr_tail": stderr[-600:],
           "receiver_cpu_s": None if receiver_cpu is None or receiver_cpu_after is None
           else round(receiver_cpu_after - receiver_cpu, 2),
           "spans_per_s_window": stats["spans"] / window if window > 0 else None,
           "spans_per_s_process": stats["spans"] / elapsed if elapsed > 0 else None}
    if mode == "backfill" and stats["spans"] == 0:
        out["note"] = "backfill sent nothing; its interface may need arguments this bench does not know"
    log(f"P4: exit {rc} in {elapsed:.1f}s; receiver: {stats}")
    results["P4"] = out


# ----------------------------------------------------------------------------- report

def fmt_size(n):
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def status(ok):
    return "PASS" if ok else "MISS"


def table(results, args):
    rows = []
    p1r = results.get("P1")
    if p1r:
        v = p1r["variants"]
        floor = v["c"]["stats"]
        for key in ("a", "b", "c", "d"):
            s = v[key]["stats"]
            fails = v[key]["failed_runs"]
            fail_note = f"; {fails} run(s) failed" if fails else ""
            if key == "a":
                name = f"P1 (a) hook, {v['a']['label']}"
                if s and floor:
                    ratio = s["median"] / floor["median"]
                    result = f"{fmt_ms(s)} = {ratio:.2f}× floor{fail_note}"
                    target = f"≤ 3× floor (≤ {3 * floor['median']:.0f} ms)"
                    rows.append((name, result, target, status(ratio <= 3 and not fails)))
                else:
                    rows.append((name, f"no successful run{fail_note}", "≤ 3× floor", "MISS"))
            else:
                name = {"b": "P1 (b) hook, plain `.ci/jbang litefuse_hook.java`",
                        "c": f"P1 (c) floor: bare JVM hello-world, `{v['c']['command'].split()[0]}`",
                        "d": "P1 (d) command of (a), no new turn (start-up, state check, exit)"}[key]
                result = (fmt_ms(s) if s else "no successful run") + fail_note
                if key in "bd" and s and floor:
                    result += f" = {s['median'] / floor['median']:.2f}× floor"
                rows.append((name, result, "— (reference)", "—" if not fails else "ERROR"))
    p2r = results.get("P2")
    if p2r:
        s = p2r["stats"]
        fails = sum(p2r["failed_runs"].values())
        big_n = fmt_size(p2r["priming"]["big"]["transcript_bytes"])
        small_n = fmt_size(p2r["priming"]["small"]["transcript_bytes"])
        name = f"P2 one new turn after a primed {big_n} vs {small_n} transcript (command of P1 a)"
        if p2r.get("ratio") is not None:
            result = (f"ratio {p2r['ratio']:.3f} ({big_n}: median {s['big']['median']:.0f} ms, "
                      f"p10–p90 {s['big']['p10']:.0f}–{s['big']['p90']:.0f}; {small_n}: median "
                      f"{s['small']['median']:.0f} ms, p10–p90 {s['small']['p10']:.0f}–{s['small']['p90']:.0f})"
                      + (f"; {fails} run(s) failed" if fails else ""))
            rows.append((name, result, "≤ 1.1", status(p2r["ratio"] <= 1.1 and not fails)))
        else:
            rows.append((name, "no successful runs", "≤ 1.1", "MISS"))
    p3r = results.get("P3")
    if p3r:
        mid, big = p3r["mid_default_heap"], p3r["big_256m"]

        def gc_text(r):
            g = r["gc"]
            return "" if not g else (f"peak heap used {g['peak_used_mb']:.0f} MB, max after GC "
                                     f"{g['max_after_gc_mb']:.0f} MB, {g['full_gcs']} full GCs")

        if mid["returncode"] == 0:
            rows.append((f"P3 replay --json throughput, {mid['bytes'] / 1e6:.0f} MB, default heap",
                         f"{mid['mb_per_s']:.1f} MB/s ({mid['seconds']:.1f} s; {gc_text(mid)})", "≥ 150 MB/s",
                         status(mid["mb_per_s"] >= 150)))
        else:
            why = "OutOfMemoryError" if mid["oom"] else "timed out" if mid["timed_out"] else f"exit {mid['returncode']}"
            rows.append((f"P3 replay --json throughput, {mid['bytes'] / 1e6:.0f} MB, default heap",
                         f"failed: {why} after {mid['seconds']:.1f} s", "≥ 150 MB/s", "MISS"))
        name = f"P3 replay --json, {big['bytes'] / 1e6:.0f} MB, -Xmx256m"
        if big["returncode"] == 0:
            ok = big["mb_per_s"] >= 150
            rows.append((name, f"{big['mb_per_s']:.1f} MB/s ({big['seconds']:.1f} s); {gc_text(big)}",
                         "completes in 256 MB heap, ≥ 150 MB/s", status(ok)))
        else:
            why = ("OutOfMemoryError (java.lang.OutOfMemoryError: Java heap space)" if big["oom"] else
                   "timed out" if big["timed_out"] else f"exit {big['returncode']}")
            rows.append((name, f"failed: {why} after {big['seconds']:.1f} s; {gc_text(big)}",
                         "completes in 256 MB heap, ≥ 150 MB/s", "MISS"))
    p4r = results.get("P4")
    if p4r:
        st = p4r["receiver"]
        if st["spans"] and p4r["spans_per_s_window"]:
            result = (f"{p4r['spans_per_s_window']:,.0f} spans/s ({st['spans']:,} spans, {st['roots']:,} traces, "
                      f"{st['requests']} requests in a {st['window_ms'] / 1000:.2f} s export window; whole process "
                      f"{p4r['seconds']:.1f} s = {p4r['spans_per_s_process']:,.0f} spans/s; the receiver used "
                      f"{p4r['receiver_cpu_s']} s CPU)")
            if p4r["returncode"] != 0:
                result += f"; exit {p4r['returncode']}"
            rows.append((f"P4 export throughput, {p4r['mode']}", result, "≥ 20,000 spans/s",
                         status(p4r["spans_per_s_window"] >= 20000 and p4r["returncode"] == 0)))
        else:
            rows.append((f"P4 export throughput, {p4r['mode']}", f"no spans received (exit {p4r['returncode']})",
                         "≥ 20,000 spans/s", "MISS"))
    lines = ["| Measure | Result | Target | Status |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", required=True, help="the litefuse_hook.java the jar was built from")
    parser.add_argument("--classpath", required=True)
    parser.add_argument("--classes", required=True, help="directory with Hello.class and BenchReceiver.class")
    parser.add_argument("--small", required=True)
    parser.add_argument("--mid", required=True)
    parser.add_argument("--big", required=True)
    parser.add_argument("--p4-file", required=True)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--replay-timeout", type=int, default=240)
    parser.add_argument("--export-timeout", type=int, default=300)
    parser.add_argument("--only", default="P1,P2,P3,P4")
    parser.add_argument("--quiet-wait", type=int, default=180,
                        help="seconds to wait at most, before each measure, for other work to leave the CPUs idle")
    parser.add_argument("--header", default="", help="context lines printed above the table")
    args = parser.parse_args()

    os.makedirs(TMP, exist_ok=True)
    real_home = os.environ.get("HOME", os.path.expanduser("~"))
    # Hook runs get a temporary HOME; JBang and its bootstrap keep using the real caches (read, not the ~/.claude).
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "CC_LANGFUSE_", "TRACE_TO_"))}
    base_env.setdefault("JBANG_DIR", os.path.join(real_home, ".jbang"))
    base_env.setdefault("XDG_CACHE_HOME", os.path.join(real_home, ".cache"))
    only = set(args.only.upper().split(","))
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args)}
    began = time.time()
    load_before = os.getloadavg()
    receiver = Receiver(args.classes, lifetime_s=3600)
    try:
        command_a, label_a = None, None
        if "P1" in only or "P2" in only:
            if "P1" in only:
                wait_until_quiet(results, "P1", args.quiet_wait)
                command_a, label_a = p1(args, receiver, base_env, results)
            else:
                command_a, label_a, _ = hook_command_a(args, base_env)
        if "P2" in only:
            wait_until_quiet(results, "P2", args.quiet_wait)
            p2(args, receiver, base_env, results, command_a, label_a)
        if "P3" in only:
            wait_until_quiet(results, "P3", args.quiet_wait)
            p3(args, results)
        if "P4" in only:
            wait_until_quiet(results, "P4", args.quiet_wait)
            p4(args, receiver, base_env, results)
    finally:
        receiver.close()
    results["seconds"] = round(time.time() - began, 1)
    results["loadavg"] = {"before": load_before, "after": os.getloadavg()}
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    log(f"done in {results['seconds']:.0f}s; raw numbers in bench/out/results.json")
    if args.header:
        print(args.header)
        print()
    print(table(results, args))
    notes = []
    p1r = results.get("P1")
    if p1r and p1r.get("install_unavailable"):
        notes.append(f"- P1 (a): `install --print-hook-command` is not available ({p1r['install_unavailable']}); "
                     f"measured the fallback `java -XX:TieredStopAtLevel=1 -cp <classpath> litefuse_hook`.")
    if p1r:
        notes.append(f"- P1 (a) command: `{p1r['command_a']}`")
    p2r = results.get("P2")
    if p2r and "big" in p2r["priming"]:
        pr = p2r["priming"]["big"]
        spans = pr["receiver"]["spans"]
        notes.append(f"- P2 priming (hook mode, whole {pr['transcript_bytes'] / 1e6:.0f} MB backlog in one run): "
                     f"{pr['seconds']:.1f} s, {spans:,} spans sent; state offset {pr['state_offset']} of "
                     f"{pr['transcript_bytes']} bytes.")
    notes.append(f"- Runs: {args.warmup} warm-up + {args.runs} undisturbed timed rounds per P1/P2 variant, interleaved; every hook run "
                 "through `bash -c` with the payload on stdin, its own temporary HOME, a loopback receiver; "
                 "MB = 10^6 bytes; P3 files are in the page cache before timing; times include JVM start.")
    busy = ", ".join(f"{k} {v:.0%}" for k, v in results.get("cpu_busy_before", {}).items())
    if busy:
        notes.append(f"- CPU busy with other work just before each measure (2 s sample): {busy}.")
    for measure, d in results.get("disturbance", {}).items():
        if d["dropped_rounds"] or d["kept_disturbed_rounds"]:
            kept = (f"; {d['kept_disturbed_rounds']} disturbed round(s) kept because the repeat budget was spent"
                    if d["kept_disturbed_rounds"] else "")
            notes.append(f"- {measure}: {d['dropped_rounds']} round(s) dropped and repeated because other processes used "
                         f"the CPU during them{kept}.")
    la = results["loadavg"]
    notes.append(f"- Whole run {results['seconds']:.0f} s; load average (1/5/15 min) before "
                 f"{'/'.join(f'{x:.2f}' for x in la['before'])}, after {'/'.join(f'{x:.2f}' for x in la['after'])} "
                 f"(other work on this {os.cpu_count()}-core machine would inflate the times).")
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
