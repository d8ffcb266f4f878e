import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hook mode fed a transcript as Claude Code writes it, firing after each slice, against a loopback receiver. */
public class HookTest extends ReceiverFixture {

    /** Writes `source` into `target` in the given byte slices, firing the hook after each one and once at the end. */
    void writeInSlicesFiring(Path source, Path target, List<Integer> cuts, String sessionId) throws IOException {
        byte[] all = Files.readAllBytes(source);
        Files.write(target, new byte[0]);
        int written = 0;
        for (int cut : cuts) {
            Files.write(target, java.util.Arrays.copyOfRange(all, written, cut), StandardOpenOption.APPEND);
            written = cut;
            TestSupport.fireHook(env, sessionId, target);
        }
        Files.write(target, java.util.Arrays.copyOfRange(all, written, all.length), StandardOpenOption.APPEND);
        TestSupport.fireHook(env, sessionId, target);
        TestSupport.fireHook(env, sessionId, target);
    }

    /** Byte offsets just after each line, except inside a message (the next row continues the same message id). */
    static List<Integer> messageBoundaries(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        List<Integer> cuts = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        List<Integer> ends = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < all.length; i++) {
            if (all[i] != '\n') continue;
            String line = new String(all, start, i - start, StandardCharsets.UTF_8);
            String id = "";
            try {
                JsonNode row = TestSupport.JSON.readTree(line);
                if ("assistant".equals(row.path("type").asText())) id = row.path("message").path("id").asText();
            } catch (IOException e) {
                id = "";
            }
            ids.add(id);
            ends.add(i + 1);
            start = i + 1;
        }
        for (int i = 0; i < ends.size() - 1; i++) {
            boolean midMessage = !ids.get(i).isEmpty() && ids.get(i).equals(ids.get(i + 1));
            if (!midMessage) cuts.add(ends.get(i));
        }
        return cuts;
    }

    /**
     * What the receiver got compared with replay, counted in spans as a Langfuse v4 user sees them: every span of every
     * turn once, each turn sent whole (none grew after it was sent), with replay's usage.
     */
    void assertEveryTurnExactlyOnceAndComplete(Path file, String sessionId) throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> expected = TestSupport.replay(file);
        TestSupport.assertEverySpanOnce(receiver, TestSupport.spanKeysOf(expected));
        assertEquals(expected.size(), receiver.acceptedRoots().size(), "one root per turn");
        String log = TestSupport.log(home);
        assertFalse(log.contains(" more observations)"), "a turn was sent before it was complete:\n" + log);
        List<Map<String, Long>> usages = new ArrayList<>();
        for (OtlpReceiver.ReceivedSpan span : receiver.acceptedSpans()) {
            String usage = span.attr("langfuse.observation.usage_details");
            if (usage != null) usages.add(TestSupport.JSON.readValue(usage, new TypeReference<Map<String, Long>>() { }));
        }
        assertEquals(TestSupport.usageOverUniqueMessages(file), TestSupport.totalsOf(usages), "usage totals");
        assertEquals(expected.size(), turnCountInState(sessionId, file));
    }

    /**
     * Since the log read `before`, the hook logged `head` + its time + `tail`, e.g. "Processed 0 turns in " 0.01s
     * " (session=s, nothing new)": the firing processed no turn. The time depends on the machine; the rest is exact.
     */
    void assertTimedLineSince(String before, String head, String tail) throws IOException {
        String added = TestSupport.log(home).substring(before.length());
        String line = ".*\\] " + java.util.regex.Pattern.quote(head) + "\\d+\\.\\d\\ds" + java.util.regex.Pattern.quote(tail);
        assertTrue(added.lines().anyMatch(l -> l.matches(line)), "no line " + head + "N.NNs" + tail + " in\n" + added);
    }

    int turnCountInState(String sessionId, Path transcript) throws IOException {
        return TestSupport.JSON.readTree(TestSupport.stateFile(home, sessionId, transcript).toFile()).path("turn_count").asInt();
    }

    @Test
    void recentTranscriptInRandomSlicesEveryTurnOnce() throws IOException {
        Path source = TestSupport.transcript("entireio__git-sync__0c2a854b-v2.1.136-long.jsonl");
        Path target = home.resolve("session.jsonl");
        // stop_reason is on every row from 2.1.136 on, so a Stop may fire anywhere, even mid-line.
        long size = Files.size(source);
        Random random = new Random(42);
        TreeSet<Integer> cuts = new TreeSet<>();
        while (cuts.size() < 60) cuts.add(1 + random.nextInt((int) size - 1));
        writeInSlicesFiring(source, target, new ArrayList<>(cuts), "0c2a854b");
        assertEveryTurnExactlyOnceAndComplete(target, "0c2a854b");
        assertTrue(TestSupport.log(home).contains("deferred 1 (in-progress)"), "some slice ended inside a turn");
    }

    @Test
    void olderTranscriptFiredAfterEveryMessageEveryTurnOnce() throws IOException {
        for (String name : List.of("chiphuyen__sniffly__ba79134d.jsonl", "entireio__cli__9fd2fc39-v2.0.64.jsonl",
                "entireio__cli__7662d755-microcompact.jsonl")) {
            // A receiver of its own for each transcript (clear() forgets requests, not what was stored).
            receiver.close();
            receiver = new OtlpReceiver();
            env = TestSupport.hookEnv(home, receiver.baseUrl());
            Path source = TestSupport.transcript(name);
            Path target = home.resolve(name);
            writeInSlicesFiring(source, target, messageBoundaries(source), name);
            assertEveryTurnExactlyOnceAndComplete(target, name);
        }
    }

    @Test
    void transcriptWithoutStopReasonsFiredAfterEveryLineSendsEverySpanOnce() throws IOException {
        // 2.1.12 to 2.1.39 write no stop_reason: a text row mid-turn looks like the final answer, so turns are sent
        // early and grow afterwards. Fired after every line (even inside a message), every span must arrive once.
        Path source = TestSupport.transcript("entireio__cli__7662d755-microcompact.jsonl");
        Path target = home.resolve("microcompact.jsonl");
        List<Integer> cuts = new ArrayList<>();
        byte[] all = Files.readAllBytes(source);
        for (int i = 0; i < all.length - 1; i++) {
            if (all[i] == '\n') cuts.add(i + 1);
        }
        writeInSlicesFiring(source, target, cuts, "microcompact");
        // Turns that grew after they were sent: still the replay's final spans, each once.
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target));
        List<Map<String, Long>> usages = new ArrayList<>();
        for (OtlpReceiver.ReceivedSpan span : receiver.storedSpans()) {
            String usage = span.attr("langfuse.observation.usage_details");
            if (usage != null) usages.add(TestSupport.JSON.readValue(usage, new TypeReference<Map<String, Long>>() { }));
        }
        Map<String, Long> independent = TestSupport.usageOverUniqueMessages(target);
        Map<String, Long> sent = TestSupport.totalsOf(usages);
        for (String key : List.of("input", "cache_read", "cache_write")) assertEquals(independent.get(key), sent.get(key), key + " once per message");
        assertTrue(sent.get("output") <= independent.get("output"), "output tokens never counted twice");
        long grown = TestSupport.log(home).lines().filter(l -> l.contains("more observations)")).count();
        System.out.printf("GROWTH | %s fired after each of %d lines | %d spans, 0 twice | %d deltas of turns sent early%n",
                source.getFileName(), cuts.size() + 1, receiver.storedSpans().size(), grown);
        assertTrue(grown > 0, "some turn grew after it was sent");
    }

    @Test
    void inProgressTurnWaitsForItsFinalResponse() throws IOException {
        List<String> lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
        int turn5 = indexOfUuid(lines, "u5");
        Path target = home.resolve("t.jsonl");
        // Everything up to turn 5's tool call (user row, tool_use, tool result): Claude Code is still mid-loop.
        Files.write(target, lines.subList(0, turn5 + 3));
        TestSupport.fireHook(env, "s", target);
        assertEquals(4, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target, 4));
        assertTrue(TestSupport.log(home).contains("Processed 4 turns, deferred 1 (in-progress) in "), TestSupport.log(home));
        String beforeRecheck = TestSupport.log(home);
        TestSupport.fireHook(env, "s", target);
        assertTimedLineSince(beforeRecheck, "Processed 0 turns, deferred 1 (in-progress) in ", " (session=s)");
        assertEquals(4, receiver.acceptedRoots().size(), "a deferred turn is not sent on a re-check");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target, 4));
        Files.write(target, lines.subList(turn5 + 3, lines.size()), StandardOpenOption.APPEND);
        TestSupport.fireHook(env, "s", target);
        List<OtlpReceiver.ReceivedSpan> roots = receiver.acceptedRoots();
        assertEquals(5, roots.size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target));
        assertEquals("README.md describes a demo project.", roots.get(4).attr("langfuse.trace.output"));
        assertTrue(TestSupport.log(home).contains("Processed 1 turns in "));
    }

    @Test
    void pastTurnIsSentOnceANewerPromptArrives() throws IOException {
        List<String> lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
        int turn5 = indexOfUuid(lines, "u5");
        Path target = home.resolve("t.jsonl");
        // Turn 5 stops at its tool call forever (killed mid-loop); then the user sends a new prompt.
        List<String> killed = new ArrayList<>(lines.subList(0, turn5 + 2));
        Files.write(target, killed);
        TestSupport.fireHook(env, "s", target);
        assertEquals(4, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target, 4));
        killed.add(lines.get(turn5).replace("\"u5\"", "\"u6\"").replace("Summarise README.md", "Are you there?"));
        Files.write(target, killed);
        TestSupport.fireHook(env, "s", target);
        assertEquals(5, receiver.acceptedRoots().size(), "the killed turn is sent once a newer prompt follows it");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target, 5));
        assertEquals("Summarise README.md", receiver.acceptedRoots().get(4).attr("langfuse.trace.input"));
    }

    @Test
    void turnsTheServerDidNotAcknowledgeAreSentLaterWithTheSameIds() throws IOException {
        Path target = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), target);
        receiver.respondWith(503);
        TestSupport.fireHook(env, "s", target);
        assertTrue(receiver.acceptedRoots().isEmpty());
        assertFalse(receiver.requests().isEmpty(), "the hook tried");
        assertTrue(TestSupport.log(home).contains("Export failed: HTTP 503"), TestSupport.log(home));
        assertTrue(TestSupport.log(home).contains("5 turn(s) kept and sent again on a later run"), TestSupport.log(home));
        receiver.respondWith(200);
        TestSupport.fireHook(env, "s", target);
        TestSupport.fireHook(env, "s", target);
        assertEquals(5, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target));
        assertEquals(5, turnCountInState("s", target));
    }

    @Test
    void brokenRowsAreLoggedAndTheRowsAroundThemTraced() throws IOException {
        Path target = home.resolve("broken.jsonl");
        Files.copy(TestSupport.transcript("crafted__broken-rows.jsonl"), target);
        TestSupport.fireHook(env, "s", target);
        // Every span around the broken rows, each once: those of the same transcript without them.
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(TestSupport.transcript("crafted__edge-cases.jsonl")));
        String log = TestSupport.log(home);
        assertEquals(3, log.split("not a JSON object", -1).length - 1, log);
        assertTrue(log.contains("Skipped transcript row at byte 5858: field 'uuid' is not a string"), log);
        assertTrue(log.contains("Skipped 4 broken transcript line(s)"), log);
        assertTrue(log.contains("Processed 5 turns in "), log);
    }

    @Test
    void debugLoggingOnlyWhenAsked() throws IOException {
        Path target = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), target);
        TestSupport.fireHook(env, "s", target);
        assertFalse(TestSupport.log(home).contains("[DEBUG]"));
        Map<String, String> debug = new HashMap<>(env);
        debug.put("CC_LANGFUSE_DEBUG", "true");
        Files.writeString(target, "\n", StandardOpenOption.APPEND);
        String before = TestSupport.log(home);
        TestSupport.fireHook(debug, "s", target);
        assertTimedLineSince(before, "Processed 0 turns in ", " (session=s)");
        String log = TestSupport.log(home);
        assertTrue(log.contains("[DEBUG] Hook started"), log);
        assertTrue(log.contains("[DEBUG] Turns to send: 0"), log);
        assertFalse(log.contains(TestSupport.SECRET_KEY), "the secret never reaches the log");
    }

    @Test
    void anotherSessionsRunSendsWhatThisSessionCouldNot() throws IOException {
        Path first = home.resolve("first.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), first);
        receiver.respondWith(503);
        TestSupport.fireHook(env, "first", first);
        Path markers = TestSupport.layout(home).pending();
        try (var files = Files.list(markers)) {
            assertEquals(1, files.count(), "the session that could not send is marked pending");
        }
        // The first session never fires again; the next firing of any other session sends its turns.
        receiver.respondWith(200);
        Path second = home.resolve("second.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), second);
        TestSupport.fireHook(env, "second", second);
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(first, second));
        try (var files = Files.list(markers)) {
            assertEquals(0, files.count(), "the marker goes once its turns are acknowledged");
        }
        assertTrue(TestSupport.log(home).contains("Processed 5 turns in ") && TestSupport.log(home).contains("(session=first)"));
    }

    @Test
    void pendingMarkersAreBoundedByAgeAndByTheirTranscript() throws IOException {
        Path markers = TestSupport.layout(home).pending();
        Files.createDirectories(markers);
        Path old = home.resolve("old.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), old);
        Files.writeString(markers.resolve("a.json"), "{\"session_id\":\"old\",\"transcript_path\":\"" + old
                + "\",\"since\":\"2020-01-01T00:00:00Z\"}");
        Files.writeString(markers.resolve("b.json"), "{\"session_id\":\"gone\",\"transcript_path\":\"" + home.resolve("gone.jsonl")
                + "\",\"since\":\"" + java.time.Instant.now() + "\"}");
        Path current = home.resolve("current.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__tool_heavy.jsonl"), current);
        TestSupport.fireHook(env, "current", current);
        String log = TestSupport.log(home);
        assertTrue(log.contains("Stopped retrying the unsent turns of session old after 7 days"), log);
        assertTrue(log.contains("Transcript of session gone is gone; its unsent turns are lost"), log);
        try (var files = Files.list(markers)) {
            assertEquals(0, files.count());
        }
        assertEquals(2, receiver.acceptedRoots().size(), "only the current session was sent");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(current));
    }

    @Test
    void disabledHookDoesNothing() throws IOException {
        Path target = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), target);
        Map<String, String> off = new HashMap<>(env);
        off.put("TRACE_TO_LANGFUSE", "false");
        TestSupport.fireHook(off, "s", target);
        assertTrue(receiver.requests().isEmpty());
        assertFalse(Files.exists(TestSupport.layout(home).stateDir()));
    }

    @Test
    void ccLangfuseKeysWinOverLangfuseKeys() {
        Map<String, String> both = new HashMap<>(env);
        both.put("CC_LANGFUSE_PUBLIC_KEY", "pk-cc");
        both.put("CC_LANGFUSE_SECRET_KEY", "sk-cc");
        both.put("CC_LANGFUSE_BASE_URL", "http://example.invalid/");
        litefuse_hook.Config config = litefuse_hook.Config.loadConfig(both);
        assertEquals("pk-cc", config.langfuse().publicKey());
        assertEquals("sk-cc", config.langfuse().secretKey());
        assertEquals("http://example.invalid/api/public/otel/v1/traces", config.tracesEndpoint());
        assertFalse(config.toString().contains("sk-cc"), "the secret never appears in toString");
        Map<String, String> bare = Map.of("HOME", "/tmp/x");
        assertEquals("https://cloud.langfuse.com", litefuse_hook.Config.loadConfig(bare).langfuse().baseUrl());
        assertEquals(1_000_000, litefuse_hook.Config.loadConfig(bare).trace().maxChars());
        assertEquals(500, litefuse_hook.Config.loadConfig(Map.of("HOME", "/tmp/x", "CC_LANGFUSE_MAX_CHARS", "500")).trace().maxChars());
    }

    static int indexOfUuid(List<String> lines, String uuid) {
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).contains("\"uuid\":\"" + uuid + "\"")) return i;
        }
        throw new AssertionError("no row " + uuid);
    }

    /** The last turn of the crafted transcript goes on after it was sent: a Stop hook blocked, Claude answered again. */
    static List<String> blockedStopContinuation() {
        String common = "\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/tmp/demo\",\"version\":\"2.1.159\","
                + "\"gitBranch\":\"main\",\"entrypoint\":\"cli\",\"sessionId\":\"sess-A\"";
        return List.of(
                "{" + common + ",\"type\":\"user\",\"isMeta\":true,\"uuid\":\"f1\",\"parentUuid\":\"a9\",\"timestamp\":\"2026-03-01T10:00:27.500Z\","
                        + "\"message\":{\"role\":\"user\",\"content\":\"Stop hook feedback:\\nAlso say goodbye.\"}}",
                "{" + common + ",\"type\":\"assistant\",\"uuid\":\"a10\",\"parentUuid\":\"f1\",\"timestamp\":\"2026-03-01T10:00:28.000Z\","
                        + "\"requestId\":\"req_m7\",\"message\":{\"model\":\"claude-opus-4-6\",\"id\":\"m7\",\"type\":\"message\",\"role\":\"assistant\","
                        + "\"content\":[{\"type\":\"text\",\"text\":\"Goodbye!\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
                        + "\"usage\":{\"input_tokens\":7,\"output_tokens\":3,\"cache_read_input_tokens\":900,\"cache_creation_input_tokens\":0}}}");
    }

    @Test
    void aTurnThatGrowsAfterItWasSentGetsOnlyItsNewSpans() throws IOException {
        Path target = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), target);
        TestSupport.fireHook(env, "s", target);
        int before = receiver.storedSpans().size();
        Files.write(target, blockedStopContinuation(), StandardOpenOption.APPEND);
        String payload = TestSupport.JSON.createObjectNode().put("session_id", "s").put("transcript_path", target.toString())
                .put("hook_event_name", "Stop").put("stop_hook_active", true).toString();
        litefuse_hook.Hook.runHook(env, new java.io.ByteArrayInputStream(payload.getBytes(StandardCharsets.UTF_8)));
        List<OtlpReceiver.ReceivedSpan> added = receiver.storedSpans().subList(before, receiver.storedSpans().size());
        assertEquals(List.of("Stop hook feedback", "Final response (#3)"), added.stream().map(OtlpReceiver.ReceivedSpan::name).toList());
        litefuse_hook.TraceModel.TraceRecord last = TestSupport.replay(target).get(4);
        for (OtlpReceiver.ReceivedSpan span : added) {
            assertEquals(last.traceId(), span.traceId(), "the rest joins the turn's trace");
            assertEquals(last.root().id(), span.parentSpanId(), "under the root sent before");
            assertFalse(span.attributes().containsKey("langfuse.internal.as_root"));
        }
        assertEquals("{\"input\":7,\"output\":3,\"cache_read_input_tokens\":900,\"cache_creation_input_tokens\":0}",
                added.get(1).attr("langfuse.observation.usage_details"));
        assertEquals(0, receiver.spansReceivedTwice(), "nothing sent before is sent again");
        assertTrue(TestSupport.log(home).contains("Sent Claude Code - Turn 5 (2 more observations)"), TestSupport.log(home));
        String logBefore = TestSupport.log(home);
        TestSupport.fireHook(env, "s", target);
        assertTimedLineSince(logBefore, "Processed 0 turns in ", " (session=s, nothing new)");
        assertEquals(before + 2, receiver.storedSpans().size(), "a firing with nothing new sends nothing");
        // The turn grew after it was sent: what Langfuse holds is still the replay's final spans, each once.
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target));
    }

    @Test
    void sessionEndSendsTheLastTurnUnfinished() throws IOException {
        List<String> lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
        Path target = home.resolve("t.jsonl");
        Files.write(target, lines.subList(0, indexOfUuid(lines, "u5") + 3));
        TestSupport.fireHook(env, "s", target);
        assertEquals(4, receiver.acceptedRoots().size(), "Stop: the last turn is in progress and waits");
        String payload = TestSupport.JSON.createObjectNode().put("session_id", "s").put("transcript_path", target.toString())
                .put("hook_event_name", "SessionEnd").put("reason", "prompt_input_exit").toString();
        litefuse_hook.Hook.runHook(env, new java.io.ByteArrayInputStream(payload.getBytes(StandardCharsets.UTF_8)));
        List<OtlpReceiver.ReceivedSpan> roots = receiver.acceptedRoots();
        assertEquals(5, roots.size(), "SessionEnd: the last turn goes as it stands");
        assertEquals("WARNING", roots.get(4).attr("langfuse.observation.level"));
        assertEquals("unfinished: Claude Code stopped before the turn's final answer", roots.get(4).attr("langfuse.observation.status_message"));
        assertTrue(roots.get(4).attr("langfuse.trace.metadata").contains("\"turn_unfinished\":true"));
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target));
    }

    @Test
    void traceparentPutsEveryTurnInsideTheCallersTrace() throws IOException {
        Path target = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), target);
        Map<String, String> ci = new HashMap<>(env);
        ci.put("CC_LANGFUSE_TRACEPARENT", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        ci.put("CC_LANGFUSE_TAGS", "ci, nightly,ci");
        TestSupport.fireHook(ci, "s", target);
        List<OtlpReceiver.ReceivedSpan> spans = receiver.storedSpans();
        assertEquals(TestSupport.replay(target).stream().mapToInt(t -> t.observations().size()).sum(), spans.size());
        assertTrue(spans.stream().allMatch(span -> span.traceId().equals("0af7651916cd43dd8448eb211c80319c")), "one trace: the caller's");
        List<OtlpReceiver.ReceivedSpan> turnRoots = spans.stream().filter(span -> span.parentSpanId().equals("b7ad6b7169203331")).toList();
        assertEquals(5, turnRoots.size(), "each turn's root is a child of the caller's span");
        assertEquals(spans.size(), spans.stream().map(OtlpReceiver.ReceivedSpan::spanId).distinct().count(), "span ids stay distinct");
        for (OtlpReceiver.ReceivedSpan span : spans) {
            assertFalse(span.attributes().containsKey("langfuse.internal.as_root"), "the caller's span is the root");
            assertFalse(span.attributes().containsKey("langfuse.trace.name"), "the trace's name stays the caller's");
            List<?> tags = (List<?>) span.attributes().get("langfuse.trace.tags");
            assertEquals(List.of("claude-code", "ci", "nightly"), tags.subList(0, 3), "the configured tags, once each");
            assertTrue(tags.stream().skip(3).allMatch(tag -> tag.equals("origin:task-notification")), tags.toString());
        }
        assertTrue(spans.stream().anyMatch(span -> ((List<?>) span.attributes().get("langfuse.trace.tags")).contains("origin:task-notification")),
                "the turn a task notification started says so");
        ci.put("CC_LANGFUSE_TRACEPARENT", "not-a-traceparent");
        Files.write(target, blockedStopContinuation(), StandardOpenOption.APPEND);
        TestSupport.fireHook(ci, "s", target);
        assertEquals(1, TestSupport.log(home).lines().filter(l -> l.contains("Ignoring CC_LANGFUSE_TRACEPARENT=\"not-a-traceparent\"")).count());
    }

    @Test
    void lastPrintsTheLinkOfTheNewestTraceOfThisProject() throws Exception {
        Path projectDir = TestSupport.tempDir("last-");
        Path folder = home.resolve(".claude/projects").resolve(litefuse_hook.ClaudeSettings.claudeProjectFolder(projectDir));
        Files.createDirectories(folder);
        Path target = folder.resolve("sess.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), target);
        TestSupport.fireHook(env, "sess", target);
        java.io.StringWriter out = new java.io.StringWriter();
        java.io.StringWriter err = new java.io.StringWriter();
        picocli.CommandLine cli = new picocli.CommandLine(new litefuse_hook(env));
        cli.setOut(new java.io.PrintWriter(out, true));
        cli.setErr(new java.io.PrintWriter(err, true));
        assertEquals(0, cli.execute("last", "--dir", projectDir.toString()), err.toString());
        String traceId = TestSupport.replay(target).get(4).traceId();
        assertEquals(receiver.baseUrl() + "/project/proj-123/traces/" + traceId, out.toString().strip());
        assertTrue(err.toString().contains("Claude Code - Turn 5 of session sess"), err.toString());
        assertEquals(1, cli.execute("last", "--dir", home.toString()), "nothing sent from another directory");
    }

    @Test
    void aFiringWithNothingNewReadsNothing() throws IOException {
        Path target = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), target);
        TestSupport.fireHook(env, "s", target);
        int requests = receiver.requests().size();
        Path state = TestSupport.stateFile(home, "s", target);
        String before = Files.readString(state);
        String logBefore = TestSupport.log(home);
        TestSupport.fireHook(env, "s", target);
        assertTimedLineSince(logBefore, "Processed 0 turns in ", " (session=s, nothing new)");
        assertEquals(before, Files.readString(state), "nothing read, nothing written");
        assertEquals(requests, receiver.requests().size());
        // Another session waiting in the spool: this firing does the full run, and sends it.
        Path other = home.resolve("other.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), other);
        receiver.respondWith(503);
        TestSupport.fireHook(env, "other", other);
        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        TestSupport.fireHook(env, "s", target);
        assertEquals(TestSupport.replay(other).size(), receiver.acceptedRoots().size() - 5, "the waiting session went out");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(target, other));
        // A transcript that changed (one more byte) is read again.
        Files.writeString(target, "\n", StandardOpenOption.APPEND);
        String log = TestSupport.log(home);
        TestSupport.fireHook(env, "s", target);
        assertFalse(TestSupport.log(home).substring(log.length()).contains("nothing new"));
        assertTimedLineSince(log, "Processed 0 turns in ", " (session=s)");
    }
}
