#!/usr/bin/env python3
"""Benchmark driver for litefuse_hook (run it through bench/run.sh, which builds and passes the class path).

Measures P1..P7 (see bench/README.md), prints progress on stderr and a Markdown table on stdout, and writes
the raw numbers to bench/out/results.json. Everything it creates lives under bench/out/; every measure has
its own temporary HOME under bench/out/tmp/; the only network peer is a loopback receiver it starts itself.

With --baseline-script/--baseline-classpath (BENCH_BASELINE in run.sh) a second build is measured by the same
code, its runs interleaved with the current build's, and the table shows both side by side.
"""
import argparse
import hashlib
import json
import math
import os
import random
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


class Variant:
    """One build of the script to measure: the current one, or the baseline it is compared with."""

    def __init__(self, key, script, classpath):
        self.key = key  # "current" or "baseline": where its numbers go in results.json
        self.script = script  # the frozen litefuse_hook.java, in this variant's own build directory
        self.classpath = classpath
        # Runner keys and temporary directories of the baseline get a suffix; the current build's keep today's
        # names, so the output without a baseline is unchanged.
        self.key_suffix = "" if key == "current" else ".base"
        self.dir_suffix = "" if key == "current" else "-base"
        # The JVM options the script declares (//RUNTIME_OPTIONS, or JBang's older //JAVA_OPTIONS): JBang passes them
        # on every run, so P3 and P4 run `java` with them too, ahead of the measure's own options.
        self.runtime_options = script_runtime_options(script)


def script_runtime_options(script):
    options = []
    with open(script, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = re.match(r"//(?:RUNTIME_OPTIONS|JAVA_OPTIONS)\s+(.*)", line)
            if match:
                options += shlex.split(match.group(1))
            elif line.strip() and not line.startswith("//"):
                break  # JBang reads directives only from the comment lines at the top
    return options


def store(results, variant, measure, value):
    """results[measure] for the current build, results["baseline"][measure] for the baseline."""
    (results if variant.key == "current" else results.setdefault("baseline", {}))[measure] = value


# Processes this script started and keeps running (the receiver, the proxy): not hook firings.
LONG_RUNNING = set()


def become_subreaper():
    """Hook firings the launcher detaches are re-parented to this process (Linux PR_SET_CHILD_SUBREAPER), so when reaped
    their CPU counts as our children's, not as other work disturbing a round."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def reap_detached(timeout=15):
    """Waits for hook firings that were detached (re-parented to us) to end, and reaps them."""
    deadline = time.time() + timeout
    me = str(os.getpid())
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] != 0:
                pass
        except ChildProcessError:
            pass
        others = []
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) not in LONG_RUNNING:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[1] == me:
                            others.append(pid)
                except (OSError, IndexError):
                    pass
        if not others or time.time() > deadline:
            return
        time.sleep(0.002)


class Receiver:
    """The loopback OTLP receiver (bench/BenchReceiver.java), started once; it also exits by itself."""

    def __init__(self, classes, lifetime_s, tls=None):
        self.port_file = os.path.join(TMP, "receiver.port")
        for stale in (self.port_file, self.port_file + ".https"):
            if os.path.exists(stale):
                os.remove(stale)
        self.log = open(os.path.join(TMP, "receiver.log"), "wb")
        self.proc = subprocess.Popen(["java", "-Xmx512m", "-cp", classes, "BenchReceiver", self.port_file,
                                      str(int(lifetime_s))] + ([tls.keystore, tls.password] if tls else []),
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        LONG_RUNNING.add(self.proc.pid)
        deadline = time.time() + 30
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                self.close()
                raise RuntimeError("the loopback receiver did not start (see bench/out/tmp/receiver.log)")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read().strip())
        self.base_url = f"http://127.0.0.1:{self.port}"
        https_port = self.port_file + ".https"
        self.https_url = f"https://127.0.0.1:{int(open(https_port).read().strip())}" if os.path.exists(https_port) else None
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


def hook_env(base_env, home, receiver_url):
    """The environment of a hook or export run: its temporary HOME, tracing on, dummy keys, the loopback receiver."""
    return dict(base_env, HOME=home, TRACE_TO_LANGFUSE="true", LANGFUSE_PUBLIC_KEY="pk-lf-x",
                LANGFUSE_SECRET_KEY="sk-lf-x", LANGFUSE_BASE_URL=receiver_url)


# What a hook run must log to count (HookSession.run's `expect`). The hook's fast exit logs
# "Processed 0 turns in … (session=…, nothing new)", so "sent" needs a count of at least one.
EXPECTED_LOG = {"sent": re.compile(r"Processed ([1-9]\d*) turns"), "nothing": re.compile(r"Processed 0 turns")}


class HookSession:
    """A transcript, a temporary HOME and a session id: one isolated place to time hook runs."""

    def __init__(self, name, base_transcript, base_env, receiver_url):
        self.dir = fresh_dir(name)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.transcript = os.path.join(self.dir, "transcript.jsonl")
        if base_transcript:
            shutil.copyfile(base_transcript, self.transcript)
        else:
            open(self.transcript, "wb").close()
        self.session_id = f"bench-{name}-{uuidlib.uuid4()}"
        self.parent = last_uuid(self.transcript) if base_transcript else None
        self.turns = 0
        self.last_wait = None
        self.last_done = None
        self.waits = []
        self.env = hook_env(base_env, self.home, receiver_url)
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

    def run(self, command, expect="sent", timeout=120, extra_env=None):
        """Runs the command (through bash -c, as Claude Code runs hook commands) with the Stop payload on stdin;
        returns (seconds, ok, why). A run is ok when it exits 0 and, unless `expect` is None, the hook log gains
        no [ERROR] line and a line `expect` asks for (EXPECTED_LOG):
          "sent"    `Processed N turns` with N >= 1: the new turn went out (P1 (a), (b), P2 and its priming);
          "nothing" `Processed 0 turns`: nothing new to send (P1 (d); the current build adds ", nothing new");
          None      exit status only (P1 (c), the hello-world floor, which writes no log)."""
        before = len(self.log_lines()) if expect else 0
        env = dict(self.env, **(extra_env or {}))
        self.last_done = None
        started = time.perf_counter()
        try:
            proc = subprocess.run(["bash", "-c", command], input=self.payload, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env, timeout=timeout, cwd=self.dir)
        except subprocess.TimeoutExpired:
            return timeout, False, f"timed out after {timeout}s"
        self.last_wait = elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            return elapsed, False, f"exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}"
        if expect is None:
            return elapsed, True, "exit 0"
        # A hook that hands the firing to a detached JVM returns before its work is done: the run ends when the log
        # says so (`elapsed`: until then, what the firing took; `last_wait`: what Claude Code waited; `last_done`:
        # until the firing's JVM ended, with what it does after its log line, e.g. pruning).
        wanted = EXPECTED_LOG[expect]
        deadline = started + timeout
        while True:
            new = self.log_lines()[before:]
            errors = [line for line in new if "[ERROR]" in line]
            matched = [line for line in new if wanted.search(line)]
            if errors or matched or time.perf_counter() > deadline:
                break
            time.sleep(0.002)
        if matched:
            elapsed = max(elapsed, time.perf_counter() - started)
        reap_detached()
        self.last_done = time.perf_counter() - started  # the detached JVM too has ended (its work after the log line)
        if errors:
            return elapsed, False, errors[-1][-300:]
        if not matched:
            return elapsed, False, f"no `{wanted.pattern}` line in the hook log: " + " | ".join(new)[-300:]
        return elapsed, True, matched[-1]

    def state(self):
        """The session's state file (named by its 64-hex-digit key, directly under state/litefuse), or None."""
        folder = os.path.join(self.home, ".claude", "state", "litefuse")
        try:
            files = [os.path.join(folder, f) for f in os.listdir(folder) if re.fullmatch(r"[0-9a-f]{64}\.json", f)]
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


HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (Linux /proc), or None."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except (OSError, ValueError, IndexError):
        return None


def machine_cpu():
    """(busy, total) CPU seconds of all CPUs so far, from /proc/stat's first line: user nice system idle iowait irq
    softirq steal; busy leaves out idle and iowait (guest time is already counted in user and nice)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    total = sum(fields)
    return (total - fields[3] - fields[4]) / HZ, total / HZ


def cpu_busy(interval):
    """Fraction of all CPUs busy (any process) over `interval` seconds."""
    busy0, total0 = machine_cpu()
    time.sleep(interval)
    busy1, total1 = machine_cpu()
    return (busy1 - busy0) / max(1 / HZ, total1 - total0)


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

def cpu_snapshot(receiver):
    """CPU seconds so far: all CPUs busy (incl. steal), our waited-for children, the receiver, this process."""
    t = os.times()
    return (machine_cpu()[0], t.children_user + t.children_system, cpu_seconds(receiver.proc.pid) or 0.0,
            t.user + t.system)


def foreign_cpu(before, after):
    """CPU seconds used between two snapshots by processes that are not ours (other work on the machine)."""
    total, children, receiver, own = (a - b for a, b in zip(after, before))
    return total - children - receiver - own


def hook_runner(session, command, expect, append):
    """A runner for run_rounds: appends a turn to the session's transcript (unless `append` is false), then times
    one hook run, valid as `expect` says (see HookSession.run)."""
    def runner():
        if append:
            session.append_turn()
        return session.run(command, expect)
    return runner


def run_rounds(measure, runners, runs, warmup, receiver, results, quiet_wait, alternate=False):
    """Warm-ups, then rounds of all `runners` (key -> callable returning (seconds, ok, detail)) interleaved, until
    `runs` undisturbed rounds. A round is disturbed when other processes used more than max(50 ms, 15 % of the
    run's wall time) of CPU during one of its runs; it is dropped and repeated, at most `runs` extra times in all
    (then disturbed rounds are kept and counted), after waiting at most `quiet_wait` seconds for the CPUs to be
    quiet. With `alternate` (a baseline is compared), every other round runs the runners in reverse order, so
    neither build always runs first, right after the other's JVM.
    Returns the seconds of the kept successful runs, their details, and the details of the kept failed runs."""
    samples = {key: [] for key in runners}
    details = {key: [] for key in runners}
    failures = {key: [] for key in runners}
    kept_disturbed = dropped = 0
    log(f"{measure}: {warmup} warm-up + {runs} timed rounds, {'/'.join(runners)} interleaved per round"
        + (", order reversed every other round" if alternate else ""))
    for i in range(warmup):
        for key, runner in runners.items():
            _, ok, why = runner()
            if not ok:
                log(f"{measure} ({key}) warm-up {i + 1}: FAILED: {why}")
    done = attempt = 0
    while done < runs:
        round_samples, disturbed = {}, []
        order = list(runners.items())
        if alternate and attempt % 2:
            order.reverse()
        attempt += 1
        for key, runner in order:
            before = cpu_snapshot(receiver)
            elapsed, ok, detail = runner()
            foreign = foreign_cpu(before, cpu_snapshot(receiver))
            if foreign > max(0.05, 0.15 * elapsed):
                disturbed.append(f"{key}: {foreign:.2f}s CPU of other work in {elapsed:.2f}s")
            round_samples[key] = (elapsed, ok, detail)
            if not ok:
                log(f"{measure} ({key}): FAILED: {detail}")
        if disturbed and dropped < runs:
            dropped += 1
            log(f"{measure}: round dropped, disturbed by other work ({'; '.join(disturbed)}); repeating it")
            wait_until_quiet(None, measure, quiet_wait)
            continue
        if disturbed:
            kept_disturbed += 1
        done += 1
        for key, (elapsed, ok, detail) in round_samples.items():
            if ok:
                samples[key].append(elapsed)
                details[key].append(detail)
            else:
                failures[key].append(detail)
        if done % 5 == 0 or done == runs:
            log(f"{measure}: round {done}/{runs}: " + ", ".join(
                f"{k}={statistics.median(v) * 1000:.0f}ms" for k, v in samples.items() if v))
    results.setdefault("disturbance", {})[measure] = {"dropped_rounds": dropped, "kept_disturbed_rounds": kept_disturbed}
    return samples, details, failures

def hook_command_a(variant, base_env, receiver_url, home=None):
    """The command `install --print-hook-command` prints, or the fallback; its label; why install was not used.

    install runs with the hook's own environment (HOME=`home`, where it may write a launcher; the receiver's URL, so
    it trains its start-up archive for that endpoint, as a user's install does for theirs) and in the variant's frozen
    script's directory, so the launcher watches that frozen copy, not the file being edited (nor the other variant's)."""
    home = home or fresh_dir("p1-install-probe" + variant.dir_suffix)
    env = hook_env(base_env, home, receiver_url)
    try:
        proc = subprocess.run([JBANG, variant.script, "install", "--print-hook-command"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=180, stdin=subprocess.DEVNULL,
                              cwd=os.path.dirname(os.path.abspath(variant.script)))
        lines = [line.strip() for line in proc.stdout.decode(errors="replace").splitlines() if line.strip()]
        if proc.returncode == 0 and lines:
            if len(lines) > 1:
                log(f"install --print-hook-command printed {len(lines)} lines; using the last one")
            return lines[-1], "install --print-hook-command", None
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[0]
    except subprocess.TimeoutExpired:
        why = "timed out"
    fallback = f"java -XX:TieredStopAtLevel=1 -cp {shlex.quote(variant.classpath)} litefuse_hook"
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


def java_version(java):
    """A short name of the JDK `java` runs, from the first line of `java -version`: e.g. "openjdk 25.0.1"."""
    try:
        proc = subprocess.run([java, "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e.__class__.__name__})"
    lines = proc.stdout.decode(errors="replace").splitlines()
    line = next((x for x in lines if ' version "' in x), lines[0] if lines else "unknown")  # skips "Picked up ..."
    m = re.match(r'(\S+) version "([^"]+)"', line.strip())
    return f"{m.group(1)} {m.group(2)}" if m else line.strip()


def p1(args, receiver, base_env, results, variants):
    """P1 for every variant, all runs interleaved; the floor (c) is one bare JVM hello-world shared by all.
    Returns {variant key: (command of (a), its label)}."""
    current = variants[0]
    # One session (transcript, temporary HOME) per runner; (a) and (d) of a variant run its launcher, made in
    # the (a) session's HOME.
    sessions = {}
    for variant in variants:
        for letter in "abcd" if variant is current else "abd":
            key = letter + variant.key_suffix
            sessions[key] = HookSession(f"p1{letter}{variant.dir_suffix}", args.small, base_env, receiver.base_url)
    commands, problems, specs = {}, {}, {}
    for variant in variants:
        command_a, label_a, install_problem = hook_command_a(variant, base_env, receiver.base_url, sessions["a" + variant.key_suffix].home)
        tag = "" if variant is current else " (baseline)"
        if install_problem:
            log(f"P1{tag}: `install --print-hook-command` unavailable ({install_problem}); using the fallback command")
        log(f"P1{tag}: (a) command: {command_a}")
        commands[variant.key], problems[variant.key] = (command_a, label_a), install_problem
        # key, label, command, what the hook log must show (HookSession.run's expect), append a turn first
        specs[variant.key] = [
            ("a", label_a, command_a, "sent", True),
            ("b", "plain `.ci/jbang litefuse_hook.java`", f"{shlex.quote(JBANG)} {shlex.quote(variant.script)}",
             "sent", True),
            ("d", "command of (a), no new turn: start-up, state check, exit", command_a, "nothing", False),
        ]
    java = launcher_java(commands[current.key][0])
    version = java_version(java)
    log(f"P1: floor runs Hello on {java} ({version})")
    floor = ("c", f"floor: bare JVM hello-world ({version})",
             f"{shlex.quote(java)} -cp {shlex.quote(args.classes)} Hello", None, True)
    specs[current.key].insert(2, floor)  # a, b, c, d: today's order
    # Runner order: each measure of the baseline right after the same measure of the current build.
    runners = {}
    for letter in "abcd":
        for variant in variants:
            for key, _, command, expect, append in specs[variant.key]:
                if key == letter:
                    session = sessions[key + variant.key_suffix]
                    runners[key + variant.key_suffix] = waits_recorded(session, hook_runner(session, command, expect, append))
    # (d) times a run with nothing new: send the ~50 KB transcript's own turns first, untimed, so that even the
    # first warm-up of (d) finds nothing to do.
    for variant in variants:
        _, ok, why = sessions["d" + variant.key_suffix].run(commands[variant.key][0], "sent")
        if not ok:
            log(f"P1 (d{variant.key_suffix}): sending the transcript's own turns first FAILED: {why}")
    receiver.reset()
    samples, _, failures = run_rounds("P1", runners, args.runs, args.warmup, receiver, results, args.quiet_wait,
                                      alternate=len(variants) > 1)
    stats = receiver.stats()
    floor_out = {"label": floor[1], "command": floor[2], "java": java, "java_version": version,
                 "failures": failures["c"][:5], "failed_runs": len(failures["c"]),
                 "stats": summary_ms(samples["c"]) if samples["c"] else None}
    for variant in variants:
        command_a, label_a = commands[variant.key]
        out = {"command_a": command_a, "label_a": label_a, "install_unavailable": problems[variant.key],
               "launcher_java": launcher_java(command_a), "variants": {}}
        for key, label, command, *_ in specs[variant.key]:
            runner_key = key + ("" if key == "c" else variant.key_suffix)
            waits = sessions[runner_key].waits[-len(samples[runner_key]):] if samples[runner_key] else []
            out["variants"][key] = {"label": label, "command": command, "failures": failures[runner_key][:5],
                                    "failed_runs": len(failures[runner_key]),
                                    "stats": summary_ms(samples[runner_key]) if samples[runner_key] else None,
                                    "wait": summary_ms(waits) if waits else None}
        out["variants"]["c"] = floor_out  # the baseline is compared with the same floor
        out["variants"] = {key: out["variants"][key] for key in "abcd"}
        store(results, variant, "P1", out)
    # One count for all P1 runs (every build's (a), (b) and (d), warm-ups included): stored once, not per build.
    results["P1"]["receiver_all_builds"] = stats
    return commands


def open_last_turn_bytes(session, state):
    """When the state stops at the start of the transcript's last turn because the hook keeps that turn open
    (state "open_turn" at the state's offset, so rows added to it later go out as a delta), the bytes of that
    turn; else None. Priming then did reach the end: only that one turn is read again by the next run."""
    open_turn = (state or {}).get("open_turn")
    offset = (state or {}).get("offset")
    if not isinstance(open_turn, dict) or not isinstance(offset, int) or open_turn.get("offset") != offset:
        return None
    rows = []
    with open(session.transcript, "rb") as f:
        f.seek(offset)
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    prompts = [r for r in rows if r.get("type") == "user" and isinstance(r.get("message", {}).get("content"), str)]
    if not rows or rows[0].get("uuid") != open_turn.get("user_uuid") or len(prompts) != 1:
        return None
    return os.path.getsize(session.transcript) - offset


def p2(args, receiver, base_env, results, variants, commands):
    log("P2: priming two sessions (50 KB and 200 MB transcripts) with one full hook run each"
        + (f", for each of {len(variants)} builds" if len(variants) > 1 else ""))
    sessions, priming = {}, {}
    for variant in variants:
        for size, transcript in (("small", args.small), ("big", args.mid)):
            key = size + variant.key_suffix
            session = sessions[key] = HookSession(f"p2{size}{variant.dir_suffix}", transcript, base_env,
                                                  receiver.base_url)
            prime_cmd = f"java -cp {shlex.quote(variant.classpath)} litefuse_hook"
            receiver.reset()
            elapsed, ok, why = session.run(prime_cmd, "sent", timeout=900,
                                           extra_env={"CC_LANGFUSE_EXPORT_BUDGET_MS": "600000"})
            state = session.state()
            file_size = os.path.getsize(session.transcript)
            stats = receiver.stats()
            open_bytes = open_last_turn_bytes(session, state)
            offset_ok = state is None or state.get("offset") == file_size or open_bytes is not None
            priming[key] = {"seconds": round(elapsed, 2), "ok": ok, "log": why, "transcript_bytes": file_size,
                            "state_offset": None if state is None else state.get("offset"),
                            "open_turn_bytes": open_bytes, "receiver": stats}
            log(f"P2: primed {key} ({file_size:,} bytes) in {elapsed:.1f}s: {why}; receiver got {stats['spans']} spans"
                + ("" if state is not None else " (no state file found to check the offset)"))
            if not ok or not offset_ok:
                log(f"P2: priming of {key} did not reach the end of the transcript (offset "
                    f"{priming[key]['state_offset']} of {file_size}); P2 will include that backlog")
    time.sleep(3)  # let the receiver settle (GC, JIT) after taking the backlog, so it does not steal CPU
    log(f"P2: timing `{commands[variants[0].key][1]}` on both" + (" for each build" if len(variants) > 1 else ""))
    runners = {}
    for size in ("small", "big"):
        for variant in variants:
            key = size + variant.key_suffix
            runners[key] = hook_runner(sessions[key], commands[variant.key][0], "sent", True)
    samples, _, failures = run_rounds("P2", runners, args.runs, args.warmup, receiver, results, args.quiet_wait,
                                      alternate=len(variants) > 1)
    for variant in variants:
        keys = {size: size + variant.key_suffix for size in ("small", "big")}
        out = {"priming": {size: priming[key] for size, key in keys.items()},
               "failures": {size: failures[key][:5] for size, key in keys.items()},
               "failed_runs": {size: len(failures[key]) for size, key in keys.items()},
               "stats": {size: summary_ms(samples[key]) if samples[key] else None for size, key in keys.items()}}
        if samples[keys["small"]] and samples[keys["big"]]:
            out["ratio"] = statistics.median(samples[keys["big"]]) / statistics.median(samples[keys["small"]])
        store(results, variant, "P2", out)


# ----------------------------------------------------------------------------- P5

STAGED = os.path.join(ROOT, "tests", "staged", "agents-print")
WORKFLOW_SESSION = "26c6dc9c-5e3b-4dd1-b1ec-acb96e2616a4"
MORE_OBSERVATIONS = re.compile(r"Turn 1 \((\d+) more observations\)")


class WorkflowTemplate:
    """A real workflow session (Claude Code 2.1.332, tests/staged/agents-print): the main file up to the launching
    turn's Stop and the rows the task notification adds, one agent's files, the journal's head and the run record."""

    def __init__(self):
        project = os.path.join(STAGED, "project")
        stages = json.load(open(os.path.join(STAGED, "stages.json")))
        main = open(os.path.join(project, WORKFLOW_SESSION + ".jsonl"), "rb").read()
        launch_end = stages[0]["files"][WORKFLOW_SESSION + ".jsonl"]
        notified_end = stages[1]["files"][WORKFLOW_SESSION + ".jsonl"]
        self.launch, self.notification = main[:launch_end], main[launch_end:notified_end]
        folder = os.path.join(project, WORKFLOW_SESSION)
        runs = os.path.join(folder, "subagents", "workflows")
        self.run_id = os.listdir(runs)[0]
        run_dir = os.path.join(runs, self.run_id)
        self.agent_id = "a58bb4b32b0fc9868"
        self.agent = open(os.path.join(run_dir, f"agent-{self.agent_id}.jsonl"), encoding="utf-8").read()
        self.meta = json.load(open(os.path.join(run_dir, f"agent-{self.agent_id}.meta.json")))
        self.journal_head = open(os.path.join(run_dir, "journal.jsonl"), encoding="utf-8").readline()
        self.record = json.load(open(os.path.join(folder, "workflows", self.run_id + ".json")))

    def write_run(self, session_dir, agents):
        """A finished run of `agents` agents in two phases (four in five gather, the rest combine) under `session_dir`:
        each agent the template's rows with its own agent id, row uuids, message and tool ids. With 0 agents, the run
        as it is right after its launch: the journal's first row, no record."""
        run_dir = os.path.join(session_dir, "subagents", "workflows", self.run_id)
        os.makedirs(run_dir, exist_ok=True)
        journal = [self.journal_head.rstrip("\n")]
        for i in range(agents):
            agent_id = f"a{i:016x}"
            phase = "Gather" if i < agents * 4 // 5 else "Combine"
            rows = self.agent.replace(self.agent_id, agent_id).replace("msg_mock_", f"msg_bench{i}_").replace("toolu_mock_", f"toolu_bench{i}_")
            rows = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-([0-9a-f]{12})",
                          lambda m, i=i: f"{i:08x}-0000-4000-8000-{m.group(1)}" if m.group(0) != WORKFLOW_SESSION else m.group(0), rows)
            with open(os.path.join(run_dir, f"agent-{agent_id}.jsonl"), "w", encoding="utf-8") as f:
                f.write(rows)
            with open(os.path.join(run_dir, f"agent-{agent_id}.meta.json"), "w") as f:
                json.dump(dict(self.meta, description=f"agent-{i}", workflowPhase=phase), f)
            journal.append(json.dumps({"type": "started", "agentId": agent_id, "label": f"agent-{i}", "phase": phase}))
            journal.append(json.dumps({"type": "result", "agentId": agent_id}))
        with open(os.path.join(run_dir, "journal.jsonl"), "w") as f:
            f.write("\n".join(journal) + "\n")
        if not agents:
            return
        os.makedirs(os.path.join(session_dir, "workflows"), exist_ok=True)
        with open(os.path.join(session_dir, "workflows", self.run_id + ".json"), "w") as f:
            json.dump(dict(self.record, agentCount=agents), f)


def p5(args, receiver, base_env, results, commands, agents=50):
    """A firing that finds a finished workflow run of `agents` agents: the launching turn was sent at its Stop
    (untimed); the run's files and the task notification's turn are written; the timed firing (the notification
    turn's Stop) must send the whole run into the launching turn's trace and the new turn, in that one run."""
    template = WorkflowTemplate()
    command = commands["current"][0]
    expected = agents * 3 + 2 + 1  # each agent: agent, decision, tool call; two phases; the run
    counter = [0]

    def runner():
        counter[0] += 1
        session = HookSession(f"p5-{counter[0]}", None, base_env, receiver.base_url)
        with open(session.transcript, "wb") as f:
            f.write(template.launch)
        template.write_run(os.path.splitext(session.transcript)[0], 0)  # as at the launch's Stop: just launched
        _, ok, why = session.run(command, "sent")
        if not ok:
            return 0.0, False, f"sending the launching turn failed: {why}"
        template.write_run(os.path.splitext(session.transcript)[0], agents)
        with open(session.transcript, "ab") as f:
            f.write(template.notification)
        before = receiver.stats()["spans"]
        elapsed, ok, why = session.run(command, "sent")
        sent = [int(m.group(1)) for line in session.log_lines() if (m := MORE_OBSERVATIONS.search(line))]
        spans = receiver.stats()["spans"] - before
        if ok and sent != [expected]:
            return elapsed, False, f"the run's {expected} observations were not sent in this firing: {sent}"
        shutil.rmtree(session.dir, ignore_errors=True)
        return elapsed, ok, {"log": why, "observations": sent[0] if sent else 0, "spans_received": spans}

    runs = max(5, args.runs // 2)
    samples, details, failures = run_rounds("P5", {"a": runner}, runs, 1, receiver, results, args.quiet_wait)
    results["P5"] = {
        "agents": agents, "expected_observations": expected, "command": command, "failed_runs": len(failures["a"]),
        "failures": failures["a"][:5], "details": details["a"][:3],
        "stats": summary_ms(samples["a"]) if samples["a"] else None}

# ----------------------------------------------------------------------------- P6

class ReceiverTls:
    """A throwaway key for the receiver's HTTPS side (keytool, for 127.0.0.1) and a trust store holding its
    certificate, which both builds are given through javax.net.ssl.trustStore."""

    def __init__(self):
        self.dir = fresh_dir("tls")
        self.password = "bench-only"
        self.keystore = os.path.join(self.dir, "receiver.p12")
        self.truststore = os.path.join(self.dir, "trust.p12")
        keytool = os.path.join(os.path.dirname(os.path.realpath(shutil.which("java"))), "keytool")
        certificate = os.path.join(self.dir, "receiver.pem")
        common = ["-storetype", "PKCS12", "-storepass", self.password]
        for command in (["-genkeypair", "-alias", "receiver", "-keyalg", "EC", "-groupname", "secp256r1", "-dname",
                         "CN=127.0.0.1", "-ext", "san=ip:127.0.0.1", "-validity", "2", "-keystore", self.keystore,
                         "-keypass", self.password] + common,
                        ["-exportcert", "-rfc", "-alias", "receiver", "-keystore", self.keystore, "-file", certificate]
                        + common,
                        ["-importcert", "-noprompt", "-alias", "receiver", "-file", certificate, "-keystore",
                         self.truststore] + common):
            subprocess.run([keytool] + command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, timeout=120)

    def java_options(self):
        return (f"-Djavax.net.ssl.trustStore={self.truststore} -Djavax.net.ssl.trustStorePassword={self.password} "
                "-Djavax.net.ssl.trustStoreType=PKCS12")


class DelayProxy:
    """tests/ConnectProxy.java: a CONNECT proxy adding `rtt_ms` to every round trip through it."""

    def __init__(self, classes, rtt_ms, lifetime_s):
        port_file = os.path.join(TMP, "proxy.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.proc = subprocess.Popen(["java", "-cp", classes, "ConnectProxy", port_file, str(rtt_ms // 2),
                                      str(int(lifetime_s))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        LONG_RUNNING.add(self.proc.pid)
        deadline = time.time() + 30
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the delaying proxy did not start")
            time.sleep(0.05)
        self.port = int(open(port_file).read().strip())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()  # only the proxy this script started, by its pid
            self.proc.wait(timeout=5)


NETWORK_KINDS = (("https", "HTTPS (loopback)"), ("proxy", "HTTPS behind a CONNECT proxy adding 40 ms per round trip"))


def p6(args, receiver, base_env, results, variants, tls):
    """One new turn over HTTPS, and over HTTPS behind the 40 ms proxy, for every build, interleaved: what Claude Code
    waits (the hook command's wall time) and when the turn is delivered (its log line). Each build is installed for
    the HTTPS endpoint (its start-up archive trained over HTTPS, as for Langfuse Cloud) and trusts the receiver's
    key through javax.net.ssl.trustStore; the proxy is HTTPS_PROXY for builds that read it and the JDK's
    https.proxyHost for those that do not (both go through it)."""
    proxy = DelayProxy(args.classes, 40, 3600)
    try:
        sessions, commands = {}, {}
        for variant in variants:
            command, _, problem = hook_command_a(variant, base_env, receiver.https_url, fresh_dir("p6-install" + variant.dir_suffix))
            if problem:
                log(f"P6 ({variant.key}): install unavailable ({problem}); using the fallback command")
            commands[variant.key] = command
            for kind, _ in NETWORK_KINDS:
                session = HookSession(f"p6{kind}{variant.dir_suffix}", args.small, base_env, receiver.https_url)
                options = tls.java_options()
                if kind == "proxy":
                    session.env["HTTPS_PROXY"] = f"http://127.0.0.1:{proxy.port}"
                    options += f" -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort={proxy.port} -Dhttp.nonProxyHosts=none.invalid"
                session.env["JAVA_TOOL_OPTIONS"] = options
                _, ok, why = session.run(command, "sent")  # the transcript's own turns, untimed
                if not ok:
                    log(f"P6 ({kind}{variant.key_suffix}): sending the transcript's own turns first FAILED: {why}")
                session.waits = []
                sessions[kind + variant.key_suffix] = session
        runners = {}
        for kind, _ in NETWORK_KINDS:
            for variant in variants:
                key = kind + variant.key_suffix
                runners[key] = waits_recorded(sessions[key], hook_runner(sessions[key], commands[variant.key], "sent", True))
        samples, _, failures = run_rounds("P6", runners, args.runs, args.warmup, receiver, results, args.quiet_wait,
                                          alternate=len(variants) > 1)
        for variant in variants:
            out = {"command": commands[variant.key], "kinds": {}}
            for kind, label in NETWORK_KINDS:
                key = kind + variant.key_suffix
                waits = sessions[key].waits[-len(samples[key]):] if samples[key] else []
                out["kinds"][kind] = {"label": label, "failed_runs": len(failures[key]), "failures": failures[key][:5],
                                      "delivered": summary_ms(samples[key]) if samples[key] else None,
                                      "wait": summary_ms(waits) if waits else None}
            store(results, variant, "P6", out)
    finally:
        proxy.close()


def waits_recorded(session, runner):
    """The runner, also keeping what Claude Code waited (the command's wall time) of each successful run."""
    def run():
        elapsed, ok, detail = runner()
        if ok:
            session.waits.append(session.last_wait)
        return elapsed, ok, detail
    return run

# ----------------------------------------------------------------------------- P7

P7_SETUPS = (("clean", "(a) clean: the HOME as P1 has it"),
             ("dead", "(b) {n:,} dead sessions, pruning not due (a fresh pruned.json)"),
             ("due", "(c) {n:,} dead sessions, a pruning pass due (pruned.json removed before each run)"))
REMOVED_LOG = re.compile(r"Removed the state of (\d+) session")


def fingerprint_hex(text):
    """Helpers.fingerprint (64-bit FNV-1a over the UTF-16 chars; these texts are ASCII) as Long.toHexString prints it."""
    h = 0xcbf29ce484222325
    for c in text:
        h = ((h ^ ord(c)) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return format(h, "x")


def jackson_pretty(value, depth=0):
    """JSON as the hook writes its state (Jackson's default pretty printer: `"key" : value`, arrays on one line)."""
    if isinstance(value, dict):
        pad = "  " * (depth + 1)
        items = [f"{pad}{json.dumps(k)} : {jackson_pretty(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}" if items else "{ }"
    if isinstance(value, list):
        return "[ " + ", ".join(jackson_pretty(v, depth) for v in value) + " ]" if value else "[ ]"
    return json.dumps(value)


def write_private(path, text):
    """A file only its owner may read, as the hook writes its state (PrivateFiles.OWNER_ONLY)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class DeadSessions:
    """Finished sessions whose transcript is gone, as months of use leave them in a HOME's state folder: per session its
    state (`<key>.json`, key = sha256(session_id::transcript_path), in the shape Progress.writeSessionState writes: a
    dozen or so sent turns, the last one open, the transcript's identity and cost), its lock (`<key>.lock`, empty) and
    its stamp (`seen-<fingerprint>.txt`, named as StateLayout.seen names it, so pruning removes it with the state). The
    transcripts are paths under `gone/` that do not exist; every file is dated 40 days back."""

    AGE_S = 40 * 86400

    def __init__(self, folder, gone, seed):
        self.folder, self.gone = folder, gone
        self.rng = random.Random(seed)
        self.keys = set()
        self.state_bytes = []  # the size of every state file written
        os.makedirs(folder, mode=0o700, exist_ok=True)

    def _state(self, session_id, transcript, written):
        r = self.rng
        turns = r.randint(8, 24)
        emitted = [str(uuidlib.UUID(int=r.getrandbits(128), version=4)) for _ in range(turns)]
        offset = r.randint(100_000, 4_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(written)) + f".{r.randrange(10 ** 9):09d}Z"
        return {"session_id": session_id, "transcript_path": transcript, "offset": offset, "turn_count": turns,
                "emitted_user_uuids": emitted,
                "open_turn": {"user_uuid": emitted[-1], "turn_number": turns, "offset": offset,
                              "trace_id": f"{r.getrandbits(128):032x}", "sent_at": stamp,
                              "span_ids": [f"{r.getrandbits(64):016x}" for _ in range(r.randint(3, 12))],
                              "usage_message_ids": [f"msg_01{r.getrandbits(96):024x}" for _ in range(r.randint(1, 4))]},
                "file_key": f"(dev=fe00,ino={r.randint(10 ** 6, 10 ** 8)})", "head_length": 4096,
                "head_crc32": f"{r.getrandbits(32):x}", "cost_sent_usd": round(r.uniform(0.05, 12), 6),
                "cost_unpriced": 0, "updated": stamp}

    def add(self, count):
        """Writes `count` more dead sessions (three files each)."""
        written = time.time() - self.AGE_S
        for _ in range(count):
            session_id = str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))
            transcript = os.path.join(self.gone, session_id + ".jsonl")
            key = hashlib.sha256(f"{session_id}::{transcript}".encode()).hexdigest()
            state = os.path.join(self.folder, key + ".json")
            lock = os.path.join(self.folder, key + ".lock")
            seen = os.path.join(self.folder, f"seen-{fingerprint_hex(f'{session_id}::{transcript}')}.txt")
            text = jackson_pretty(self._state(session_id, transcript, written))
            write_private(state, text)
            self.state_bytes.append(len(text))
            write_private(lock, "")
            size = self.rng.randint(100_000, 4_000_000)
            write_private(seen, f"{session_id}\n{transcript}\n(dev=fe00,ino={self.rng.randint(10 ** 6, 10 ** 8)}) {size} "
                                f"{int(written * 1e9)}\n")
            for path in (state, lock, seen):
                os.utime(path, (written, written))
            self.keys.add(key)

    def files(self):
        """The names of the files (not folders) in the state folder, pruning's marker (pruned.json) aside: the bench
        removes and writes that one itself."""
        with os.scandir(self.folder) as entries:
            return [e.name for e in entries if e.is_file(follow_symlinks=False) and e.name != "pruned.json"]

    def count(self):
        """(files in the state folder, dead sessions whose state is still there); forgets the removed ones."""
        names = self.files()
        present = {n[:-5] for n in names if n.endswith(".json")}
        self.keys &= present
        return len(names), len(self.keys)

    def top_up(self, target):
        """Writes new dead sessions until there are `target` again; returns (files, dead sessions) found before."""
        before = self.count()
        self.add(target - before[1])
        return before


def p7(args, receiver, base_env, results, variants, commands):
    """The P1 (a) command, one new turn per run, in three HOMEs per build, interleaved round by round: (a) clean, as P1
    has it; (b) plus `args.p7_dead` dead sessions and a fresh pruned.json (pruning not due: the days between passes);
    (c) as (b) with pruned.json removed and the dead sessions topped back up before each run (untimed), so every run
    does a pruning slice over as many. Each run: what Claude Code waits, when the turn is delivered, and when the
    firing's JVM ended (after its pruning slice)."""
    n = args.p7_dead
    sessions, dead, runners = {}, {}, {}
    for variant in variants:
        for setup, _ in P7_SETUPS:
            key = setup + variant.key_suffix
            session = sessions[key] = HookSession(f"p7{setup}{variant.dir_suffix}", args.small, base_env, receiver.base_url)
            _, ok, why = session.run(commands[variant.key][0], "sent")  # the transcript's own turns, untimed
            if not ok:
                log(f"P7 ({key}): sending the transcript's own turns first FAILED: {why}")
            if setup != "clean":
                folder = os.path.join(session.home, ".claude", "state", "litefuse")
                log(f"P7 ({key}): writing {n:,} dead sessions ({3 * n:,} files) into {shown(folder)}")
                dead[key] = DeadSessions(folder, os.path.join(session.dir, "gone"), seed=f"p7-{key}")
                dead[key].add(n)
                # The marker of a pass just finished (the hook's own shape): no pruning due while the runs last.
                write_private(os.path.join(folder, "pruned.json"), json.dumps({"finished_at": int(time.time() * 1000)},
                                                                              separators=(",", ":")))
    os.sync()  # write the new files back now, not during the rounds (the kernel's writeback would count as other work)
    due_start = {key: d.count() for key, d in dead.items()}

    def runner(session, command, dead_sessions):
        def run():
            detail = {}
            if dead_sessions:
                dead_sessions.top_up(n)  # untimed, before the run
                marker = os.path.join(dead_sessions.folder, "pruned.json")
                if os.path.exists(marker):
                    os.remove(marker)
                detail["files_before"], detail["dead_before"] = dead_sessions.count()
            session.append_turn()
            lines_before = len(session.log_lines())
            elapsed, ok, why = session.run(command, "sent")
            if not ok:
                return elapsed, ok, why
            detail.update(log=why, wait=session.last_wait, done=session.last_done)
            if dead_sessions:
                detail["files_after"], dead_after = dead_sessions.count()
                detail["sessions_removed"] = detail["dead_before"] - dead_after
                detail["logged_removed"] = sum(int(m.group(1)) for line in session.log_lines()[lines_before:]
                                               if (m := REMOVED_LOG.search(line)))
                try:
                    detail["marker"] = json.load(open(os.path.join(dead_sessions.folder, "pruned.json")))
                except (OSError, ValueError):
                    detail["marker"] = None  # no pruned.json after the run: this build does not prune
            return elapsed, ok, detail
        return run

    for setup, _ in P7_SETUPS:
        for variant in variants:
            key = setup + variant.key_suffix
            runners[key] = runner(sessions[key], commands[variant.key][0], dead.get(key) if setup == "due" else None)
    samples, details, failures = run_rounds("P7", runners, args.runs, args.warmup, receiver, results, args.quiet_wait,
                                            alternate=len(variants) > 1)
    for variant in variants:
        out = {"command": commands[variant.key][0], "dead_sessions": n, "setups": {},
               "state_bytes": {"median": statistics.median_low(dead["dead" + variant.key_suffix].state_bytes),
                               "min": min(dead["dead" + variant.key_suffix].state_bytes),
                               "max": max(dead["dead" + variant.key_suffix].state_bytes)} if n else None}
        for setup, label in P7_SETUPS:
            key = setup + variant.key_suffix
            kept = details[key]
            entry = {"label": label.format(n=n), "failed_runs": len(failures[key]), "failures": failures[key][:5],
                     "delivered": summary_ms(samples[key]) if samples[key] else None,
                     "wait": summary_ms([d["wait"] for d in kept]) if kept else None,
                     "done": summary_ms([d["done"] for d in kept]) if kept else None}
            if key in dead:
                files_end, dead_end = dead[key].count()
                entry["state_folder"] = {"files_before_runs": due_start[key][0], "dead_before_runs": due_start[key][1],
                                         "files_after_runs": files_end, "dead_after_runs": dead_end}
            if setup == "due" and kept:
                entry["pruning"] = {
                    "seen": any(d["marker"] is not None for d in kept),
                    "sessions_removed": [d["sessions_removed"] for d in kept],
                    "files_removed": [d["files_before"] - d["files_after"] for d in kept],
                    "logged_removed": [d["logged_removed"] for d in kept],
                    "last_marker": kept[-1]["marker"]}
            out["setups"][setup] = entry
        clean = out["setups"]["clean"]
        for setup in ("dead", "due"):
            other = out["setups"][setup]
            out["setups"][setup]["ratio_to_clean"] = {
                what: other[what]["median"] / clean[what]["median"] if other[what] and clean[what] else None
                for what in ("wait", "delivered", "done")}
        store(results, variant, "P7", out)

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


def replay_run(variant, name, transcript, heap_opts, timeout):
    folder = fresh_dir(name + variant.dir_suffix)
    gc_log = os.path.join(folder, "gc.log")
    err_path = os.path.join(folder, "stderr.txt")
    with open(transcript, "rb") as f:  # page cache: measure parsing, not the disk
        while f.read(1 << 24):
            pass
    command = ["java", *variant.runtime_options, *heap_opts, "-XX:+ExitOnOutOfMemoryError", "-XX:+DisplayVMOutputToStderr",
               f"-Xlog:gc:file={gc_log}",
               "-cp", variant.classpath, "litefuse_hook", "replay", "--json", transcript]
    env = dict(os.environ, HOME=os.path.join(folder))
    log(f"P3{'' if variant.key == 'current' else ' (baseline)'}: {' '.join(heap_opts) or 'default heap'}: "
        f"replay --json {os.path.basename(transcript)} "
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


def median_run(runs, value):
    """The run whose `value` is the median (the lower one of the middle two for an even count), so the numbers
    shown beside the median come from one real run; a comparison's ratio uses this same run's value."""
    ordered = sorted(runs, key=value)
    return ordered[(len(ordered) - 1) // 2]


def combine_runs(good, failed, rate, rates_key):
    """One P3 or P4 result per build from its kept runs (`good` and `failed`, as run_rounds split them): a single
    run as it is (the default); else the median run by `rate` among the good runs (the first failed run when none
    succeeded), with every good run's rate under `rates_key`; failed runs are counted in failed_runs."""
    runs = good + failed
    if len(runs) == 1:
        return dict(runs[0], n=1, failed_runs=len(failed))
    out = dict(median_run(good, lambda r: r[rate]) if good else failed[0])
    out.update(n=len(runs), failed_runs=len(failed), runs=runs, **{rates_key: [round(r[rate], 1) for r in good]})
    return out


def p3(args, receiver, results, variants):
    """Both P3 files; with several variants (or BENCH_P3_RUNS > 1) each file is replayed in rounds, one run per
    variant per round, alternating which goes first."""
    combined = {variant.key: {} for variant in variants}
    for part, name, transcript, heap_opts in (("mid_default_heap", "p3-mid", args.mid, []),
                                               ("big_256m", "p3-big", args.big, ["-Xmx256m"])):
        runners = {}
        for variant in variants:
            def runner(variant=variant, name=name, transcript=transcript, heap_opts=heap_opts):
                result = replay_run(variant, name, transcript, heap_opts, args.replay_timeout)
                return result["seconds"], result["returncode"] == 0, result
            runners[name.split("-")[1] + variant.key_suffix] = runner
        measure = f"P3 {fmt_size(os.path.getsize(transcript))}"
        _, details, failures = run_rounds(measure, runners, args.p3_runs, 0, receiver, results, args.quiet_wait,
                                          alternate=len(variants) > 1)
        for variant in variants:
            key = name.split("-")[1] + variant.key_suffix
            out = combine_runs(details[key], failures[key], "mb_per_s", "mb_per_s_all")
            if out["n"] > 1:  # the GC figures of the run with the highest heap peak
                with_gc = [r for r in out["runs"] if r["gc"]]
                out["gc"] = max(with_gc, key=lambda r: r["gc"]["peak_used_mb"])["gc"] if with_gc else None
            combined[variant.key][part] = out
    for variant in variants:
        store(results, variant, "P3", combined[variant.key])


# ----------------------------------------------------------------------------- P4

def p4_mode(variant, base_env):
    """How this build exports a whole transcript: ("backfill", its usage text) when `backfill --help` shows
    backfill's own usage, else ("replay --send", "")."""
    home = fresh_dir("p4-probe" + variant.dir_suffix)
    probe = subprocess.run(["java", "-cp", variant.classpath, "litefuse_hook", "backfill", "--help"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(base_env, HOME=home),
                           timeout=60, stdin=subprocess.DEVNULL)
    help_text = probe.stdout.decode(errors="replace")
    # picocli answers `--help` of the top command (exit 0) when there is no backfill: check the usage line.
    if probe.returncode == 0 and re.search(r"(?m)^Usage: .*\bbackfill\b", help_text):
        return "backfill", help_text.split("\n\n")[0]
    return "replay --send", ""


def p4_run(args, variant, receiver, base_env, mode, usage, number):
    """One export of the P4 transcript by `variant`, in a fresh temporary HOME (backfill remembers what it sent)."""
    folder = fresh_dir(f"p4{variant.dir_suffix}" + (f"-{number}" if number else ""))
    home = os.path.join(folder, "home")
    os.makedirs(home)
    env = dict(hook_env(base_env, home, receiver.base_url), CC_LANGFUSE_EXPORT_BUDGET_MS="600000")
    java = ["java", *variant.runtime_options, "-cp", variant.classpath, "litefuse_hook"]
    transcript = args.p4_file
    if mode == "backfill":
        # Put the transcript where Claude Code keeps them, in case backfill scans ~/.claude/projects.
        project = os.path.join(home, ".claude", "projects", "-bench-project")
        os.makedirs(project)
        placed = os.path.join(project, f"{uuidlib.uuid4()}.jsonl")
        os.link(transcript, placed)
        if "--projects-dir" in usage:
            command = java + ["backfill", "--projects-dir", os.path.dirname(project)]
        elif re.search(r"(?<![=\w-])[\[<]?(FILE|PATH|TRANSCRIPT)S?[>\]]?\.\.\.", usage):
            command = java + ["backfill", placed]  # positional transcript paths
        else:
            command = java + ["backfill"]  # scans $HOME/.claude/projects
    else:
        command = java + ["replay", "--send", transcript]
    receiver.reset()
    receiver_cpu = cpu_seconds(receiver.proc.pid)
    log(f"P4{'' if variant.key == 'current' else ' (baseline)'}: {mode} of {os.path.basename(transcript)} "
        f"({os.path.getsize(transcript) / 1e6:.0f} MB) to the loopback receiver: {' '.join(command[len(java):])}")
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
    out = {"mode": mode, "command": command[len(java):], "returncode": rc, "seconds": round(elapsed, 2),
           "receiver": stats, "stderr_tail": stderr[-600:],
           "receiver_cpu_s": None if receiver_cpu is None or receiver_cpu_after is None
           else round(receiver_cpu_after - receiver_cpu, 2),
           "spans_per_s_window": stats["spans"] / window if window > 0 else None,
           "spans_per_s_process": stats["spans"] / elapsed if elapsed > 0 else None}
    if mode == "backfill" and stats["spans"] == 0:
        out["note"] = "backfill sent nothing; its interface may need arguments this bench does not know"
    log(f"P4: exit {rc} in {elapsed:.1f}s; receiver: {stats}")
    return elapsed, rc == 0 and bool(out["spans_per_s_window"]), out


def p4(args, receiver, base_env, results, variants):
    modes = {variant.key: p4_mode(variant, base_env) for variant in variants}
    counter = {variant.key: 0 for variant in variants}
    runners = {}
    for variant in variants:
        def runner(variant=variant):
            counter[variant.key] += 1
            mode, usage = modes[variant.key]
            return p4_run(args, variant, receiver, base_env, mode, usage,
                          counter[variant.key] if args.p4_runs > 1 else 0)
        runners["export" + variant.key_suffix] = runner
    _, details, failures = run_rounds("P4", runners, args.p4_runs, 0, receiver, results, args.quiet_wait,
                                      alternate=len(variants) > 1)
    for variant in variants:
        key = "export" + variant.key_suffix
        store(results, variant, "P4", combine_runs(details[key], failures[key], "spans_per_s_window",
                                                   "spans_per_s_all"))


# ----------------------------------------------------------------------------- report

def fmt_size(n):
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def status(ok):
    return "PASS" if ok else "MISS"


def shown(text):
    """Paths inside the repository shown relative to its root, so a results table holds no machine's paths."""
    return text.replace(ROOT + os.sep, "")


def rows(view):
    """The table rows of one build's results (`view`: results, or results["baseline"]): dicts with a key, the
    measure's name, result text, target and status, and `values`, the numbers a comparison uses:
    [(label, samples, higher is better, the median shown in the result)]."""
    out = []

    def row(key, name, result, target, state, values=()):
        out.append({"key": key, "name": name, "result": result, "target": target, "status": state,
                    "values": list(values)})

    p1r = view.get("P1")
    if p1r:
        v = p1r["variants"]
        floor = v["c"]["stats"]
        for key in ("a", "b", "c", "d"):
            s = v[key]["stats"]
            fails = v[key]["failed_runs"]
            fail_note = f"; {fails} run(s) failed" if fails else ""
            values = [("", s["samples"], False, s["median"])] if s else []
            if key == "a":
                name = f"P1 (a) hook, {v['a']['label']}"
                if s and floor:
                    ratio = s["median"] / floor["median"]
                    wait = v["a"].get("wait")
                    waited = f"; Claude Code waits: median {wait['median']:.0f} ms" if wait else ""
                    result = f"{fmt_ms(s)} = {ratio:.2f}× floor{waited}{fail_note}"
                    target = f"≤ 3× floor (≤ {3 * floor['median']:.0f} ms)"
                    row("P1a", name, result, target, status(ratio <= 3 and not fails), values)
                else:
                    row("P1a", name, f"no successful run{fail_note}", "≤ 3× floor", "MISS")
            else:
                name = {"b": "P1 (b) hook, plain `.ci/jbang litefuse_hook.java`",
                        "c": f"P1 (c) floor: bare JVM hello-world, {v['c']['java_version']}",
                        "d": "P1 (d) command of (a), no new turn (start-up, state check, exit)"}[key]
                result = (fmt_ms(s) if s else "no successful run") + fail_note
                if key in "bd" and s and floor:
                    result += f" = {s['median'] / floor['median']:.2f}× floor"
                row("P1" + key, name, result, "— (reference)", "—" if not fails else "ERROR", values)
    p2r = view.get("P2")
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
            row("P2", name, result, "≤ 1.1", status(p2r["ratio"] <= 1.1 and not fails),
                [(f"{small_n}: ", s["small"]["samples"], False, s["small"]["median"]),
                 (f"{big_n}: ", s["big"]["samples"], False, s["big"]["median"])])
        else:
            row("P2", name, "no successful runs", "≤ 1.1", "MISS")
    p3r = view.get("P3")
    if p3r:
        mid, big = p3r["mid_default_heap"], p3r["big_256m"]

        def gc_text(r):
            g = r["gc"]
            return "" if not g else (f"peak heap used {g['peak_used_mb']:.0f} MB, max after GC "
                                     f"{g['max_after_gc_mb']:.0f} MB, {g['full_gcs']} full GCs")

        def speeds(r):
            return [("", r.get("mb_per_s_all") or [r["mb_per_s"]], True, r["mb_per_s"])] if r["returncode"] == 0 else []

        def several(r):
            """With several runs: which run the numbers come from, and the spread."""
            if r["n"] == 1:
                return ""
            return (f", median of {r['n']} runs (min–max {min(r['mb_per_s_all']):.1f}–{max(r['mb_per_s_all']):.1f}; "
                    f"the GC figures are the run with the highest heap peak)")

        def why(r):
            return ("OutOfMemoryError (java.lang.OutOfMemoryError: Java heap space)" if r["oom"] and r["heap_opts"] else
                    "OutOfMemoryError" if r["oom"] else "timed out" if r["timed_out"] else f"exit {r['returncode']}")

        def failed(r):
            of = f" ({r['failed_runs']} of {r['n']} runs failed)" if r["n"] > 1 else ""
            return f"failed: {why(r)} after {r['seconds']:.1f} s{of}"

        def some_failed(r):
            """With several runs of which some failed (the result shown is the median good run): how many, why."""
            bad = [x for x in r.get("runs", []) if x["returncode"] != 0]
            return f"; {len(bad)} of {r['n']} runs failed (first: {why(bad[0])})" if bad else ""

        name = f"P3 replay --json throughput, {mid['bytes'] / 1e6:.0f} MB, default heap"
        if mid["returncode"] == 0:
            row("P3mid", name, f"{mid['mb_per_s']:.1f} MB/s ({mid['seconds']:.1f} s; {gc_text(mid)}){several(mid)}"
                + some_failed(mid), "≥ 150 MB/s", status(mid["mb_per_s"] >= 150 and not mid["failed_runs"]),
                speeds(mid))
        else:
            row("P3mid", name, failed(mid), "≥ 150 MB/s", "MISS")
        name = f"P3 replay --json, {big['bytes'] / 1e6:.0f} MB, -Xmx256m"
        if big["returncode"] == 0:
            ok = big["mb_per_s"] >= 150 and not big["failed_runs"]
            row("P3big", name, f"{big['mb_per_s']:.1f} MB/s ({big['seconds']:.1f} s); {gc_text(big)}{several(big)}"
                + some_failed(big), "completes in 256 MB heap, ≥ 150 MB/s", status(ok), speeds(big))
        else:
            row("P3big", name, f"{failed(big)}; {gc_text(big)}", "completes in 256 MB heap, ≥ 150 MB/s", "MISS")
    p4r = view.get("P4")
    if p4r:
        st = p4r["receiver"]
        name = f"P4 export throughput, {p4r['mode']}"
        if st["spans"] and p4r["spans_per_s_window"]:
            failed_runs = p4r["failed_runs"] if p4r["n"] > 1 else 0  # a single run's failure shows as its exit
            detail = (f"{st['spans']:,} spans, {st['roots']:,} traces, {st['requests']} requests in a "
                      f"{st['window_ms'] / 1000:.2f} s export window; whole process {p4r['seconds']:.1f} s = "
                      f"{p4r['spans_per_s_process']:,.0f} spans/s; the receiver used {p4r['receiver_cpu_s']} s CPU")
            rates = p4r.get("spans_per_s_all")
            if p4r["n"] > 1 and rates:  # with no good run, the first failed run is shown as a single one
                detail = (f"min–max {min(rates):,.0f}–{max(rates):,.0f}; the median run: {detail}")
                result = f"{p4r['spans_per_s_window']:,.0f} spans/s, median of {p4r['n']} runs ({detail})"
            else:
                result = f"{p4r['spans_per_s_window']:,.0f} spans/s ({detail})"
            if p4r["returncode"] != 0:
                result += f"; exit {p4r['returncode']}"
            if failed_runs:
                result += f"; {failed_runs} of {p4r['n']} runs failed"
            row("P4", name, result, "≥ 20,000 spans/s",
                status(p4r["spans_per_s_window"] >= 20000 and p4r["returncode"] == 0 and not failed_runs),
                [("", p4r.get("spans_per_s_all") or [p4r["spans_per_s_window"]], True, p4r["spans_per_s_window"])])
        else:
            row("P4", name, f"no spans received (exit {p4r['returncode']})", "≥ 20,000 spans/s", "MISS")
    p6r = view.get("P6")
    if p6r:
        for kind, label in NETWORK_KINDS:
            r = p6r["kinds"][kind]
            fails = f"; {r['failed_runs']} run(s) failed" if r["failed_runs"] else ""
            name = f"P6 ({kind}) one new turn, {label} (command of P1 a)"
            if r["wait"] and r["delivered"]:
                result = (f"Claude Code waits: median {r['wait']['median']:.0f} ms (p10–p90 {r['wait']['p10']:.0f}–"
                          f"{r['wait']['p90']:.0f}); delivered: {fmt_ms(r['delivered'])}{fails}")
                row("P6" + kind, name, result, "wait ≤ 80 ms", status(r["wait"]["median"] <= 80 and not r["failed_runs"]),
                    [("wait: ", r["wait"]["samples"], False, r["wait"]["median"]),
                     ("delivered: ", r["delivered"]["samples"], False, r["delivered"]["median"])])
            else:
                row("P6" + kind, name, f"no successful run{fails} ({r['failures'][:1]})", "wait ≤ 80 ms", "MISS")
    p5r = view.get("P5")
    if p5r:
        s, fails = p5r["stats"], p5r["failed_runs"]
        name = (f"P5 a firing that finds a finished workflow run of {p5r['agents']} agents (command of P1 a): "
                f"{p5r['expected_observations']} observations into the launching turn's trace, and the new turn")
        if s:
            row("P5", name, fmt_ms(s) + (f"; {fails} run(s) failed" if fails else ""), "all sent in that firing, within "
                "the 3 s export budget", status(s["median"] <= 3000 and not fails), [("", s["samples"], False, s["median"])])
        else:
            row("P5", name, f"no successful run ({p5r['failures'][:1]})", "all sent in that firing", "MISS")
    p7r = view.get("P7")
    if p7r:
        setups = p7r["setups"]
        clean = setups["clean"]
        target = "(b) ÷ (a) ≤ 1.05 on wait and delivered"
        for setup, _ in P7_SETUPS:
            r = setups[setup]
            fails = f"; {r['failed_runs']} run(s) failed" if r["failed_runs"] else ""
            name = f"P7 {r['label']}: one new turn (command of P1 a)"
            if not (r["wait"] and r["delivered"]):
                row("P7" + setup, name, f"no successful run{fails} ({r['failures'][:1]})",
                    target if setup == "dead" else "— (reference)", "MISS" if setup == "dead" else "ERROR")
                continue
            result = (f"Claude Code waits: {fmt_ms(r['wait'])}; delivered: {fmt_ms(r['delivered'])}; "
                      f"the firing's JVM ended: median {r['done']['median']:.0f} ms (p10–p90 {r['done']['p10']:.0f}–"
                      f"{r['done']['p90']:.0f})")
            ratios = r.get("ratio_to_clean") or {}
            if ratios.get("wait") and ratios.get("delivered"):
                result += (f"; ÷ (a): wait {ratios['wait']:.3f}×, delivered {ratios['delivered']:.3f}×, JVM ended "
                           f"{ratios['done']:.3f}×")
            pruning = r.get("pruning")
            if setup == "due" and pruning is not None:
                if not pruning["seen"]:
                    result += "; no pruning in this build (no pruned.json after any run)"
                else:
                    folder = r["state_folder"]
                    logged = sum(pruning["logged_removed"]) / len(pruning["logged_removed"])
                    marker = pruning["last_marker"] or {}
                    stopped = marker.get("stopped_after")
                    result += (f"; each run's slice removed on average "
                               f"{statistics.mean(pruning['sessions_removed']):.1f} dead sessions "
                               f"({statistics.mean(pruning['files_removed']):.1f} files; min–max "
                               f"{min(pruning['sessions_removed'])}–{max(pruning['sessions_removed'])} sessions; the log "
                               f"says {logged:.1f}), topped back up before the next run; state folder "
                               f"{folder['files_before_runs']:,} files before the runs, {folder['files_after_runs']:,} "
                               f"after the last (pruned.json aside); pruned.json after the last run: "
                               + (f"stopped after `{stopped[:12]}…`" if stopped else "pass finished"))
                    if not max(pruning["sessions_removed"]) and stopped:
                        result += " (no slice removed anything: each ran out of its time before it removed a session)"
            result += fails
            values = [("wait: ", r["wait"]["samples"], False, r["wait"]["median"]),
                      ("delivered: ", r["delivered"]["samples"], False, r["delivered"]["median"])]
            if setup == "dead" and ratios.get("wait") and ratios.get("delivered"):
                ok = ratios["wait"] <= 1.05 and ratios["delivered"] <= 1.05 and not r["failed_runs"] \
                    and not clean["failed_runs"]
                row("P7" + setup, name, result, target, status(ok), values)
            else:
                row("P7" + setup, name, result, "— (reference)" if setup == "clean" else "— (report)",
                    "ERROR" if r["failed_runs"] else "—", values)
    return out


def table(results):
    """The table of one build (the default, without a baseline)."""
    lines = ["| Measure | Result | Target | Status |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['result']} | {r['target']} | {r['status']} |" for r in rows(results)]
    return "\n".join(lines)


def verdict(current, baseline, higher_better):
    """'faster' or 'slower' only when every run of one build beat every run of the other, and two identical builds
    would do that by chance (their runs in random order) with probability 2 / C(n + m, n) <= 5 %, i.e. with at
    least 4 runs each. Looser rules (non-overlapping p10–p90 ranges) called one script 'faster' than itself in
    a BENCH_BASELINE=HEAD run with an unchanged working tree: a few runs ahead is what noise does."""
    n, m = len(current), len(baseline)
    lower, higher = max(current) < min(baseline), min(current) > max(baseline)
    if not (lower or higher):
        return "within noise"
    chance = 2 / math.comb(n + m, n)
    if chance > 0.05:
        return f"too few runs to judge: {n} vs {m}"
    p = "p < 0.001" if chance < 0.001 else f"p = {chance:.3f}"
    return ("faster" if higher == higher_better else "slower") + f" in every run, {p}"


def ratio_text(current_row, baseline_row):
    """current ÷ baseline of the medians shown in the two rows, for each value both have, with a verdict."""
    baseline_values = {label: (samples, median) for label, samples, _, median in baseline_row["values"]}
    parts = []
    for label, samples, higher_better, median in current_row["values"]:
        if label in baseline_values and baseline_values[label][0]:
            base, base_median = baseline_values[label]
            ratio = median / base_median
            parts.append(f"{label}{ratio:.2f}× ({verdict(samples, base, higher_better)})")
    return "; ".join(parts) or "—"


def compare_table(results, baseline_name):
    """Baseline and current side by side, one row per measure, with current ÷ baseline."""
    baseline_rows = {r["key"]: r for r in rows(results.get("baseline", {}))}
    lines = [f"| Measure | Baseline {baseline_name} | Current | Current ÷ baseline | Target | Status (baseline → current) |",
             "|---|---|---|---|---|---|"]
    for r in rows(results):
        b = baseline_rows.get(r["key"])
        if b is None:
            base_text, ratio, state = "not measured", "—", r["status"]
        elif r["key"] == "P1c":
            base_text, ratio, state = "the same runs: one floor for both", "—", r["status"]
        else:
            base_text = b["result"] + (f" (measured as: {b['name']})" if b["name"] != r["name"] else "")
            ratio, state = ratio_text(r, b), f"{b['status']} → {r['status']}"
        lines.append(f"| {r['name']} | {base_text} | {r['result']} | {ratio} | {r['target']} | {state} |")
    return "\n".join(lines)


def notes(results, args, variants):
    out = []
    compared = len(variants) > 1
    for variant in variants:
        view = results if variant.key == "current" else results.get("baseline", {})
        whose = f" ({variant.key})" if compared else ""
        p1r = view.get("P1")
        if p1r and p1r.get("install_unavailable"):
            out.append(f"- P1 (a){whose}: `install --print-hook-command` is not available ({p1r['install_unavailable']}); "
                       f"measured the fallback `java -XX:TieredStopAtLevel=1 -cp <classpath> litefuse_hook`.")
        if p1r:
            out.append(f"- P1 (a) command{whose}: `{shown(p1r['command_a'])}`")
    if compared:
        javas = {variant.key: (results if variant.key == "current" else results.get("baseline", {}))
                 .get("P1", {}).get("launcher_java") for variant in variants}
        if len(set(javas.values())) > 1:
            out.append("- The two launchers run different JDKs (" + ", ".join(f"{k}: `{v}`" for k, v in javas.items())
                       + "); the floor (c) runs the current one's.")
    for variant in variants:
        view = results if variant.key == "current" else results.get("baseline", {})
        p2r = view.get("P2")
        if p2r and "big" in p2r["priming"]:
            pr = p2r["priming"]["big"]
            spans = pr["receiver"]["spans"]
            whose = f", {variant.key}" if compared else ""
            held = (f" (the last turn, {pr['open_turn_bytes']} bytes, kept open by the hook for rows added to it later)"
                    if pr.get("open_turn_bytes") else "")
            out.append(f"- P2 priming{whose} (hook mode, whole {pr['transcript_bytes'] / 1e6:.0f} MB backlog in one run): "
                       f"{pr['seconds']:.1f} s, {spans:,} spans sent; state offset {pr['state_offset']} of "
                       f"{pr['transcript_bytes']} bytes{held}.")
    for variant in variants:
        p7r = (results if variant.key == "current" else results.get("baseline", {})).get("P7")
        if p7r:
            whose = f" ({variant.key})" if compared else ""
            dead_folder = p7r["setups"]["dead"].get("state_folder") or {}
            due_folder = p7r["setups"]["due"].get("state_folder") or {}
            size = p7r.get("state_bytes") or {}
            out.append(f"- P7{whose}: (b) and (c) each hold {p7r['dead_sessions']:,} dead sessions written once before the "
                       f"runs (per session a state of median {size.get('median', 0):,} bytes, "
                       f"{size.get('min', 0):,}–{size.get('max', 0):,}, an empty lock and a stamp, all dated 40 days "
                       "back; transcripts that do not exist). State folder files before → after the runs: (b) "
                       f"{dead_folder.get('files_before_runs', 0):,} → {dead_folder.get('files_after_runs', 0):,}; (c) "
                       f"{due_folder.get('files_before_runs', 0):,} → {due_folder.get('files_after_runs', 0):,} (the dead "
                       "sessions (c)'s runs removed were topped back up before each next run). \"Delivered\" is the "
                       "hook's log line, which comes before the firing's pruning slice; \"JVM ended\" includes it.")
    out.append(f"- Runs: {args.warmup} warm-up + {args.runs} undisturbed timed rounds per P1/P2/P6/P7 variant, interleaved; every hook run "
               "through `bash -c` with the payload on stdin, its own temporary HOME, a loopback receiver; "
               "MB = 10^6 bytes; P3 files are in the page cache before timing; times include JVM start.")
    repeats = ([f"P3: {args.p3_runs} run(s) of each file per build"] if "P3" in results and args.p3_runs > 1 else []) \
        + ([f"P4: {args.p4_runs} run(s) per build"] if "P4" in results and args.p4_runs > 1 else [])
    if compared:
        repeats.append("baseline and current runs alternate within every round (P1/P2 variants, P3/P4 runs), and every "
                       "other round runs them in reverse order")
    if repeats:
        out.append("- " + "; ".join(repeats) + ".")
    if compared:
        out.append("- Current ÷ baseline: ratio of the medians (times: below 1 means the current build is faster; MB/s "
                   "and spans/s: above 1 means faster). \"faster\"/\"slower\" only where every run of one build beat "
                   "every run of the other and identical builds would do that by chance at most 5 % of the time "
                   "(that chance is the p shown); else \"within noise\" (the ranges overlap) or \"too few runs to judge\".")
    busy = ", ".join(f"{k} {v:.0%}" for k, v in results.get("cpu_busy_before", {}).items())
    if busy:
        out.append(f"- CPU busy with other work just before each measure (2 s sample): {busy}.")
    for measure, d in results.get("disturbance", {}).items():
        if d["dropped_rounds"] or d["kept_disturbed_rounds"]:
            kept = (f"; {d['kept_disturbed_rounds']} disturbed round(s) kept because the repeat budget was spent"
                    if d["kept_disturbed_rounds"] else "")
            out.append(f"- {measure}: {d['dropped_rounds']} round(s) dropped and repeated because other processes used "
                       f"the CPU during them{kept}.")
    la = results["loadavg"]
    out.append(f"- Whole run {results['seconds']:.0f} s; load average (1/5/15 min) before "
               f"{'/'.join(f'{x:.2f}' for x in la['before'])}, after {'/'.join(f'{x:.2f}' for x in la['after'])} "
               f"(other work on this {os.cpu_count()}-core machine would inflate the times).")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", required=True, help="the litefuse_hook.java the jar was built from")
    parser.add_argument("--classpath", required=True)
    parser.add_argument("--baseline-script", help="the frozen baseline litefuse_hook.java, in its own build directory")
    parser.add_argument("--baseline-classpath")
    parser.add_argument("--baseline-name", default="", help="how the table heading names the baseline")
    parser.add_argument("--classes", required=True, help="directory with Hello.class and BenchReceiver.class")
    parser.add_argument("--small", required=True)
    parser.add_argument("--mid", required=True)
    parser.add_argument("--big", required=True)
    parser.add_argument("--p4-file", required=True)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--p3-runs", type=int, default=1, help="timed runs of each P3 file per build")
    parser.add_argument("--p4-runs", type=int, default=1, help="timed P4 exports per build")
    parser.add_argument("--replay-timeout", type=int, default=240)
    parser.add_argument("--export-timeout", type=int, default=300)
    parser.add_argument("--p7-dead", type=int, default=10000, help="dead sessions in the state folder of P7 (b) and (c)")
    parser.add_argument("--only", default="P1,P2,P3,P4,P5,P6,P7")
    parser.add_argument("--quiet-wait", type=int, default=180,
                        help="seconds to wait at most, before each measure and before repeating a dropped round, "
                             "for other work to leave the CPUs idle")
    parser.add_argument("--header", default="", help="context lines printed above the table")
    args = parser.parse_args()
    if bool(args.baseline_script) != bool(args.baseline_classpath):
        parser.error("--baseline-script and --baseline-classpath go together")

    os.makedirs(TMP, exist_ok=True)
    become_subreaper()
    real_home = os.environ.get("HOME", os.path.expanduser("~"))
    # Hook runs get a temporary HOME; JBang and its bootstrap keep using the real caches (read, not the ~/.claude).
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "CC_LANGFUSE_", "TRACE_TO_"))}
    base_env.setdefault("JBANG_DIR", os.path.join(real_home, ".jbang"))
    base_env.setdefault("XDG_CACHE_HOME", os.path.join(real_home, ".cache"))
    variants = [Variant("current", args.script, args.classpath)]
    if args.baseline_script:
        variants.append(Variant("baseline", args.baseline_script, args.baseline_classpath))
    only = set(args.only.upper().split(","))
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args)}
    began = time.time()
    load_before = os.getloadavg()
    tls = ReceiverTls() if "P6" in only else None
    receiver = Receiver(args.classes, lifetime_s=3600 * len(variants), tls=tls)
    try:
        commands = None
        if "P1" in only or "P2" in only:
            if "P1" in only:
                wait_until_quiet(results, "P1", args.quiet_wait)
                commands = p1(args, receiver, base_env, results, variants)
            else:
                commands = {v.key: hook_command_a(v, base_env, receiver.base_url)[:2] for v in variants}
        if "P2" in only:
            wait_until_quiet(results, "P2", args.quiet_wait)
            p2(args, receiver, base_env, results, variants, commands)
        if "P6" in only:
            wait_until_quiet(results, "P6", args.quiet_wait)
            p6(args, receiver, base_env, results, variants, tls)
        if "P5" in only:
            if commands is None:
                commands = {v.key: hook_command_a(v, base_env, receiver.base_url)[:2] for v in variants}
            wait_until_quiet(results, "P5", args.quiet_wait)
            p5(args, receiver, base_env, results, commands)
        if "P7" in only:
            if commands is None:
                commands = {v.key: hook_command_a(v, base_env, receiver.base_url)[:2] for v in variants}
            wait_until_quiet(results, "P7", args.quiet_wait)
            p7(args, receiver, base_env, results, variants, commands)
        if "P3" in only:
            wait_until_quiet(results, "P3", args.quiet_wait)
            p3(args, receiver, results, variants)
        if "P4" in only:
            wait_until_quiet(results, "P4", args.quiet_wait)
            p4(args, receiver, base_env, results, variants)
    finally:
        receiver.close()
    # Which JDK each measure ran on: P1/P2 on the java the (a) command runs (the install launcher's), P3/P4 on PATH's.
    jdk_lines, results["jdk"] = [], {}
    for group, java, how in ((("P1", "P2", "P7"), commands and launcher_java(commands[variants[0].key][0]),
                              "the java the P1 (a) command runs; P1 (b) on the one JBang picks"),
                             (("P3", "P4"), shutil.which("java") or "java", "`java` on PATH")):
        measures = "/".join(m for m in group if m in only)
        if measures and java:
            results["jdk"][measures] = {"java": java, "version": java_version(java)}
            jdk_lines.append(f"{measures} {results['jdk'][measures]['version']} ({how})")
    p3_p4 = "/".join(m for m in ("P3", "P4") if m in only)
    if p3_p4:
        results["runtime_options"] = {v.key: v.runtime_options for v in variants}
        jdk_lines.append(f"{p3_p4} JVM options from each script's //RUNTIME_OPTIONS, as JBang runs it: " + ", ".join(
            f"{v.key} `{' '.join(v.runtime_options)}`" if v.runtime_options else f"{v.key} none" for v in variants))
    results["seconds"] = round(time.time() - began, 1)
    results["loadavg"] = {"before": load_before, "after": os.getloadavg()}
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    log(f"done in {results['seconds']:.0f}s; raw numbers in bench/out/results.json")
    header = ([args.header] if args.header else []) + (["JDK: " + "; ".join(jdk_lines) + "."] if jdk_lines else [])
    if header:
        print("\n".join(header))
        print()
    print(compare_table(results, args.baseline_name) if len(variants) > 1 else table(results))
    print()
    print("\n".join(notes(results, args, variants)))


if __name__ == "__main__":
    main()
