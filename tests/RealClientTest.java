import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * litefuse-hook inside the real Claude Code (offline, in a loopback-only network namespace, against MockAnthropic and
 * the OTLP receiver): installed by `install`, and as a plugin from this repository's marketplace. Counted in spans.
 * Skipped, with the reason, where no such namespace can be made.
 */
class RealClientTest {
    static final Map<String, Object> FIRST = Map.of("lastIsToolResult", false);
    static final Map<String, Object> AFTER_TOOL = Map.of("lastIsToolResult", true);

    /** Where a run's files are copied for a closer look (LITEFUSE_REALCLIENT_KEEP=dir), or null. */
    static final String KEEP = System.getenv("LITEFUSE_REALCLIENT_KEEP");

    static Path repository() {
        return TestSupport.testsDir().getParent();
    }

    /** `litefuse-hook install` inside the namespace, with keys for the receiver and a few optional settings. */
    static RealClient.Scenario installed() {
        return RealClient.scenario()
                .exec("${JAVA}", "-cp", "${CLASSPATH}", "litefuse_hook", "install")
                .env("LANGFUSE_PUBLIC_KEY", TestSupport.PUBLIC_KEY)
                .env("LANGFUSE_SECRET_KEY", TestSupport.SECRET_KEY)
                .env("LANGFUSE_BASE_URL", "${OTLP_URL}")
                .env("LITEFUSE_USER_ID", "me")
                .env("CC_LANGFUSE_TAGS", "ci, real-client");
    }

    /** The three runs of the issue: a Bash tool call, a second turn with --continue, a subagent. */
    static RealClient.Scenario threeSessions(RealClient.Scenario scenario) {
        ObjectNode run1 = RealClient.Scenario.step("-p", "run echo hi", "--allowedTools", "Bash");
        run1.putArray("rules")
                .add(MockAnthropic.rule(FIRST, MockAnthropic.reply(MockAnthropic.usage(100, 20, 1000, 300, 200),
                        MockAnthropic.thinking("I will run it."), MockAnthropic.text("Let me run it."),
                        MockAnthropic.toolUse("Bash", Map.of("command", "echo hi", "description", "Say hi")))))
                .add(MockAnthropic.rule(AFTER_TOOL, MockAnthropic.reply(MockAnthropic.usage(150, 30, 1300, 50, 0),
                        MockAnthropic.text("The command printed hi."))));
        ObjectNode run2 = RealClient.Scenario.step("-p", "and once more", "--continue", "--allowedTools", "Bash");
        run2.putArray("rules").add(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(7, 8, 2000, 0, 0),
                MockAnthropic.text("Second turn answer."))));
        ObjectNode run3 = RealClient.Scenario.step("-p", "delegate the math", "--allowedTools", "Bash,Agent");
        run3.putArray("rules")
                .add(MockAnthropic.rule(Map.of("anyUserContains", "SUBAGENT-TASK", "lastIsToolResult", false),
                        MockAnthropic.reply(MockAnthropic.usage(11, 12, 13, 14, 0),
                                MockAnthropic.toolUse("Bash", Map.of("command", "echo 42", "description", "Compute")))))
                .add(MockAnthropic.rule(Map.of("anyUserContains", "SUBAGENT-TASK", "lastIsToolResult", true),
                        MockAnthropic.reply(MockAnthropic.usage(21, 22, 23, 0, 24), MockAnthropic.text("The answer is 42."))))
                .add(MockAnthropic.rule(FIRST, MockAnthropic.reply(MockAnthropic.usage(31, 32, 33, 34, 0), MockAnthropic.text("Delegating."),
                        MockAnthropic.toolUse("Agent", Map.of("description", "Compute product", "prompt", "SUBAGENT-TASK: compute 6*7 with Bash",
                                "subagent_type", "general-purpose", "run_in_background", false)))))
                .add(MockAnthropic.rule(AFTER_TOOL, MockAnthropic.reply(MockAnthropic.usage(41, 42, 43, 0, 0),
                        MockAnthropic.text("The subagent says 42."))));
        return scenario.step(run1).step(run2).step(run3);
    }

    static ObjectNode withStdin(ObjectNode step, String stdin) {
        step.put("stdin", stdin);
        return step;
    }

    static String attr(JsonNode span, String key) {
        JsonNode value = span.path("attributes").get(key);
        return value == null || value.isNull() ? null : value.isTextual() ? value.asText() : value.toString();
    }

    static List<JsonNode> roots(List<JsonNode> spans) {
        return spans.stream().filter(s -> s.path("parentSpanId").asText().isEmpty()).toList();
    }

    static long spansReceivedTwice(List<JsonNode> spans) {
        Set<String> seen = new HashSet<>();
        return spans.stream().filter(s -> !seen.add(s.path("traceId").asText() + "/" + s.path("spanId").asText())).count();
    }

    /** input / output / cache_read / cache_write over the spans of one trace, as Langfuse would sum them. */
    static Map<String, Long> tokens(List<JsonNode> spans, String traceId) throws IOException {
        List<Map<String, Long>> usages = new ArrayList<>();
        for (JsonNode span : spans) {
            String details = attr(span, "langfuse.observation.usage_details");
            if (details == null || !span.path("traceId").asText().equals(traceId)) continue;
            Map<String, Long> usage = new LinkedHashMap<>();
            RealClient.JSON.readTree(details).fields().forEachRemaining(f -> usage.put(f.getKey(), f.getValue().asLong()));
            usages.add(usage);
        }
        return TestSupport.totalsOf(usages);
    }

    static JsonNode byName(List<JsonNode> spans, String prefix) {
        return spans.stream().filter(s -> s.path("name").asText().startsWith(prefix)).findFirst()
                .orElseThrow(() -> new AssertionError("no span named " + prefix + "…"));
    }

    /** The hook runs Claude Code recorded: each stop_hook_summary row's entry for our command (durationMs, errors). */
    static List<JsonNode> ourHookRuns(Path transcript) throws IOException {
        List<JsonNode> runs = new ArrayList<>();
        for (JsonNode row : RealClient.Result.rows(transcript)) {
            if (!"stop_hook_summary".equals(row.path("subtype").asText())) continue;
            assertEquals(0, row.path("hookErrors").size(), "no hook errors: " + row);
            for (JsonNode info : row.path("hookInfos")) {
                if (info.path("command").asText().contains("litefuse-hook")) runs.add(info);
            }
        }
        for (JsonNode row : RealClient.Result.rows(transcript)) {
            String type = row.path("attachment").path("type").asText();
            assertFalse(type.equals("hook_non_blocking_error") || type.equals("hook_cancelled"), "a hook failed: " + row);
        }
        return runs;
    }

    static String log(RealClient.Result result) {
        try {
            return TestSupport.log(result.home());
        } catch (IOException e) {
            return e.toString();
        }
    }

    static void keep(RealClient.Result result, String name) throws IOException {
        if (KEEP == null) return;
        Path target = Path.of(KEEP, name);
        Files.createDirectories(target);
        for (Path transcript : result.transcripts()) {
            Files.copy(transcript, target.resolve(transcript.getParent().getFileName() + "__" + transcript.getFileName()),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Files.writeString(target.resolve("hook.log"), log(result));
        Files.writeString(target.resolve("result.json"), result.json().toPrettyString());
    }

    @Test
    void installedHookTracesThreeRealSessions() throws Exception {
        RealClient.Result result = threeSessions(installed()).waitForSpans(3, 30_000).run();
        keep(result, "installed");
        for (int step = 0; step < 4; step++) {
            int index = step;
            assertEquals(0, result.exitCode(step), () -> "step " + index + ": " + result.step(index));
        }
        List<JsonNode> spans = result.spans();
        List<JsonNode> roots = roots(spans);
        assertEquals(List.of("Claude Code - Turn 1", "Claude Code - Turn 2", "Claude Code - Turn 1"),
                roots.stream().map(r -> r.path("name").asText()).toList(), () -> "one trace per prompt; log:\n" + log(result));
        assertEquals(0, spansReceivedTwice(spans), "Stop and SessionEnd both fire; nothing is sent twice");

        // Tokens equal what the mock returned, per trace.
        assertEquals(Map.of("input", 250L, "output", 50L, "cache_read", 2300L, "cache_write", 550L),
                tokens(spans, roots.get(0).path("traceId").asText()));
        assertEquals(Map.of("input", 7L, "output", 8L, "cache_read", 2000L, "cache_write", 0L),
                tokens(spans, roots.get(1).path("traceId").asText()));
        assertEquals(Map.of("input", 104L, "output", 108L, "cache_read", 112L, "cache_write", 72L),
                tokens(spans, roots.get(2).path("traceId").asText()), "the parent's two calls plus the subagent's two");

        // The subagent sits under its tool call, with its own generations.
        JsonNode agentCall = byName(spans, "Tool call: Agent");
        JsonNode agent = byName(spans, "Agent: general-purpose");
        assertEquals(agentCall.path("spanId").asText(), agent.path("parentSpanId").asText());
        assertEquals("general-purpose", attr(agent, "langfuse.observation.metadata.subagent_type"));
        List<JsonNode> agentSteps = spans.stream().filter(s -> s.path("parentSpanId").asText().equals(agent.path("spanId").asText())).toList();
        assertEquals(Set.of("Decision to call tool: Bash (#1)", "Tool call: Bash (#1)", "Final response (#2)"),
                agentSteps.stream().map(s -> s.path("name").asText()).collect(Collectors.toSet()));

        // Each API call's generation starts when its request went out (the transcript's api-request rows).
        Map<String, Long> requestSent = new LinkedHashMap<>();
        for (Path transcript : result.transcripts()) {
            for (JsonNode row : RealClient.Result.rows(transcript)) {
                if (row.path("type").asText().equals("api-request")) {
                    java.time.Instant at = java.time.Instant.parse(row.path("timestamp").asText());
                    requestSent.put(row.path("id").asText(), at.getEpochSecond() * 1_000_000_000L + at.getNano());
                }
            }
        }
        int timed = 0;
        for (JsonNode span : spans) {
            JsonNode meta = RealClient.JSON.readTree(attr(span, "langfuse.observation.metadata")).path("claude_code");
            if (!meta.has("request")) continue;
            assertEquals(requestSent.get(meta.path("requestRef").asText()), span.path("startNanos").asLong(), span.path("name").asText());
            assertEquals("medium", meta.path("request").path("effort").asText());
            timed++;
        }
        assertEquals(requestSent.size(), timed, "one generation per API request starts at its request");

        // What the user sees on every span: their user id, the extra tags, the real-time header on every request.
        for (JsonNode span : spans) {
            assertEquals("me", attr(span, "user.id"));
            assertEquals("[\"claude-code\",\"ci\",\"real-client\"]", attr(span, "langfuse.trace.tags"));
            assertEquals("2.1.332", attr(span, "langfuse.trace.metadata.claude_code_version"));
        }
        for (JsonNode request : result.json().path("otlp")) {
            assertEquals("4", request.path("headers").path("x-langfuse-ingestion-version").asText(), request.toString());
        }

        // The hook stayed quiet in Claude Code's own record, and the settings holding the key are the owner's only.
        List<Path> transcripts = result.mainTranscripts();
        List<JsonNode> runs = new ArrayList<>();
        for (Path transcript : transcripts) runs.addAll(ourHookRuns(transcript));
        assertEquals(3, runs.size(), "one Stop run per prompt recorded");
        System.out.println("REALCLIENT | installed | Stop hook durationMs " + runs.stream().map(r -> r.path("durationMs").asText()).toList());
        Path settings = result.home().resolve(".claude/settings.json");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(settings)));
        JsonNode written = RealClient.JSON.readTree(settings.toFile());
        assertEquals("me", written.path("env").path("LITEFUSE_USER_ID").asText(), "install writes the optional settings it was given");
        assertEquals("ci, real-client", written.path("env").path("CC_LANGFUSE_TAGS").asText());
        assertTrue(written.path("hooks").has("SessionEnd"));
        assertTrue(log(result).contains("Sent Claude Code - Turn 1: " + "http://127.0.0.1:"), log(result));
    }

    @Test
    void blockingStopHookGrowsTheTurnAfterItWasSent() throws Exception {
        // Another Stop hook blocks the first stop ("Also say goodbye."): Claude Code goes on after ours sent the turn.
        RealClient.Scenario scenario = installed()
                .exec("python3", "-c", "import json, sys; path = sys.argv[1]; s = json.load(open(path)); "
                        + "s['hooks']['Stop'].append({'hooks': [{'type': 'command', 'command': sys.argv[2] + ' Blocker'}]}); "
                        + "json.dump(s, open(path, 'w'))", "${HOME}/.claude/settings.json", "${RECORD_HOOK}")
                .hookReply("Blocker.once.stdout", "{\"decision\": \"block\", \"reason\": \"Also say goodbye.\"}")
                .rule(MockAnthropic.rule(Map.of("anyUserContains", "Also say goodbye."),
                        MockAnthropic.reply(MockAnthropic.usage(12, 6, 500, 0, 0), MockAnthropic.text("Goodbye!"))))
                .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(10, 5, 400, 100, 0),
                        MockAnthropic.text("Hello there."))))
                .claude("-p", "say hello")
                .waitForSpans(1, 30_000);
        RealClient.Result result = scenario.run();
        keep(result, "blocking-stop");
        assertEquals(0, result.exitCode(2), () -> result.step(2).toString());
        assertEquals("Goodbye!", result.stdout(2).trim());
        List<JsonNode> spans = result.spans();
        assertEquals(1, roots(spans).size(), () -> "one trace; log:\n" + log(result));
        assertEquals(0, spansReceivedTwice(spans), "no span twice");
        String traceId = roots(spans).get(0).path("traceId").asText();
        assertTrue(spans.stream().allMatch(s -> s.path("traceId").asText().equals(traceId)), "the answer joined the turn's trace");
        JsonNode root = roots(spans).get(0);
        assertEquals("say hello", attr(root, "langfuse.observation.input"), "the root's input stays");
        JsonNode goodbye = spans.stream().filter(s -> "Goodbye!".equals(attr(s, "langfuse.observation.output"))).findFirst()
                .orElseThrow(() -> new AssertionError("the answer after the blocked stop is missing; log:\n" + log(result)));
        assertEquals(root.path("spanId").asText(), goodbye.path("parentSpanId").asText());
        JsonNode feedback = byName(spans, "Stop hook feedback");
        assertEquals("Stop hook feedback:\nAlso say goodbye.", attr(feedback, "langfuse.observation.input"));
        assertEquals(Map.of("input", 22L, "output", 11L, "cache_read", 900L, "cache_write", 100L), tokens(spans, traceId),
                "both answers' tokens, each once");
        assertTrue(log(result).contains("Sent Claude Code - Turn 1 ("), "the second firing sent the rest: " + log(result));
    }

    @Test
    void sessionEndSendsAnUnfinishedLastTurn() throws Exception {
        // --max-turns 1: the model asks for a tool, the session ends before any final answer.
        RealClient.Result result = installed()
                .rule(MockAnthropic.rule(FIRST, MockAnthropic.reply(MockAnthropic.usage(9, 9, 90, 0, 0),
                        MockAnthropic.text("Let me look."), MockAnthropic.toolUse("Bash", Map.of("command", "ls", "description", "List")))))
                .rule(MockAnthropic.rule(AFTER_TOOL, MockAnthropic.reply(MockAnthropic.usage(1, 1, 1, 0, 0),
                        MockAnthropic.toolUse("Bash", Map.of("command", "ls -la", "description", "List more")))))
                .claude("-p", "look around", "--allowedTools", "Bash", "--max-turns", "1")
                .waitForSpans(1, 30_000)
                .run();
        keep(result, "session-end");
        List<JsonNode> spans = result.spans();
        List<JsonNode> roots = roots(spans);
        assertEquals(1, roots.size(), () -> "the unfinished turn was sent; log:\n" + log(result));
        JsonNode root = roots.get(0);
        assertEquals("WARNING", attr(root, "langfuse.observation.level"));
        assertTrue(attr(root, "langfuse.observation.status_message").startsWith("unfinished"), attr(root, "langfuse.observation.status_message"));
        assertEquals(0, spansReceivedTwice(spans));
        assertEquals("true", attr(root, "langfuse.trace.metadata.turn_kind") == null ? null : "true");
    }

    @Test
    void pluginFromThisRepositoryTracesTurnsAndBuildsItsFastPath() throws Exception {
        Path repo = repository();
        Path realHome = Path.of(System.getProperty("user.home"));
        String jbangHome = System.getenv().getOrDefault("LITEFUSE_JBANG_HOME", Path.of(System.getenv().getOrDefault("XDG_CACHE_HOME",
                realHome.resolve(".cache").toString()), "litefuse-hook", "jbang-" + System.getenv().getOrDefault("LITEFUSE_JBANG_VERSION", "0.132.1")).toString());
        String data = "${HOME}/.claude/plugins/data/litefuse-hook-litefuse";
        RealClient.Result result = RealClient.scenario()
                // JBang from this repository, on PATH, with the real caches (nothing can be downloaded in here).
                .executable("bin/jbang", "#!/bin/sh\nexec " + repo.resolve(".ci/jbang") + " \"$@\"\n")
                .env("PATH", "${WORK}/bin:" + Path.of(System.getProperty("java.home"), "bin") + ":/usr/local/bin:/usr/bin:/bin")
                .env("LITEFUSE_JBANG_HOME", jbangHome)
                .env("JBANG_DIR", System.getenv().getOrDefault("JBANG_DIR", realHome.resolve(".jbang").toString()))
                .env("JBANG_REPO", System.getenv().getOrDefault("JBANG_REPO", realHome.resolve(".m2/repository").toString()))
                .claude("plugin", "validate", "--strict", repo.toString())
                .claude("plugin", "marketplace", "add", repo.toString())
                // As SKILL.md does it: install, then the keys on standard input (never on a command line).
                .claude("plugin", "install", "litefuse-hook@litefuse")
                .step(withStdin(RealClient.Scenario.step("plugin", "configure", "litefuse-hook@litefuse", "--values-stdin"),
                        "{\"public_key\": \"" + TestSupport.PUBLIC_KEY + "\", \"secret_key\": \"" + TestSupport.SECRET_KEY
                                + "\", \"base_url\": \"${OTLP_URL}\"}"))
                .rule(MockAnthropic.rule(Map.of("lastUserContains", "second"), MockAnthropic.reply(MockAnthropic.usage(3, 4, 5, 6, 0),
                        MockAnthropic.text("Second answer."))))
                .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(10, 5, 100, 20, 0), MockAnthropic.text("First answer."))))
                .claude("-p", "first prompt")
                // The first firing ran through JBang and started building the fast path: wait for it.
                .exec("sh", "-c", "for i in $(seq 120); do [ -x \"$0/litefuse-hook\" ] && [ ! -d \"$0/building\" ] && exit 0; sleep 1; done; exit 1", data)
                .claude("-p", "second prompt", "--continue")
                // Both the plugin and an installed hook: still sent once, and doctor says so.
                .exec("${JAVA}", "-cp", "${CLASSPATH}", "litefuse_hook", "install", "--no-env")
                .rule(MockAnthropic.rule(Map.of("lastUserContains", "third"), MockAnthropic.reply(MockAnthropic.usage(1, 2, 3, 0, 0),
                        MockAnthropic.text("Third answer."))))
                .claude("-p", "third prompt", "--continue")
                .exec("${JAVA}", "-cp", "${CLASSPATH}", "litefuse_hook", "doctor", "--dir", "${PROJECT}")
                .waitForSpans(3, 30_000)
                .run();
        keep(result, "plugin");
        for (int step : List.of(0, 1, 2, 3, 4, 5, 6, 7, 8)) {
            assertEquals(0, result.exitCode(step), () -> "step " + step + ": " + result.step(step));
        }
        assertTrue(result.stdout(0).contains("Validation passed"), result.stdout(0));
        List<JsonNode> spans = result.spans();
        assertEquals(List.of("Claude Code - Turn 1", "Claude Code - Turn 2", "Claude Code - Turn 3"),
                roots(spans).stream().map(r -> r.path("name").asText()).toList(), () -> "log:\n" + log(result));
        assertEquals(0, spansReceivedTwice(spans), "plugin and installed hook together: each span once");
        assertEquals(Map.of("input", 10L, "output", 5L, "cache_read", 100L, "cache_write", 20L),
                tokens(spans, roots(spans).get(0).path("traceId").asText()));
        Path fastPath = result.home().resolve(".claude/plugins/data/litefuse-hook-litefuse/litefuse-hook");
        assertTrue(Files.isExecutable(fastPath), "the plugin built its fast path");
        assertTrue(Files.readString(fastPath).contains("litefuse_hook"), "a launcher of the built script");
        assertTrue(result.stdout(9).contains("registered twice: by the plugin litefuse-hook@litefuse"), result.stdout(9));
        for (Path transcript : result.mainTranscripts()) ourHookRuns(transcript);
        JsonNode settings = RealClient.JSON.readTree(result.home().resolve(".claude/settings.json").toFile());
        assertFalse(settings.toString().contains(TestSupport.SECRET_KEY), "the plugin's secret is not in settings.json");
        assertNotNull(settings.path("enabledPlugins").get("litefuse-hook@litefuse"));
    }

    @Test
    void interactiveSessionRacesNoTurnAway() throws Exception {
        // In the terminal UI, Stop can start before the final assistant row is on disk (seen: 85-190 ms later).
        RealClient.Result result = installed()
                .rule(MockAnthropic.rule(Map.of("lastUserContains", "second prompt"), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0),
                        MockAnthropic.text("Second answer."))))
                .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("First answer."))))
                .interactive(List.of("--allowedTools", "Bash"), "first prompt", "second prompt")
                .waitForSpans(2, 30_000)
                .run();
        keep(result, "interactive");
        List<JsonNode> spans = result.spans();
        List<JsonNode> roots = roots(spans);
        assertEquals(List.of("First answer.", "Second answer."), roots.stream().map(r -> attr(r, "langfuse.observation.output")).toList(),
                () -> "each turn complete, with its final answer; log:\n" + log(result));
        assertEquals(0, spansReceivedTwice(spans));
        for (Path transcript : result.mainTranscripts()) ourHookRuns(transcript);
    }
}
