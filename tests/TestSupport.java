import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** Shared helpers: paths, a temporary HOME for hook runs, firing the hook in-process, independent usage sums. */
final class TestSupport {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String PUBLIC_KEY = "pk-lf-test-public";
    static final String SECRET_KEY = "sk-lf-test-SECRET-do-not-log";
    static final litefuse_hook.Masker MASKER = litefuse_hook.Masker.fromEnv(null, null, new java.util.ArrayList<>());

    private TestSupport() {
    }

    /** tests/ itself, wherever the suite is started from. */
    static Path testsDir() {
        for (Path candidate : List.of(Paths.get("tests"), Paths.get("."))) {
            if (Files.isDirectory(candidate.resolve("transcripts")) && Files.exists(candidate.resolve("TestAll.java"))) {
                return candidate.toAbsolutePath().normalize();
            }
        }
        throw new IllegalStateException("run the tests from the repository root or from tests/");
    }

    static Path transcript(String name) {
        return testsDir().resolve("transcripts").resolve(name);
    }

    static List<Path> recordedTranscripts() throws IOException {
        try (Stream<Path> files = Files.list(testsDir().resolve("transcripts"))) {
            return files.filter(p -> p.toString().endsWith(".jsonl")).sorted().toList();
        }
    }

    /** The shared corpus beside the repository (present on developer machines and in CI), or null. */
    static Path sharedTranscripts() {
        Path shared = testsDir().getParent().getParent().resolve("shared").resolve("transcripts");
        return Files.isDirectory(shared) ? shared : null;
    }

    static litefuse_hook.Traces.TraceContext context(Path file) {
        return litefuse_hook.Traces.TraceContext.of(options("test-user"), file.getFileName().toString().replaceFirst("\\.jsonl$", ""),
                "tests/transcripts/" + file.getFileName());
    }

    /** Trace options as the hook reads them from an environment: LITEFUSE_USER_ID=userId and the name-value pairs given. */
    static litefuse_hook.Config.TraceOptions options(String userId, String... settings) {
        Map<String, String> env = new HashMap<>(Map.of("HOME", testsDir().toString(), "LITEFUSE_USER_ID", userId));
        for (int i = 0; i < settings.length; i += 2) env.put(settings[i], settings[i + 1]);
        return litefuse_hook.Config.loadConfig(env).trace();
    }

    static List<litefuse_hook.TraceModel.TraceRecord> replay(Path file) throws IOException {
        return litefuse_hook.Pipeline.replayFile(file, context(file));
    }

    /** Every temporary file and folder of a test run lives in one folder, deleted when the test JVM exits. */
    static final Path SCRATCH = scratch();

    private static Path scratch() {
        try {
            Path root = Files.createTempDirectory("litefuse-tests-");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(root)));
            return root;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static Path tempHome() throws IOException {
        return tempDir("home-");
    }

    static Path tempDir(String prefix) throws IOException {
        return Files.createTempDirectory(SCRATCH, prefix);
    }

    static Path tempFile(String prefix, String suffix) throws IOException {
        return Files.createTempFile(SCRATCH, prefix, suffix);
    }

    /** Deletes a folder and what it holds; what cannot be deleted (a process still writing) is left. */
    static void deleteTree(Path root) {
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (IOException | java.io.UncheckedIOException e) {
            // Gone already, or half: the operating system's temporary folder keeps the rest.
        }
    }

    static Map<String, String> hookEnv(Path home, String baseUrl) {
        Map<String, String> env = new HashMap<>();
        env.put("HOME", home.toString());
        env.put("TRACE_TO_LANGFUSE", "true");
        env.put("LANGFUSE_PUBLIC_KEY", PUBLIC_KEY);
        env.put("LANGFUSE_SECRET_KEY", SECRET_KEY);
        env.put("LANGFUSE_BASE_URL", baseUrl);
        env.put("LITEFUSE_USER_ID", "test-user");
        return env;
    }

    static String payload(String sessionId, Path transcript) {
        return JSON.createObjectNode().put("session_id", sessionId).put("transcript_path", transcript.toString())
                .put("hook_event_name", "Stop").put("stop_hook_active", false).toString();
    }

    /** One Stop firing, in this JVM, as Claude Code would do it. */
    static void fireHook(Map<String, String> env, String sessionId, Path transcript) {
        litefuse_hook.Hook.runHook(env, new ByteArrayInputStream(payload(sessionId, transcript).getBytes(StandardCharsets.UTF_8)));
    }

    /** A hook process as Claude Code runs it: exit code, what it printed, and its wall time. */
    record Run(int exitCode, String stdout, String stderr, long wallMillis) {
    }

    /** Starts `java litefuse_hook` on this suite's class path with exactly `env` and the given stdin. */
    static Process startHookProcess(Map<String, String> env, byte[] stdin, Path stdout, Path stderr) throws IOException {
        return startCliProcess(env, stdin, stdout, stderr);
    }

    /**
     * Starts `java litefuse_hook ARGS...` on this suite's class path with exactly `env` (plus PATH) and the given stdin:
     * nothing of the developer's environment (OTEL_EXPORTER_OTLP_*, LANGFUSE_*, CC_LANGFUSE_*) leaks in.
     */
    static Process startCliProcess(Map<String, String> env, byte[] stdin, Path stdout, Path stderr, String... args) throws IOException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> command = new ArrayList<>(List.of(java.toString(), "-cp", System.getProperty("java.class.path"), "litefuse_hook"));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().clear();
        builder.environment().put("PATH", System.getenv().getOrDefault("PATH", "/usr/bin:/bin"));
        builder.environment().putAll(env);
        builder.redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
        Process process = builder.start();
        feed(process, stdin);
        return process;
    }

    /** Writes `stdin` to the process and closes it; the process may exit before reading it, which is its right. */
    static void feed(Process process, byte[] stdin) {
        try (var in = process.getOutputStream()) {
            in.write(stdin);
        } catch (IOException e) {
            // Exited first: nothing was waiting for the input.
        }
    }

    static Run runHookProcess(Map<String, String> env, String stdin) throws IOException, InterruptedException {
        return runHookProcess(env, stdin.getBytes(StandardCharsets.UTF_8));
    }

    static Run runHookProcess(Map<String, String> env, byte[] stdin) throws IOException, InterruptedException {
        return runCliProcess(env, stdin);
    }

    /** Runs `java litefuse_hook ARGS...` as {@link #startCliProcess} does, and waits for it (2 minutes at most). */
    static Run runCliProcess(Map<String, String> env, byte[] stdin, String... args) throws IOException, InterruptedException {
        Path out = tempFile("hook-out", ".txt");
        Path err = tempFile("hook-err", ".txt");
        long started = System.nanoTime();
        Process process = startCliProcess(env, stdin, out, err, args);
        if (!process.waitFor(120, java.util.concurrent.TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("the litefuse_hook process did not finish");
        }
        long wall = (System.nanoTime() - started) / 1_000_000;
        Run run = new Run(process.exitValue(), Files.readString(out), Files.readString(err), wall);
        Files.delete(out);
        Files.delete(err);
        return run;
    }

    /** Exit code 0 and nothing on Claude Code's terminal. */
    static void assertQuietExit(Run run) {
        org.junit.jupiter.api.Assertions.assertEquals(List.of(0, "", ""), List.of(run.exitCode(), run.stdout(), run.stderr()),
                "exit 0 and nothing on Claude Code's terminal");
    }

    /** Langfuse v4's real-time path: every request of every command carries the ingestion-version header. */
    static void assertV4HeaderOnEveryRequest(OtlpReceiver receiver) {
        List<OtlpReceiver.Request> all = new ArrayList<>(receiver.requests());
        all.addAll(receiver.lookups());
        org.junit.jupiter.api.Assertions.assertFalse(all.isEmpty(), "requests were made");
        for (OtlpReceiver.Request request : all) {
            org.junit.jupiter.api.Assertions.assertEquals("4", request.headers().get("x-langfuse-ingestion-version"), request.path());
        }
    }

    /** "traceId/spanId" of each span, as a set: a span received twice is in it once (see spansReceivedTwice). */
    static Set<String> spanKeys(List<OtlpReceiver.ReceivedSpan> spans) {
        return spans.stream().map(s -> s.traceId() + "/" + s.spanId()).collect(Collectors.toCollection(TreeSet::new));
    }

    /** "traceId/spanId" of every observation of these traces. */
    static Set<String> spanKeysOf(List<litefuse_hook.TraceModel.TraceRecord> traces) {
        Set<String> keys = new TreeSet<>();
        traces.forEach(trace -> trace.observations().forEach(o -> keys.add(trace.traceId() + "/" + o.id())));
        return keys;
    }

    /** The spans the replay of these transcripts produces: what the hook must have delivered, each once. */
    static Set<String> expectedSpanKeys(Path... transcripts) throws IOException {
        return expectedSpanKeys(List.of(transcripts));
    }

    static Set<String> expectedSpanKeys(List<Path> transcripts) throws IOException {
        Set<String> keys = new TreeSet<>();
        for (Path transcript : transcripts) keys.addAll(spanKeysOf(replay(transcript)));
        return keys;
    }

    /** The spans of the first `turns` traces the replay of this transcript produces (the turns sent so far). */
    static Set<String> expectedSpanKeys(Path transcript, int turns) throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> traces = replay(transcript);
        org.junit.jupiter.api.Assertions.assertTrue(traces.size() >= turns, "the replay has " + traces.size() + " turns, not " + turns);
        return spanKeysOf(traces.subList(0, turns));
    }

    /**
     * Counted in spans, as a Langfuse v4 user sees them (a span sent again shows twice; a turn that grew after it was
     * sent gets child spans only): the receiver stored exactly the expected spans, none twice.
     */
    static void assertEverySpanOnce(OtlpReceiver receiver, Set<String> expected) {
        assertEverySpanOnce(receiver.storedSpans().stream().map(s -> s.traceId() + "/" + s.spanId()).toList(), expected);
    }

    /** The same over the "traceId/spanId" of every span received, in order: a span received twice is in it twice. */
    static void assertEverySpanOnce(List<String> received, Set<String> expected) {
        org.junit.jupiter.api.Assertions.assertEquals(0, received.size() - new java.util.HashSet<>(received).size(), "spans received twice");
        org.junit.jupiter.api.Assertions.assertEquals(expected, new TreeSet<>(received), "the spans stored are the replay's");
    }

    /** The executable `name` on this process's PATH. */
    static Path onPath(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(java.io.File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, name))) return Path.of(dir, name);
        }
        throw new AssertionError(name + " is not on PATH");
    }

    /** Where the hook keeps its files under this HOME (the hook's own StateLayout). */
    static litefuse_hook.StateLayout layout(Path home) {
        return litefuse_hook.StateLayout.under(home);
    }

    /** The state file of a session, as the hook names it. */
    static Path stateFile(Path home, String sessionId, Path transcript) {
        return layout(home).state(litefuse_hook.StateFiles.stateKey(sessionId, transcript.toAbsolutePath().normalize().toString()));
    }

    static String log(Path home) throws IOException {
        Path log = layout(home).log();
        return Files.exists(log) ? Files.readString(log) : "";
    }

    /**
     * Token totals computed straight from the transcript, independently of the hook: each main-chain message id
     * counted once, input and cache fields from its last row, output_tokens as its largest value.
     */
    static Map<String, Long> usageOverUniqueMessages(Path file) throws IOException {
        return usageOverUniqueMessages(file, false);
    }

    /** The same, counting sidechain rows too (a subagent's file, or 1.0.x inline subagents). */
    static Map<String, Long> usageOverUniqueMessages(Path file, boolean includeSidechains) throws IOException {
        Map<String, JsonNode> lastUsage = new LinkedHashMap<>();
        Map<String, Long> maxOutput = new HashMap<>();
        for (String line : Files.readAllLines(file)) {
            JsonNode row;
            try {
                row = JSON.readTree(line);
            } catch (IOException e) {
                continue;
            }
            if (row == null || !"assistant".equals(row.path("type").asText())) continue;
            if (!includeSidechains && row.path("isSidechain").asBoolean()) continue;
            String model = row.path("message").path("model").asText();
            String id = row.path("message").path("id").asText();
            if (model.equals("<synthetic>") || id.isEmpty()) continue;
            JsonNode usage = row.path("message").path("usage");
            lastUsage.put(id, usage);
            maxOutput.merge(id, usage.path("output_tokens").asLong(), Math::max);
        }
        Map<String, Long> totals = new LinkedHashMap<>();
        lastUsage.forEach((id, usage) -> {
            totals.merge("input", usage.path("input_tokens").asLong(), Long::sum);
            totals.merge("output", maxOutput.get(id), Long::sum);
            totals.merge("cache_read", usage.path("cache_read_input_tokens").asLong(), Long::sum);
            totals.merge("cache_write", usage.path("cache_creation_input_tokens").asLong(), Long::sum);
        });
        return totals;
    }

    /** The same four totals from usage_details maps as the hook sends them. */
    static Map<String, Long> totalsOf(List<Map<String, Long>> usages) {
        Map<String, Long> totals = new LinkedHashMap<>();
        for (String key : List.of("input", "output", "cache_read", "cache_write")) totals.put(key, 0L);
        for (Map<String, Long> usage : usages) {
            usage.forEach((key, value) -> {
                String bucket = switch (key) {
                    case "input" -> "input";
                    case "output" -> "output";
                    case "cache_read_input_tokens" -> "cache_read";
                    case "cache_creation_input_tokens", "input_cache_creation_5m", "input_cache_creation_1h" -> "cache_write";
                    default -> throw new AssertionError("unexpected usage key " + key);
                };
                totals.merge(bucket, value, Long::sum);
            });
        }
        return totals;
    }

    static List<Map<String, Long>> usagesOf(List<litefuse_hook.TraceModel.TraceRecord> traces) {
        List<Map<String, Long>> usages = new ArrayList<>();
        traces.forEach(t -> t.observations().stream().filter(o -> o.usage() != null).forEach(o -> usages.add(o.usage())));
        return usages;
    }
}
