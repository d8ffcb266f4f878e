import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the real-client harness: the real Claude Code binary, offline in a loopback-only network namespace, against
 * {@link MockAnthropic}, with hooks that record what they are given. Skipped where no such namespace can be made.
 */
class RealClientProbeTest {
    static List<JsonNode> rows(Path transcript) throws IOException {
        return RealClient.Result.rows(transcript);
    }

    static long count(List<JsonNode> rows, String type, String subtype) {
        return rows.stream().filter(r -> type.equals(r.path("type").asText())
                && (subtype == null || subtype.equals(r.path("subtype").asText()))).count();
    }

    @Test
    void bashTurnThenContinueThenSubagent() throws Exception {
        // Run 1: one Bash tool call, then a final text. Run 2: --continue the same session. Run 3: the model delegates
        // to a subagent (the Agent tool), which runs Bash itself.
        RealClient.Result result = RealClient.threeSessions(RealClient.scenario()
                .file("home/.claude/settings.json", RealClient.recordingHooks("Stop", "SubagentStop", "SessionEnd"))).run();

        for (int i = 0; i < 3; i++) assertEquals(0, result.exitCode(i), () -> "claude failed: " + result.json());
        assertEquals("The command printed hi.", result.stdout(0).trim());
        assertEquals("Second turn answer.", result.stdout(1).trim());
        assertEquals("The subagent says 42.", result.stdout(2).trim());

        // The mock saw the tool round trip: the second request carries the Bash result.
        List<JsonNode> requests = result.messageRequests();
        assertEquals(RealClient.THREE_SESSIONS_REQUESTS, requests.size(), "2 + 1 + 4 Messages API requests");
        assertTrue(MockAnthropic.toolNames(requests.get(0).path("body")).contains("Bash"));
        assertTrue(MockAnthropic.lastIsToolResult(requests.get(1).path("body")));
        assertTrue(MockAnthropic.toolResultText(MockAnthropic.lastUser(requests.get(1).path("body"))).contains("hi"));
        assertTrue(requests.get(0).path("headers").path("user-agent").asText().startsWith("claude-cli/"));

        // Transcripts: runs 1 and 2 share a session file; run 3 has its own and a subagent file beside it.
        List<Path> main = result.mainTranscripts();
        assertEquals(2, main.size(), () -> "main transcripts: " + result.transcripts());
        List<Path> subagents = result.transcripts().stream().filter(p -> p.getParent().getFileName().toString().equals("subagents")).toList();
        assertEquals(1, subagents.size(), () -> "subagent transcripts: " + result.transcripts());
        String agentId = subagents.get(0).getFileName().toString().replaceFirst("^agent-", "").replaceFirst("\\.jsonl$", "");

        // Stop fired once per run, after the final assistant row was written (in -p mode).
        List<RealClient.HookCall> stops = result.hookCalls("Stop");
        assertEquals(3, stops.size());
        List<String> finals = List.of("The command printed hi.", "Second turn answer.", "The subagent says 42.");
        for (int i = 0; i < 3; i++) {
            JsonNode payload = stops.get(i).payload();
            assertEquals("Stop", payload.path("hook_event_name").asText());
            assertFalse(payload.path("stop_hook_active").asBoolean());
            assertEquals(finals.get(i), payload.path("last_assistant_message").asText());
            assertTrue(Files.exists(Path.of(payload.path("transcript_path").asText())));
            assertEquals(result.project().toString(), payload.path("cwd").asText());
            assertEquals(result.project().toString(), stops.get(i).env().get("CLAUDE_PROJECT_DIR"));
            assertNotNull(stops.get(i).transcriptSnapshot(), "the transcript existed when Stop ran");
            String last = finals.get(i);
            assertTrue(rows(stops.get(i).transcriptSnapshot()).stream().anyMatch(r -> r.path("type").asText().equals("assistant")
                    && r.path("message").path("content").toString().contains(last)), "final assistant row on disk when Stop ran");
        }
        assertEquals(stops.get(0).payload().path("session_id"), stops.get(1).payload().path("session_id"), "--continue keeps the session");
        assertNotEquals(stops.get(0).payload().path("session_id"), stops.get(2).payload().path("session_id"));

        // SubagentStop: once, naming the subagent and its transcript.
        List<RealClient.HookCall> subagentStops = result.hookCalls("SubagentStop");
        assertEquals(1, subagentStops.size());
        JsonNode subagentStop = subagentStops.get(0).payload();
        assertEquals(agentId, subagentStop.path("agent_id").asText());
        assertEquals("general-purpose", subagentStop.path("agent_type").asText());
        assertEquals(subagents.get(0).toString(), subagentStop.path("agent_transcript_path").asText());
        assertEquals("The answer is 42.", subagentStop.path("last_assistant_message").asText());

        // SessionEnd: once per run, reason "other" for -p.
        List<RealClient.HookCall> ends = result.hookCalls("SessionEnd");
        assertEquals(3, ends.size());
        ends.forEach(end -> assertEquals("other", end.payload().path("reason").asText()));

        // The main transcript links the Agent tool result to the subagent's file.
        Path run3Transcript = Path.of(stops.get(2).payload().path("transcript_path").asText());
        List<JsonNode> run3Rows = rows(run3Transcript);
        assertTrue(run3Rows.stream().anyMatch(r -> agentId.equals(r.path("toolUseResult").path("agentId").asText())));
        assertEquals(Path.of(run3Transcript.toString().replaceFirst("\\.jsonl$", ""), "subagents", "agent-" + agentId + ".jsonl"), subagents.get(0));
        assertEquals(1, count(run3Rows, "system", "stop_hook_summary"));

        // The transcript records exactly the usage the mock sent.
        Path run1Transcript = Path.of(stops.get(0).payload().path("transcript_path").asText());
        assertEquals(Map.of("input", 257L, "output", 58L, "cache_read", 4300L, "cache_write", 550L),
                TestSupport.usageOverUniqueMessages(run1Transcript));
        assertEquals(Map.of("input", 32L, "output", 34L, "cache_read", 36L, "cache_write", 38L),
                TestSupport.usageOverUniqueMessages(subagents.get(0), true));
    }

    @Test
    void blockingStopHookContinuesTheTurnAndStopFiresAgain() throws Exception {
        ObjectNode settings = (ObjectNode) RealClient.JSON.readTree(RealClient.recordingHooks("Stop"));
        RealClient.addHook((ObjectNode) settings.get("hooks"), "Stop", "${RECORD_HOOK} Blocker");
        RealClient.Result result = RealClient.scenario()
                .file("home/.claude/settings.json", settings.toPrettyString())
                .hookReply("Blocker.once.stdout", "{\"decision\": \"block\", \"reason\": \"Also say goodbye.\"}")
                .rule(MockAnthropic.rule(Map.of("anyUserContains", "Also say goodbye."), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("Goodbye!"))))
                .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("Hello there."))))
                .claude("-p", "say hello")
                .run();
        assertEquals(0, result.exitCode(0), () -> result.json().toString());
        assertEquals("Goodbye!", result.stdout(0).trim());

        List<RealClient.HookCall> stops = result.hookCalls("Stop");
        assertEquals(2, stops.size(), "Stop fires again after the block");
        assertFalse(stops.get(0).payload().path("stop_hook_active").asBoolean());
        assertEquals("Hello there.", stops.get(0).payload().path("last_assistant_message").asText());
        assertTrue(stops.get(1).payload().path("stop_hook_active").asBoolean());
        assertEquals("Goodbye!", stops.get(1).payload().path("last_assistant_message").asText());
        assertEquals(stops.get(0).payload().path("prompt_id"), stops.get(1).payload().path("prompt_id"), "one turn, one prompt_id");

        List<JsonNode> rows = rows(Path.of(stops.get(0).payload().path("transcript_path").asText()));
        assertTrue(rows.stream().anyMatch(r -> r.path("type").asText().equals("user") && r.path("isMeta").asBoolean()
                && r.path("message").path("content").asText().equals("Stop hook feedback:\nAlso say goodbye.")));
        assertTrue(rows.stream().anyMatch(r -> r.path("attachment").path("type").asText().equals("hook_blocking_error")));
        assertEquals(2, count(rows, "system", "stop_hook_summary"));
        JsonNode firstSummary = rows.stream().filter(r -> r.path("subtype").asText().equals("stop_hook_summary")).findFirst().orElseThrow();
        assertEquals(2, firstSummary.path("hookCount").asInt());
        assertEquals("Also say goodbye.", firstSummary.path("hookErrors").get(0).asText());
        // The model was told, in the second request.
        assertTrue(MockAnthropic.anyUserText(result.messageRequests().get(1).path("body")).contains("Stop hook feedback:\nAlso say goodbye."));
    }

    @Test
    void interactiveSessionWritesTurnDurationAfterStop() throws Exception {
        RealClient.Result result = RealClient.scenario()
                .file("home/.claude/settings.json", RealClient.recordingHooks("Stop", "SessionEnd"))
                .rule(MockAnthropic.rule(Map.of("lastUserContains", "second prompt"), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("Second answer."))))
                .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("First answer."))))
                .interactive(List.of("--allowedTools", "Bash"), "first prompt", "second prompt")
                .run();
        assertEquals(0, result.exitCode(0), () -> result.json().toString());
        assertEquals(2, result.hookCalls("Stop").size());
        List<RealClient.HookCall> ends = result.hookCalls("SessionEnd");
        assertEquals(1, ends.size());
        assertEquals("prompt_input_exit", ends.get(0).payload().path("reason").asText());
        List<JsonNode> rows = rows(result.mainTranscripts().get(0));
        assertEquals(2, count(rows, "system", "turn_duration"));
        // Each turn_duration row comes right after its stop_hook_summary row.
        for (int i = 0; i < rows.size(); i++) {
            if (rows.get(i).path("subtype").asText().equals("turn_duration")) {
                assertEquals("stop_hook_summary", rows.get(i - 1).path("subtype").asText());
            }
        }
    }

    @Test
    void pluginFromLocalMarketplaceInstallsOfflineAndHandsOptionsToHooks() throws Exception {
        String record = "#!/bin/sh\nd=\"${WORK}/plugin-hooks\"; mkdir -p \"$d\"; b=\"$d/$(date +%s%N)-$1\"\n"
                + "cat >\"$b.json\"; env | sort >\"$b.env\"\n";
        RealClient.Result result = RealClient.scenario()
                .file("market/.claude-plugin/marketplace.json", """
                        {"name": "litefuse-test", "owner": {"name": "Litefuse tests"}, "metadata": {"description": "Plugins for the litefuse-hook tests"},
                         "plugins": [{"name": "probe", "source": "./plugins/probe", "description": "Records hook calls", "version": "0.1.0"}]}
                        """)
                .file("market/plugins/probe/.claude-plugin/plugin.json", """
                        {"name": "probe", "version": "0.1.0", "description": "Records Stop and SessionEnd hook calls",
                         "author": {"name": "Litefuse tests"}, "license": "MIT",
                         "userConfig": {
                           "public_key": {"type": "string", "title": "Public key", "description": "pk-lf-...", "required": true},
                           "secret_key": {"type": "string", "title": "Secret key", "description": "sk-lf-...", "required": true, "sensitive": true},
                           "base_url": {"type": "string", "title": "Base URL", "description": "Langfuse base URL", "default": "https://cloud.langfuse.com"}}}
                        """)
                .file("market/plugins/probe/hooks/hooks.json", """
                        {"hooks": {
                          "Stop": [{"hooks": [{"type": "command", "command": "\\"${CLAUDE_PLUGIN_ROOT}/hooks/record.sh\\" Stop"}]}],
                          "SessionEnd": [{"hooks": [{"type": "command", "command": "\\"${CLAUDE_PLUGIN_ROOT}/hooks/record.sh\\" SessionEnd", "timeout": 10}]}]}}
                        """)
                .executable("market/plugins/probe/hooks/record.sh", record)
                .rule(MockAnthropic.rule(Map.of(), 0, MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("Hello from a plugin session."))))
                .claude("plugin", "validate", "--strict", "${WORK}/market")
                .claude("plugin", "validate", "--strict", "${WORK}/market/plugins/probe")
                .claude("plugin", "marketplace", "add", "${WORK}/market")
                .claude("plugin", "install", "probe@litefuse-test", "--config", "public_key=pk-lf-test", "--config", "secret_key=sk-lf-test-SECRET")
                .claude("-p", "hello")
                .run();
        for (int i = 0; i < 5; i++) {
            int step = i;
            assertEquals(0, result.exitCode(i), () -> "step " + step + ": " + result.step(step));
        }
        assertTrue(result.stdout(1).contains("Validation passed"), result.stdout(1));

        Path dir = result.work().resolve("plugin-hooks");
        List<Path> envs;
        try (var files = Files.list(dir)) {
            envs = files.filter(p -> p.toString().endsWith(".env")).sorted().toList();
        }
        assertEquals(2, envs.size(), "Stop and SessionEnd");
        Map<String, String> env = RealClient.Result.envFile(envs.get(0));
        assertEquals(result.work().resolve("market/plugins/probe").toString(), env.get("CLAUDE_PLUGIN_ROOT"), "a directory marketplace's plugin runs from its folder");
        assertEquals(result.home().resolve(".claude/plugins/data/probe-litefuse-test").toString(), env.get("CLAUDE_PLUGIN_DATA"));
        assertEquals("pk-lf-test", env.get("CLAUDE_PLUGIN_OPTION_PUBLIC_KEY"));
        assertEquals("sk-lf-test-SECRET", env.get("CLAUDE_PLUGIN_OPTION_SECRET_KEY"), "sensitive options reach hooks too");
        assertFalse(env.containsKey("CLAUDE_PLUGIN_OPTION_BASE_URL"), "an unset option's default is not exported");
        // Non-sensitive values go to settings.json, sensitive ones to ~/.claude/.credentials.json.
        JsonNode settings = RealClient.JSON.readTree(result.home().resolve(".claude/settings.json").toFile());
        assertEquals("pk-lf-test", settings.path("pluginConfigs").path("probe@litefuse-test").path("options").path("public_key").asText());
        assertFalse(settings.toString().contains("sk-lf-test-SECRET"));
        assertTrue(Files.readString(result.home().resolve(".claude/.credentials.json")).contains("sk-lf-test-SECRET"));
    }

    @Test
    void realLitefuseHookSendsTheTurnOverOtlp() throws Exception {
        ObjectNode settings = RealClient.JSON.createObjectNode();
        RealClient.addHook(settings.putObject("hooks"), "Stop", "${JAVA} -cp ${CLASSPATH} litefuse_hook");
        RealClient.Scenario scenario = RealClient.scenario()
                .file("home/.claude/settings.json", settings.toPrettyString())
                .rule(MockAnthropic.rule(RealClient.FIRST, MockAnthropic.reply(MockAnthropic.usage(100, 20, 1000, 300, 200),
                        MockAnthropic.text("Let me run it."), MockAnthropic.toolUse("Bash", Map.of("command", "echo hi", "description", "Say hi")))))
                .rule(MockAnthropic.rule(RealClient.AFTER_TOOL, MockAnthropic.reply(MockAnthropic.usage(150, 30, 1300, 50, 0),
                        MockAnthropic.text("The command printed hi."))))
                .claude("-p", "run echo hi", "--allowedTools", "Bash")
                .waitForSpans(1, 20_000);
        TestSupport.hookEnv(Path.of("/nonexistent"), "${OTLP_URL}").forEach((name, value) -> {
            if (!name.equals("HOME")) scenario.env(name, value);
        });
        RealClient.Result result = scenario.run();
        assertEquals(0, result.exitCode(0), () -> result.json().toString());
        assertEquals(1, result.roots().size(), () -> "one trace for the turn; log: " + result.hookLog());
        result.assertEverySpanOnce();
        assertEquals(Map.of("input", 250L, "output", 50L, "cache_read", 2300L, "cache_write", 550L),
                result.tokens(result.roots().get(0).path("traceId").asText()));
    }

    @Test
    void theInnerProgramRefusesToRunOutsideANamespace() throws Exception {
        Assumptions.assumeTrue(RealClientScenario.notIsolated() != null, "this JVM already runs in a loopback-only namespace");
        Path work = TestSupport.tempDir("realclient-refuse-");
        Path scenario = work.resolve("scenario.json");
        Files.writeString(scenario, "{\"work\": \"" + work + "\", \"claude\": \"/bin/false\", \"steps\": [{\"exec\": [\"touch\", \"" + work.resolve("ran") + "\"]}]}");
        Process process = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), "RealClientScenario", scenario.toString(), work.resolve("result.json").toString())
                .redirectErrorStream(true).redirectOutput(work.resolve("log").toFile()).start();
        assertTrue(process.waitFor(60, TimeUnit.SECONDS));
        assertEquals(3, process.exitValue(), Files.readString(work.resolve("log")));
        assertFalse(Files.exists(work.resolve("ran")));
        assertTrue(Files.readString(work.resolve("log")).contains("refusing to run Claude Code"));
    }
}
