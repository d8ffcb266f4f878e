import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Drives the REAL Claude Code client offline, for tests.
 *
 * <p>Safety: the client only ever runs inside a network namespace that has nothing but loopback:
 * {@code unshare -n sh -c 'ip link set lo up && exec java ... RealClientScenario ...'}. The mock Anthropic API and the
 * OTLP receiver run in that JVM, inside the namespace, and {@link RealClientScenario} refuses to start the client
 * when it sees any other interface. Where no namespace can be made, {@link #assumeAvailable()} skips the test.
 *
 * <pre>
 * RealClient.Result r = RealClient.scenario()
 *         .file("home/.claude/settings.json", RealClient.recordingHooks("Stop", "SessionEnd"))
 *         .rule(MockAnthropic.rule(Map.of(), MockAnthropic.reply(usage, MockAnthropic.text("hi"))))
 *         .claude("-p", "say hi")
 *         .run();
 * </pre>
 */
final class RealClient {
    static final ObjectMapper JSON = new ObjectMapper();
    /** Overrides the binary; otherwise .ci/claude-code installs the pinned version and says where it is. */
    static final String BINARY_ENV = "LITEFUSE_CLAUDE_BIN";

    private static String unavailable;
    private static boolean probed;
    private static Path binary;

    private RealClient() {
    }

    /** Skips the calling test, with the reason, unless a loopback-only namespace can be made and the client installed. */
    static void assumeAvailable() {
        String reason = namespaceUnavailable();
        Assumptions.assumeTrue(reason == null, () -> "real Claude Code tests skipped: " + reason);
        claude();
    }

    /** Null when `unshare -n` works here and can bring loopback up; otherwise why not. */
    static synchronized String namespaceUnavailable() {
        if (probed) return unavailable;
        probed = true;
        try {
            ProcessBuilder builder = new ProcessBuilder("unshare", "-n", "sh", "-c",
                    "ip link set lo up && test \"$(tail -n +3 /proc/net/dev | wc -l)\" = 1");
            builder.redirectErrorStream(true);
            Process process = builder.start();
            String output;
            try (var in = process.getInputStream()) {
                output = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
            }
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                unavailable = "unshare -n did not finish";
            } else if (process.exitValue() != 0) {
                unavailable = "cannot create a loopback-only network namespace (unshare -n sh -c 'ip link set lo up' exited "
                        + process.exitValue() + (output.isEmpty() ? "" : ": " + output) + ")";
            }
        } catch (IOException e) {
            unavailable = "cannot run unshare: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            unavailable = "interrupted";
        }
        return unavailable;
    }

    /** The claude binary: $LITEFUSE_CLAUDE_BIN, or the pinned version installed by .ci/claude-code. */
    static synchronized Path claude() {
        if (binary != null) return binary;
        String given = System.getenv(BINARY_ENV);
        if (given != null && !given.isBlank()) return binary = Path.of(given).toAbsolutePath();
        Path script = TestSupport.testsDir().getParent().resolve(".ci/claude-code");
        try {
            Path log = TestSupport.tempFile("claude-code-install", ".log");
            Process process = new ProcessBuilder("bash", script.toString()).redirectError(log.toFile()).start();
            String out;
            try (var in = process.getInputStream()) {
                out = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
            }
            if (!process.waitFor(15, TimeUnit.MINUTES)) {
                process.destroyForcibly();
                throw new AssertionError(".ci/claude-code did not finish in 15 minutes");
            }
            if (process.exitValue() != 0 || out.isEmpty()) {
                String err = Files.readString(log);
                Assumptions.assumeTrue(hasCommand("npm"), "real Claude Code tests skipped: npm is not installed, so .ci/claude-code cannot install it");
                throw new AssertionError(".ci/claude-code failed (exit " + process.exitValue() + "): " + err);
            }
            String[] lines = out.split("\n");
            return binary = Path.of(lines[lines.length - 1].trim());
        } catch (IOException e) {
            throw new AssertionError("cannot run .ci/claude-code", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    static boolean hasCommand(String name) {
        try {
            return new ProcessBuilder("sh", "-c", "command -v \"$0\" >/dev/null", name).start().waitFor() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    static Scenario scenario() {
        return new Scenario();
    }

    /** MockAnthropic `when`s: the first request of a turn, and the request that carries a tool's result. */
    static final Map<String, Object> FIRST = Map.of("lastIsToolResult", false);
    static final Map<String, Object> AFTER_TOOL = Map.of("lastIsToolResult", true);

    /** Messages API requests {@link #threeSessions} makes: 2 (Bash round trip) + 1 + 4 (the subagent's two in the middle). */
    static final int THREE_SESSIONS_REQUESTS = 7;

    /**
     * Three `claude -p` runs, each with its own mock rules: a Bash tool call; a second turn with --continue; a turn that
     * delegates to a subagent (the Agent tool), which runs Bash itself. Per trace the mock returns, as input / output /
     * cache_read / cache_write: 250 / 50 / 2300 / 550, then 7 / 8 / 2000 / 0, then 104 / 108 / 112 / 72.
     */
    static Scenario threeSessions(Scenario scenario) {
        ObjectNode run1 = Scenario.step("-p", "run echo hi", "--allowedTools", "Bash");
        run1.putArray("rules")
                .add(MockAnthropic.rule(FIRST, MockAnthropic.reply(MockAnthropic.usage(100, 20, 1000, 300, 200),
                        MockAnthropic.thinking("I will run it."), MockAnthropic.text("Let me run it."),
                        MockAnthropic.toolUse("Bash", Map.of("command", "echo hi", "description", "Say hi")))))
                .add(MockAnthropic.rule(AFTER_TOOL, MockAnthropic.reply(MockAnthropic.usage(150, 30, 1300, 50, 0),
                        MockAnthropic.text("The command printed hi."))));
        ObjectNode run2 = Scenario.step("-p", "and once more", "--continue", "--allowedTools", "Bash");
        run2.putArray("rules").add(MockAnthropic.rule(Map.of(), MockAnthropic.reply(MockAnthropic.usage(7, 8, 2000, 0, 0),
                MockAnthropic.text("Second turn answer."))));
        ObjectNode run3 = Scenario.step("-p", "delegate the math", "--allowedTools", "Bash,Agent");
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

    /**
     * A settings.json whose hooks call ${RECORD_HOOK} EVENT for each event named: each call leaves, in WORK/hooks,
     * NANOS-PID-EVENT.json (its stdin), .env, .cwd, .args and copies of the transcript files the payload names as they
     * were at that moment (.transcript_path.jsonl, .agent_transcript_path.jsonl). A hook answers as told by files in
     * WORK/hook-replies: EVENT.once.stdout / .once.stderr / .once.exit for the next call only, otherwise
     * EVENT.stdout / EVENT.stderr / EVENT.exit for every call (see {@link Scenario#hookReply} and
     * {@link #hookReplies}).
     */
    static String recordingHooks(String... events) {
        ObjectNode settings = JSON.createObjectNode();
        ObjectNode hooks = settings.putObject("hooks");
        for (String event : events) addHook(hooks, event, "${RECORD_HOOK} " + event);
        return settings.toPrettyString();
    }

    /**
     * Sets, on a step, hook replies to write (or, for a null value, delete) in WORK/hook-replies just before it runs:
     * e.g. hookReplies(step, "Stop.once.stdout", "{\"decision\":\"block\",\"reason\":\"Also say goodbye.\"}").
     */
    static ObjectNode hookReplies(ObjectNode step, String... namesAndContents) {
        ObjectNode replies = step.has("hookReplies") ? (ObjectNode) step.get("hookReplies") : step.putObject("hookReplies");
        for (int i = 0; i + 1 < namesAndContents.length; i += 2) replies.put(namesAndContents[i], namesAndContents[i + 1]);
        return step;
    }

    /** Adds one command hook for an event to a settings "hooks" object. */
    static void addHook(ObjectNode hooks, String event, String command) {
        ArrayNode groups = hooks.has(event) ? (ArrayNode) hooks.get(event) : hooks.putArray(event);
        ObjectNode group = groups.addObject();
        group.putArray("hooks").addObject().put("type", "command").put("command", command);
    }

    /** What a scenario is: files to lay out, mock rules, environment, and the steps to run in order. */
    static final class Scenario {
        private final ObjectNode spec = JSON.createObjectNode();
        private long timeoutSeconds = 120;

        Scenario() {
            spec.putObject("files");
            spec.putArray("rules");
            spec.putObject("env");
            spec.putArray("steps");
        }

        /** A file under WORK (home/..., project/..., bin/...); placeholders are expanded inside the namespace. */
        Scenario file(String relative, String content) {
            ((ObjectNode) spec.get("files")).put(relative, content);
            return this;
        }

        Scenario executable(String relative, String content) {
            ((ObjectNode) spec.get("files")).putObject(relative).put("content", content).put("executable", true);
            return this;
        }

        /** Mock rules for the whole scenario (see MockAnthropic). */
        Scenario rule(JsonNode... rules) {
            for (JsonNode rule : rules) ((ArrayNode) spec.get("rules")).add(rule);
            return this;
        }

        /** Mock rules for the step added last only (they replace the rules of the steps before it, as a step's own rules do). */
        Scenario withStepRules(JsonNode... rules) {
            ArrayNode steps = (ArrayNode) spec.get("steps");
            ArrayNode stepRules = ((ObjectNode) steps.get(steps.size() - 1)).putArray("rules");
            for (JsonNode rule : rules) stepRules.add(rule);
            return this;
        }

        /** Environment for every step, over the safe defaults; a null value removes a default. */
        /** Langfuse over HTTPS on a throwaway CA (${CA_FILE}), behind a CONNECT proxy (${PROXY_URL}) adding 2 x `delayMillis` per round trip. */
        Scenario behindProxyOverHttps(long delayMillis) {
            spec.putObject("network").put("tls", true).put("proxyDelayMillis", delayMillis);
            return this;
        }

        /** A loopback stand-in for Maven Central (${MAVEN_URL}) serving the files of `dir` by name (see RealClientScenario.MavenMirror). */
        Scenario mavenMirror(Path dir) {
            spec.put("mavenMirror", dir.toString());
            return this;
        }

        Scenario env(String name, String value) {
            ((ObjectNode) spec.get("env")).put(name, value);
            return this;
        }

        /** One run of claude with these arguments, in WORK/project. */
        Scenario claude(String... args) {
            return step(step(args));
        }

        /** A step built with {@link #step(String...)} and changed further (env, rules, hookReplies, cwd, stdin). */
        Scenario step(ObjectNode step) {
            ((ArrayNode) spec.get("steps")).add(step);
            timeoutSeconds += step.path("timeoutSeconds").asLong(180) + 5;
            return this;
        }

        static ObjectNode step(String... args) {
            ObjectNode step = JSON.createObjectNode();
            ArrayNode argv = step.putArray("args");
            for (String arg : args) argv.add(arg);
            return step;
        }

        /** A step that runs another command (not claude) inside the namespace. */
        Scenario exec(String... command) {
            ObjectNode step = JSON.createObjectNode();
            ArrayNode argv = step.putArray("exec");
            for (String arg : command) argv.add(arg);
            return step(step);
        }

        private int interactiveCount;

        /**
         * One interactive session (the TUI, as a person uses it) driven through tmux inside the namespace: types each
         * prompt, waits until the transcript has one more turn_duration row (the TUI writes one per finished turn),
         * then types /exit and waits for the client to quit. The last screen is saved as WORK/steps/interactive-N.screen.
         * Lays out HOME/.claude.json (onboarding done, project trusted, test API key approved) unless a file() did.
         */
        Scenario interactive(List<String> claudeArgs, String... prompts) {
            return interactive(claudeArgs, java.util.Arrays.stream(prompts).map(prompt -> new Prompt(prompt, 1)).toList());
        }

        /** A prompt to type, and how many turns it makes (a launched workflow or background agent adds a notification turn). */
        record Prompt(String text, int turns) {
        }

        /** As above, each prompt waiting for as many more turns as it makes. */
        Scenario interactive(List<String> claudeArgs, List<Prompt> prompts) {
            Assumptions.assumeTrue(hasCommand("tmux"), "interactive Claude Code tests skipped: tmux is not installed");
            int n = interactiveCount++;
            if (!((ObjectNode) spec.get("files")).has("home/.claude.json")) {
                String key = "sk-ant-test-litefuse-0000000000000000";
                ObjectNode claudeJson = JSON.createObjectNode().put("hasCompletedOnboarding", true).put("theme", "dark");
                claudeJson.putObject("customApiKeyResponses").putArray("approved").add(key.substring(key.length() - 20));
                claudeJson.putObject("projects").putObject("${PROJECT}").put("hasTrustDialogAccepted", true);
                file("home/.claude.json", claudeJson.toPrettyString());
            }
            StringBuilder script = new StringBuilder("""
                    #!/bin/bash
                    # Drives one interactive Claude Code session through tmux (generated by RealClient.Scenario.interactive).
                    set -u
                    export TERM=xterm-256color
                    # A server of its own (named by this script's pid), gone when the script ends, whatever ends it.
                    T="tmux -L litefuse-$$-%1$d -f /dev/null"
                    trap '$T kill-server 2>/dev/null' EXIT
                    screen="${WORK}/steps/interactive-%1$d.screen"
                    turns() { cat "${HOME}"/.claude/projects/*/*.jsonl 2>/dev/null | grep -c '"subtype":"turn_duration"'; }
                    wait_until() { # seconds, condition...
                      local limit=$(( $1 * 10 )); shift
                      for ((i = 0; i < limit; i++)); do if "$@"; then return 0; fi; sleep 0.1; done
                      $T capture-pane -p -t cc >"$screen" 2>/dev/null; echo "timed out waiting for: $*" >&2; return 1
                    }
                    ready() { $T capture-pane -p -t cc 2>/dev/null | grep -q '\u276F'; }
                    more_turns() { [ "$(turns)" -ge "$1" ]; }
                    gone() { ! $T has-session -t cc 2>/dev/null; }
                    $T new-session -d -s cc -x 160 -y 50 "cd '${PROJECT}' && exec '${CLAUDE}' %2$s 2>'${WORK}/steps/interactive-%1$d.stderr'"
                    wait_until 60 ready || exit 1
                    base=$(turns)
                    n=0
                    """.formatted(n, shellWords(claudeArgs)));
            for (Prompt prompt : prompts) {
                script.append("sleep 0.3\n");
                script.append("$T send-keys -t cc -l ").append(shellQuote(prompt.text())).append("\n");
                script.append("sleep 0.3\n$T send-keys -t cc Enter\n");
                script.append("n=$((n + ").append(prompt.turns()).append("))\nwait_until 120 more_turns $((base + n)) || exit 1\n");
            }
            script.append("""
                    $T capture-pane -p -t cc >"$screen"
                    sleep 0.3
                    $T send-keys -t cc -l /exit
                    sleep 0.3
                    $T send-keys -t cc Enter
                    wait_until 60 gone || { $T kill-server; exit 1; }
                    exit 0
                    """);
            executable("bin/interactive-" + n + ".sh", script.toString());
            ObjectNode step = JSON.createObjectNode();
            step.putArray("exec").add("${WORK}/bin/interactive-" + n + ".sh");
            step.put("timeoutSeconds", 60 + 130L * prompts.size() + 70);
            return step(step);
        }

        private static String shellQuote(String word) {
            return "'" + word.replace("'", "'\\''") + "'";
        }

        private static String shellWords(List<String> words) {
            StringBuilder out = new StringBuilder();
            for (String word : words) out.append(out.length() == 0 ? "" : " ").append(shellQuote(word));
            return out.toString();
        }

        /** Writes WORK/hook-replies/NAME before the first step (NAME is e.g. "Stop.once.stdout", "Stop.exit"). */
        Scenario hookReply(String name, String content) {
            return file("hook-replies/" + name, content);
        }

        /** Waits after the last step until the OTLP receiver has accepted this many root spans (or the time is up). */
        Scenario waitForSpans(int roots, long timeoutMillis) {
            spec.putObject("waitForSpans").put("roots", roots).put("timeoutMillis", timeoutMillis);
            timeoutSeconds += timeoutMillis / 1000 + 1;
            return this;
        }

        ObjectNode spec() {
            return spec;
        }

        /** Runs the scenario in a fresh WORK directory inside a loopback-only network namespace. */
        Result run() throws IOException, InterruptedException {
            return run(TestSupport.tempDir("realclient-"));
        }

        Result run(Path work) throws IOException, InterruptedException {
            assumeAvailable();
            ObjectNode full = spec.deepCopy();
            full.put("work", work.toAbsolutePath().toString());
            full.put("claude", RealClient.claude().toString());
            Path scenarioFile = work.resolve("scenario.json");
            Path resultFile = work.resolve("result.json");
            Files.writeString(scenarioFile, full.toPrettyString());
            Path java = Path.of(System.getProperty("java.home"), "bin", "java");
            ProcessBuilder builder = new ProcessBuilder("unshare", "-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"",
                    java.toString(), "-cp", System.getProperty("java.class.path"), "RealClientScenario",
                    scenarioFile.toString(), resultFile.toString());
            Path log = work.resolve("scenario.log");
            builder.redirectErrorStream(true).redirectOutput(log.toFile());
            builder.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Process process = builder.start();
            if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                throw new AssertionError("the scenario did not finish in " + timeoutSeconds + " s; log: " + Files.readString(log));
            }
            if (process.exitValue() != 0 || !Files.exists(resultFile)) {
                throw new AssertionError("the scenario failed (exit " + process.exitValue() + "): " + Files.readString(log));
            }
            return new Result(work, JSON.readTree(resultFile.toFile()));
        }
    }

    /** A span attribute as text (JSON for a list), or null. */
    static String attr(JsonNode span, String key) {
        JsonNode value = span.path("attributes").get(key);
        return value == null || value.isNull() ? null : value.isTextual() ? value.asText() : value.toString();
    }

    /** One hook call recorded by ${RECORD_HOOK}. */
    record HookCall(String event, long nanos, JsonNode payload, Map<String, String> env, List<String> args, String cwd,
                    Path transcriptSnapshot, Path agentTranscriptSnapshot) {
    }

    /** What the scenario saw. Files (home, project, transcripts, hooks) stay under work for the test to read. */
    record Result(Path work, JsonNode json) {
        Path home() {
            return work.resolve("home");
        }

        Path project() {
            return work.resolve("project");
        }

        JsonNode step(int index) {
            return json.path("steps").get(index);
        }

        int exitCode(int step) {
            return step(step).path("exitCode").asInt();
        }

        String stdout(int step) {
            return step(step).path("stdout").asText();
        }

        String stderr(int step) {
            return step(step).path("stderr").asText();
        }

        /** Every request the mock API got, in order. */
        List<JsonNode> requests() {
            List<JsonNode> list = new ArrayList<>();
            json.path("requests").forEach(list::add);
            return list;
        }

        /** The Messages API requests (count_tokens and other endpoints left out). */
        List<JsonNode> messageRequests() {
            return requests().stream().filter(r -> r.path("path").asText().equals("/v1/messages")).toList();
        }

        /** Every OTLP span the receiver accepted, as JSON (traceId, spanId, parentSpanId, name, attributes, ...). */
        List<JsonNode> spans() {
            List<JsonNode> list = new ArrayList<>();
            for (JsonNode request : json.path("otlp")) {
                if (request.path("status").asInt() == 200) request.path("spans").forEach(list::add);
            }
            return list;
        }

        List<Path> transcripts() {
            List<Path> list = new ArrayList<>();
            json.path("transcripts").forEach(p -> list.add(Path.of(p.asText())));
            return list;
        }

        /** The root spans (one per turn sent), in the order they arrived. */
        List<JsonNode> roots() {
            return spans().stream().filter(s -> s.path("parentSpanId").asText().isEmpty()).toList();
        }

        /**
         * Counted in spans, as a Langfuse v4 user sees them: no span received twice, and the spans received are exactly
         * those the replay of the main transcripts (with their subagents) produces, also where a turn grew after it was
         * sent. See {@link TestSupport#assertEverySpanOnce}.
         */
        void assertEverySpanOnce() throws IOException {
            TestSupport.assertEverySpanOnce(spans().stream().map(s -> s.path("traceId").asText() + "/" + s.path("spanId").asText()).toList(),
                    TestSupport.expectedSpanKeys(mainTranscripts()));
        }

        /** input / output / cache_read / cache_write over the spans of one trace, as Langfuse would sum them. */
        Map<String, Long> tokens(String traceId) throws IOException {
            List<Map<String, Long>> usages = new ArrayList<>();
            for (JsonNode span : spans()) {
                String details = attr(span, "langfuse.observation.usage_details");
                if (details == null || !span.path("traceId").asText().equals(traceId)) continue;
                Map<String, Long> usage = new LinkedHashMap<>();
                JSON.readTree(details).fields().forEachRemaining(f -> usage.put(f.getKey(), f.getValue().asLong()));
                usages.add(usage);
            }
            return TestSupport.totalsOf(usages);
        }

        /** litefuse-hook's log in the scenario's HOME (for failure messages; an error reading it is returned as text). */
        String hookLog() {
            try {
                return TestSupport.log(home());
            } catch (IOException e) {
                return e.toString();
            }
        }

        /** Main-session transcripts (HOME/.claude/projects/PROJECT/SESSION.jsonl), not subagents'. */
        List<Path> mainTranscripts() {
            return transcripts().stream().filter(p -> p.getParent().getParent().getFileName().toString().equals("projects")).toList();
        }

        static List<JsonNode> rows(Path transcript) throws IOException {
            List<JsonNode> rows = new ArrayList<>();
            for (String line : Files.readAllLines(transcript, StandardCharsets.UTF_8)) {
                if (!line.isBlank()) rows.add(JSON.readTree(line));
            }
            return rows;
        }

        /** An `env | sort` dump as a map (a line without "=" is the tail of a multi-line value, and left out). */
        static Map<String, String> envFile(Path file) throws IOException {
            Map<String, String> env = new LinkedHashMap<>();
            for (String line : Files.readAllLines(file)) {
                int eq = line.indexOf('=');
                if (eq > 0) env.put(line.substring(0, eq), line.substring(eq + 1));
            }
            return env;
        }

        /** The hook calls recorded by ${RECORD_HOOK}, in the order they happened. */
        List<HookCall> hookCalls() throws IOException {
            Path dir = work.resolve("hooks");
            List<HookCall> calls = new ArrayList<>();
            if (!Files.isDirectory(dir)) return calls;
            List<Path> payloads;
            try (Stream<Path> files = Files.list(dir)) {
                payloads = files.filter(p -> p.getFileName().toString().matches("\\d+-\\d+-[^.]+\\.json")).sorted().toList();
            }
            for (Path payload : payloads) {
                String name = payload.getFileName().toString();
                String base = name.substring(0, name.length() - ".json".length());
                String[] parts = base.split("-", 3);
                Path envFile = dir.resolve(base + ".env");
                Map<String, String> env = Files.exists(envFile) ? envFile(envFile) : new LinkedHashMap<>();
                String text = Files.readString(payload);
                Path snapshot = dir.resolve(base + ".transcript_path.jsonl");
                Path agentSnapshot = dir.resolve(base + ".agent_transcript_path.jsonl");
                Path args = dir.resolve(base + ".args");
                Path cwd = dir.resolve(base + ".cwd");
                calls.add(new HookCall(parts[2], Long.parseLong(parts[0]), text.isBlank() ? JSON.nullNode() : JSON.readTree(text), env,
                        Files.exists(args) ? Files.readAllLines(args) : List.of(), Files.exists(cwd) ? Files.readString(cwd).trim() : "",
                        Files.exists(snapshot) ? snapshot : null, Files.exists(agentSnapshot) ? agentSnapshot : null));
            }
            return calls;
        }

        List<HookCall> hookCalls(String event) throws IOException {
            return hookCalls().stream().filter(c -> c.event().equals(event)).toList();
        }
    }
}
