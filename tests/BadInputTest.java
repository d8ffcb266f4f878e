import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The corpus in tests/bad-inputs/: the hook exits 0, logs one clear line, and every good row around is traced. */
public class BadInputTest extends ReceiverFixture {

    static List<Path> corpus(String folder) throws IOException {
        try (Stream<Path> files = Files.list(TestSupport.testsDir().resolve("bad-inputs").resolve(folder))) {
            return files.sorted().toList();
        }
    }

    Set<String> cleanTraceIds() throws IOException {
        return TestSupport.replay(TestSupport.transcript("crafted__edge-cases.jsonl")).stream()
                .map(litefuse_hook.TraceModel.TraceRecord::traceId).collect(Collectors.toCollection(TreeSet::new));
    }

    /** The crafted edge-case transcript with `bad` bytes inserted in the middle of its first turn. */
    Path withBadBytesInside(byte[] bad) throws IOException {
        List<String> lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
        Path target = Files.createTempFile(home, "t", ".jsonl");
        try (OutputStream out = Files.newOutputStream(target)) {
            for (int i = 0; i < lines.size(); i++) {
                if (i == 3) out.write(bad);
                out.write((lines.get(i) + "\n").getBytes(StandardCharsets.UTF_8));
            }
        }
        return target;
    }

    /**
     * The reader finds every line end, whatever its length and alignment: lines of 1 byte to 600 KB (past the reader's
     * 256 KB chunk), multi-byte UTF-8, a blank line and a broken one; every row keeps its byte offset.
     */
    @Test
    void readerFindsEveryLineAcrossChunksAndAlignments() throws IOException {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        List<Long> offsets = new ArrayList<>();
        int[] padding = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 100, 4_095, 70_000, 262_140, 262_150, 600_000, 6, 0};
        for (int i = 0; i < padding.length; i++) {
            offsets.add((long) bytes.size());
            String text = "é✓😀".repeat(i % 3) + "x".repeat(padding[i]);
            bytes.writeBytes(("{\"type\":\"user\",\"n\":" + i + ",\"text\":\"" + text + "\"}\n").getBytes(StandardCharsets.UTF_8));
            if (i == 5) bytes.writeBytes("\n{broken\n".getBytes(StandardCharsets.UTF_8));
        }
        Path file = Files.write(Files.createTempFile(home, "lines", ".jsonl"), bytes.toByteArray());
        litefuse_hook.Reader.ReadResult read = litefuse_hook.Reader.readNewJsonl(file, 0, litefuse_hook.Reader.unreadTypes(litefuse_hook.Config.GenerationInput.NEW), litefuse_hook.Log.toStderr());
        assertEquals(1, read.badLines());
        assertEquals(bytes.size(), read.endOffset());
        assertEquals(offsets, read.rows().stream().map(litefuse_hook.Transcript.Row::offset).toList());
        for (int i = 0; i < padding.length; i++) {
            JsonNode row = read.rows().get(i).json();
            assertEquals(i, row.path("n").asInt());
            assertEquals(padding[i] + (i % 3) * 4, row.path("text").asText().length(), "row " + i);
        }
    }

    /** Bad payloads on stdin, through a real process: exit 0, nothing printed, one log line, nothing sent. */
    @TestFactory
    Stream<DynamicTest> badPayloads() throws IOException {
        return corpus("payloads").stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> {
            Path fileHome = TestSupport.tempHome();
            TestSupport.assertQuietExit(TestSupport.runHookProcess(TestSupport.hookEnv(fileHome, receiver.baseUrl()),
                    Files.readAllBytes(file)));
            List<String> lines = TestSupport.log(fileHome).lines().toList();
            assertTrue(lines.stream().anyMatch(l -> l.contains("[WARN]")), "a clear log line: " + lines);
            assertTrue(receiver.requests().isEmpty());
        }));
    }

    /** Bad rows inside a turn: skipped (with a log line when dropped), and all five turns still traced. */
    @TestFactory
    Stream<DynamicTest> badRowsAmongGoodOnes() throws IOException {
        return corpus("rows").stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> {
            receiver.clear();
            Path transcript = withBadBytesInside(Files.readAllBytes(file));
            TestSupport.fireHook(env, "rows-" + file.getFileName(), transcript);
            assertEquals(cleanTraceIds(), receiver.acceptedTraceIds());
            String log = TestSupport.log(home);
            assertTrue(log.contains("Processed 5 turns in "), log);
            if (!file.getFileName().toString().equals("wrong-nested-types.jsonl")) {
                assertTrue(log.contains("Skipped transcript"), log);
            }
        }));
    }

    /** Files that are not Claude Code transcripts: nothing sent, no crash, and a line saying so when it has rows. */
    @TestFactory
    Stream<DynamicTest> notClaudeCodeTranscripts() throws IOException {
        return corpus("transcripts").stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> {
            Path fileHome = TestSupport.tempHome();
            TestSupport.fireHook(TestSupport.hookEnv(fileHome, receiver.baseUrl()), "x", file);
            String log = TestSupport.log(fileHome);
            assertTrue(log.contains("Processed 0 turns in "), log);
            if (file.getFileName().toString().startsWith("codex")) {
                assertTrue(log.contains("does not look like a Claude Code transcript"), log);
            }
            assertTrue(receiver.requests().isEmpty());
        }));
    }

    @Test
    void hundredMegabyteLineIsSkippedAndTheRestTraced() throws IOException {
        byte[] huge = new byte[100 * 1024 * 1024 + 2];
        byte[] head = "{\"type\":\"user\",\"uuid\":\"huge\",\"message\":{\"role\":\"user\",\"content\":\"".getBytes(StandardCharsets.UTF_8);
        System.arraycopy(head, 0, huge, 0, head.length);
        java.util.Arrays.fill(huge, head.length, huge.length - 4, (byte) 'x');
        System.arraycopy("\"}}\n".getBytes(StandardCharsets.UTF_8), 0, huge, huge.length - 4, 4);
        Path transcript = withBadBytesInside(huge);
        TestSupport.fireHook(env, "huge", transcript);
        assertEquals(cleanTraceIds(), receiver.acceptedTraceIds());
        String log = TestSupport.log(home);
        assertTrue(log.contains("longer than " + litefuse_hook.Reader.MAX_LINE_BYTES + " bytes"), log);
        Files.delete(transcript);
    }

    @Test
    void invalidUtf8InsideAStringKeepsTheRow() throws IOException {
        List<String> lines = new ArrayList<>(Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl")));
        Path transcript = home.resolve("latin1.jsonl");
        int last = HookTest.indexOfUuid(lines, "a9");
        try (OutputStream out = Files.newOutputStream(transcript)) {
            for (int i = 0; i < lines.size(); i++) {
                byte[] line = lines.get(i).getBytes(StandardCharsets.UTF_8);
                // A Latin-1 byte in the final answer: the row stays, with a replacement character.
                if (i == last) line = lines.get(i).replace("demo project", "d\u00e9mo project").getBytes(StandardCharsets.ISO_8859_1);
                out.write(line);
                out.write('\n');
            }
        }
        TestSupport.fireHook(env, "latin1", transcript);
        assertEquals(cleanTraceIds(), receiver.acceptedTraceIds());
        String output = receiver.acceptedRoots().stream().filter(r -> r.attr("langfuse.trace.input").equals("Summarise README.md"))
                .findFirst().orElseThrow().attr("langfuse.trace.output");
        assertEquals("README.md describes a d\ufffdmo project.", output);
    }
}
