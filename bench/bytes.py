#!/usr/bin/env python3
"""Bytes a turn sends in each CC_LANGFUSE_GENERATION_INPUT mode, as a Markdown table.

Replays (`replay --json --whole-texts`, nothing sent) the shared corpus (../shared/transcripts, when present), the
real-client sessions in tests/projects/-realclient-2.1.332 and any folders given as arguments, once per mode, and
sums per trace the UTF-8 bytes of the generations' inputs and of the whole trace's JSON.

    python3 bench/bytes.py [FOLDER ...]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ["off", "new", "full"]


def main_transcripts(folder):
    """Session files; subagent files are read through their sessions."""
    found = []
    for directory, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "subagents"]
        found += [os.path.join(directory, f) for f in files if f.endswith(".jsonl") and not f.startswith("agent-")]
    return sorted(found)


def replay(files, mode, home):
    env = dict(os.environ, HOME=home, CC_LANGFUSE_GENERATION_INPUT=mode)
    out = subprocess.run([os.path.join(ROOT, ".ci", "jbang"), "litefuse_hook.java", "replay", "--json", "--whole-texts", *files],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False).stdout
    per_turn = []
    for line in out.splitlines():
        trace = json.loads(line)
        inputs = sum(len(o["input"].encode()) for o in trace["observations"]
                     if o["type"] == "generation" and isinstance(o.get("input"), str))
        per_turn.append((inputs, len(line.encode())))
    return per_turn


def size(n):
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def main():
    sets = []
    shared = os.path.join(os.path.dirname(ROOT), "shared", "transcripts")
    if os.path.isdir(shared):
        sets.append(("shared corpus", main_transcripts(shared)))
    sets.append(("real client", main_transcripts(os.path.join(ROOT, "tests", "projects", "-realclient-2.1.332"))))
    for folder in sys.argv[1:]:
        sets.append((folder, main_transcripts(folder)))
    print("| Transcripts | Mode | Turns | Generation inputs per turn: mean / p95 / max | The whole trace per turn: mean / max | All turns |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as home:
        for name, files in sets:
            for mode in MODES:
                turns = replay(files, mode, home)
                inputs = sorted(t[0] for t in turns)
                traces = [t[1] for t in turns]
                p95 = inputs[min(len(inputs) - 1, int(0.95 * len(inputs)))]
                print(f"| {name} ({len(files)} files) | `{mode}` | {len(turns)} | {size(statistics.mean(inputs))} / {size(p95)} / "
                      f"{size(inputs[-1])} | {size(statistics.mean(traces))} / {size(max(traces))} | {size(sum(traces))} |")


if __name__ == "__main__":
    main()
