import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Replay of recorded and crafted transcripts: expected outputs, and the trace shape of seed 001 asserted directly. */
public class ReplayTest {

    /** Each transcript in tests/transcripts/ replays to exactly the JSON checked in under tests/expected/. */
    @TestFactory
    Stream<DynamicTest> replayMatchesExpectedOutput() throws IOException {
        boolean update = "1".equals(System.getenv("UPDATE_EXPECTED"));
        return TestSupport.recordedTranscripts().stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> {
            ArrayNode actual = litefuse_hook.Json.NODES.arrayNode();
            TestSupport.replay(file).forEach(trace -> actual.add(litefuse_hook.Render.traceToJson(trace, false)));
            String actualText = TestSupport.JSON.writer().with(SerializationFeature.INDENT_OUTPUT).writeValueAsString(actual) + "\n";
            Path expectedFile = TestSupport.testsDir().resolve("expected").resolve(file.getFileName().toString().replace(".jsonl", ".json"));
            if (update) Files.writeString(expectedFile, actualText);
            assertTrue(Files.exists(expectedFile), "missing " + expectedFile + " (run the tests with UPDATE_EXPECTED=1 once)");
            List<String> expectedLines = Files.readAllLines(expectedFile);
            List<String> actualLines = List.of(actualText.split("\n", -1)).subList(0, actualText.split("\n", -1).length - 1);
            for (int i = 0; i < Math.max(expectedLines.size(), actualLines.size()); i++) {
                String expected = i < expectedLines.size() ? expectedLines.get(i) : "<end of file>";
                String got = i < actualLines.size() ? actualLines.get(i) : "<end of output>";
                if (!expected.equals(got)) fail(expectedFile.getFileName() + " line " + (i + 1) + ": expected " + expected + " but got " + got);
            }
        }));
    }

    /** Every transcript of the shared corpus replays without an error, with distinct trace ids. */
    @TestFactory
    Stream<DynamicTest> sharedCorpusReplays() throws IOException {
        Path shared = TestSupport.sharedTranscripts();
        if (shared == null) return Stream.empty();
        List<Path> files;
        try (Stream<Path> walk = Files.walk(shared)) {
            files = walk.filter(p -> p.toString().endsWith(".jsonl")).sorted().toList();
        }
        return files.stream().map(file -> DynamicTest.dynamicTest(shared.relativize(file).toString(), () -> {
            List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(file);
            Set<String> ids = traces.stream().map(litefuse_hook.TraceModel.TraceRecord::traceId).collect(Collectors.toSet());
            assertEquals(traces.size(), ids.size(), "trace ids must be unique");
            boolean answeredPrompt = Files.readAllLines(file).stream().anyMatch(l -> l.contains("\"type\":\"assistant\"")
                    && !l.contains("\"isSidechain\":true") && !l.contains("<synthetic>"));
            if (answeredPrompt) assertFalse(traces.isEmpty(), "a main-chain conversation yields traces");
        }));
    }

    @Test
    void crafted_turnBoundaries() throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl"));
        // Prompt, /review command, task notification, interrupted prompt, prompt: meta rows, local-command output,
        // a compact summary and the interrupt marker start no turn.
        assertEquals(List.of("Look at this screenshot", "/review PR 12", "<task-notification>", "Run the slow build", "Summarise README.md"),
                traces.stream().map(t -> t.header().input().startsWith("<task-notification>") ? "<task-notification>" : t.header().input()).toList());
        assertEquals(List.of("Claude Code - Turn 1", "Claude Code - Turn 2", "Claude Code - Turn 3", "Claude Code - Turn 4", "Claude Code - Turn 5"),
                traces.stream().map(litefuse_hook.TraceModel.TraceRecord::name).toList());
        assertEquals("sess-B", traces.get(1).header().sessionId(), "a file can hold several session ids");
        assertEquals("command", traces.get(1).header().metadata().path("claude_code").path("source").asText());
        assertEquals("task_notification", traces.get(2).header().metadata().path("claude_code").path("source").asText());
    }

    /**
     * toolUseResult as the trace shows it: an object's fields and the sizes of what they hold (the reader leaves the
     * strings nested in them undecoded), and a list (an MCP tool's blocks) whole, in its preview.
     */
    @Test
    void toolUseResultKeepsWhatTheTraceShows(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        String common = "\"sessionId\":\"sess-T\",\"cwd\":\"/tmp/demo\",\"version\":\"2.1.159\"";
        String rows = String.join("\n",
                "{\"type\":\"user\",\"uuid\":\"u1\",\"parentUuid\":null," + common + ",\"timestamp\":\"2026-03-01T10:00:00.000Z\","
                        + "\"message\":{\"role\":\"user\",\"content\":\"read it and search\"}}",
                "{\"type\":\"assistant\",\"uuid\":\"a1\",\"parentUuid\":\"u1\"," + common + ",\"timestamp\":\"2026-03-01T10:00:01.000Z\","
                        + "\"message\":{\"model\":\"claude-opus-4-6\",\"id\":\"m1\",\"role\":\"assistant\",\"stop_reason\":\"tool_use\",\"content\":["
                        + "{\"type\":\"tool_use\",\"id\":\"toolu_r\",\"name\":\"Read\",\"input\":{\"file_path\":\"/tmp/demo/a.txt\"}},"
                        + "{\"type\":\"tool_use\",\"id\":\"toolu_m\",\"name\":\"mcp__docs__search\",\"input\":{\"q\":\"x\"}}]}}",
                "{\"type\":\"user\",\"uuid\":\"r1\",\"parentUuid\":\"a1\"," + common + ",\"timestamp\":\"2026-03-01T10:00:02.000Z\","
                        + "\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_r\",\"content\":\"1\\tline one\"}]},"
                        + "\"toolUseResult\":{\"type\":\"text\",\"status\":\"ok\",\"file\":{\"filePath\":\"/tmp/demo/a.txt\",\"content\":\"line one\\nline two\","
                        + "\"numLines\":2,\"startLine\":1,\"totalLines\":2},\"notes\":[\"a\",\"b\",\"c\"]}}",
                "{\"type\":\"user\",\"uuid\":\"r2\",\"parentUuid\":\"r1\"," + common + ",\"timestamp\":\"2026-03-01T10:00:03.000Z\","
                        + "\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_m\",\"content\":\"found it\"}]},"
                        + "\"toolUseResult\":[{\"type\":\"text\",\"text\":\"found it in the docs\"}]}",
                "{\"type\":\"assistant\",\"uuid\":\"a2\",\"parentUuid\":\"r2\"," + common + ",\"timestamp\":\"2026-03-01T10:00:04.000Z\","
                        + "\"message\":{\"model\":\"claude-opus-4-6\",\"id\":\"m2\",\"role\":\"assistant\",\"stop_reason\":\"end_turn\","
                        + "\"content\":[{\"type\":\"text\",\"text\":\"Done.\"}]}}") + "\n";
        Path file = Files.writeString(dir.resolve("tool-results.jsonl"), rows);
        List<litefuse_hook.TraceModel.Observation> tools = TestSupport.replay(file).get(0).observations().stream()
                .filter(o -> o.type() == litefuse_hook.TraceModel.ObservationType.TOOL).toList();
        assertEquals(2, tools.size());
        JsonNode read = tools.get(0).metadata().path("claude_code").path("toolUseResult");
        assertEquals("ok", read.path("status").asText(), "a short field verbatim");
        assertEquals(5, read.path("file_len").asInt(), "an object's size");
        assertEquals(3, read.path("notes_len").asInt(), "a list's size");
        assertEquals(2, read.path("itemCount").asInt(), "Read's numLines, nested in file");
        JsonNode mcp = tools.get(1).metadata().path("claude_code").path("toolUseResult");
        assertTrue(mcp.path("value").asText().contains("found it in the docs"), mcp.toString());
    }

    @Test
    void crafted_observationsOfAToolTurn() throws IOException {
        litefuse_hook.TraceModel.TraceRecord turn = TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl")).get(0);
        assertEquals(List.of("Claude Code - Turn 1:span", "user message:event", "Thinking (#1):generation", "Text response (#2):generation",
                        "Decision to call tool: Bash (#3):generation", "Tool call: Bash (#3):tool", "API error (retry 1/10):event",
                        "Final response (#4):generation"),
                turn.observations().stream().map(o -> o.name() + ":" + o.type().wireName()).toList(),
                "stop_hook_summary and the trailing turn_duration are left out; the repeated row appears once");
        litefuse_hook.TraceModel.Observation root = turn.root();
        turn.observations().stream().skip(1).forEach(o -> assertEquals(root.id(), o.parentId()));
        assertEquals("The directory does not exist.", turn.header().output());
        assertEquals("claude-opus-4-6", turn.observations().get(2).model());

        // Usage only on the last row of each message, output as the largest value, cache writes split by rate.
        assertNull(turn.observations().get(2).usage());
        assertNull(turn.observations().get(3).usage());
        assertEquals(Map.of("input", 3L, "output", 40L, "cache_read_input_tokens", 1000L, "input_cache_creation_1h", 200L),
                turn.observations().get(4).usage());
        assertEquals(Map.of("input", 2L, "output", 12L, "cache_read_input_tokens", 1200L, "input_cache_creation_5m", 30L),
                turn.observations().get(7).usage());

        litefuse_hook.TraceModel.Observation tool = turn.observations().get(5);
        assertEquals(litefuse_hook.TraceModel.Level.ERROR, tool.level());
        assertTrue(tool.statusMessage().startsWith("ls: cannot access"));
        assertEquals("{\"command\":\"ls /nope\",\"description\":\"List\"}", tool.input());
        JsonNode toolMeta = tool.metadata().path("claude_code");
        assertEquals("toolu_1", toolMeta.path("tool_use_id").asText());
        assertEquals("ls /nope", toolMeta.path("toolUseResult").path("command").asText());
        assertEquals(25, toolMeta.path("toolUseResult").path("stderr_len").asInt());
        assertTrue(toolMeta.path("toolUseResult").path("has_stderr").asBoolean());
        assertEquals("a3", toolMeta.path("sourceToolAssistantUUID").asText(), "a result written before its tool_use is paired");

        litefuse_hook.TraceModel.Observation apiError = turn.observations().get(6);
        assertEquals(litefuse_hook.TraceModel.Level.ERROR, apiError.level());
        assertEquals("HTTP 529: Overloaded", apiError.statusMessage());
        assertEquals(10, apiError.metadata().path("claude_code").path("maxRetries").asInt());
        assertEquals(apiError.start(), apiError.end());

        JsonNode genMeta = turn.observations().get(4).metadata().path("claude_code");
        assertEquals("a3", genMeta.path("uuid").asText());
        assertEquals("m1", genMeta.path("id").asText());
        assertEquals("tool_use", genMeta.path("stop_reason").asText());
        assertTrue(genMeta.path("is_last_in_message").asBoolean());
        assertEquals(3, genMeta.path("step_index").asInt());
        assertFalse(genMeta.has("stop_sequence"), "metadata is sparse: null fields are left out");
    }

    @Test
    void crafted_timestampsAreRealWithOneMillisecondGaps() throws IOException {
        litefuse_hook.TraceModel.TraceRecord turn = TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl")).get(4);
        List<litefuse_hook.TraceModel.Observation> obs = turn.observations();
        // user u5, a8 (tool_use), r3 (result), a9 (final): each generation starts 1 ms after the row before it.
        litefuse_hook.TraceModel.Observation user = obs.get(1);
        litefuse_hook.TraceModel.Observation decision = obs.get(2);
        litefuse_hook.TraceModel.Observation tool = obs.get(3);
        litefuse_hook.TraceModel.Observation answer = obs.get(4);
        assertEquals(user.start(), turn.root().start());
        assertEquals(user.end().plusMillis(1), decision.start());
        assertEquals(decision.end().plusMillis(1), tool.start());
        assertEquals(tool.end().plusMillis(1), answer.start());
        assertEquals(answer.end(), turn.root().end());
        assertTrue(Duration.between(decision.start(), decision.end()).toMillis() > 0);
    }

    @Test
    void crafted_imagesAreSummarisedNeverSent() throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl"));
        JsonNode meta = traces.get(0).header().metadata().path("claude_code");
        assertEquals(1, meta.path("user_content_image_blocks").asInt());
        assertEquals(1, meta.path("user_content_text_blocks").asInt());
        assertEquals("image/png", meta.path("user_content_image_media_types").get(0).asText());
        for (litefuse_hook.TraceModel.TraceRecord trace : traces) {
            for (litefuse_hook.TraceModel.Observation o : trace.observations()) {
                assertFalse(String.valueOf(o.input()).contains("iVBORw0KGgo"), o.name());
                assertFalse(String.valueOf(o.output()).contains("iVBORw0KGgo"), o.name());
            }
        }
    }

    @Test
    void crafted_interruptedAndApiErrorTurns() throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl"));
        litefuse_hook.TraceModel.Observation synthetic = traces.get(2).observations().get(2);
        assertEquals(litefuse_hook.TraceModel.Level.ERROR, synthetic.level());
        assertNull(synthetic.model(), "<synthetic> rows carry no model");
        assertNull(synthetic.usage());
        litefuse_hook.TraceModel.Observation root = traces.get(3).root();
        assertEquals(litefuse_hook.TraceModel.Level.WARNING, root.level());
        assertEquals("interrupted by user", root.statusMessage());
    }

    @Test
    void truncationIsRecordedInMetadata() throws IOException {
        Path file = TestSupport.transcript("crafted__edge-cases.jsonl");
        litefuse_hook.Traces.TraceContext small = litefuse_hook.Traces.TraceContext.of(TestSupport.options("u", "CC_LANGFUSE_MAX_CHARS", "10"), "s", "t");
        litefuse_hook.TraceModel.TraceRecord turn = litefuse_hook.Pipeline.replayFile(file, small).get(0);
        assertEquals("Look at th", turn.header().input());
        assertEquals(23, turn.header().metadata().path("claude_code").path("user_text_orig_len").asInt());
        assertTrue(turn.header().metadata().path("claude_code").path("user_text_truncated").asBoolean());
        litefuse_hook.TraceModel.Observation tool = turn.observations().get(5);
        assertEquals(10, tool.input().length());
        assertTrue(tool.metadata().path("claude_code").path("input_truncated").asBoolean());
        assertEquals("ls: cannot access '/nope': No such file or directory".length(),
                tool.metadata().path("claude_code").path("output_orig_len").asInt());
    }

    @Test
    void usageEqualsSumOverUniqueMessages() throws IOException {
        for (String name : List.of("entireio__git-sync__0c2a854b-v2.1.136-long.jsonl", "entireio__cli__7662d755-microcompact.jsonl",
                "chiphuyen__sniffly__ba79134d.jsonl", "crafted__edge-cases.jsonl")) {
            Path file = TestSupport.transcript(name);
            assertEquals(TestSupport.usageOverUniqueMessages(file), TestSupport.totalsOf(TestSupport.usagesOf(TestSupport.replay(file))), name);
        }
    }

    @Test
    void brokenRowsAreSkippedAndEverythingElseTraced() throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> clean = TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl"));
        List<litefuse_hook.TraceModel.TraceRecord> broken = TestSupport.replay(TestSupport.transcript("crafted__broken-rows.jsonl"));
        assertEquals(clean.stream().map(litefuse_hook.TraceModel.TraceRecord::traceId).toList(), broken.stream().map(litefuse_hook.TraceModel.TraceRecord::traceId).toList());
        for (int i = 0; i < clean.size(); i++) {
            assertEquals(clean.get(i).observations().stream().map(litefuse_hook.TraceModel.Observation::id).toList(),
                    broken.get(i).observations().stream().map(litefuse_hook.TraceModel.Observation::id).toList());
        }
    }

    @Test
    void treeShowsNamesTypesDurationsAndTokens() throws IOException {
        String tree = litefuse_hook.Render.renderTree(TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl")).get(4));
        List<String> lines = List.of(tree.split("\n"));
        assertTrue(lines.get(0).startsWith("Claude Code - Turn 5 (span, 3.11s)  session=sess-A  release=2.1.159"), lines.get(0));
        assertTrue(lines.get(0).endsWith("tokens input=11 output=45 cache_read_input_tokens=1500 input_cache_creation_1h=100 cache_creation_input_tokens=0"), lines.get(0));
        assertEquals("├── user message (event)", lines.get(1));
        // The generation's input size: its prompt, as the messages new to the model at that call.
        assertEquals("├── Decision to call tool: Read (#1) (generation, 1.04s)  claude-opus-4-6  input 87 chars  tokens input=5 output=30 cache_read_input_tokens=700 input_cache_creation_1h=100", lines.get(2));
        assertEquals("├── Tool call: Read (#1) (tool, 1.04s)", lines.get(3));
        assertTrue(lines.get(4).startsWith("└── Final response (#2) (generation, 1.04s)  claude-opus-4-6"), lines.get(4));
    }

    @Test
    void idsAreStableAndDerivedFromKeys() throws IOException {
        Path file = TestSupport.transcript("marot__spotter__tool_heavy.jsonl");
        List<litefuse_hook.TraceModel.TraceRecord> first = TestSupport.replay(file);
        List<litefuse_hook.TraceModel.TraceRecord> second = litefuse_hook.Pipeline.replayFile(file, litefuse_hook.Traces.TraceContext.of(TestSupport.options("other-user", "CC_LANGFUSE_MAX_CHARS", "50"), "x", "elsewhere"));
        Set<String> spanIds = new HashSet<>();
        for (int i = 0; i < first.size(); i++) {
            litefuse_hook.TraceModel.TraceRecord trace = first.get(i);
            assertEquals(trace.traceId(), second.get(i).traceId());
            assertEquals(litefuse_hook.Traces.traceIdFor(trace.header().sessionId(), trace.header().metadata().path("claude_code").path("uuid").asText()), trace.traceId());
            assertEquals(32, trace.traceId().length());
            trace.observations().forEach(o -> {
                assertEquals(16, o.id().length());
                assertTrue(spanIds.add(o.id()), "span ids are unique");
            });
            assertEquals(trace.observations().stream().map(litefuse_hook.TraceModel.Observation::id).toList(),
                    second.get(i).observations().stream().map(litefuse_hook.TraceModel.Observation::id).toList());
        }
        assertNotNull(first.get(0).header().release());
        List<String> names = new ArrayList<>();
        first.forEach(t -> t.observations().forEach(o -> names.add(o.name())));
        assertTrue(names.contains("Tool call: WebSearch (#3)"));
    }
}
