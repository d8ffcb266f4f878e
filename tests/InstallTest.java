import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** install / uninstall / doctor on a temporary HOME, against the loopback receiver (which also answers /api/public/projects). */
public class InstallTest extends ReceiverFixture {
    static final String OTHER_SETTINGS = """
            {
                "model": "opus",
                "permissions": {"allow": ["Bash(ls:*)"]},
                "hooks": {
                    "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "echo pre"}]}],
                    "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]
                },
                "env": {"FOO": "bar"}
            }
            """;

    Path project;

    @BeforeEach
    void start() throws IOException {
        project = TestSupport.tempDir("project-");
        env = new HashMap<>();
        env.put("HOME", home.toString());
        env.put("PATH", "/usr/bin:/bin");
        env.put("JBANG_LAUNCH_CMD", TestSupport.testsDir().getParent().resolve(".ci/jbang").toString());
    }

    record Result(int exitCode, String out, String err) {
    }

    Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new litefuse_hook(env));
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    Result install(String... extra) {
        return installAt(receiver.baseUrl(), extra);
    }

    Result installAt(String baseUrl, String... extra) {
        List<String> args = new ArrayList<>(List.of("install", "--public-key", TestSupport.PUBLIC_KEY, "--secret-key",
                TestSupport.SECRET_KEY, "--base-url", baseUrl, "--dir", project.toString()));
        args.addAll(List.of(extra));
        return run(args.toArray(String[]::new));
    }

    Path userSettings() {
        return home.resolve(".claude/settings.json");
    }

    JsonNode read(Path file) throws IOException {
        return TestSupport.JSON.readTree(file.toFile());
    }

    long backups(Path file) throws IOException {
        try (Stream<Path> files = Files.list(file.getParent())) {
            return files.filter(p -> p.getFileName().toString().startsWith(file.getFileName() + ".bak-")).count();
        }
    }

    static void assertOurHook(JsonNode settings) {
        JsonNode stop = settings.path("hooks").path("Stop");
        long ours = 0;
        for (JsonNode group : stop) {
            for (JsonNode hook : group.path("hooks")) {
                if (hook.path("command").asText().equals(litefuse_hook.Launcher.HOOK_COMMAND)) {
                    ours++;
                    assertEquals("command", hook.path("type").asText());
                    assertEquals(30, hook.path("timeout").asInt());
                }
            }
        }
        assertEquals(1, ours, "exactly one litefuse Stop hook");
    }

    @Test
    void installIntoAMissingFile() throws IOException {
        Result result = install();
        assertEquals(0, result.exitCode(), result.err());
        JsonNode settings = read(userSettings());
        assertOurHook(settings);
        assertEquals("true", settings.path("env").path("TRACE_TO_LANGFUSE").asText());
        assertEquals(TestSupport.PUBLIC_KEY, settings.path("env").path("LANGFUSE_PUBLIC_KEY").asText());
        assertEquals(TestSupport.SECRET_KEY, settings.path("env").path("LANGFUSE_SECRET_KEY").asText());
        assertEquals(receiver.baseUrl(), settings.path("env").path("LANGFUSE_BASE_URL").asText());
        assertFalse(result.out().contains(TestSupport.SECRET_KEY) || result.err().contains(TestSupport.SECRET_KEY), "the secret is never echoed");
        assertTrue(Files.isExecutable(home.resolve(".claude/hooks/litefuse-hook")));
        assertFalse(Files.readString(litefuse_hook.StateLayout.under(home).installManifest()).contains(TestSupport.SECRET_KEY));
    }

    @Test
    void installIntoAnEmptyFile() throws IOException {
        Files.createDirectories(userSettings().getParent());
        for (String empty : List.of("", "{}\n")) {
            Files.writeString(userSettings(), empty);
            assertEquals(0, install().exitCode());
            assertOurHook(read(userSettings()));
        }
    }

    @Test
    void installMergesIntoAFileWithOtherHooksAndTwiceChangesNothing() throws IOException {
        Files.createDirectories(userSettings().getParent());
        Files.writeString(userSettings(), OTHER_SETTINGS);
        assertEquals(0, install().exitCode());
        JsonNode after = read(userSettings());
        assertOurHook(after);
        JsonNode before = TestSupport.JSON.readTree(OTHER_SETTINGS);
        assertEquals(before.path("model"), after.path("model"));
        assertEquals(before.path("permissions"), after.path("permissions"));
        assertEquals(before.path("hooks").path("PreToolUse"), after.path("hooks").path("PreToolUse"));
        assertEquals(before.path("hooks").path("Stop").get(0), after.path("hooks").path("Stop").get(0));
        assertEquals("bar", after.path("env").path("FOO").asText());
        assertEquals(1, backups(userSettings()));

        String text = Files.readString(userSettings());
        Result again = install();
        assertEquals(0, again.exitCode());
        assertTrue(again.out().contains("Unchanged: " + userSettings()), again.out());
        assertEquals(text, Files.readString(userSettings()), "running install twice changes nothing");
        assertEquals(1, backups(userSettings()), "and makes no second backup");
    }

    @Test
    void invalidSettingsAreLeftUntouched() throws IOException {
        Files.createDirectories(userSettings().getParent());
        String broken = "{\"model\": \"opus\", \"hooks\": {";
        Files.writeString(userSettings(), broken);
        Result result = install();
        assertEquals(1, result.exitCode());
        assertTrue(result.err().contains("is not valid JSON") && result.err().contains("left it untouched"), result.err());
        assertEquals(broken, Files.readString(userSettings()));
        assertEquals(0, backups(userSettings()));
    }

    @Test
    void uninstallRemovesExactlyWhatInstallAdded() throws IOException {
        Files.createDirectories(userSettings().getParent());
        Files.writeString(userSettings(), OTHER_SETTINGS);
        install("--async");
        assertTrue(read(userSettings()).path("hooks").path("Stop").get(1).path("hooks").get(0).path("async").asBoolean());
        Result result = run("uninstall");
        assertEquals(0, result.exitCode(), result.err());
        assertEquals(TestSupport.JSON.readTree(OTHER_SETTINGS), read(userSettings()));
        assertFalse(Files.exists(home.resolve(".claude/hooks/litefuse-hook")));
        try (Stream<Path> left = Files.list(home.resolve(".claude/hooks"))) {
            assertEquals(List.of(), left.toList(), "nor its jar and start-up archive");
        }

        Path fresh = TestSupport.tempHome();
        env.put("HOME", fresh.toString());
        install();
        assertTrue(Files.exists(fresh.resolve(".claude/settings.json")));
        assertEquals(0, run("uninstall").exitCode());
        assertFalse(Files.exists(fresh.resolve(".claude/settings.json")), "a file install created goes with uninstall");
    }

    @Test
    void projectScopesKeepKeysOutOfCommittedFiles() throws IOException {
        assertEquals(0, install("--project").exitCode());
        JsonNode local = read(project.resolve(".claude/settings.local.json"));
        assertOurHook(local);
        assertEquals(TestSupport.SECRET_KEY, local.path("env").path("LANGFUSE_SECRET_KEY").asText());
        assertFalse(Files.exists(userSettings()));

        assertEquals(0, install("--hook-scope", "project", "--env-scope", "local").exitCode());
        JsonNode shared = read(project.resolve(".claude/settings.json"));
        assertOurHook(shared);
        assertFalse(shared.has("env"), "no keys in the committed file");

        Result refused = install("--env-scope", "project");
        assertEquals(2, refused.exitCode());
        assertTrue(refused.err().contains("it is committed"), refused.err());
    }

    /** Runs a launcher script with `sh` and returns what it printed. */
    String runLauncher(Path launcher) throws Exception {
        ProcessBuilder builder = new ProcessBuilder("sh", launcher.toString(), "--version").redirectErrorStream(true);
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        return output.strip();
    }

    private static String readOrEmpty(Path file) throws IOException {
        return Files.exists(file) ? Files.readString(file) : "";
    }

    @Test
    void launcherRunsTheBuildDirectlyAndFallsBackWhenAJarIsGone() throws Exception {
        litefuse_hook.Launcher.JavaRuntime runtime = new litefuse_hook.Launcher.JavaRuntime(
                Path.of(System.getProperty("java.home"), "bin", "java"), Runtime.version().feature());
        Path launcher = home.resolve("launcher.sh");
        String classPath = System.getProperty("java.class.path");
        Files.writeString(launcher, litefuse_hook.Launcher.launcherScript(runtime, classPath, home.resolve("none.jsa"), "echo FALLBACK", null));
        assertEquals("litefuse-hook " + litefuse_hook.VERSION, runLauncher(launcher), "the built jar, run directly");
        Files.writeString(launcher, litefuse_hook.Launcher.launcherScript(runtime, classPath + ":" + home.resolve("gone.jar"),
                home.resolve("none.jsa"), "echo FALLBACK", null));
        assertEquals("FALLBACK --version", runLauncher(launcher), "a missing jar sends the hook through JBang");
        Path source = home.resolve("litefuse_hook.java");
        Files.writeString(source, "// newer than the launcher");
        Files.writeString(launcher, litefuse_hook.Launcher.launcherScript(runtime, classPath, home.resolve("none.jsa"),
                "sh -c 'echo \"$*\" > " + home.resolve("refreshed") + "' refresh", source.toString()));
        Files.setLastModifiedTime(launcher, java.nio.file.attribute.FileTime.fromMillis(0));
        assertEquals("litefuse-hook " + litefuse_hook.VERSION, runLauncher(launcher), "a changed source still runs the current build");
        for (int i = 0; i < 50 && readOrEmpty(home.resolve("refreshed")).isEmpty(); i++) Thread.sleep(100);
        assertEquals("install --print-hook-command --launcher " + launcher + " --source " + source,
                readOrEmpty(home.resolve("refreshed")).strip(), "and refreshes the launcher in the background, keeping its source");
    }

    @Test
    void installedLauncherSendsTurnsFromItsOneJar() throws Exception {
        assertEquals(0, install().exitCode());
        Path launcher = litefuse_hook.Launcher.launcherPath(home);
        Path bundle = home.resolve(".claude/hooks/litefuse-hook.jar");
        assertEquals(List.of(bundle), litefuse_hook.Launcher.launcherClassPath(launcher), "the launcher runs the bundled class path");
        assertEquals("rw-------", mode(bundle));
        try (java.util.jar.JarFile jar = new java.util.jar.JarFile(bundle.toFile())) {
            assertTrue(jar.getEntry("io/opentelemetry/exporter/otlp/http/trace/OtlpHttpSpanExporter.class") != null, "the exporter is bundled");
            for (String senderOnly : List.of("okhttp3/OkHttpClient.class", "okio/Buffer.class", "kotlin/Unit.class")) {
                assertEquals(null, jar.getEntry(senderOnly), "the OkHttp sender's libraries stay out: " + senderOnly);
            }
        }
        Path transcript = home.resolve("session.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), transcript);
        ProcessBuilder builder = new ProcessBuilder("sh", launcher.toString()).redirectErrorStream(true);
        builder.environment().clear();
        builder.environment().put("PATH", "/usr/bin:/bin");
        builder.environment().putAll(TestSupport.hookEnv(home, receiver.baseUrl()));
        Process process = builder.start();
        TestSupport.feed(process, TestSupport.payload("s", transcript).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertEquals("", new String(process.getInputStream().readAllBytes()));
        assertEquals(0, process.waitFor());
        // The launcher returned at once; the firing goes on in its own JVM, detached.
        for (int i = 0; i < 300 && !TestSupport.log(home).contains("Processed 5 turns"); i++) Thread.sleep(100);
        assertTrue(TestSupport.log(home).contains("Processed 5 turns"), TestSupport.log(home));
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
    }

    @Test
    void bundleKeepsTheClassPathOrderAndJoinsServices() throws IOException {
        Path first = jar(home.resolve("first.jar"), true, Map.of("a/X.class", "first", "META-INF/services/s.S", "impl.First",
                "META-INF/versions/11/a/X.class", "first on 11", "META-INF/FIRST.SF", "signature", "module-info.class", "module"));
        Path second = jar(home.resolve("second.jar"), false, Map.of("a/X.class", "second", "b/Y.txt", "only here",
                "META-INF/services/s.S", "impl.Second", "META-INF/versions/9/b/Z.class", "not a multi-release jar"));
        Path sender = home.resolve("repository/com/squareup/okhttp3/okhttp/5.0.0/okhttp-5.0.0.jar");
        Files.createDirectories(sender.getParent());
        jar(sender, false, Map.of("okhttp3/OkHttpClient.class", "the sender's", "b/Y.txt", "the sender's copy"));
        Path bundle = home.resolve("hooks/bundle.jar");
        Files.createDirectories(bundle.getParent());
        assertEquals(bundle.toString(), litefuse_hook.Bundle.bundleClassPath(first + ":" + sender + ":" + second, bundle));
        assertEquals("rw-------", mode(bundle));
        try (java.util.jar.JarFile jar = new java.util.jar.JarFile(bundle.toFile())) {
            assertEquals("first", entry(jar, "a/X.class"), "the first jar's copy, as the class loader picks it");
            assertEquals("only here", entry(jar, "b/Y.txt"));
            assertEquals("impl.First\nimpl.Second\n", entry(jar, "META-INF/services/s.S"), "both jars' services");
            assertEquals("true", jar.getManifest().getMainAttributes().getValue("Multi-Release"));
            assertEquals("first on 11", entry(jar, "META-INF/versions/11/a/X.class"));
            for (String gone : List.of("META-INF/versions/9/b/Z.class", "META-INF/FIRST.SF", "module-info.class", "okhttp3/OkHttpClient.class")) {
                assertEquals(null, jar.getEntry(gone), gone);
            }
        }
        Path elsewhere = home.resolve("hooks/other.jar");
        String withFolder = first + ":" + home.resolve("classes");
        assertEquals(withFolder, litefuse_hook.Bundle.bundleClassPath(withFolder, elsewhere), "a folder on the class path: left as it is");
        assertFalse(Files.exists(elsewhere));
        Path naming = jar(home.resolve("naming.jar"), false, Map.of("c/Z.class", "names others"));
        try (java.nio.file.FileSystem zip = java.nio.file.FileSystems.newFileSystem(naming)) {
            Files.writeString(zip.getPath("META-INF/MANIFEST.MF"), "Manifest-Version: 1.0\r\nClass-Path: lib/dep.jar\r\n\r\n");
        }
        String withManifestPath = naming + ":" + second;
        assertEquals(withManifestPath, litefuse_hook.Bundle.bundleClassPath(withManifestPath, elsewhere),
                "a jar whose manifest names more jars: left to the JVM, which follows them");
        assertFalse(Files.exists(elsewhere));
    }

    private static Path jar(Path file, boolean multiRelease, Map<String, String> entries) throws IOException {
        java.util.jar.Manifest manifest = new java.util.jar.Manifest();
        manifest.getMainAttributes().put(java.util.jar.Attributes.Name.MANIFEST_VERSION, "1.0");
        if (multiRelease) manifest.getMainAttributes().putValue("Multi-Release", "true");
        try (java.util.jar.JarOutputStream out = new java.util.jar.JarOutputStream(Files.newOutputStream(file), manifest)) {
            for (Map.Entry<String, String> entry : new java.util.TreeMap<>(entries).entrySet()) {
                out.putNextEntry(new java.util.jar.JarEntry(entry.getKey()));
                out.write(entry.getValue().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                out.closeEntry();
            }
        }
        return file;
    }

    private static String entry(java.util.jar.JarFile jar, String name) throws IOException {
        java.util.zip.ZipEntry entry = jar.getEntry(name);
        assertTrue(entry != null, name + " is in the bundle");
        try (java.io.InputStream in = jar.getInputStream(entry)) {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
    }

    @Test
    void launcherDoesNothingWhereTracingIsOff() throws Exception {
        install();
        Path launcher = litefuse_hook.Launcher.launcherPath(home);
        ProcessBuilder builder = new ProcessBuilder("sh", launcher.toString()).redirectErrorStream(true);
        builder.environment().remove("TRACE_TO_LANGFUSE");
        Process process = builder.start();
        TestSupport.feed(process, new byte[0]);
        assertEquals("", new String(process.getInputStream().readAllBytes()));
        assertEquals(0, process.waitFor());
        Path archive = litefuse_hook.Launcher.archivePath(launcher, litefuse_hook.Launcher.fastestJava(env, home));
        assertTrue(Files.exists(archive), "install recorded the start-up archive");
        assertEquals("rw-------", mode(archive), "readable by its owner only, as every file litefuse-hook writes");
        assertEquals("rwx------", mode(launcher), "the launcher too");
    }

    @Test
    void anHttpsEndpointGetsTheTlsClientInTheArchive() throws Exception {
        // Trained against a loopback HTTPS server (a throwaway key), the archive holds the TLS client that a firing to
        // Langfuse Cloud needs; trained over plain HTTP it does not, and every start maps 8 MB less.
        litefuse_hook.Launcher.JavaRuntime java = litefuse_hook.Launcher.fastestJava(env, home);
        org.junit.jupiter.api.Assumptions.assumeTrue(java.feature() >= 25, "an AOT cache loads all its classes at start-up, so they can be listed");
        assertEquals(0, installAt("https://cloud.langfuse.com").exitCode());
        assertTrue(archivedClasses(java).contains("sun.security.ssl.SSLSocketImpl"), "the TLS client is archived");
        assertEquals(0, installAt(receiver.baseUrl()).exitCode());
        Set<String> plain = archivedClasses(java);
        assertTrue(plain.contains("litefuse_hook$Transport$DeadlineHttpSender"), "an archive was recorded");
        assertFalse(plain.contains("sun.security.ssl.SSLSocketImpl"), "no TLS client for an http endpoint");
    }

    /** The classes the installed archive holds: a JDK 25 AOT cache loads them all as the JVM starts. */
    private Set<String> archivedClasses(litefuse_hook.Launcher.JavaRuntime java) throws IOException, InterruptedException {
        Path launcher = litefuse_hook.Launcher.launcherPath(home);
        ProcessBuilder builder = new ProcessBuilder(java.java().toString(), "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-XX:AOTCache=" + litefuse_hook.Launcher.archivePath(launcher, java), "-Xlog:class+load=info",
                "-cp", litefuse_hook.Launcher.bundlePath(launcher).toString(), "litefuse_hook").redirectErrorStream(true);
        builder.environment().put("TRACE_TO_LANGFUSE", "false");
        Process process = builder.start();
        TestSupport.feed(process, new byte[0]);
        Set<String> classes = new java.util.TreeSet<>();
        for (String line : new String(process.getInputStream().readAllBytes()).split("\n")) {
            if (line.endsWith(" source: shared objects file")) classes.add(line.substring(line.indexOf("] ") + 2, line.indexOf(" source:")));
        }
        assertEquals(0, process.waitFor());
        return classes;
    }

    @Test
    void doctorWithGoodKeysSaysAllIsWellAndSendsTheCanary() throws IOException {
        install();
        Result result = run("doctor", "--send-test", "--dir", project.toString());
        assertEquals(0, result.exitCode(), result.out());
        assertTrue(result.out().contains("project \"test-project\" (proj-123)"), result.out());
        assertTrue(result.out().contains("All is well."), result.out());
        assertEquals(List.of("litefuse-hook doctor canary"), receiver.acceptedRoots().stream().map(OtlpReceiver.ReceivedSpan::name).toList());
        String traceId = receiver.acceptedRoots().get(0).traceId();
        assertTrue(result.out().contains(receiver.baseUrl() + "/project/proj-123/traces/" + traceId), result.out());
        assertTrue(result.out().matches("(?s).*ok    Real time: visible in Langfuse after [0-9.]+ s.*"), result.out());
        // Of the secret only that it is there, how long, and where from: not one character.
        assertTrue(result.out().contains("secret key set, " + TestSupport.SECRET_KEY.length() + " characters (from " + userSettings() + ")"), result.out());
        assertFalse(result.out().contains("sk-lf-"), result.out());
        TestSupport.assertV4HeaderOnEveryRequest(receiver);
        System.out.println("DOCTOR good keys\n" + result.out());
    }

    @Test
    void doctorSaysWhenTheServerPredatesV4() throws IOException {
        install();
        receiver.observationsApi(false);
        Result result = run("doctor", "--send-test", "--dir", project.toString());
        assertEquals(0, result.exitCode(), result.out());
        assertTrue(result.out().contains("Real time: the server predates Langfuse v4"), result.out());
    }

    @Test
    void doctorWithWrongKeys() throws IOException {
        install();
        receiver.acceptOnly("pk-lf-other", "sk-lf-other");
        Result result = run("doctor", "--dir", project.toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.out().contains("FAIL  Langfuse: HTTP 401 from " + receiver.baseUrl() + ": wrong keys"), result.out());
        System.out.println("DOCTOR wrong keys\n" + result.out());
    }

    @Test
    void doctorWithNoServer() throws IOException {
        installAt("http://127.0.0.1:" + OtlpReceiver.closedPort());
        Result result = run("doctor", "--dir", project.toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.out().contains("FAIL  Langfuse: cannot reach http://127.0.0.1:"), result.out());
        System.out.println("DOCTOR no server\n" + result.out());
    }

    @Test
    void doctorWithoutInstall() {
        Result result = run("doctor", "--dir", project.toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.out().contains("FAIL  Hooks: not registered: install the plugin"), result.out());
        assertTrue(result.out().contains("FAIL  TRACE_TO_LANGFUSE"), result.out());
    }

    @Test
    void doctorReportsTurnsWaitingAndTheLastError() throws IOException {
        install();
        Path transcript = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), transcript);
        receiver.respondWith(503);
        Map<String, String> hookEnv = TestSupport.hookEnv(home, receiver.baseUrl());
        TestSupport.fireHook(hookEnv, "s", transcript);
        // Turns waiting and an error not settled yet are warnings (the next firing retries); the keys still work.
        Result result = run("doctor", "--dir", project.toString());
        assertEquals(0, result.exitCode(), result.out());
        assertTrue(result.out().contains("WARN  Last error:") && result.out().contains("Export failed: HTTP 503"), result.out());
        assertTrue(result.out().contains("WARN  Waiting: 1 session(s) with turns waiting to be re-sent"), result.out());
        assertTrue(result.out().endsWith("Working, with 2 warning(s).\n"), result.out());
        // A canary the server refuses is a failure.
        Result canary = run("doctor", "--send-test", "--dir", project.toString());
        assertEquals(1, canary.exitCode(), canary.out());
        assertTrue(canary.out().contains("FAIL  Test trace: not accepted"), canary.out());
    }

    @Test
    void aCanaryNotYetVisibleInRealTimeIsAWarningWithItsReason() throws IOException {
        install();
        receiver.hideFromObservations(true);
        Result result = run("doctor", "--send-test", "--dir", project.toString());
        assertEquals(0, result.exitCode(), result.out());
        assertTrue(result.out().contains("WARN  Real time: the test trace was accepted but is not in Langfuse's v2 observations API"), result.out());
        assertTrue(result.out().contains("Working, with 1 warning(s)."), result.out());
    }

    @Test
    void doctorReadsTheHooksRunRecordsNotItsLog() throws IOException {
        install();
        Path transcript = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), transcript);
        Map<String, String> hookEnv = TestSupport.hookEnv(home, receiver.baseUrl());
        receiver.respondWith(503);
        TestSupport.fireHook(hookEnv, "s", transcript);
        receiver.respondWith(200);
        TestSupport.fireHook(hookEnv, "s", transcript);
        // The log is for people: without it (rotated, reworded, deleted) doctor still knows what the hook did.
        Files.delete(TestSupport.layout(home).log());
        Result result = run("doctor", "--dir", project.toString());
        assertTrue(result.out().contains("ok    Last run: "), result.out());
        assertTrue(result.out().matches("(?s).*Last run: [^\\n]*: [1-9][0-9]* turn\\(s\\) sent in [^\\n]*\\(session s, .*"), result.out());
        assertTrue(result.out().contains("ok    Last error: ") && result.out().contains("Export failed: HTTP 503")
                && result.out().contains("settled: a later run sent turns"), result.out());
        assertTrue(result.out().contains("ok    Waiting: no turns waiting"), result.out());
    }

    @Test
    void lastSaysWhatTheHookDidWhenNothingWasSentFromThisProject() throws IOException {
        Path transcript = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), transcript);
        receiver.respondWith(401);
        TestSupport.fireHook(TestSupport.hookEnv(home, receiver.baseUrl()), "s", transcript);
        Result result = run("last", "--dir", project.toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.err().contains("No trace sent from " + project), result.err());
        assertTrue(result.err().contains("The hook's last run, in any project: ") && result.err().contains(": nothing sent in ")
                && result.err().contains("(session s, Stop); its error: Export failed: HTTP 401"), result.err());
    }

    @Test
    void openTelemetryVariablesRouteThroughACollector() throws IOException {
        Path transcript = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), transcript);
        Map<String, String> collectorEnv = new HashMap<>();
        collectorEnv.put("HOME", home.toString());
        collectorEnv.put("TRACE_TO_LANGFUSE", "true");
        collectorEnv.put("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.baseUrl() + "/team-collector");
        collectorEnv.put("OTEL_EXPORTER_OTLP_HEADERS", "x-team=blue%20team,Authorization=Basic%20dGVhbTpzZWNyZXQ=");
        TestSupport.fireHook(collectorEnv, "s", transcript);
        assertEquals(1, receiver.acceptedRoots().size(), TestSupport.log(home));
        OtlpReceiver.Request request = receiver.requests().get(0);
        assertEquals("/team-collector/v1/traces", request.path());
        assertEquals("blue team", request.headers().get("x-team"));
        assertEquals("Basic dGVhbTpzZWNyZXQ=", request.headers().get("authorization"));

        receiver.clear();
        collectorEnv.put("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.baseUrl() + "/exact/path");
        collectorEnv.put("LANGFUSE_PUBLIC_KEY", TestSupport.PUBLIC_KEY);
        collectorEnv.put("LANGFUSE_SECRET_KEY", TestSupport.SECRET_KEY);
        Path second = home.resolve("t2.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__tool_heavy.jsonl"), second);
        TestSupport.fireHook(collectorEnv, "s2", second);
        assertEquals("/exact/path", receiver.requests().get(0).path());
        assertEquals("Basic dGVhbTpzZWNyZXQ=", receiver.requests().get(0).headers().get("authorization"), "OTEL headers win");
    }

    @Test
    void installRegistersSessionEndAndUninstallRemovesIt() throws IOException {
        assertEquals(0, install().exitCode());
        JsonNode settings = read(userSettings());
        JsonNode sessionEnd = settings.path("hooks").path("SessionEnd").path(0).path("hooks").path(0);
        assertEquals(litefuse_hook.Launcher.HOOK_COMMAND, sessionEnd.path("command").asText());
        assertEquals(30, sessionEnd.path("timeout").asInt(), "SessionEnd's budget grows to the largest timeout declared");
        assertEquals(0, run("uninstall").exitCode());
        assertFalse(Files.exists(userSettings()) && read(userSettings()).path("hooks").has("SessionEnd"));
    }

    @Test
    void installWritesTheOptionalSettingsOfItsEnvironment() throws IOException {
        env.put("LITEFUSE_USER_ID", "me");
        env.put("CC_LANGFUSE_TAGS", "team-a,ci");
        env.put("LANGFUSE_TRACING_ENVIRONMENT", "staging");
        Result result = install();
        assertEquals(0, result.exitCode(), result.err());
        JsonNode written = read(userSettings()).path("env");
        assertEquals("me", written.path("LITEFUSE_USER_ID").asText());
        assertEquals("team-a,ci", written.path("CC_LANGFUSE_TAGS").asText());
        assertEquals("staging", written.path("LANGFUSE_TRACING_ENVIRONMENT").asText());
        assertTrue(result.out().contains("and LITEFUSE_USER_ID, CC_LANGFUSE_TAGS, LANGFUSE_TRACING_ENVIRONMENT from this environment"), result.out());
        // What the hook then uses: the user and tags from the settings, not the OS user.
        Map<String, String> hookEnv = litefuse_hook.ClaudeSettings.effectiveEnv(Map.of("HOME", home.toString()), home, project, new HashMap<>());
        litefuse_hook.Config config = litefuse_hook.Config.loadConfig(hookEnv);
        assertEquals("me", config.trace().userId());
        assertEquals(List.of("claude-code", "team-a", "ci"), config.trace().tags());
        assertEquals("staging", config.trace().environment());
    }

    @Test
    void settingsHoldingAKeyAndEveryBackupAreTheOwnersOnly() throws IOException {
        Files.createDirectories(userSettings().getParent());
        Files.writeString(userSettings(), OTHER_SETTINGS);
        Files.setPosixFilePermissions(userSettings(), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        assertEquals(0, install().exitCode());
        assertEquals("rw-------", mode(userSettings()), "the file now holds the secret key");
        try (Stream<Path> files = Files.list(userSettings().getParent())) {
            for (Path backup : files.filter(p -> p.getFileName().toString().startsWith("settings.json.bak-")).toList()) {
                assertEquals("rw-------", mode(backup), backup.toString());
            }
        }
        assertEquals(1, backups(userSettings()));
        // A file without keys keeps its mode: only the hook went into the project's shared settings.
        Path shared = project.resolve(".claude/settings.json");
        Files.createDirectories(shared.getParent());
        Files.writeString(shared, "{}");
        Files.setPosixFilePermissions(shared, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        assertEquals(0, install("--hook-scope", "project", "--env-scope", "local").exitCode());
        assertEquals("rw-r--r--", mode(shared));
        assertEquals("rw-------", mode(project.resolve(".claude/settings.local.json")));
    }

    @Test
    void doctorFlagsASecretOthersCanRead() throws IOException {
        install();
        Files.setPosixFilePermissions(userSettings(), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        Result result = run("doctor", "--dir", project.toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.out().contains("FAIL  Secret: " + userSettings() + " holds a secret key and other users can read it (rw-r--r--); run: chmod 600"),
                result.out());
        assertEquals(0, install().exitCode(), "install again");
        assertEquals("rw-------", mode(userSettings()), "install repairs the mode even when nothing else changed");
    }

    @Test
    void doctorSeesThePluginAndPointsOutADoubleRegistration() throws IOException {
        // The plugin, as `claude plugin install` leaves it: enabled, options in settings, the secret in .credentials.json.
        Files.createDirectories(userSettings().getParent());
        Files.writeString(userSettings(), "{\"enabledPlugins\": {\"litefuse-hook@litefuse\": true}, \"pluginConfigs\": "
                + "{\"litefuse-hook@litefuse\": {\"options\": {\"public_key\": \"" + TestSupport.PUBLIC_KEY + "\", \"base_url\": \""
                + receiver.baseUrl() + "\"}}}}");
        Files.writeString(home.resolve(".claude/.credentials.json"), "{\"pluginSecrets\": {\"litefuse-hook@litefuse\": {\"secret_key\": \""
                + TestSupport.SECRET_KEY + "\"}}}");
        Path installed = TestSupport.tempDir("plugin-copy");
        Files.createDirectories(home.resolve(".claude/plugins"));
        Files.writeString(home.resolve(".claude/plugins/installed_plugins.json"), "{\"version\": 2, \"plugins\": {\"litefuse-hook@litefuse\": "
                + "[{\"scope\": \"user\", \"installPath\": \"" + installed + "\", \"version\": \"" + litefuse_hook.VERSION + "\"}]}}");
        Result pluginOnly = run("doctor", "--dir", project.toString());
        assertTrue(pluginOnly.out().contains("ok    Hooks: Stop and SessionEnd by the plugin litefuse-hook@litefuse " + litefuse_hook.VERSION
                + " at " + installed), pluginOnly.out());
        assertTrue(pluginOnly.out().contains("secret key set, " + TestSupport.SECRET_KEY.length() + " characters (from "
                + home.resolve(".claude/.credentials.json") + ", where Claude Code keeps the plugin's secret)"), pluginOnly.out());
        assertTrue(pluginOnly.out().contains("TRACE_TO_LANGFUSE: on: the plugin has keys"), pluginOnly.out());
        assertTrue(pluginOnly.out().contains("ok    Langfuse: authenticated at " + receiver.baseUrl()), pluginOnly.out());
        assertEquals(0, pluginOnly.exitCode(), pluginOnly.out());
        // A doctor other than the installed copy says so, and which to run.
        Files.writeString(home.resolve(".claude/plugins/installed_plugins.json"), Files.readString(home.resolve(".claude/plugins/installed_plugins.json"))
                .replace("\"version\": \"" + litefuse_hook.VERSION + "\"", "\"version\": \"0.0.1\""));
        Result otherCopy = run("doctor", "--dir", project.toString());
        assertEquals(0, otherCopy.exitCode(), otherCopy.out());
        assertTrue(otherCopy.out().contains("WARN  Hooks: Stop and SessionEnd by the plugin litefuse-hook@litefuse 0.0.1 at " + installed)
                && otherCopy.out().contains("This doctor is " + litefuse_hook.VERSION + ", not the installed copy: run "
                + installed.resolve("hooks/litefuse-hook") + " doctor"), otherCopy.out());
        assertEquals(0, install("--no-env").exitCode());
        Result both = run("doctor", "--dir", project.toString());
        assertEquals(1, both.exitCode());
        assertTrue(both.out().contains("FAIL  Hooks: registered twice: by the plugin litefuse-hook@litefuse and as " + litefuse_hook.Launcher.HOOK_COMMAND),
                both.out());
        assertFalse(both.out().contains(TestSupport.SECRET_KEY));
    }

    @Test
    void onMacOsDoctorReadsThePluginsSecretFromTheKeychainAsClaudeCodeDoes() throws IOException {
        // macOS keeps Claude Code's credentials, the plugin's secret among them, in the login keychain; `security` reads them.
        Files.createDirectories(userSettings().getParent());
        Files.writeString(userSettings(), "{\"enabledPlugins\": {\"litefuse-hook@litefuse\": true}, \"pluginConfigs\": "
                + "{\"litefuse-hook@litefuse\": {\"options\": {\"public_key\": \"" + TestSupport.PUBLIC_KEY + "\", \"base_url\": \""
                + receiver.baseUrl() + "\"}}}}");
        Path bin = TestSupport.tempDir("bin");
        Path security = bin.resolve("security");
        Files.writeString(security, "#!/bin/sh\n[ \"$*\" = \"find-generic-password -a tester -s Claude Code-credentials -w\" ] || exit 44\n"
                + "echo '{\"pluginSecrets\": {\"litefuse-hook@litefuse\": {\"secret_key\": \"" + TestSupport.SECRET_KEY + "\"}}}'\n");
        security.toFile().setExecutable(true);
        env.put("PATH", bin + ":/usr/bin:/bin");
        env.put("USER", "tester");
        Result result = run("doctor", "--dir", project.toString());
        assertEquals(0, result.exitCode(), result.out());
        assertTrue(result.out().contains("secret key set, " + TestSupport.SECRET_KEY.length()
                + " characters (from the login keychain's \"Claude Code-credentials\" item"), result.out());
        assertTrue(result.out().contains("ok    Langfuse: authenticated at " + receiver.baseUrl()), result.out());
        assertFalse(result.out().contains(TestSupport.SECRET_KEY), result.out());
    }

    @Test
    void pluginManifestsAndHookScript() throws Exception {
        Path repo = TestSupport.testsDir().getParent();
        JsonNode marketplace = read(repo.resolve(".claude-plugin/marketplace.json"));
        JsonNode plugin = read(repo.resolve(".claude-plugin/plugin.json"));
        JsonNode hooks = read(repo.resolve("hooks/hooks.json"));
        assertEquals("litefuse-hook", marketplace.path("plugins").path(0).path("name").asText());
        assertEquals(plugin.path("version").asText(), marketplace.path("plugins").path(0).path("version").asText());
        assertEquals(litefuse_hook.VERSION, plugin.path("version").asText(), "the plugin's version is the script's");
        assertTrue(plugin.path("userConfig").path("secret_key").path("sensitive").asBoolean(), "the secret goes to the keychain");
        for (String event : List.of("Stop", "SessionEnd")) {
            String command = hooks.path("hooks").path(event).path(0).path("hooks").path(0).path("command").asText();
            assertEquals("\"${CLAUDE_PLUGIN_ROOT}/hooks/litefuse-hook\"", command, event);
        }
        // Without Java or JBang, the plugin's hook prints nothing and exits 0.
        Path script = repo.resolve("hooks/litefuse-hook");
        ProcessBuilder builder = new ProcessBuilder("/bin/sh", script.toString()).redirectErrorStream(true);
        builder.environment().clear();
        builder.environment().putAll(Map.of("PATH", "/nonexistent", "HOME", home.toString(), "CLAUDE_PLUGIN_ROOT", repo.toString(),
                "CLAUDE_PLUGIN_DATA", home.resolve("data").toString(), "CLAUDE_PLUGIN_OPTION_PUBLIC_KEY", "pk-lf-x"));
        Process process = builder.start();
        TestSupport.feed(process, TestSupport.payload("s", home.resolve("t.jsonl")).getBytes());
        assertEquals("", new String(process.getInputStream().readAllBytes()));
        assertEquals(0, process.waitFor());

        // A fast path built from this copy of the plugin runs; one built from another copy (before an update) does not.
        Path bin = Files.createDirectories(home.resolve("bin"));
        Path grep = TestSupport.onPath("grep");
        Files.createSymbolicLink(bin.resolve("grep"), grep);
        Path launcher = Files.createDirectories(home.resolve("data")).resolve("litefuse-hook");
        for (String root : List.of(repo.toString(), repo.toString() + "/", "/elsewhere/litefuse-hook/0.1.0")) {
            Files.writeString(launcher, "#!/bin/sh\nsource='" + Path.of(root, "litefuse_hook.java") + "'\necho FAST\n");
            launcher.toFile().setExecutable(true);
            ProcessBuilder withLauncher = new ProcessBuilder("/bin/sh", script.toString()).redirectErrorStream(true);
            withLauncher.environment().clear();
            withLauncher.environment().putAll(Map.of("PATH", bin.toString(), "HOME", home.toString(),
                    "CLAUDE_PLUGIN_ROOT", root.startsWith("/elsewhere") ? repo.toString() : root,
                    "CLAUDE_PLUGIN_DATA", home.resolve("data").toString(), "CLAUDE_PLUGIN_OPTION_PUBLIC_KEY", "pk-lf-x"));
            Process run = withLauncher.start();
            TestSupport.feed(run, new byte[0]);
            assertEquals(root.startsWith("/elsewhere") ? "" : "FAST\n", new String(run.getInputStream().readAllBytes()), root);
            assertEquals(0, run.waitFor());
        }
    }

    static String mode(Path file) throws IOException {
        return java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(file));
    }
}
