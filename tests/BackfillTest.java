import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** backfill over a copy of tests/projects/: dry run, send, skip what the hook sent, resume, filters. */
public class BackfillTest extends ReceiverFixture {
    Path projects;

    @BeforeEach
    void start() throws IOException {
        projects = home.resolve(".claude/projects");
        Path source = TestSupport.testsDir().resolve("projects");
        try (Stream<Path> walk = Files.walk(source)) {
            for (Path path : walk.toList()) {
                Path target = projects.resolve(source.relativize(path).toString());
                if (Files.isDirectory(path)) Files.createDirectories(target);
                else Files.copy(path, target);
            }
        }
        // History: nobody writes to these any more.
        try (Stream<Path> walk = Files.walk(projects)) {
            for (Path path : walk.filter(Files::isRegularFile).toList()) {
                Files.setLastModifiedTime(path, FileTime.from(Instant.parse("2026-02-20T00:00:00Z")));
            }
        }
    }

    record Result(int exitCode, String out, String err) {
    }

    Result backfill(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new litefuse_hook(env));
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        List<String> all = new ArrayList<>(List.of("backfill"));
        all.addAll(List.of(args));
        return new Result(cli.execute(all.toArray(String[]::new)), out.toString(), err.toString());
    }

    /** The main session files under projects/ (subagents' files are read with them), or those of the named sessions. */
    List<Path> sessionFiles(String... sessions) throws IOException {
        try (Stream<Path> files = Files.walk(projects, 2)) {
            return files.filter(f -> f.toString().endsWith(".jsonl") && !f.getFileName().toString().startsWith("agent-"))
                    .filter(file -> sessions.length == 0 || Stream.of(sessions).anyMatch(s -> file.getFileName().toString().startsWith(s)))
                    .sorted().toList();
        }
    }

    Set<String> expectedTraceIds(String... sessions) throws IOException {
        Set<String> ids = new TreeSet<>();
        for (Path file : sessionFiles(sessions)) TestSupport.replay(file).forEach(trace -> ids.add(trace.traceId()));
        return ids;
    }

    @Test
    void dryRunCountsAndSendsNothing() throws IOException {
        Result result = backfill("--dry-run");
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(receiver.requests().isEmpty());
        int expected = expectedTraceIds().size();
        assertTrue(result.out().contains("Dry run: 9 session(s), " + expected + " turn(s) to send, 0 already sent; tokens input="), result.out());
        // Each session teaches what its own cost rows determine (the real-client sessions end with one).
        assertTrue(result.out().matches("(?s).*; cost by Claude Code's prices \\$0\\.\\d{6}, for \\d+ of \\d+ generation\\(s\\)\n.*"), result.out());
        assertTrue(result.err().contains("9/9 sessions"), result.err());
        System.out.println("BACKFILL dry run\n" + result.out() + result.err());
    }

    @Test
    void sendsHistoryOnceAndSkipsWhatTheHookSent() throws IOException {
        Path flat = projects.resolve("-Users-user-project/b3edadab-bca0-4054-9b41-f7ffa6941260.jsonl");
        TestSupport.fireHook(env, "b3edadab-bca0-4054-9b41-f7ffa6941260", flat);
        int byHook = receiver.acceptedRoots().size();
        assertTrue(byHook > 0);
        Result result = backfill();
        assertEquals(0, result.exitCode(), result.err());
        assertEquals(expectedTraceIds(), receiver.acceptedTraceIds());
        assertEquals(expectedTraceIds().size(), receiver.acceptedRoots().size(), "nothing sent twice: the hook's turns were skipped");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(sessionFiles()));
        assertTrue(result.out().contains("Sent " + (expectedTraceIds().size() - byHook) + " turn(s) from 9 session(s)"), result.out());
        Result again = backfill();
        assertTrue(again.out().contains("Sent 0 turn(s)"), again.out());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(sessionFiles()));
        TestSupport.assertV4HeaderOnEveryRequest(receiver);
        System.out.println("BACKFILL send\n" + result.out() + result.err());
    }

    @Test
    void resumesAfterAnInterruption() throws IOException {
        receiver.script(OtlpReceiver.Behaviour.ok(), OtlpReceiver.Behaviour.status(401));
        receiver.respondWith(401);
        Result first = backfill();
        assertEquals(1, first.exitCode());
        assertTrue(first.out().contains("run backfill again to resume"), first.out());
        int before = receiver.acceptedRoots().size();
        receiver.respondWith(200);
        assertEquals(0, backfill().exitCode());
        assertEquals(expectedTraceIds(), receiver.acceptedTraceIds());
        assertEquals(expectedTraceIds().size(), receiver.acceptedRoots().size(), "the resumed run sent only what was missing");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(sessionFiles()));
        assertTrue(before > 0);
    }

    @Test
    void filtersByProjectSessionAndDate() throws IOException {
        backfill("--project", "spotter");
        assertEquals(expectedTraceIds("4d5611e5"), receiver.acceptedTraceIds());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(sessionFiles("4d5611e5")));
        receiver.clear();
        backfill("--session", "bgsession");
        assertEquals(expectedTraceIds("bgsession"), receiver.acceptedTraceIds());
        // clear() forgets the requests, not what was stored: the two sessions' spans, each once.
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(sessionFiles("4d5611e5", "bgsession")));
        receiver.clear();
        Result none = backfill("--since", "2026-03-01");
        assertTrue(none.out().contains("Sent 0 turn(s) from 0 session(s)"), none.out());
        assertTrue(receiver.requests().isEmpty());
    }
}
