import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
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
    /** Where a run's files are copied for a closer look (LITEFUSE_REALCLIENT_KEEP=dir), or null. */
    static final String KEEP = System.getenv("LITEFUSE_REALCLIENT_KEEP");

    static Path repository() {
        return TestSupport.testsDir().getParent();
    }

    /**
     * The repository as a clone holds it, for `plugin marketplace add` (Claude Code copies the whole folder): tracked
     * and new files, never what .gitignore leaves out, such as gigabytes of bench/out. Without git, the folder itself.
     */
    static Path repositoryAsCloned() throws IOException, InterruptedException {
        Path repo = repository();
        byte[] listing;
        try {
            Process git = new ProcessBuilder("git", "-C", repo.toString(), "ls-files", "-z", "--cached", "--others", "--exclude-standard")
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            listing = git.getInputStream().readAllBytes();
            if (git.waitFor() != 0) return repo;
        } catch (IOException e) {
            return repo;
        }
        Path copy = TestSupport.tempDir("marketplace-");
        for (String name : new String(listing, java.nio.charset.StandardCharsets.UTF_8).split("\0")) {
            Path source = repo.resolve(name);
            if (name.isEmpty() || !Files.isRegularFile(source)) continue;
            Files.createDirectories(copy.resolve(name).getParent());
            Files.copy(source, copy.resolve(name), java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
        }
        return copy;
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

    static ObjectNode withStdin(ObjectNode step, String stdin) {
        step.put("stdin", stdin);
        return step;
    }

    static void assertExitCodes(RealClient.Result result, int... codes) {
        for (int step = 0; step < codes.length; step++) {
            int index = step;
            assertEquals(codes[step], result.exitCode(step), () -> "step " + index + ": " + result.step(index));
        }
    }

    static JsonNode byName(List<JsonNode> spans, String prefix) {
        return spans.stream().filter(s -> s.path("name").asText().startsWith(prefix)).findFirst()
                .orElseThrow(() -> new AssertionError("no span named " + prefix + "…"));
    }

    /** Every trace was started by a prompt the user typed (turn_kind, a filter key on every span). */
    static void assertPromptTurns(List<JsonNode> spans) {
        assertFalse(spans.isEmpty());
        for (JsonNode span : spans) assertEquals("prompt", RealClient.attr(span, "langfuse.trace.metadata.turn_kind"), span.path("name").asText());
    }

    /**
     * The Stop runs of our hook that Claude Code recorded in the main transcripts (each stop_hook_summary row's entry
     * for our command: durationMs, ...). No hook failed; the only hook errors are `othersErrors`, those of other hooks
     * (a blocking Stop hook's reason is one).
     */
    static List<JsonNode> ourHookRuns(RealClient.Result result, String... othersErrors) throws IOException {
        List<JsonNode> runs = new ArrayList<>();
        for (Path transcript : result.mainTranscripts()) {
            for (JsonNode row : RealClient.Result.rows(transcript)) {
                String type = row.path("attachment").path("type").asText();
                assertFalse(type.equals("hook_non_blocking_error") || type.equals("hook_cancelled"), "a hook failed: " + row);
                if (!"stop_hook_summary".equals(row.path("subtype").asText())) continue;
                for (JsonNode error : row.path("hookErrors")) {
                    assertTrue(List.of(othersErrors).contains(error.asText()), "a hook error: " + row);
                }
                for (JsonNode info : row.path("hookInfos")) {
                    if (info.path("command").asText().contains("litefuse-hook")) runs.add(info);
                }
            }
        }
        return runs;
    }

    static void keep(RealClient.Result result, String name) throws IOException {
        if (KEEP == null) return;
        Path target = Path.of(KEEP, name);
        Files.createDirectories(target);
        for (Path transcript : result.transcripts()) {
            Files.copy(transcript, target.resolve(transcript.getParent().getFileName() + "__" + transcript.getFileName()),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Files.writeString(target.resolve("hook.log"), result.hookLog());
        Files.writeString(target.resolve("result.json"), result.json().toPrettyString());
    }

    @Test
    void installedHookTracesThreeRealSessions() throws Exception {
        // The last step asks the client its version (inside the namespace, as every step runs).
        RealClient.Result result = RealClient.threeSessions(installed()).claude("--version").waitForSpans(3, 30_000).run();
        keep(result, "installed");
        assertExitCodes(result, 0, 0, 0, 0, 0);
        String version = result.stdout(4).trim().split(" ")[0];
        assertTrue(version.matches("\\d+\\.\\d+\\.\\d+"), () -> "claude --version: " + result.stdout(4));
        assertEquals(RealClient.THREE_SESSIONS_REQUESTS, result.messageRequests().size(), "Messages API requests");
        List<JsonNode> spans = result.spans();
        List<JsonNode> roots = result.roots();
        assertEquals(List.of("Claude Code - Turn 1", "Claude Code - Turn 2", "Claude Code - Turn 1"),
                roots.stream().map(r -> r.path("name").asText()).toList(), () -> "one trace per prompt; log:\n" + result.hookLog());
        // Stop and SessionEnd both fire; nothing is sent twice.
        result.assertEverySpanOnce();
        assertPromptTurns(spans);

        // Tokens equal what the mock returned, per trace.
        assertEquals(Map.of("input", 250L, "output", 50L, "cache_read", 2300L, "cache_write", 550L),
                result.tokens(roots.get(0).path("traceId").asText()));
        assertEquals(Map.of("input", 7L, "output", 8L, "cache_read", 2000L, "cache_write", 0L),
                result.tokens(roots.get(1).path("traceId").asText()));
        assertEquals(Map.of("input", 104L, "output", 108L, "cache_read", 112L, "cache_write", 72L),
                result.tokens(roots.get(2).path("traceId").asText()), "the parent's two calls plus the subagent's two");

        // The subagent sits under its tool call, with its own generations.
        JsonNode agentCall = byName(spans, "Tool call: Agent");
        JsonNode agent = byName(spans, "Agent: general-purpose");
        assertEquals(agentCall.path("spanId").asText(), agent.path("parentSpanId").asText());
        assertEquals("general-purpose", RealClient.attr(agent, "langfuse.observation.metadata.subagent_type"));
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
            JsonNode meta = RealClient.JSON.readTree(RealClient.attr(span, "langfuse.observation.metadata")).path("claude_code");
            if (!meta.has("request")) continue;
            assertEquals(requestSent.get(meta.path("requestRef").asText()), span.path("startNanos").asLong(), span.path("name").asText());
            assertEquals("medium", meta.path("request").path("effort").asText());
            timed++;
        }
        assertEquals(requestSent.size(), timed, "one generation per API request starts at its request");

        // What the user sees on every span: their user id, the extra tags, the client's version, the real-time header on every request.
        for (JsonNode span : spans) {
            assertEquals("me", RealClient.attr(span, "user.id"));
            assertEquals("[\"claude-code\",\"ci\",\"real-client\"]", RealClient.attr(span, "langfuse.trace.tags"));
            assertEquals(version, RealClient.attr(span, "langfuse.trace.metadata.claude_code_version"));
        }
        for (JsonNode request : result.json().path("otlp")) {
            assertEquals("4", request.path("headers").path("x-langfuse-ingestion-version").asText(), request.toString());
        }

        // The hook stayed quiet in Claude Code's own record, and the settings holding the key are the owner's only.
        List<JsonNode> runs = ourHookRuns(result);
        assertEquals(3, runs.size(), "one Stop run per prompt recorded");
        System.out.println("REALCLIENT | installed | Stop hook durationMs " + runs.stream().map(r -> r.path("durationMs").asText()).toList());
        Path settings = result.home().resolve(".claude/settings.json");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(settings)));
        JsonNode written = RealClient.JSON.readTree(settings.toFile());
        assertEquals("me", written.path("env").path("LITEFUSE_USER_ID").asText(), "install writes the optional settings it was given");
        assertEquals("ci, real-client", written.path("env").path("CC_LANGFUSE_TAGS").asText());
        assertTrue(written.path("hooks").has("SessionEnd"));
        assertTrue(result.hookLog().contains("Sent Claude Code - Turn 1: " + "http://127.0.0.1:"), result.hookLog());
    }

    @Test
    void blockingStopHookGrowsTheTurnAfterItWasSent() throws Exception {
        // The user's own Stop hook, there before litefuse-hook is installed beside it, blocks the first stop ("Also say
        // goodbye."): Claude Code goes on after ours sent the turn.
        ObjectNode settings = RealClient.JSON.createObjectNode();
        RealClient.addHook(settings.putObject("hooks"), "Stop", "${RECORD_HOOK} Blocker");
        RealClient.Scenario scenario = installed()
                .file("home/.claude/settings.json", settings.toPrettyString())
                .hookReply("Blocker.once.stdout", "{\"decision\": \"block\", \"reason\": \"Also say goodbye.\"}")
                .rule(MockAnthropic.rule(Map.of("anyUserContains", "Also say goodbye."),
                        MockAnthropic.reply(MockAnthropic.usage(12, 6, 500, 0, 0), MockAnthropic.text("Goodbye!"))))
                .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(10, 5, 400, 100, 0),
                        MockAnthropic.text("Hello there."))))
                .claude("-p", "say hello")
                .waitForSpans(1, 30_000);
        RealClient.Result result = scenario.run();
        keep(result, "blocking-stop");
        assertExitCodes(result, 0, 0);
        assertEquals("Goodbye!", result.stdout(1).trim());
        assertEquals(2, result.messageRequests().size(), "the answer, then the answer after the blocked stop");
        assertEquals(2, ourHookRuns(result, "Also say goodbye.").size(), "ours ran at both stops, beside the blocking hook");
        List<JsonNode> spans = result.spans();
        assertEquals(1, result.roots().size(), () -> "one trace; log:\n" + result.hookLog());
        // The turn grew after it was sent: the replay's final spans, each once.
        result.assertEverySpanOnce();
        assertPromptTurns(spans);
        String traceId = result.roots().get(0).path("traceId").asText();
        assertTrue(spans.stream().allMatch(s -> s.path("traceId").asText().equals(traceId)), "the answer joined the turn's trace");
        JsonNode root = result.roots().get(0);
        assertEquals("say hello", RealClient.attr(root, "langfuse.observation.input"), "the root's input stays");
        JsonNode goodbye = spans.stream().filter(s -> "generation".equals(RealClient.attr(s, "langfuse.observation.type")))
                .filter(s -> "Goodbye!".equals(RealClient.attr(s, "langfuse.observation.output"))).findFirst()
                .orElseThrow(() -> new AssertionError("the answer after the blocked stop is missing; log:\n" + result.hookLog()));
        assertEquals(root.path("spanId").asText(), goodbye.path("parentSpanId").asText());
        JsonNode feedback = byName(spans, "Stop hook feedback");
        assertEquals("Stop hook feedback:\nAlso say goodbye.", RealClient.attr(feedback, "langfuse.observation.input"));
        assertEquals(Map.of("input", 22L, "output", 11L, "cache_read", 900L, "cache_write", 100L), result.tokens(traceId),
                "both answers' tokens, each once");
        // The firings run detached: the first may read the turn before Claude Code went on (then the second sends the
        // rest as `Turn 1 (k more observations)`) or after; either way each span arrived once, above.
    }

    @Test
    void behindAProxyOverHttpsClaudeCodeWaitsForNoneOfTheExport() throws Exception {
        // Langfuse on a private CA, reached through a company proxy 40 ms away per round trip: the settings install
        // copies (Claude Code hands hooks no OTEL_* variable: install writes CC_OTEL_EXPORTER_OTLP_CERTIFICATE); the
        // Stop hook's wait as Claude Code records it.
        RealClient.Result result = installed().behindProxyOverHttps(20)
                .env("OTEL_EXPORTER_OTLP_CERTIFICATE", "${CA_FILE}").env("HTTPS_PROXY", "${PROXY_URL}")
                .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("Hello."))))
                .claude("-p", "say hello").claude("-p", "say hello again", "--continue").claude("-p", "and once more", "--continue")
                .waitForSpans(3, 30_000).run();
        assertExitCodes(result, 0, 0, 0, 0);
        assertEquals(3, result.roots().size(), () -> "three turns; log:\n" + result.hookLog());
        result.assertEverySpanOnce();
        List<JsonNode> runs = ourHookRuns(result);
        System.out.println("REALCLIENT | installed, HTTPS behind a 40 ms proxy | Stop hook durationMs "
                + runs.stream().map(r -> r.path("durationMs").asText()).toList());
    }

    @Test
    void sessionEndSendsAnUnfinishedLastTurn() throws Exception {
        // --max-turns 1: the model asks for a tool, the session ends before any final answer.
        RealClient.Result result = installed()
                .rule(MockAnthropic.rule(RealClient.FIRST, MockAnthropic.reply(MockAnthropic.usage(9, 9, 90, 0, 0),
                        MockAnthropic.text("Let me look."), MockAnthropic.toolUse("Bash", Map.of("command", "ls", "description", "List")))))
                .rule(MockAnthropic.rule(RealClient.AFTER_TOOL, MockAnthropic.reply(MockAnthropic.usage(1, 1, 1, 0, 0),
                        MockAnthropic.toolUse("Bash", Map.of("command", "ls -la", "description", "List more")))))
                .claude("-p", "look around", "--allowedTools", "Bash", "--max-turns", "1")
                .waitForSpans(1, 30_000)
                .run();
        keep(result, "session-end");
        assertExitCodes(result, 0, 1);
        assertEquals("Error: Reached max turns (1)", result.stdout(1).trim(), "claude -p ends at --max-turns, with exit 1");
        assertEquals(1, result.messageRequests().size(), "one request, then the turn limit");
        assertEquals(List.of(), ourHookRuns(result), "no Stop: SessionEnd alone sent the turn");
        List<JsonNode> roots = result.roots();
        assertEquals(1, roots.size(), () -> "the unfinished turn was sent; log:\n" + result.hookLog());
        JsonNode root = roots.get(0);
        assertEquals("WARNING", RealClient.attr(root, "langfuse.observation.level"));
        assertTrue(RealClient.attr(root, "langfuse.observation.status_message").startsWith("unfinished"),
                RealClient.attr(root, "langfuse.observation.status_message"));
        result.assertEverySpanOnce();
        assertPromptTurns(result.spans());
    }

    @Test
    void pluginFromThisRepositoryTracesTurnsAndBuildsItsFastPath() throws Exception {
        Path repo = repository();
        Path marketplace = repositoryAsCloned();
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
                .claude("plugin", "validate", "--strict", marketplace.toString())
                .claude("plugin", "marketplace", "add", marketplace.toString())
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
        // Doctor exits 1: the hook registered twice is the one problem it finds.
        assertExitCodes(result, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
        assertTrue(result.stdout(0).contains("Validation passed"), result.stdout(0));
        assertTrue(result.stdout(9).contains("registered twice: by the plugin litefuse-hook@litefuse"), result.stdout(9));
        assertTrue(result.stdout(9).contains("1 problem(s) found."), result.stdout(9));
        assertEquals(3, result.messageRequests().size(), "one request per prompt");
        assertEquals(4, ourHookRuns(result).size(), "the plugin's at each prompt, and the installed hook's at the third");
        List<JsonNode> spans = result.spans();
        assertEquals(List.of("Claude Code - Turn 1", "Claude Code - Turn 2", "Claude Code - Turn 3"),
                result.roots().stream().map(r -> r.path("name").asText()).toList(), () -> "log:\n" + result.hookLog());
        // Plugin and installed hook together: each span once.
        result.assertEverySpanOnce();
        assertPromptTurns(spans);
        assertEquals(Map.of("input", 10L, "output", 5L, "cache_read", 100L, "cache_write", 20L),
                result.tokens(result.roots().get(0).path("traceId").asText()));
        Path fastPath = result.home().resolve(".claude/plugins/data/litefuse-hook-litefuse/litefuse-hook");
        assertTrue(Files.isExecutable(fastPath), "the plugin built its fast path");
        assertTrue(Files.readString(fastPath).contains("litefuse_hook"), "a launcher of the built script");
        // The plugin's hook runs the fast path only when it names the installed copy's script (see hooks/litefuse-hook).
        String sourceLine = Files.readAllLines(fastPath).stream().filter(line -> line.startsWith("source='")).findFirst().orElse("");
        Path source = Path.of(sourceLine.replaceFirst("^source='(.*)'$", "$1"));
        assertTrue(source.isAbsolute() && Files.isRegularFile(source) && Files.isExecutable(source.resolveSibling("hooks/litefuse-hook")),
                "the fast path names the installed plugin's own script: " + sourceLine);
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
        assertExitCodes(result, 0, 0);
        assertEquals(2, result.messageRequests().size(), "one request per prompt");
        assertEquals(2, ourHookRuns(result).size(), "one Stop run per prompt");
        assertEquals(List.of("First answer.", "Second answer."),
                result.roots().stream().map(r -> RealClient.attr(r, "langfuse.observation.output")).toList(),
                () -> "each turn complete, with its final answer; log:\n" + result.hookLog());
        result.assertEverySpanOnce();
        assertPromptTurns(result.spans());
    }
}
