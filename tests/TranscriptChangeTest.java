import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A transcript that shrinks, is replaced, is deleted, or ends in a half-written line: one log line, nothing doubled. */
public class TranscriptChangeTest extends ReceiverFixture {
    Path transcript;
    List<String> lines;

    @BeforeEach
    void start() throws IOException {
        transcript = home.resolve("session.jsonl");
        lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
    }

    void fire() {
        TestSupport.fireHook(env, "s", transcript);
    }

    /**
     * The first `turns` turns of the transcript as it stands arrived, each once: one root per turn, and counted in spans
     * (as Langfuse v4 shows them) exactly the spans the replay of those turns produces, none received twice.
     */
    void assertEachTurnOnce(int turns) throws IOException {
        List<String> roots = receiver.acceptedRoots().stream().map(OtlpReceiver.ReceivedSpan::traceId).toList();
        assertEquals(turns, new TreeSet<>(roots).size());
        assertEquals(turns, roots.size(), "no turn sent twice");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript, turns));
    }

    /** Writes the transcript up to the turn of `nextUuid`, fires, and checks that its `turns` turns arrived once. */
    void sendUpTo(String nextUuid, int turns) throws IOException {
        Files.write(transcript, lines.subList(0, HookTest.indexOfUuid(lines, nextUuid)));
        fire();
        assertEachTurnOnce(turns);
    }

    @Test
    void shrunkTranscriptIsReadAgainWithoutResending() throws IOException {
        Files.write(transcript, lines);
        fire();
        assertEachTurnOnce(5);
        Files.write(transcript, lines.subList(0, lines.size() / 2));
        fire();
        assertTrue(TestSupport.log(home).contains("shrank below the saved offset"), TestSupport.log(home));
        Files.write(transcript, lines);
        fire();
        assertEachTurnOnce(5);
    }

    @Test
    void replacedTranscriptIsReadFromTheStart() throws IOException {
        sendUpTo("u5", 4);
        // A new file at the same path (new inode), longer than the old one: the old offset means nothing in it.
        Path replacement = home.resolve("replacement.jsonl");
        List<String> rewritten = new ArrayList<>(List.of("{\"type\":\"summary\",\"summary\":\"A title written first\",\"leafUuid\":\"x\"}"));
        rewritten.addAll(lines);
        Files.write(replacement, rewritten);
        Files.move(replacement, transcript, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        fire();
        assertTrue(TestSupport.log(home).contains("was replaced by a new file"), TestSupport.log(home));
        assertEachTurnOnce(5);
    }

    @Test
    void rewrittenInPlaceIsNoticed() throws IOException {
        Files.write(transcript, lines.subList(0, 8));
        fire();
        List<String> edited = new ArrayList<>(lines);
        edited.set(0, edited.get(0).replace("\"messageId\":\"x\"", "\"messageId\":\"y\""));
        Files.writeString(transcript, String.join("\n", edited) + "\n", StandardOpenOption.TRUNCATE_EXISTING);
        fire();
        assertTrue(TestSupport.log(home).contains("was rewritten"), TestSupport.log(home));
        assertEachTurnOnce(5);
    }

    @Test
    void stateWithTheOlderSha256HeadIsCheckedThatWayThenSavedWithACrc32() throws IOException {
        sendUpTo("u4", 3);
        Path stateFile = TestSupport.stateFile(home, "s", transcript);
        com.fasterxml.jackson.databind.node.ObjectNode state = (com.fasterxml.jackson.databind.node.ObjectNode) TestSupport.JSON.readTree(stateFile.toFile());
        assertTrue(state.has("head_crc32"), state.toString());
        // As an earlier release saved it: a SHA-256 of the same head bytes.
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(transcript), state.path("head_length").asInt());
        String sha256 = java.util.HexFormat.of().formatHex(litefuse_hook.Helpers.sha256(head));
        state.remove("head_crc32");
        state.put("head_sha256", sha256);
        Files.writeString(stateFile, state.toString());
        sendUpTo("u5", 4);
        assertTrue(!TestSupport.log(home).contains("was rewritten"), "the old head checksum still matches: " + TestSupport.log(home));
        com.fasterxml.jackson.databind.JsonNode migrated = TestSupport.JSON.readTree(stateFile.toFile());
        assertTrue(migrated.has("head_crc32") && !migrated.has("head_sha256"), migrated.toString());
        // An old checksum that no longer matches is a rewrite, read again from the start without resending.
        ((com.fasterxml.jackson.databind.node.ObjectNode) migrated).remove("head_crc32");
        ((com.fasterxml.jackson.databind.node.ObjectNode) migrated).put("head_sha256", sha256.replace(sha256.charAt(0), sha256.charAt(0) == 'a' ? 'b' : 'a'));
        Files.writeString(stateFile, migrated.toString());
        Files.write(transcript, lines);
        fire();
        assertTrue(TestSupport.log(home).contains("was rewritten"), TestSupport.log(home));
        assertEachTurnOnce(5);
    }

    @Test
    void deletedTranscriptIsLoggedAndTheStateKept() throws IOException {
        sendUpTo("u4", 3);
        Files.delete(transcript);
        fire();
        assertTrue(TestSupport.log(home).contains("Transcript is missing, unreadable or not a file"), TestSupport.log(home));
        Files.write(transcript, lines);
        fire();
        assertEachTurnOnce(5);
    }

    @Test
    void halfWrittenLineWaitsForItsEnd() throws IOException {
        byte[] all = (String.join("\n", lines) + "\n").getBytes(StandardCharsets.UTF_8);
        int lastLineStart = new String(all, StandardCharsets.UTF_8).lastIndexOf('\n', all.length - 2) + 1;
        int cut = lastLineStart + 40;
        Files.write(transcript, java.util.Arrays.copyOfRange(all, 0, cut));
        fire();
        assertEachTurnOnce(4);
        assertTrue(TestSupport.log(home).contains("deferred 1 (in-progress)"), TestSupport.log(home));
        Files.write(transcript, java.util.Arrays.copyOfRange(all, cut, all.length), StandardOpenOption.APPEND);
        fire();
        assertEachTurnOnce(5);
        assertTrue(!TestSupport.log(home).contains("Skipped"), "a half-written line is not a broken line");
    }
}
