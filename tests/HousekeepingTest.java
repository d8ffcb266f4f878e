import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Years of use: the log rotates past its limit (one old file, whichever firing crosses it, no line lost or mixed when
 * firings run at once), and the state of finished sessions goes once Claude Code's cleanupPeriodDays says their
 * transcripts go, never that of a session still waiting or busy.
 */
public class HousekeepingTest extends ReceiverFixture {
    static final Pattern LINE = Pattern.compile("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ \\[(DEBUG|INFO|WARN|ERROR)\\] .+");
    static final Pattern SENT = Pattern.compile("Sent Claude Code - Turn \\d+: \\S*/traces/([0-9a-f]{32})");

    /** A transcript as another session (fresh session id and uuids, so its trace ids are its own). */
    Path sessionCopy(String source, String name) throws IOException {
        String text = Files.readString(TestSupport.transcript(source))
                .replace("\"uuid\":\"", "\"uuid\":\"" + name + "-")
                .replace("\"sessionId\":\"sess-", "\"sessionId\":\"" + name + "-");
        Path copy = home.resolve("projects").resolve(name + ".jsonl");
        Files.createDirectories(copy.getParent());
        Files.writeString(copy, text);
        return copy;
    }

    /** Eight hook processes at once, each a session of its own with debug on; the log lines of all, in both files. */
    List<String> eightFiringsAtOnce(Map<String, String> hookEnv, List<Path> transcripts) throws Exception {
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < transcripts.size(); i++) {
            processes.add(TestSupport.startHookProcess(hookEnv, TestSupport.payload("s" + i, transcripts.get(i)).getBytes(),
                    TestSupport.tempFile("out", ".txt"), TestSupport.tempFile("err", ".txt")));
        }
        for (Process process : processes) {
            assertTrue(process.waitFor(180, TimeUnit.SECONDS));
            assertEquals(0, process.exitValue());
        }
        List<String> lines = new ArrayList<>();
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        if (Files.exists(layout.previousLog())) lines.addAll(Files.readAllLines(layout.previousLog()));
        lines.addAll(Files.readAllLines(layout.log()));
        return lines;
    }

    @Test
    void theLogRotatesUnderEightConcurrentFiringsWithEveryLineOnceAndWhole() throws Exception {
        List<Path> transcripts = new ArrayList<>();
        for (int i = 0; i < 8; i++) transcripts.add(sessionCopy("marot__spotter__short.jsonl", "rot" + i));
        Set<String> traceIds = new java.util.TreeSet<>();
        for (Path transcript : transcripts) TestSupport.replay(transcript).forEach(trace -> traceIds.add(trace.traceId()));
        env.put("CC_LANGFUSE_DEBUG", "true");
        // Eight JVMs at once on a small machine: a budget that their start-up cannot use up.
        env.put("CC_LANGFUSE_EXPORT_BUDGET_MS", "60000");
        // How much eight firings write, measured once; then a limit that this much crosses once.
        long written = String.join("\n", eightFiringsAtOnce(env, transcripts)).length();
        TestSupport.deleteTree(home.resolve(".claude"));
        receiver.clear();
        long limit = written * 6 / 10;
        env.put("CC_LANGFUSE_LOG_MAX_BYTES", String.valueOf(limit));
        List<String> lines = eightFiringsAtOnce(env, transcripts);
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        assertTrue(Files.exists(layout.previousLog()), "rotated once: " + written + " bytes against a limit of " + limit);
        assertTrue(Files.size(layout.previousLog()) <= limit && Files.size(layout.log()) <= limit,
                Files.size(layout.previousLog()) + " and " + Files.size(layout.log()) + " bytes, limit " + limit);
        for (Path file : List.of(layout.log(), layout.previousLog())) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)), file.toString());
        }
        for (String line : lines) assertTrue(LINE.matcher(line).matches(), "a whole line, alone: " + line);
        List<String> sent = new ArrayList<>();
        for (String line : lines) {
            Matcher matcher = SENT.matcher(line);
            if (matcher.find()) sent.add(matcher.group(1));
        }
        assertEquals(traceIds.size(), sent.size(), "one Sent line per trace, none lost, none twice:\n" + String.join("\n", lines));
        assertEquals(traceIds, new java.util.TreeSet<>(sent));
        for (int i = 0; i < 8; i++) {
            String session = "session=s" + i;
            assertEquals(1, lines.stream().filter(l -> l.contains("Processed") && l.contains(session + ")")).count(), session);
        }
        assertEquals(traceIds, new java.util.TreeSet<>(receiver.acceptedRoots().stream().map(OtlpReceiver.ReceivedSpan::traceId).toList()));
    }

    @Test
    void aLogThatCannotBeRotatedSaysSoOnceAndTheFiringStillSends() throws Exception {
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        Files.createDirectories(layout.stateDir());
        // The old file's place is taken by a folder with something in it: the log cannot be moved there.
        Files.createDirectories(layout.previousLog().resolve("kept"));
        Files.writeString(layout.log(), "x".repeat(4096) + "\n");
        env.put("CC_LANGFUSE_LOG_MAX_BYTES", "2048");
        env.put("CC_LANGFUSE_DEBUG", "true");
        TestSupport.fireHook(env, "s", sessionCopy("marot__spotter__short.jsonl", "ro"));
        assertFalse(receiver.acceptedRoots().isEmpty(), "sent");
        String log = Files.readString(layout.log());
        assertEquals(1, log.lines().filter(l -> l.contains("Could not rotate the log")).count(), log);
        assertTrue(log.contains("Sent Claude Code - Turn 1"), log);
    }

    // ----------------------------------------------------------------------------------------------------- pruning

    /** A session the hook has sent; then its transcript removed (days < 0), or it and the session's state aged `days`. */
    Path sentSession(String name, int days) throws IOException {
        Path transcript = sessionCopy("marot__spotter__short.jsonl", name);
        TestSupport.fireHook(env, name, transcript);
        if (days < 0) {
            Files.delete(transcript);
        } else {
            FileTime then = FileTime.from(Instant.now().minus(days, ChronoUnit.DAYS));
            Files.setLastModifiedTime(transcript, then);
            Files.setLastModifiedTime(TestSupport.layout(home).state(key(name, transcript)), then);
        }
        return transcript;
    }

    String key(String session, Path transcript) {
        return litefuse_hook.StateFiles.stateKey(session, transcript.toString());
    }

    /** Whether the session's state, lock and stamp are all there (true) or all gone (false); fails on a mix. */
    boolean kept(String session, Path transcript) {
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        String key = key(session, transcript);
        List<Boolean> there = List.of(Files.exists(layout.state(key)), Files.exists(layout.lock(key)), Files.exists(layout.seen(session, transcript)));
        assertTrue(there.stream().distinct().count() == 1, session + ": state, lock, stamp " + there);
        return there.get(0);
    }

    long files() throws IOException {
        try (Stream<Path> walk = Files.walk(TestSupport.layout(home).sessions())) {
            return walk.filter(Files::isRegularFile).count();
        }
    }

    /** Firings of the live session with the daily pass due, until the pass is through (a busy machine may need more than one). */
    void fireWithPassDue(Path live) throws IOException {
        Path marker = TestSupport.layout(home).pruned();
        Files.deleteIfExists(marker);
        do {
            TestSupport.fireHook(env, "live", live);
        } while (Files.readString(marker).contains("stopped_after"));
    }

    /** How many sessions the log says were removed, over all its lines. */
    int removedInLog() throws IOException {
        Matcher matcher = Pattern.compile("Removed the state of (\\d+) session\\(s\\)").matcher(TestSupport.log(home));
        int removed = 0;
        while (matcher.find()) removed += Integer.parseInt(matcher.group(1));
        return removed;
    }

    @Test
    void finishedSessionsGoWhileLivePendingAndLockedOnesStay() throws Exception {
        Path gone = sentSession("gone", -1);
        Path old = sentSession("old", 31);
        Path live = sentSession("live", 0);
        Path locked = sentSession("locked", -1);
        // A session whose turns wait: sent while the server was down, then its transcript removed.
        receiver.respondWith(503);
        Path pending = sentSession("pending", 31);
        assertTrue(Files.exists(TestSupport.layout(home).pendingMarker(key("pending", pending))));
        long before = files();
        try (FileChannel lock = FileChannel.open(TestSupport.layout(home).lock(key("locked", locked)), StandardOpenOption.WRITE);
             var held = lock.lock()) {
            // The lock is this JVM's, as another firing's would be its own: the session stays. The server is still
            // down, so the pending session still waits (its transcript old, but there).
            fireWithPassDue(live);
        }
        receiver.respondWith(200);
        long after = files();
        System.out.println("PRUNING files in " + TestSupport.layout(home).sessions() + ": " + before + " before, " + after + " after");
        assertFalse(kept("gone", gone), "transcript gone:\n" + TestSupport.log(home));
        assertFalse(kept("old", old), "transcript untouched for 31 days (cleanupPeriodDays unset: 30)");
        assertTrue(kept("live", live));
        assertTrue(kept("locked", locked), "held by a firing");
        assertTrue(Files.exists(TestSupport.layout(home).state(key("pending", pending))) && Files.exists(TestSupport.layout(home).lock(key("pending", pending))),
                "turns waiting: state and lock stay (a failed run leaves no stamp)");
        String log = TestSupport.log(home);
        assertEquals(2, removedInLog(), log);
        assertTrue(log.contains("whose transcript is gone or untouched for over 30 days (cleanupPeriodDays)"), log);
        assertEquals(before - 6, after, "two sessions' state, lock and stamp");
        // At most once a day: a session that finishes now waits for tomorrow's pass.
        Path later = sentSession("later", -1);
        TestSupport.fireHook(env, "live", live);
        assertTrue(kept("later", later));
        assertEquals(2, removedInLog());
        fireWithPassDue(live);
        assertFalse(kept("later", later));
        assertFalse(kept("locked", locked), "unlocked now");
    }

    @Test
    void anOldTranscriptTheHookJustWroteTheStateOfStays() throws Exception {
        // Backfill of an old transcript (or a firing for it) writes its state now: pruning it would send it all again.
        Path transcript = sessionCopy("marot__spotter__short.jsonl", "history");
        Files.setLastModifiedTime(transcript, FileTime.from(Instant.now().minus(200, ChronoUnit.DAYS)));
        Path live = sentSession("live", 0);
        TestSupport.fireHook(env, "history", transcript);
        fireWithPassDue(live);
        assertTrue(kept("history", transcript));
        receiver.clear();
        TestSupport.fireHook(env, "history", transcript);
        assertEquals(0, receiver.acceptedSpans().size(), "nothing sent twice");
    }

    @Test
    void cleanupPeriodDaysComesFromClaudeCodesSettings() throws Exception {
        Path settings = home.resolve(".claude/settings.json");
        Files.createDirectories(settings.getParent());
        Files.writeString(settings, "{\"cleanupPeriodDays\": 1}");
        Path live = sentSession("live", 0);
        Path twoDays = sentSession("two", 2);
        fireWithPassDue(live);
        assertFalse(kept("two", twoDays), "1 day: a transcript untouched for 2 goes");
        assertTrue(kept("live", live));
        Files.writeString(settings, "{\"cleanupPeriodDays\": 365}");
        Path fortyDays = sentSession("forty", 40);
        Path yearAndMore = sentSession("year", 400);
        fireWithPassDue(live);
        assertTrue(kept("forty", fortyDays), "365 days: 40 stay");
        assertFalse(kept("year", yearAndMore), "365 days: 400 go");
        assertTrue(TestSupport.log(home).contains("untouched for over 365 days"), TestSupport.log(home));
    }

    @Test
    void aLongPassGoesOnAtTheNextFiringFromWhereItStopped() throws Exception {
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        Path gone = sentSession("gone", -1);
        String state = Files.readString(layout.state(key("gone", gone)));
        // 3000 finished sessions: more than one firing's slice removes.
        for (int i = 0; i < 3000; i++) {
            Path transcript = home.resolve("projects/gone-" + i + ".jsonl");
            String copy = state.replace(gone.toString(), transcript.toString()).replace("\"gone\"", "\"gone-" + i + "\"");
            Files.writeString(layout.state(key("gone-" + i, transcript)), copy);
            Files.createFile(layout.lock(key("gone-" + i, transcript)));
        }
        Path live = sentSession("live", 0);
        int firings = 0;
        while (true) {
            fireWithPassDueOrGoingOn(live);
            firings++;
            try (Stream<Path> states = Files.list(layout.sessions())) {
                if (states.filter(litefuse_hook.StateLayout::isState).count() == 1) break;
            }
            assertTrue(firings < 200, "the pass ends");
        }
        assertTrue(kept("live", live));
        System.out.println("PRUNING 3001 finished sessions removed over " + firings + " firing(s)");
        String log = TestSupport.log(home);
        assertTrue(firings == 1 || log.contains("the rest at the next firing"), log);
    }

    @Test
    void eachSliceGoesOnRightAfterTheLastEntryItDid() throws Exception {
        // Slices of no time at all: each does one entry; the next starts right after it, none skipped, none done twice.
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        Path live = sentSession("live", 0);
        sentSession("busy", 0);
        // Nothing to remove yet, so the folder stays as it is: the slices stop at its entries one by one, in order.
        List<String> names = new ArrayList<>(List.of(layout.sessions().toFile().list()));
        java.util.Collections.sort(names);
        List<String> stops = new ArrayList<>();
        for (String at = ""; ; ) {
            String stopped = litefuse_hook.StatePruning.prune(layout, at, System.currentTimeMillis() - 86_400_000L, 0).stoppedAfter();
            if (stopped == null) break;
            stops.add(stopped);
            at = stopped;
        }
        assertEquals(names.subList(0, names.size() - 1), stops);
        for (int i = 0; i < 4; i++) sentSession("gone" + i, -1);
        int entries = layout.sessions().toFile().list().length;
        String after = "";
        int removed = 0;
        int slices = 0;
        while (true) {
            litefuse_hook.StatePruning.Outcome outcome = litefuse_hook.StatePruning.prune(layout, after, System.currentTimeMillis() - 86_400_000L, 0);
            removed += outcome.removed();
            slices++;
            if (outcome.stoppedAfter() == null) break;
            assertTrue(outcome.stoppedAfter().compareTo(after) > 0, "forward: " + after + " then " + outcome.stoppedAfter());
            after = outcome.stoppedAfter();
            assertTrue(slices <= entries, "one entry a slice at least");
        }
        assertEquals(4, removed, "every finished session, over " + slices + " slices");
        assertTrue(kept("live", live));
    }

    /** Removes the marker only when no pass is under way, so that one that stopped goes on. */
    void fireWithPassDueOrGoingOn(Path live) throws IOException {
        Path marker = TestSupport.layout(home).pruned();
        if (Files.exists(marker) && !Files.readString(marker).contains("stopped_after")) Files.delete(marker);
        Files.writeString(live, "", StandardOpenOption.APPEND);
        TestSupport.fireHook(env, "live", live);
    }

    @Test
    void filesThatCannotBeRemovedCostOneLineAndTheFiringStillSends() throws Exception {
        Path gone = sentSession("gone", -1);
        Path other = sentSession("other", -1);
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        List<Path> immutable = List.of(layout.state(key("gone", gone)), layout.state(key("other", other)));
        // Root ignores permission bits: the immutable attribute is what makes a file undeletable for it.
        for (Path file : immutable) {
            Process chattr = new ProcessBuilder("chattr", "+i", file.toString()).redirectErrorStream(true).start();
            Assumptions.assumeTrue(chattr.waitFor() == 0, "chattr +i is not available here");
        }
        try {
            Path live = sessionCopy("marot__spotter__short.jsonl", "live");
            receiver.clear();
            fireWithPassDue(live);
            assertFalse(receiver.acceptedRoots().isEmpty(), "the firing sent its turns");
            String log = TestSupport.log(home);
            assertEquals(1, log.lines().filter(l -> l.contains("Could not remove the state of 2 finished session(s) in " + layout.sessions()
                    + ": ") && l.contains("Operation not permitted")).count(), log);
        } finally {
            for (Path file : immutable) new ProcessBuilder("chattr", "-i", file.toString()).start().waitFor();
        }
    }

    @Test
    void uninstallPurgeRemovesEverythingTheHookMade() throws Exception {
        env.put("CC_LANGFUSE_LOG_MAX_BYTES", "1024");
        env.put("CC_LANGFUSE_DEBUG", "true");
        picocli.CommandLine cli = new picocli.CommandLine(new litefuse_hook(env));
        cli.setOut(new java.io.PrintWriter(new java.io.StringWriter()));
        assertEquals(0, cli.execute("install", "--dir", home.toString()));
        sentSession("gone", -1);
        sentSession("live", 0);
        litefuse_hook.StateLayout layout = TestSupport.layout(home);
        assertTrue(Files.exists(layout.previousLog()) && Files.exists(layout.logLock()) && Files.exists(layout.pruned()));
        java.io.StringWriter out = new java.io.StringWriter();
        cli.setOut(new java.io.PrintWriter(out));
        assertEquals(0, cli.execute("uninstall", "--purge"), out.toString());
        try (Stream<Path> left = Files.walk(home.resolve(".claude"))) {
            assertEquals(List.of(), left.filter(Files::isRegularFile).filter(f -> f.toString().contains("litefuse")).toList(),
                    "nothing of the hook's is left: " + out);
        }
    }
}
