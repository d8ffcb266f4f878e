import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The launcher hands each firing to a detached JVM and returns at once, so Claude Code waits for none of the export.
 * Against that path: firings at once, firings killed with SIGKILL at random points, a receiver that stores and never
 * answers. 0 spans lost, 0 received twice.
 */
public class DeliveryTest extends ReceiverFixture {
    /** Marks this test's detached JVMs (in their environment) so they can be found, waited for and killed. */
    final String mark = UUID.randomUUID().toString();

    Path launcher() throws IOException {
        litefuse_hook.Launcher.JavaRuntime runtime = new litefuse_hook.Launcher.JavaRuntime(
                Path.of(System.getProperty("java.home"), "bin", "java"), Runtime.version().feature());
        Path launcher = home.resolve("litefuse-hook");
        Files.writeString(launcher, litefuse_hook.Launcher.launcherScript(runtime, System.getProperty("java.class.path"),
                home.resolve("none.jsa"), null, null));
        return launcher;
    }

    Map<String, String> env(String... settings) {
        Map<String, String> env = new HashMap<>(TestSupport.hookEnv(home, receiver.baseUrl()));
        env.put("LITEFUSE_TEST_MARK", mark);
        for (int i = 0; i < settings.length; i += 2) env.put(settings[i], settings[i + 1]);
        return env;
    }

    /** One firing through the launcher, as Claude Code runs it: it exits 0 at once, printing nothing; its wall time. */
    long fire(Path launcher, Map<String, String> env, String payload) throws Exception {
        ProcessBuilder builder = new ProcessBuilder("sh", launcher.toString()).redirectErrorStream(true);
        builder.environment().clear();
        builder.environment().put("PATH", System.getenv().getOrDefault("PATH", "/usr/bin:/bin"));
        builder.environment().putAll(env);
        long started = System.nanoTime();
        Process process = builder.start();
        TestSupport.feed(process, payload.getBytes(StandardCharsets.UTF_8));
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(60, TimeUnit.SECONDS));
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        assertEquals(0, process.exitValue());
        assertEquals("", output, "a hook prints nothing");
        return millis;
    }

    /** The detached JVMs of this test still running (found by the mark in their environment: Linux's /proc). */
    List<ProcessHandle> detached() {
        List<ProcessHandle> found = new ArrayList<>();
        ProcessHandle.allProcesses().forEach(process -> {
            try {
                byte[] environ = Files.readAllBytes(Path.of("/proc", Long.toString(process.pid()), "environ"));
                if (new String(environ, StandardCharsets.ISO_8859_1).contains("LITEFUSE_TEST_MARK=" + mark)) found.add(process);
            } catch (IOException | SecurityException e) {
                // Gone, or not ours.
            }
        });
        return found;
    }

    void awaitDetached() throws InterruptedException {
        for (int i = 0; i < 600 && !detached().isEmpty(); i++) Thread.sleep(100);
        assertEquals(List.of(), detached(), "every detached firing ended");
    }

    /** A copy of a recorded transcript as this test's session (the detached JVMs are found through Linux's /proc). */
    Path session(String recorded) throws IOException {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(Path.of("/proc/self")), "finds its detached JVMs through /proc");
        Path transcript = home.resolve("session.jsonl");
        Files.copy(TestSupport.transcript(recorded), transcript);
        return transcript;
    }

    @Test
    void firingsAtOnceSendEachSpanOnce() throws Exception {
        Path transcript = session("crafted__edge-cases.jsonl");
        Path launcher = launcher();
        String payload = TestSupport.payload("s", transcript);
        List<Thread> threads = new ArrayList<>();
        List<Long> waits = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < 8; i++) {
            Thread thread = new Thread(() -> {
                try {
                    waits.add(fire(launcher, env(), payload));
                } catch (Throwable e) {
                    failures.add(e);
                }
            });
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) thread.join();
        assertEquals(List.of(), failures);
        awaitDetached();
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
        System.out.printf("DELIVERY | 8 firings at once | launcher wall ms %s | spans lost 0 | spans received twice %d%n",
                waits, receiver.spansReceivedTwice());
    }

    @Test
    void firingsKilledAtRandomPointsLoseNothingAndDoubleNothing() throws Exception {
        Path transcript = session("entireio__git-sync__0c2a854b-v2.1.136-long.jsonl");
        Path launcher = launcher();
        // A slow server widens the window in which a kill lands mid-export (stored, not yet answered).
        receiver.respondWith(OtlpReceiver.Behaviour.slow(150));
        Map<String, String> env = env("CC_LANGFUSE_EXPORT_BUDGET_MS", "600", "CC_LANGFUSE_UNKNOWN_SETTLE_MS", "0");
        String payload = TestSupport.payload("s", transcript);
        Random random = new Random(11);
        int killed = 0;
        for (int i = 0; i < 10; i++) {
            fire(launcher, env, payload);
            Thread.sleep(100 + random.nextInt(1200));
            for (ProcessHandle process : detached()) {
                process.destroyForcibly();
                killed++;
            }
            awaitDetached();
        }
        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        fire(launcher, env("CC_LANGFUSE_EXPORT_BUDGET_MS", "30000", "CC_LANGFUSE_UNKNOWN_SETTLE_MS", "0"), payload);
        awaitDetached();
        // After the kills every span arrived, none twice, none extra.
        Set<String> expected = TestSupport.expectedSpanKeys(transcript);
        TestSupport.assertEverySpanOnce(receiver, expected);
        System.out.printf("DELIVERY | 10 firings, %d detached JVMs killed with SIGKILL | spans lost 0 | spans received twice 0 | %d spans%n",
                killed, expected.size());
    }

    @Test
    void aReceiverThatStoresAndNeverAnswersGetsEachSpanOnce() throws Exception {
        Path transcript = session("crafted__edge-cases.jsonl");
        Path launcher = launcher();
        receiver.respondWith(OtlpReceiver.Behaviour.never());
        String payload = TestSupport.payload("s", transcript);
        fire(launcher, env("CC_LANGFUSE_EXPORT_BUDGET_MS", "1500"), payload);
        awaitDetached();
        assertTrue(TestSupport.log(home).contains("Export outcome unknown"), TestSupport.log(home));
        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        fire(launcher, env("CC_LANGFUSE_UNKNOWN_SETTLE_MS", "0"), payload);
        awaitDetached();
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
    }
}
