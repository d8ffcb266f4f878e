import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hook mode as Claude Code runs it (a separate JVM, payload on stdin) against a loopback OTLP receiver. */
public class WireTest extends ReceiverFixture {

    @Test
    void hookModeSendsWhatLangfuseExpects() throws Exception {
        Path transcript = home.resolve("crafted.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), transcript);
        Map<String, String> env = new java.util.HashMap<>(TestSupport.hookEnv(home, receiver.baseUrl() + "/"));
        env.put("LANGFUSE_TRACING_ENVIRONMENT", "ci-test");
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("sess-A", transcript)));
        TestSupport.assertV4HeaderOnEveryRequest(receiver);

        // The request: Langfuse's OTLP path, Basic auth with the project keys, protobuf.
        assertFalse(receiver.requests().isEmpty());
        for (OtlpReceiver.Request request : receiver.requests()) {
            assertEquals("/api/public/otel/v1/traces", request.path());
            assertEquals("Basic " + Base64.getEncoder().encodeToString((TestSupport.PUBLIC_KEY + ":" + TestSupport.SECRET_KEY).getBytes(StandardCharsets.UTF_8)),
                    request.headers().get("authorization"));
            assertEquals("application/x-protobuf", request.headers().get("content-type"));
        }

        List<litefuse_hook.TraceModel.TraceRecord> expected = litefuse_hook.Pipeline.replayFile(transcript,
                litefuse_hook.Traces.TraceContext.of(TestSupport.options("test-user"), "sess-A", transcript.toAbsolutePath().toString()));
        List<OtlpReceiver.ReceivedSpan> spans = receiver.acceptedSpans();
        assertEquals(expected.stream().mapToInt(t -> t.observations().size()).sum(), spans.size());
        Map<String, OtlpReceiver.ReceivedSpan> byId = spans.stream().collect(Collectors.toMap(OtlpReceiver.ReceivedSpan::spanId, s -> s));
        for (litefuse_hook.TraceModel.TraceRecord trace : expected) {
            for (litefuse_hook.TraceModel.Observation observation : trace.observations()) {
                OtlpReceiver.ReceivedSpan span = byId.get(observation.id());
                assertNotNull(span, "span " + observation.name() + " arrived with the id derived from its key");
                assertEquals(trace.traceId(), span.traceId());
                assertEquals(observation.parentId() == null ? "" : observation.parentId(), span.parentSpanId(), "tree");
                assertEquals(observation.name(), span.name());
                assertEquals(observation.type().wireName(), span.attr("langfuse.observation.type"));
                assertEquals(observation.model(), span.attr("langfuse.observation.model.name"));
                assertEquals(observation.level() == litefuse_hook.TraceModel.Level.DEFAULT ? null : observation.level().name(), span.attr("langfuse.observation.level"));
                assertEquals(observation.statusMessage(), span.attr("langfuse.observation.status_message"));
                assertEquals(nanos(observation.start()), span.startNanos(), "start from the transcript");
                assertEquals(nanos(observation.end()), span.endNanos(), "end from the transcript");
                assertEquals("langfuse-sdk", span.scope());
                assertEquals("claude-code", span.resource().get("service.name"));
                // Trace-level attributes ride on every span.
                assertEquals(trace.name(), span.attr("langfuse.trace.name"));
                assertEquals(trace.header().sessionId(), span.attr("session.id"));
                assertEquals("test-user", span.attr("user.id"));
                assertEquals("2.1.159", span.attr("langfuse.release"));
                assertEquals(trace.header().tags(), span.attributes().get("langfuse.trace.tags"));
                assertEquals(List.of("", "human").contains(trace.header().metadata().path("origin").asText()) ? List.of("claude-code")
                        : List.of("claude-code", "origin:" + trace.header().metadata().path("origin").asText()), trace.header().tags());
                assertEquals(litefuse_hook.VERSION, span.attr("langfuse.version"));
                assertEquals("ci-test", span.attr("langfuse.environment"));
                JsonNode metadata = TestSupport.JSON.readTree(span.attr("langfuse.observation.metadata"));
                assertTrue(metadata.path("claude_code").isObject(), "claude_code metadata is one JSON object");
                assertTrue(metadata.size() == 1 && metadata.has("claude_code"), "flat keys travel as attributes of their own: " + metadata);
                // Langfuse v4 filters on flat metadata keys only: the trace-wide ones on every span, the others where they belong.
                for (String key : List.of("project_dir", "git_branch", "claude_code_version", "turn_kind")) {
                    assertEquals(trace.header().metadata().path(key).asText(), span.attr("langfuse.trace.metadata." + key), key);
                    assertNotNull(span.attr("langfuse.trace.metadata." + key), key + " on " + observation.name());
                }
                assertEquals(String.valueOf(observation.level() == litefuse_hook.TraceModel.Level.ERROR), span.attr("langfuse.observation.metadata.error"));
                if (observation.type() == litefuse_hook.TraceModel.ObservationType.TOOL) {
                    assertEquals(observation.metadata().path("claude_code").path("name").asText(), span.attr("langfuse.observation.metadata.tool_name"));
                }
                observation.metadata().properties().forEach(field -> {
                    if (field.getValue().isTextual()) {
                        assertEquals(field.getValue().asText(), span.attr("langfuse.observation.metadata." + field.getKey()), field.getKey());
                    }
                });
                if (observation.type() == litefuse_hook.TraceModel.ObservationType.GENERATION && observation.metadata().path("claude_code").has("stop_reason")) {
                    assertEquals(observation.metadata().path("claude_code").path("stop_reason").asText(),
                            span.attr("langfuse.observation.metadata.stop_reason"), observation.name());
                }
                assertEquals(observation == trace.root(), span.attributes().containsKey("langfuse.trace.metadata"),
                        "the trace's metadata object rides on the root only");
                if (observation.usage() != null) {
                    assertEquals(observation.usage(), TestSupport.JSON.readValue(span.attr("langfuse.observation.usage_details"),
                            new com.fasterxml.jackson.core.type.TypeReference<Map<String, Long>>() { }));
                } else {
                    assertFalse(span.attributes().containsKey("langfuse.observation.usage_details"));
                }
            }
            OtlpReceiver.ReceivedSpan root = byId.get(trace.root().id());
            assertTrue(root.isRoot());
            assertEquals(trace.header().input(), root.attr("langfuse.trace.input"));
            assertEquals(trace.header().output(), root.attr("langfuse.trace.output"));
            assertEquals(trace.header().input(), root.attr("langfuse.observation.input"));
            assertEquals(trace.header().output(), root.attr("langfuse.observation.output"), "v4 shows the root observation's output");
            assertEquals(Boolean.TRUE, root.attributes().get("langfuse.internal.as_root"));
            JsonNode traceMeta = TestSupport.JSON.readTree(root.attr("langfuse.trace.metadata"));
            assertEquals(trace.header().metadata().path("claude_code").path("turn_number").asInt(), traceMeta.path("claude_code").path("turn_number").asInt());
        }
        // Spot checks against the transcript itself.
        OtlpReceiver.ReceivedSpan decision = spans.stream().filter(s -> s.name().equals("Decision to call tool: Bash (#3)")).findFirst().orElseThrow();
        assertEquals("{\"input\":3,\"output\":40,\"cache_read_input_tokens\":1000,\"input_cache_creation_1h\":200}",
                decision.attr("langfuse.observation.usage_details"));
        OtlpReceiver.ReceivedSpan userEvent = spans.stream().filter(s -> s.name().equals("user message")).findFirst().orElseThrow();
        JsonNode u1 = TestSupport.JSON.readTree(Files.readAllLines(transcript).get(1));
        assertEquals(nanos(Instant.parse(u1.path("timestamp").asText())), userEvent.startNanos());

        // Files the hook wrote: private, and the secret is in none of them.
        Path stateDir = TestSupport.layout(home).stateDir();
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(stateDir)));
        String log = TestSupport.log(home);
        assertTrue(log.contains("Processed 5 turns in "), log);
        List<Path> written;
        try (Stream<Path> walk = Files.walk(stateDir)) {
            written = walk.filter(Files::isRegularFile).toList();
        }
        for (Path file : written) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)), file.toString());
            assertFalse(Files.readString(file).contains(TestSupport.SECRET_KEY), file + " holds the secret");
        }
    }

    @Test
    void hookModeAlwaysExitsZeroQuietly() throws Exception {
        Map<String, String> env = TestSupport.hookEnv(home, receiver.baseUrl());
        List<byte[]> inputs = new ArrayList<>(List.of(new byte[0], "garbage{".getBytes(StandardCharsets.UTF_8),
                "[1,2]".getBytes(StandardCharsets.UTF_8), "{\"session_id\": 5, \"transcript_path\": []}".getBytes(StandardCharsets.UTF_8),
                TestSupport.payload("s", home.resolve("missing.jsonl")).getBytes(StandardCharsets.UTF_8)));
        for (byte[] stdin : inputs) {
            TestSupport.assertQuietExit(TestSupport.runHookProcess(env, stdin));
        }
        String log = TestSupport.log(home);
        assertTrue(log.contains("Hook payload on stdin is not valid JSON"), log);
        assertTrue(log.contains("Hook payload on stdin is not a JSON object"), log);
        assertTrue(log.contains("Missing session_id or transcript_path"), log);
        assertTrue(log.contains("Transcript is missing, unreadable or not a file"), log);
        assertTrue(receiver.requests().isEmpty());
    }

    @Test
    void replaySendUsesTheHooksIds() throws Exception {
        Path transcript = TestSupport.transcript("marot__spotter__tool_heavy.jsonl");
        Map<String, String> env = TestSupport.hookEnv(home, receiver.baseUrl());
        String output = runReplay(env, "replay", "--send", transcript.toString());
        assertTrue(output.contains("Sent 2 of 2 traces"), output);
        assertTrue(output.contains("Claude Code - Turn 2 (span"), "replay --send still prints the tree");

        OtlpReceiver hookReceiver = receiver;
        Set<String> sentByReplay = hookReceiver.acceptedTraceIds();
        Set<String> spansByReplay = hookReceiver.acceptedSpans().stream().map(OtlpReceiver.ReceivedSpan::spanId).collect(Collectors.toSet());
        hookReceiver.clear();
        Path copy = home.resolve("session.jsonl");
        Files.copy(transcript, copy);
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("any", copy)));
        assertEquals(sentByReplay, hookReceiver.acceptedTraceIds(), "replay --send and the hook send the same trace ids");
        assertEquals(spansByReplay, hookReceiver.acceptedSpans().stream().map(OtlpReceiver.ReceivedSpan::spanId).collect(Collectors.toSet()));
    }

    @Test
    void replaySendSkipsWhatLangfuseHoldsUnlessForced() throws Exception {
        Path transcript = TestSupport.transcript("marot__spotter__tool_heavy.jsonl");
        Map<String, String> env = TestSupport.hookEnv(home, receiver.baseUrl());
        String first = runReplay(env, "replay", "--send", "--quiet", transcript.toString());
        assertTrue(first.contains("Sent 2 of 2 traces"), first);
        int spans = receiver.storedSpans().size();
        String again = runReplay(env, "replay", "--send", "--quiet", transcript.toString());
        assertTrue(again.contains("Skipped Claude Code - Turn 1 (trace ") && again.contains("Langfuse has it already"), again);
        assertTrue(again.contains("Sent 0 of 2 traces") && again.contains("2 already there"), again);
        assertEquals(0, receiver.spansReceivedTwice(), "nothing sent twice");
        String forced = runReplay(env, "replay", "--send", "--quiet", "--force", transcript.toString());
        assertTrue(forced.contains("Sent 2 of 2 traces"), forced);
        assertEquals(spans, receiver.spansReceivedTwice(), "--force sends them again");
        TestSupport.assertV4HeaderOnEveryRequest(receiver);
    }

    @Test
    void aBadTracingEnvironmentIsLoggedAndLeftOut() throws Exception {
        Path transcript = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), transcript);
        Map<String, String> env = new java.util.HashMap<>(TestSupport.hookEnv(home, receiver.baseUrl()));
        env.put("LANGFUSE_TRACING_ENVIRONMENT", "Production!");
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        String log = TestSupport.log(home);
        assertEquals(1, log.lines().filter(l -> l.contains("Ignoring LANGFUSE_TRACING_ENVIRONMENT=\"Production!\"")).count(), log);
        assertFalse(receiver.storedSpans().isEmpty());
        assertTrue(receiver.storedSpans().stream().noneMatch(s -> s.attributes().containsKey("langfuse.environment")),
                "Langfuse's default environment applies");
    }

    /**
     * `litefuse_hook ARGS...` in a JVM of its own with exactly `env` (a developer's OTEL_* / LANGFUSE_* variables do
     * not leak in); must exit 0; returns what it printed, stdout then stderr.
     */
    String runReplay(Map<String, String> env, String... args) throws Exception {
        TestSupport.Run run = TestSupport.runCliProcess(env, new byte[0], args);
        String output = run.stdout() + run.stderr();
        assertEquals(0, run.exitCode(), output);
        return output;
    }

    static long nanos(Instant instant) {
        return TimeUnit.SECONDS.toNanos(instant.getEpochSecond()) + instant.getNano();
    }
}
