#!/usr/bin/env python3
"""Builds large Claude Code transcripts for the benchmark from the real ones, with fresh ids.

    python3 bench/gen_transcripts.py --out bench/out/data/big.jsonl --bytes 1000000000
    python3 bench/gen_transcripts.py --sources-digest     # what run.sh stamps generated files with

The sources are the real Claude Code transcripts the repository holds, tests/transcripts/*.jsonl, found relative
to this file so the benchmark runs from any clone. The crafted test transcripts (crafted__*.jsonl) are left out:
crafted__broken-rows.jsonl holds deliberately broken lines (the hook logs one line per broken row, which would
put error-path work into every measure), and both crafted files use short made-up ids (u1, a1, m1, ...) that the
id rewriting below does not recognise, so every copy would repeat them and the hook would skip the repeats as
already seen. Neither is what a real transcript looks like.

Every copy of the source transcripts gets its own ids: each UUID (uuid, parentUuid, sessionId, leafUuid,
messageId, promptId, ...) and each msg_/toolu_/req_ id is rewritten with the same mapping wherever it occurs in
that copy, so parent links, tool_use -> tool_result pairs and message ids stay consistent and no uuid repeats
across copies (the hook skips rows whose uuid it has already seen). The file is cut at a line boundary once it
reaches --bytes and ends with one synthetic complete turn (user prompt + assistant text, stop_reason end_turn),
so a hook run over it has nothing in progress.

Also importable: make_turn() builds the turn rows the benchmark appends before each timed hook run.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import sys
import time
import uuid as uuidlib
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = os.path.join(os.path.dirname(HERE), "tests", "transcripts", "*.jsonl")
EXCLUDED_PREFIX = "crafted__"  # test fixtures, not real transcripts (see the docstring)

# UUIDs anywhere (row ids, session ids, leafUuid, snapshot message ids, ...) and Anthropic-style ids.
ID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                   rb"|(?:msg|toolu|req)_[A-Za-z0-9]{16,}")


def source_files():
    """The source transcripts: tests/transcripts/*.jsonl, sorted, without the crafted test fixtures."""
    return [path for path in sorted(glob.glob(SOURCES)) if not os.path.basename(path).startswith(EXCLUDED_PREFIX)]


def sources_digest():
    """A short digest of the selected sources' names and contents: generated files are rebuilt when it changes
    (contents, not modification times, so a fresh clone reuses nothing stale and rebuilds nothing needlessly)."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:16]


def load_templates():
    """One template per distinct source file: alternating literal byte runs and ids."""
    templates = []
    seen = set()
    for path in source_files():
        data = open(path, "rb").read()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen or not data.strip():
            continue
        seen.add(digest)
        if not data.endswith(b"\n"):
            data += b"\n"
        literals, ids = [], []
        last = 0
        for m in ID_RE.finditer(data):
            literals.append(data[last:m.start()])
            ids.append(m.group())
            last = m.end()
        literals.append(data[last:])
        templates.append((os.path.basename(path), literals, ids))
    if not templates:
        sys.exit(f"gen_transcripts: no source transcripts match {SOURCES}")
    return templates


def remap(ident, copy):
    """A fresh id for `ident` in copy number `copy` (>= 1): same shape, deterministic, unique per copy."""
    if ident[8:9] == b"-":  # UUID: xor the first 32 bits with a per-copy constant
        head = int(ident[:8], 16) ^ ((copy * 0x9E3779B1) & 0xFFFFFFFF or 1)
        return b"%08x" % head + ident[8:]
    prefix, rest = ident.split(b"_", 1)
    return prefix + b"_" + rest[:2] + b"%06x" % (copy & 0xFFFFFF) + rest[8:]


def render(template, copy):
    _, literals, ids = template
    mapping = {}
    out = [literals[0]]
    for ident, literal in zip(ids, literals[1:]):
        new = mapping.get(ident)
        if new is None:
            new = mapping[ident] = remap(ident, copy)
        out.append(new)
        out.append(literal)
    return b"".join(out)


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_turn(session_id, parent_uuid, n, when=None):
    """Two JSONL rows (bytes, newline-terminated) of one complete turn, and the assistant row's uuid."""
    when = time.time() if when is None else when
    user_uuid, assistant_uuid = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    common = {"isSidechain": False, "userType": "external", "cwd": "/bench/project", "sessionId": session_id,
              "version": "2.1.0", "gitBranch": "main"}
    user = dict(parentUuid=parent_uuid, **common, type="user",
                message={"role": "user", "content": f"Benchmark prompt {n}: summarise the change in one line."},
                uuid=user_uuid, timestamp=iso(when))
    assistant = dict(parentUuid=user_uuid, **common,
                     message={"id": "msg_01bench" + uuidlib.uuid4().hex[:16], "type": "message", "role": "assistant",
                              "model": "claude-sonnet-4-20250514",
                              "content": [{"type": "text", "text": f"Benchmark answer {n}: the change is fine."}],
                              "stop_reason": "end_turn", "stop_sequence": None,
                              "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                                        "cache_read_input_tokens": 2048, "output_tokens": 18}},
                     requestId="req_01bench" + uuidlib.uuid4().hex[:16], type="assistant",
                     uuid=assistant_uuid, timestamp=iso(when + 1.5))
    rows = json.dumps(user, separators=(",", ":")) + "\n" + json.dumps(assistant, separators=(",", ":")) + "\n"
    return rows.encode(), assistant_uuid


def last_uuid(path):
    """The uuid of the last row of a JSONL file that has one (reads only the tail)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 20)))
        lines = f.read().splitlines()
    for line in reversed(lines):
        try:
            value = json.loads(line).get("uuid")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str) and value:
            return value
    return None


def generate(out, target, first_copy, session_id):
    templates = load_templates()
    tmp = out + ".tmp"
    written = 0
    copy = first_copy
    blocks = 0
    started = time.time()
    with open(tmp, "wb", buffering=1 << 20) as f:
        while written < target:
            for template in templates:
                block = render(template, copy)
                room = target - written
                if len(block) > room:  # cut at the first line end after the target size
                    cut = block.find(b"\n", room)
                    block = block[:cut + 1] if cut >= 0 else block
                f.write(block)
                written += len(block)
                blocks += 1
                if written >= target:
                    break
            copy += 1
    parent = last_uuid(tmp)
    turn, _ = make_turn(session_id, parent, 0, when=time.time() - 60)
    with open(tmp, "ab") as f:
        f.write(turn)
    os.replace(tmp, out)
    size = os.path.getsize(out)
    print(f"gen_transcripts: wrote {out}: {size / 1e6:.1f} MB, {blocks} source blocks from "
          f"{len(templates)} transcripts (copies {first_copy}..{copy}) in {time.time() - started:.1f}s",
          file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out")
    parser.add_argument("--bytes", type=float, help="target size in bytes (e.g. 1e9)")
    parser.add_argument("--sources-digest", action="store_true",
                        help="print a digest of the selected sources' names and contents, and exit")
    parser.add_argument("--first-copy", type=int, default=1, help="copy number of the first block (id namespace)")
    parser.add_argument("--session-id", default="bench-generated", help="session id of the final synthetic turn")
    args = parser.parse_args()
    if args.sources_digest:
        if not source_files():
            sys.exit(f"gen_transcripts: no source transcripts match {SOURCES}")
        print(sources_digest())
        return
    if not args.out or args.bytes is None:
        parser.error("--out and --bytes are required")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    generate(args.out, int(args.bytes), max(1, args.first_copy), args.session_id)


if __name__ == "__main__":
    main()
