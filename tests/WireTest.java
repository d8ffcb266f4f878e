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
        Map<String, String> env = TestSupport.hookEnv(home, receiver.baseUrl() + "/");
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("sess-A", transcript)));

        // The request: Langfuse's OTLP path, Basic auth with the project keys, protobuf.
        assertFalse(receiver.requests().isEmpty());
        for (OtlpReceiver.Request request : receiver.requests()) {
            assertEquals("/api/public/otel/v1/traces", request.path());
            assertEquals("Basic " + Base64.getEncoder().encodeToString((TestSupport.PUBLIC_KEY + ":" + TestSupport.SECRET_KEY).getBytes(StandardCharsets.UTF_8)),
                    request.headers().get("authorization"));
            assertEquals("application/x-protobuf", request.headers().get("content-type"));
        }

        List<litefuse_hook.TraceRecord> expected = litefuse_hook.replayFile(transcript,
                new litefuse_hook.TraceContext("sess-A", "test-user", transcript.toAbsolutePath().toString(), litefuse_hook.DEFAULT_MAX_CHARS, TestSupport.MASKER));
        List<OtlpReceiver.ReceivedSpan> spans = receiver.acceptedSpans();
        assertEquals(expected.stream().mapToInt(t -> t.observations().size()).sum(), spans.size());
        Map<String, OtlpReceiver.ReceivedSpan> byId = spans.stream().collect(Collectors.toMap(OtlpReceiver.ReceivedSpan::spanId, s -> s));
        for (litefuse_hook.TraceRecord trace : expected) {
            for (litefuse_hook.Observation observation : trace.observations()) {
                OtlpReceiver.ReceivedSpan span = byId.get(observation.id());
                assertNotNull(span, "span " + observation.name() + " arrived with the id derived from its key");
                assertEquals(trace.traceId(), span.traceId());
                assertEquals(observation.parentId() == null ? "" : observation.parentId(), span.parentSpanId(), "tree");
                assertEquals(observation.name(), span.name());
                assertEquals(observation.type(), span.attr("langfuse.observation.type"));
                assertEquals(observation.model(), span.attr("langfuse.observation.model.name"));
                assertEquals(observation.level(), span.attr("langfuse.observation.level"));
                assertEquals(observation.statusMessage(), span.attr("langfuse.observation.status_message"));
                assertEquals(nanos(observation.start()), span.startNanos(), "start from the transcript");
                assertEquals(nanos(observation.end()), span.endNanos(), "end from the transcript");
                assertEquals("langfuse-sdk", span.scope());
                assertEquals("claude-code", span.resource().get("service.name"));
                // Trace-level attributes ride on every span.
                assertEquals(trace.name(), span.attr("langfuse.trace.name"));
                assertEquals(trace.sessionId(), span.attr("session.id"));
                assertEquals("test-user", span.attr("user.id"));
                assertEquals("2.1.159", span.attr("langfuse.release"));
                assertEquals(List.of("claude-code"), span.attributes().get("langfuse.trace.tags"));
                JsonNode metadata = TestSupport.JSON.readTree(span.attr("langfuse.observation.metadata"));
                assertTrue(metadata.path("claude_code").isObject(), "claude_code metadata is one JSON object");
                if (observation.usage() != null) {
                    assertEquals(observation.usage(), TestSupport.JSON.readValue(span.attr("langfuse.observation.usage_details"),
                            new com.fasterxml.jackson.core.type.TypeReference<Map<String, Long>>() { }));
                } else {
                    assertFalse(span.attributes().containsKey("langfuse.observation.usage_details"));
                }
            }
            OtlpReceiver.ReceivedSpan root = byId.get(trace.root().id());
            assertTrue(root.isRoot());
            assertEquals(trace.input(), root.attr("langfuse.trace.input"));
            assertEquals(trace.output(), root.attr("langfuse.trace.output"));
            assertEquals(trace.input(), root.attr("langfuse.observation.input"));
            JsonNode traceMeta = TestSupport.JSON.readTree(root.attr("langfuse.trace.metadata"));
            assertEquals(trace.metadata().path("claude_code").path("turn_number").asInt(), traceMeta.path("claude_code").path("turn_number").asInt());
        }
        // Spot checks against the transcript itself.
        OtlpReceiver.ReceivedSpan decision = spans.stream().filter(s -> s.name().equals("Decision to call tool: Bash (#3)")).findFirst().orElseThrow();
        assertEquals("{\"input\":3,\"output\":40,\"cache_read_input_tokens\":1000,\"input_cache_creation_1h\":200}",
                decision.attr("langfuse.observation.usage_details"));
        OtlpReceiver.ReceivedSpan userEvent = spans.stream().filter(s -> s.name().equals("user message")).findFirst().orElseThrow();
        JsonNode u1 = TestSupport.JSON.readTree(Files.readAllLines(transcript).get(1));
        assertEquals(nanos(Instant.parse(u1.path("timestamp").asText())), userEvent.startNanos());

        // Files the hook wrote: private, and the secret is in none of them.
        Path stateDir = home.resolve(".claude/state");
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
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder builder = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"), "litefuse_hook",
                "replay", "--send", transcript.toString());
        builder.environment().putAll(env);
        builder.redirectErrorStream(true);
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, process.waitFor(), output);
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

    static long nanos(Instant instant) {
        return TimeUnit.SECONDS.toNanos(instant.getEpochSecond()) + instant.getNano();
    }
}
