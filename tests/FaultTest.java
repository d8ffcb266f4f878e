import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hook process (as Claude Code runs it) against a loopback receiver in each failure mode, then once more against
 * a healthy one: the hook exits 0 quietly, logs one clear line, and no span is lost or stored twice (counted in spans,
 * as a Langfuse v4 user sees them).
 * Wall times are printed for the closing note, never asserted.
 */
public class FaultTest extends ReceiverFixture {
    Path transcript;

    @BeforeEach
    void start() throws IOException {
        transcript = home.resolve("session.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), transcript);
    }

    /**
     * Runs the hook once with the fault in place, then once against a healthy receiver; returns the first run's log.
     * `storedAtOnce` says whether the first run's spans reach the receiver's storage during the fault (a fault it
     * rides out, or a server that stores and never answers). Counted in spans, as a Langfuse v4 user sees them.
     */
    String runFault(String mode, String faultyBaseUrl, Consumer<OtlpReceiver> fault, boolean storedAtOnce) throws Exception {
        fault.accept(receiver);
        Map<String, String> env = TestSupport.hookEnv(home, faultyBaseUrl);
        TestSupport.Run first = TestSupport.runHookProcess(env, TestSupport.payload("s", transcript));
        TestSupport.assertQuietExit(first);
        String log = TestSupport.log(home);
        long errorLines = log.lines().filter(line -> line.contains("[ERROR]")).count();
        boolean acknowledged = log.contains("Processed 5 turns");
        assertEquals(acknowledged ? 0 : 1, errorLines, "one clear line per failure:\n" + log);
        Set<String> storedDuringFault = TestSupport.spanKeys(receiver.storedSpans());

        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        TestSupport.assertQuietExit(TestSupport.runHookProcess(TestSupport.hookEnv(home, receiver.baseUrl()),
                TestSupport.payload("s", transcript)));
        Set<String> expected = TestSupport.expectedSpanKeys(transcript);
        Set<String> lost = new TreeSet<>(expected);
        lost.removeAll(TestSupport.spanKeys(receiver.storedSpans()));
        long twice = receiver.spansReceivedTwice();
        System.out.printf("FAULT | %s | %d ms | spans lost %d | spans received twice %d | %s%n", mode, first.wallMillis(),
                lost.size(), twice, log.lines().filter(l -> l.contains("[ERROR]") || l.contains("Processed")).findFirst().orElse(""));
        TestSupport.assertEverySpanOnce(receiver, expected);
        if (storedAtOnce) assertEquals(expected, storedDuringFault, "the first run's spans reached the server");
        else assertTrue(storedDuringFault.isEmpty(), "nothing reached the server during the fault");
        return log;
    }

    @Test
    void serverDown() throws Exception {
        String log = runFault("connection refused", "http://127.0.0.1:" + OtlpReceiver.closedPort(), r -> { }, false);
        assertTrue(log.contains("Export failed: cannot reach http://127.0.0.1:"), log);
        assertTrue(log.contains("5 turn(s) kept and sent again on a later run"), log);
    }

    @Test
    void serviceUnavailable() throws Exception {
        String log = runFault("HTTP 503", receiver.baseUrl(), r -> r.respondWith(503), false);
        assertTrue(log.contains("Export failed: HTTP 503 from "), log);
    }

    @Test
    void rateLimitedWithShortRetryAfterIsRiddenOut() throws Exception {
        String log = runFault("HTTP 429, Retry-After: 1", receiver.baseUrl(),
                r -> r.script(OtlpReceiver.Behaviour.retryAfter(429, "1")), true);
        assertTrue(log.contains("Processed 5 turns in "), log);
        assertEquals(429, receiver.requests().get(0).status());
        assertEquals(200, receiver.requests().get(1).status());
    }

    @Test
    void rateLimitedWithLongRetryAfterGivesUpWithinBudget() throws Exception {
        String log = runFault("HTTP 429, Retry-After: 60", receiver.baseUrl(),
                r -> r.respondWith(OtlpReceiver.Behaviour.retryAfter(429, "60")), false);
        assertTrue(log.contains("HTTP 429 from ") && log.contains("retrying in 60000 ms would not fit the export budget"), log);
        assertEquals(1, receiver.requests().stream().filter(r -> r.status() == 429).count(), "no retry it cannot afford");
    }

    @Test
    void wrongKeys() throws Exception {
        String log = runFault("HTTP 401", receiver.baseUrl(), r -> r.respondWith(401), false);
        assertTrue(log.contains("HTTP 401 from ") && log.contains("wrong keys or wrong host"), log);
        assertEquals(1, receiver.requests().stream().filter(r -> r.status() == 401).count(), "401 is not retried");
    }

    @Test
    void ingestionForbidden() throws Exception {
        String log = runFault("HTTP 403", receiver.baseUrl(), r -> r.respondWith(403), false);
        assertTrue(log.contains("HTTP 403 from ") && log.contains("wrong keys or wrong host"), log);
    }

    @Test
    void serverStoresAndNeverAnswers() throws Exception {
        String log = runFault("server stores, never answers", receiver.baseUrl(), r -> r.respondWith(OtlpReceiver.Behaviour.never()), true);
        assertTrue(log.contains("Export outcome unknown: ") && log.contains("did not answer within the export budget"), log);
        assertTrue(log.contains("5 turn(s) will be looked up in Langfuse before they are sent again"), log);
        String healthy = TestSupport.log(home);
        assertTrue(healthy.contains("Langfuse has 5 of 5 turn(s) of an export whose outcome was unknown; recorded as sent"), healthy);
        assertTrue(receiver.lookups().stream().anyMatch(l -> l.path().startsWith("/api/public/v2/observations?traceId=")));
    }

    @Test
    void gatewayTimeoutAfterLangfuseStoredIsLookedUpNotSentAgain() throws Exception {
        String log = runFault("HTTP 504 from a gateway, Langfuse stored", receiver.baseUrl(),
                r -> r.respondWith(OtlpReceiver.Behaviour.storesThenFails(504)), true);
        assertTrue(log.contains("Export outcome unknown: ") && log.contains("answered HTTP 504 from a gateway"), log);
        assertEquals(1, receiver.requests().stream().filter(r -> r.status() == 504).count(), "a gateway's 504 is not retried");
        String healthy = TestSupport.log(home);
        assertTrue(healthy.contains("Langfuse has 5 of 5 turn(s) of an export whose outcome was unknown; recorded as sent"), healthy);
    }

    @Test
    void serverLosesTheRequestAndNeverAnswers() throws Exception {
        receiver.respondWith(OtlpReceiver.Behaviour.lost());
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        assertTrue(receiver.storedSpans().isEmpty());
        // Right after: Langfuse may still be ingesting, so the turns wait instead of going out a second time.
        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        assertTrue(receiver.storedSpans().isEmpty(), "nothing sent again while the export may still be ingested");
        String log = TestSupport.log(home);
        assertTrue(log.contains("are not in Langfuse yet; looking again on a later run"), log);
        // Once the settle time has passed, Langfuse's "not there" is trusted and the turns go out, once.
        Map<String, String> settled = new java.util.HashMap<>(env);
        settled.put("CC_LANGFUSE_UNKNOWN_SETTLE_MS", "0");
        TestSupport.assertQuietExit(TestSupport.runHookProcess(settled, TestSupport.payload("s", transcript)));
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
        assertTrue(TestSupport.log(home).contains("5 turn(s) of an export whose outcome was unknown are not in Langfuse; sending them again"));
    }

    @Test
    void serverWithoutTheV2ApiGetsTheTurnsAgain() throws Exception {
        // A server before Langfuse v4 cannot be asked; it upserts by id, so the turns are simply sent again.
        receiver.observationsApi(false);
        receiver.respondWith(OtlpReceiver.Behaviour.never());
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        Set<String> expected = TestSupport.expectedSpanKeys(transcript);
        assertEquals(expected, TestSupport.spanKeys(receiver.storedSpans()), "nothing lost");
        assertEquals(expected.size(), receiver.spansReceivedTwice(), "every span sent again, as it must be without a way to ask");
        String log = TestSupport.log(home);
        assertTrue(log.contains("the server has no v2 observations API (Langfuse before v4)"), log);
        System.out.printf("FAULT | pre-v4 server (no v2 API) stores, never answers | - | spans lost 0 | spans received twice %d (re-sent: no way to ask) |%n",
                receiver.spansReceivedTwice());
    }

    @Test
    void everyExportIsOnDiskBeforeItsBodyArrives() throws Exception {
        // The hook's record of an export is the state with in_flight (that the body waits for it, whatever the timing,
        // is aSlowRecordHoldsTheBodyBack's to show).
        Path state = stateFile();
        java.util.List<Boolean> recordedFirst = new java.util.concurrent.CopyOnWriteArrayList<>();
        receiver.onBody(() -> {
            try {
                recordedFirst.add(TestSupport.JSON.readTree(state.toFile()).has("in_flight"));
            } catch (IOException e) {
                recordedFirst.add(false);
            }
        });
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        assertEquals(java.util.List.of(true), recordedFirst, "the state held the export's record when its body arrived");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
    }

    @Test
    void aSlowRecordHoldsTheBodyBack() throws Exception {
        // The sender has compressed and connected long before this record is written: its body must still wait for it.
        Path record = home.resolve("record");
        java.util.List<Boolean> recordedFirst = new java.util.concurrent.CopyOnWriteArrayList<>();
        receiver.onBody(() -> recordedFirst.add(Files.exists(record)));
        java.util.List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(transcript);
        try (litefuse_hook.Export.TraceExporter exporter = litefuse_hook.Export.TraceExporter.forLangfuse(
                litefuse_hook.Config.loadConfig(env), litefuse_hook.Log.toStderr(), io.opentelemetry.sdk.common.export.MemoryMode.IMMUTABLE_DATA)) {
            litefuse_hook.Export.ExportOutcome outcome = exporter.export(traces, System.nanoTime() + 10_000_000_000L, () -> {
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                Files.writeString(record, "recorded");
            });
            assertEquals(traces.size(), outcome.acknowledged(), String.valueOf(outcome.failure()));
        }
        assertEquals(java.util.List.of(true), recordedFirst, "the body arrived only once the record was on disk");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
    }

    @Test
    void anExportThatCannotBeRecordedSendsNothing() throws Exception {
        // The state file cannot be replaced (a folder is in the way): no body may leave without the record.
        Path state = stateFile();
        Files.createDirectories(state.resolve("in-the-way"));
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        assertTrue(receiver.requests().isEmpty(), "no body reached the server");
        String log = TestSupport.log(home);
        assertEquals(1, log.lines().filter(line -> line.contains("[ERROR]")).count(), log);
        assertTrue(log.contains("the export could not be recorded before sending, so nothing was sent"), log);
        Files.delete(state.resolve("in-the-way"));
        Files.delete(state);
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)));
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
    }

    private Path stateFile() {
        return TestSupport.stateFile(home, "s", transcript);
    }

    @Test
    void slowServerWithinBudget() throws Exception {
        String log = runFault("slow server (1 s)", receiver.baseUrl(), r -> r.respondWith(OtlpReceiver.Behaviour.slow(1000)), true);
        assertTrue(log.contains("Processed 5 turns in "), log);
    }
}
