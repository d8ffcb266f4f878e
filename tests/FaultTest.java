import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hook process (as Claude Code runs it) against a loopback receiver in each failure mode, then once more against
 * a healthy one: the hook exits 0 quietly, logs one clear line, and no turn is lost or doubled (distinct trace ids).
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
     * `sentAtOnce` says whether the first run itself should get the turns through (a fault it can ride out).
     */
    String runFault(String mode, String faultyBaseUrl, Consumer<OtlpReceiver> fault, boolean sentAtOnce) throws Exception {
        fault.accept(receiver);
        Map<String, String> env = TestSupport.hookEnv(home, faultyBaseUrl);
        TestSupport.Run first = TestSupport.runHookProcess(env, TestSupport.payload("s", transcript));
        TestSupport.assertQuietExit(first);
        String log = TestSupport.log(home);
        long errorLines = log.lines().filter(line -> line.contains("[ERROR]")).count();
        assertEquals(sentAtOnce ? 0 : 1, errorLines, "one clear line per failure:\n" + log);
        Set<String> afterFault = receiver.acceptedTraceIds();

        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        TestSupport.assertQuietExit(TestSupport.runHookProcess(TestSupport.hookEnv(home, receiver.baseUrl()),
                TestSupport.payload("s", transcript)));
        Set<String> expected = TestSupport.replay(transcript).stream().map(litefuse_hook.TraceRecord::traceId)
                .collect(Collectors.toCollection(TreeSet::new));
        Set<String> received = receiver.acceptedTraceIds();
        Set<String> lost = new TreeSet<>(expected);
        lost.removeAll(received);
        Set<String> extra = new TreeSet<>(received);
        extra.removeAll(expected);
        long deliveries = receiver.acceptedRoots().size();
        System.out.printf("FAULT | %s | %d ms | lost %d | doubled %d | re-deliveries %d | %s%n", mode, first.wallMillis(),
                lost.size(), extra.size(), deliveries - received.size(),
                log.lines().filter(l -> l.contains("[ERROR]") || l.contains("Processed")).findFirst().orElse(""));
        assertEquals(Set.of(), lost, "turns lost");
        assertEquals(Set.of(), extra, "turns doubled");
        if (sentAtOnce) assertEquals(expected, afterFault, "the first run got every turn through");
        else assertTrue(afterFault.isEmpty(), "nothing was acknowledged during the fault");
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
    void serverAcceptsAndNeverAnswers() throws Exception {
        String log = runFault("server hangs", receiver.baseUrl(), r -> r.respondWith(OtlpReceiver.Behaviour.never()), false);
        assertTrue(log.contains("did not answer within the export budget"), log);
    }

    @Test
    void slowServerWithinBudget() throws Exception {
        String log = runFault("slow server (1 s)", receiver.baseUrl(), r -> r.respondWith(OtlpReceiver.Behaviour.slow(1000)), true);
        assertTrue(log.contains("Processed 5 turns in "), log);
    }
}
