import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.net.NetworkInterface;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The inner half of {@link RealClient}: runs INSIDE a network namespace that has only loopback
 * ({@code unshare -n sh -c 'ip link set lo up && exec java -cp ... RealClientScenario scenario.json result.json'}).
 * It starts {@link MockAnthropic} and an {@link OtlpReceiver} on 127.0.0.1, writes the scenario's files, runs the real
 * {@code claude} once per step with a clean environment, and writes what it saw to the result file as JSON.
 * It refuses to run claude when it sees any network interface other than loopback.
 *
 * <p>Placeholders in files, arguments and environment values: ${WORK}, ${HOME}, ${PROJECT}, ${MOCK_URL},
 * ${OTLP_URL}, ${JAVA}, ${CLASSPATH}, ${CLAUDE}, ${RECORD_HOOK}.
 */
public final class RealClientScenario {
    static final ObjectMapper JSON = new ObjectMapper();

    /** The shell script every scenario gets as ${RECORD_HOOK} LABEL: see {@link RealClient#recordingHooks}. */
    static final String RECORD_HOOK = """
            #!/bin/sh
            # Records one hook call: stdin payload, environment, arguments, cwd, and copies of the transcripts named in
            # the payload as they were at that moment. Then answers as told by files in ${WORK}/hook-replies (see below).
            label="$1"
            dir="${WORK}/hooks"
            replies="${WORK}/hook-replies"
            mkdir -p "$dir"
            base="$dir/$(date +%s%N)-$$-$label"
            cat >"$base.json"
            env | sort >"$base.env"
            pwd >"$base.cwd"
            printf '%s\\n' "$@" >"$base.args"
            for key in transcript_path agent_transcript_path; do
              file=$(sed -n "s/.*\\"$key\\"[[:space:]]*:[[:space:]]*\\"\\([^\\"]*\\)\\".*/\\1/p" "$base.json" | head -1)
              if [ -n "$file" ] && [ -f "$file" ]; then cp "$file" "$base.$key.jsonl"; fi
            done
            # A reply: LABEL.once.{stdout,stderr,exit} for the next call only (then renamed *.used), else LABEL.{stdout,stderr,exit}.
            if [ -f "$replies/$label.once.stdout" ] || [ -f "$replies/$label.once.stderr" ] || [ -f "$replies/$label.once.exit" ]; then
              kind="$label.once"
            else
              kind="$label"
            fi
            code=0
            if [ -f "$replies/$kind.stdout" ]; then cat "$replies/$kind.stdout"; fi
            if [ -f "$replies/$kind.stderr" ]; then cat "$replies/$kind.stderr" >&2; fi
            if [ -f "$replies/$kind.exit" ]; then code=$(cat "$replies/$kind.exit"); fi
            if [ "$kind" = "$label.once" ]; then
              for f in "$replies/$kind".stdout "$replies/$kind".stderr "$replies/$kind".exit; do
                if [ -f "$f" ]; then mv "$f" "$f.used"; fi
              done
            fi
            exit "$code"
            """;

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: RealClientScenario scenario.json result.json");
            System.exit(2);
        }
        String notIsolated = notIsolated();
        if (notIsolated != null) {
            System.err.println("RealClientScenario: refusing to run Claude Code: " + notIsolated);
            System.exit(3);
        }
        JsonNode scenario = JSON.readTree(Path.of(args[0]).toFile());
        ObjectNode result = run(scenario);
        Path out = Path.of(args[1]);
        Files.writeString(out, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result), StandardCharsets.UTF_8);
        System.exit(0);
    }

    /** Null when the only network interface is loopback; otherwise why not. */
    static String notIsolated() throws IOException {
        List<String> others = new ArrayList<>();
        for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            if (!nic.isLoopback()) others.add(nic.getName());
        }
        // /proc/net/dev lists the devices of the reader's own network namespace (/sys/class/net would not).
        Path dev = Path.of("/proc/net/dev");
        if (Files.isReadable(dev)) {
            for (String line : Files.readAllLines(dev)) {
                int colon = line.indexOf(':');
                if (colon < 0) continue;
                String name = line.substring(0, colon).trim();
                if (!name.equals("lo") && !others.contains(name)) others.add(name);
            }
        }
        return others.isEmpty() ? null : "this network namespace has interfaces other than loopback: " + others;
    }

    /** Whether a hook firing (a JVM running litefuse_hook, not an install building the fast path) is still running. */
    static boolean hookFiringsRunning() {
        return ProcessHandle.allProcesses().anyMatch(process -> {
            List<String> arguments = List.of(process.info().arguments().orElse(new String[0]));
            boolean hook = arguments.stream().anyMatch(a -> a.equals("litefuse_hook") || a.endsWith("/litefuse_hook.java"));
            return hook && !arguments.contains("install") && !arguments.contains("--print-hook-command");
        });
    }

    static ObjectNode run(JsonNode scenario) throws Exception {
        Path work = Path.of(scenario.path("work").asText());
        Path home = work.resolve("home");
        Path project = work.resolve("project");
        Files.createDirectories(home);
        Files.createDirectories(project);
        Files.createDirectories(work.resolve("hooks"));
        Files.createDirectories(work.resolve("hook-replies"));
        Files.createDirectories(work.resolve("steps"));
        ObjectNode result = JSON.createObjectNode();
        JsonNode network = scenario.path("network");
        TestCa ca = network.path("tls").asBoolean() ? new TestCa("real-client test CA") : null;
        String mirrored = scenario.path("mavenMirror").asText("");
        try (MavenMirror mirror = mirrored.isEmpty() ? null : new MavenMirror(Path.of(mirrored));
             MockAnthropic mock = new MockAnthropic();
             OtlpReceiver receiver = ca == null ? new OtlpReceiver() : OtlpReceiver.https(ca.issue("localhost").context(null), false, "127.0.0.1");
             ConnectProxy proxy = network.has("proxyDelayMillis") ? new ConnectProxy(null, network.path("proxyDelayMillis").asLong()) : null) {
            Map<String, String> vars = new LinkedHashMap<>();
            // Langfuse over HTTPS on a private CA, behind a proxy: ${CA_FILE} and ${PROXY_URL} for the hook's settings.
            if (ca != null) vars.put("CA_FILE", ca.writeCertificate(work.resolve("ca.pem")).toString());
            if (proxy != null) vars.put("PROXY_URL", proxy.url(null));
            if (mirror != null) vars.put("MAVEN_URL", mirror.url());
            vars.put("WORK", work.toString());
            vars.put("HOME", home.toString());
            vars.put("PROJECT", project.toString());
            vars.put("MOCK_URL", mock.baseUrl());
            vars.put("OTLP_URL", receiver.baseUrl());
            vars.put("JAVA", Path.of(System.getProperty("java.home"), "bin", "java").toString());
            vars.put("CLASSPATH", System.getProperty("java.class.path"));
            vars.put("CLAUDE", scenario.path("claude").asText());
            vars.put("RECORD_HOOK", work.resolve("bin/record-hook").toString());
            result.put("work", work.toString()).put("home", home.toString()).put("project", project.toString());
            result.put("mockUrl", mock.baseUrl()).put("otlpUrl", receiver.baseUrl());

            writeFile(work.resolve("bin/record-hook"), expand(RECORD_HOOK, vars), true);
            var files = scenario.path("files").fields();
            while (files.hasNext()) {
                var file = files.next();
                JsonNode spec = file.getValue();
                String content = spec.isTextual() ? spec.asText() : spec.path("content").asText();
                writeFile(work.resolve(expand(file.getKey(), vars)), expand(content, vars), spec.path("executable").asBoolean());
            }
            mock.script(list(scenario.path("rules")));

            ArrayNode steps = result.putArray("steps");
            int index = 0;
            for (JsonNode step : scenario.path("steps")) {
                if (step.has("rules")) {
                    mock.clearScript();
                    mock.script(list(step.path("rules")));
                }
                var replies = step.path("hookReplies").fields();
                while (replies.hasNext()) {
                    var reply = replies.next();
                    Path file = work.resolve("hook-replies").resolve(reply.getKey());
                    if (reply.getValue().isNull()) Files.deleteIfExists(file);
                    else writeFile(file, expand(reply.getValue().asText(), vars), false);
                }
                steps.add(runStep(index++, step, scenario, work, project, vars, mock));
            }

            JsonNode wait = scenario.path("waitForSpans");
            if (wait.isObject()) {
                long deadline = System.currentTimeMillis() + wait.path("timeoutMillis").asLong(20_000);
                while (receiver.acceptedRoots().size() < wait.path("roots").asInt(1) && System.currentTimeMillis() < deadline) {
                    Thread.sleep(100);
                }
            }
            // The hook's firings run detached, after Claude Code has moved on: wait for the last of them to end.
            long firingsDeadline = System.currentTimeMillis() + 30_000;
            while (hookFiringsRunning() && System.currentTimeMillis() < firingsDeadline) {
                Thread.sleep(100);
            }

            if (mirror != null) result.put("mavenFilesServed", mirror.served());
            ArrayNode requests = result.putArray("requests");
            for (MockAnthropic.Request request : mock.requests()) requests.add(request.toJson());
            ArrayNode otlp = result.putArray("otlp");
            for (OtlpReceiver.Request request : receiver.requests()) {
                ObjectNode r = otlp.addObject();
                r.put("path", request.path()).put("status", request.status());
                r.set("headers", JSON.valueToTree(request.headers()));
                ArrayNode spans = r.putArray("spans");
                for (OtlpReceiver.ReceivedSpan span : request.spans()) {
                    ObjectNode s = spans.addObject();
                    s.put("traceId", span.traceId()).put("spanId", span.spanId()).put("parentSpanId", span.parentSpanId());
                    s.put("name", span.name()).put("startNanos", span.startNanos()).put("endNanos", span.endNanos());
                    s.put("scope", span.scope());
                    s.set("attributes", JSON.valueToTree(span.attributes()));
                    s.set("resource", JSON.valueToTree(span.resource()));
                }
            }
            ArrayNode transcripts = result.putArray("transcripts");
            Path projects = home.resolve(".claude/projects");
            if (Files.isDirectory(projects)) {
                try (Stream<Path> walk = Files.walk(projects)) {
                    walk.filter(p -> p.toString().endsWith(".jsonl")).sorted().forEach(p -> transcripts.add(p.toString()));
                }
            }
        }
        return result;
    }

    static ObjectNode runStep(int index, JsonNode step, JsonNode scenario, Path work, Path project, Map<String, String> vars,
                              MockAnthropic mock) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        if (step.has("exec")) {
            for (JsonNode arg : step.path("exec")) command.add(expand(arg.asText(), vars));
        } else {
            command.add(vars.get("CLAUDE"));
            for (JsonNode arg : step.path("args")) command.add(expand(arg.asText(), vars));
        }
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.directory(step.has("cwd") ? work.resolve(expand(step.get("cwd").asText(), vars)).toFile() : project.toFile());
        Map<String, String> env = builder.environment();
        env.clear();
        env.putAll(baseEnv(vars));
        for (JsonNode layer : List.of(scenario.path("env"), step.path("env"))) {
            var fields = layer.fields();
            while (fields.hasNext()) {
                var field = fields.next();
                if (field.getValue().isNull()) env.remove(field.getKey());
                else env.put(field.getKey(), expand(field.getValue().asText(), vars));
            }
        }
        Path stdout = work.resolve("steps").resolve(index + ".stdout");
        Path stderr = work.resolve("steps").resolve(index + ".stderr");
        builder.redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
        if (step.has("stdin")) {
            Path stdin = work.resolve("steps").resolve(index + ".stdin");
            Files.writeString(stdin, expand(step.get("stdin").asText(), vars));
            builder.redirectInput(stdin.toFile());
        } else {
            builder.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        }
        int requestsBefore = mock.requests().size();
        long started = System.nanoTime();
        Process process = builder.start();
        long timeout = step.path("timeoutSeconds").asLong(180);
        boolean finished = process.waitFor(timeout, TimeUnit.SECONDS);
        if (!finished) {
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        ObjectNode out = JSON.createObjectNode();
        out.put("index", index);
        ArrayNode argv = out.putArray("command");
        command.forEach(argv::add);
        out.put("exitCode", finished ? process.exitValue() : -1).put("timedOut", !finished).put("durationMillis", millis);
        out.put("stdout", Files.readString(stdout, StandardCharsets.UTF_8));
        out.put("stderr", Files.readString(stderr, StandardCharsets.UTF_8));
        out.put("firstRequest", requestsBefore).put("requestsAfter", mock.requests().size());
        return out;
    }

    static Map<String, String> baseEnv(Map<String, String> vars) {
        Map<String, String> env = new LinkedHashMap<>();
        String javaBin = Path.of(vars.get("JAVA")).getParent().toString();
        env.put("PATH", javaBin + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        env.put("HOME", vars.get("HOME"));
        env.put("USER", "root");
        env.put("LANG", "C.UTF-8");
        env.put("TERM", "dumb");
        env.put("SHELL", "/bin/bash");
        env.put("TMPDIR", Path.of(vars.get("WORK"), "tmp").toString());
        env.put("ANTHROPIC_BASE_URL", vars.get("MOCK_URL"));
        env.put("ANTHROPIC_API_KEY", "sk-ant-test-litefuse-0000000000000000");
        env.put("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
        env.put("DISABLE_AUTOUPDATER", "1");
        env.put("DISABLE_TELEMETRY", "1");
        env.put("DISABLE_ERROR_REPORTING", "1");
        env.put("IS_SANDBOX", "1");
        try {
            Files.createDirectories(Path.of(env.get("TMPDIR")));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return env;
    }

    static List<JsonNode> list(JsonNode array) {
        List<JsonNode> list = new ArrayList<>();
        array.forEach(list::add);
        return list;
    }

    static String expand(String text, Map<String, String> vars) {
        String out = text;
        for (var entry : vars.entrySet()) out = out.replace("${" + entry.getKey() + "}", entry.getValue());
        return out;
    }

    static void writeFile(Path file, String content, boolean executable) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, content, StandardCharsets.UTF_8);
        if (executable) Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /**
     * Maven Central as far as a bootstrap needs it, on loopback: any path whose last segment names a file in `dir` gets
     * that file (${MAVEN_URL}), anything else a 404.
     */
    static final class MavenMirror implements AutoCloseable {
        private final com.sun.net.httpserver.HttpServer server;
        private final java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();

        MavenMirror(Path dir) throws IOException {
            server = com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
            server.createContext("/", exchange -> {
                String path = exchange.getRequestURI().getPath();
                Path file = dir.resolve(path.substring(path.lastIndexOf('/') + 1));
                if (path.endsWith("/") || !Files.isRegularFile(file)) {
                    exchange.sendResponseHeaders(404, -1);
                } else {
                    exchange.sendResponseHeaders(200, Files.size(file));
                    try (var body = exchange.getResponseBody()) {
                        Files.copy(file, body);
                    }
                    served.incrementAndGet();
                }
                exchange.close();
            });
            server.start();
        }

        String url() {
            return "http://127.0.0.1:" + server.getAddress().getPort() + "/maven2";
        }

        int served() {
            return served.get();
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }
}
