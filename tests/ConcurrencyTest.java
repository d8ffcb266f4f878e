import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hook processes at once on one session and on many, and hook processes killed with SIGKILL at random points. */
public class ConcurrencyTest extends ReceiverFixture {

    /** A copy of a transcript as another session: fresh session id and uuids, so its trace ids are its own. */
    Path sessionCopy(String source, int index) throws IOException {
        String text = Files.readString(TestSupport.transcript(source))
                .replace("\"uuid\":\"", "\"uuid\":\"s" + index + "-")
                .replace("\"sessionId\":\"sess-", "\"sessionId\":\"sess" + index + "-");
        Path copy = home.resolve("session-" + index + ".jsonl");
        Files.writeString(copy, text);
        return copy;
    }

    Set<String> expectedTraceIds(List<Path> transcripts) throws IOException {
        Set<String> ids = new TreeSet<>();
        for (Path transcript : transcripts) {
            TestSupport.replay(transcript).forEach(trace -> ids.add(trace.traceId()));
        }
        return ids;
    }

    /** Starts all firings at once and waits for every one; each must exit 0 without output. */
    void fireAllAtOnce(Map<String, String> env, List<String> payloads) throws Exception {
        List<Process> processes = new ArrayList<>();
        List<Path[]> outputs = new ArrayList<>();
        for (String payload : payloads) {
            Path out = TestSupport.tempFile("out", ".txt");
            Path err = TestSupport.tempFile("err", ".txt");
            outputs.add(new Path[]{out, err});
            processes.add(TestSupport.startHookProcess(env, payload.getBytes(), out, err));
        }
        for (int i = 0; i < processes.size(); i++) {
            assertTrue(processes.get(i).waitFor(180, TimeUnit.SECONDS));
            TestSupport.assertQuietExit(new TestSupport.Run(processes.get(i).exitValue(), Files.readString(outputs.get(i)[0]),
                    Files.readString(outputs.get(i)[1]), 0));
        }
    }

    void assertStatesReadable() throws IOException {
        Path dir = TestSupport.layout(home).sessions();
        if (!Files.isDirectory(dir)) return;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path state : files.filter(litefuse_hook.StateLayout::isState).toList()) {
                JsonNode parsed = TestSupport.JSON.readTree(state.toFile());
                assertTrue(parsed.has("offset") && parsed.has("emitted_user_uuids"), state + " is a whole state");
            }
        }
    }

    @Test
    void twoFiringsOfOneSessionAtOnce() throws Exception {
        Path transcript = home.resolve("session.jsonl");
        Files.copy(TestSupport.transcript("crafted__edge-cases.jsonl"), transcript);
        String payload = TestSupport.payload("s", transcript);
        fireAllAtOnce(TestSupport.hookEnv(home, receiver.baseUrl()), List.of(payload, payload));
        assertEquals(expectedTraceIds(List.of(transcript)), receiver.acceptedTraceIds());
        assertEquals(5, receiver.acceptedRoots().size(), "each turn sent by exactly one of the two runs");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
        assertStatesReadable();
    }

    @Test
    void twentyFiringsAcrossTenSessionsAtOnce() throws Exception {
        List<Path> transcripts = new ArrayList<>();
        List<String> payloads = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            Path transcript = sessionCopy("crafted__edge-cases.jsonl", i);
            transcripts.add(transcript);
            payloads.add(TestSupport.payload("session-" + i, transcript));
            payloads.add(TestSupport.payload("session-" + i, transcript));
        }
        // Twenty JVMs starting at once on two cores: a generous budget keeps this about concurrency, not speed.
        Map<String, String> env = new HashMap<>(TestSupport.hookEnv(home, receiver.baseUrl()));
        env.put("CC_LANGFUSE_EXPORT_BUDGET_MS", "60000");
        fireAllAtOnce(env, payloads);
        Set<String> expected = expectedTraceIds(transcripts);
        assertEquals(50, expected.size());
        assertEquals(expected, receiver.acceptedTraceIds(), "no turn lost, none extra");
        assertEquals(50, receiver.acceptedRoots().size(), "no turn sent twice");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcripts));
        assertStatesReadable();
        System.out.printf("CONCURRENCY | 20 processes, 10 sessions | lost 0 | doubled 0 | roots received %d%n",
                receiver.acceptedRoots().size());
    }

    /**
     * Hook processes killed with SIGKILL at random points while they export to a slow receiver that stores every
     * request it gets whole, then one healthy run; returns the spans the receiver stored twice. How many kills left an
     * export recorded as in flight is printed, not asserted: where the random kills land varies from run to run.
     */
    long killAtRandomPointsThenRunOnce(String mode) throws Exception {
        Path transcript = home.resolve("session.jsonl");
        Files.copy(TestSupport.transcript("entireio__git-sync__0c2a854b-v2.1.136-long.jsonl"), transcript);
        // A slow server widens the window in which a kill lands mid-export (stored, not yet answered).
        receiver.respondWith(OtlpReceiver.Behaviour.slow(150));
        Map<String, String> env = new HashMap<>(TestSupport.hookEnv(home, receiver.baseUrl()));
        env.put("CC_LANGFUSE_EXPORT_BUDGET_MS", "600");
        env.put("CC_LANGFUSE_UNKNOWN_SETTLE_MS", "0");
        Random random = new Random(7);
        String payload = TestSupport.payload("s", transcript);
        int leftInFlight = 0;
        for (int i = 0; i < 12; i++) {
            Process process = TestSupport.startHookProcess(env, payload.getBytes(), TestSupport.tempFile("o", ""), TestSupport.tempFile("e", ""));
            Thread.sleep(200 + random.nextInt(1500));
            process.destroyForcibly().waitFor();
            assertStatesReadable();
            if (inFlightRecorded()) leftInFlight++;
        }
        receiver.respondWith(OtlpReceiver.Behaviour.ok());
        env.put("CC_LANGFUSE_EXPORT_BUDGET_MS", "30000");
        TestSupport.assertQuietExit(TestSupport.runHookProcess(env, payload));
        Set<String> expected = TestSupport.expectedSpanKeys(transcript);
        assertEquals(expected, TestSupport.spanKeys(receiver.storedSpans()), "after the kills every span arrived, none extra");
        assertStatesReadable();
        long twice = receiver.spansReceivedTwice();
        System.out.printf("KILL9 | %s | 12 kills, %d left an export in flight | spans lost 0 | spans received twice %d | %d spans stored for %d%n",
                mode, leftInFlight, twice, receiver.storedSpans().size(), expected.size());
        return twice;
    }

    boolean inFlightRecorded() throws IOException {
        Path dir = TestSupport.layout(home).sessions();
        if (!Files.isDirectory(dir)) return false;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path state : files.filter(litefuse_hook.StateLayout::isState).toList()) {
                if (TestSupport.JSON.readTree(state.toFile()).has("in_flight")) return true;
            }
        }
        return false;
    }

    @Test
    void killedAtRandomPointsLosesNothingAndSendsNothingTwice() throws Exception {
        assertEquals(0, killAtRandomPointsThenRunOnce("Langfuse v4 (v2 API)"), "spans received twice");
    }

    @Test
    void killedAtRandomPointsAgainstAServerBeforeV4LosesNothing() throws Exception {
        // Without the v2 API nothing can be asked: a turn whose export was cut off is sent again (upserted there).
        receiver.observationsApi(false);
        killAtRandomPointsThenRunOnce("server before v4 (no v2 API)");
    }
}
