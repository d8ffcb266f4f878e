import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What each generation says the model was sent, offline: three sessions the real Claude Code 2.1.332 wrote against the
 * mock Messages API (tests/projects/-realclient-2.1.332/), beside the request bodies the mock received from it
 * (mock-requests.json). The modes, the transcript without request rows, the hook across firings, backfill, the
 * Collector route, cutting, masking, and request rows that are missing, wrong or out of order.
 */
public class GenerationInputTest extends ReceiverFixture {
    static final Path DIR = TestSupport.testsDir().resolve("projects/-realclient-2.1.332");
    static final String DELEGATE = "12399256-5282-4c37-8d00-fda578ebbc87";
    static final String INTERACTIVE = "df3a104d-7688-4f31-9fdc-b7c942bb8c19";
    static final String ECHO = "f638f93d-d757-4acf-8a31-c795c69736de";

    /** One generation as sent: where in which trace, where its input came from, the input, its parameters, its metadata. */
    record Generation(String key, String from, JsonNode input, JsonNode parameters, JsonNode meta) {
        JsonNode messages() {
            return input == null ? null : input.path("messages");
        }
    }

    static List<JsonNode> clientRequests() throws IOException {
        List<JsonNode> bodies = new ArrayList<>();
        TestSupport.JSON.readTree(DIR.resolve("mock-requests.json").toFile()).forEach(bodies::add);
        return bodies;
    }

    static Generation of(String key, String input, JsonNode parameters, JsonNode metadata) {
        try {
            JsonNode meta = metadata.path("claude_code");
            return new Generation(key, meta.path("input_from").asText(null), input == null ? null : TestSupport.JSON.readTree(input),
                    parameters, meta);
        } catch (IOException e) {
            throw new AssertionError("a generation input that is not JSON: " + input, e);
        }
    }

    static List<Generation> generations(List<litefuse_hook.TraceModel.TraceRecord> traces) {
        List<Generation> generations = new ArrayList<>();
        for (litefuse_hook.TraceModel.TraceRecord trace : traces) {
            for (litefuse_hook.TraceModel.Observation o : trace.observations()) {
                if (o.type() != litefuse_hook.TraceModel.ObservationType.GENERATION) continue;
                JsonNode parameters = o.modelCall() == null || o.modelCall().parameters() == null
                        ? TestSupport.JSON.createObjectNode() : o.modelCall().parameters();
                generations.add(of(trace.traceId() + "/" + o.id(), o.input(), parameters, o.metadata()));
            }
        }
        return generations;
    }

    static List<Generation> generations(OtlpReceiver receiver) throws IOException {
        List<Generation> generations = new ArrayList<>();
        for (OtlpReceiver.ReceivedSpan span : receiver.acceptedSpans()) {
            if (!"generation".equals(span.attr("langfuse.observation.type"))) continue;
            String parameters = span.attr("langfuse.observation.model.parameters");
            generations.add(of(span.traceId() + "/" + span.spanId(), span.attr("langfuse.observation.input"),
                    parameters == null ? TestSupport.JSON.createObjectNode() : TestSupport.JSON.readTree(parameters),
                    TestSupport.JSON.readTree(span.attr("langfuse.observation.metadata"))));
        }
        return generations;
    }

    /** Replays the sessions in `dir` as the hook would build them, with these settings; debug lines go to `home`'s log. */
    List<Generation> replay(Path dir, String... settings) throws IOException {
        Map<String, String> environment = new HashMap<>(env);
        environment.put("CC_LANGFUSE_DEBUG", "true");
        for (int i = 0; i < settings.length; i += 2) environment.put(settings[i], settings[i + 1]);
        litefuse_hook.Config config = litefuse_hook.Config.loadConfig(environment);
        litefuse_hook.Log log = litefuse_hook.Log.toFile(config);
        List<litefuse_hook.TraceModel.TraceRecord> traces = new ArrayList<>();
        for (String session : List.of(DELEGATE, INTERACTIVE, ECHO)) {
            Path file = dir.resolve(session + ".jsonl");
            litefuse_hook.Pipeline.replayTranscript(file, litefuse_hook.Traces.TraceContext.of(config.trace(), session, file.toString()),
                    log, traces::add);
        }
        return generations(traces);
    }

    /** A copy of the sessions (subagents too), each row passed through `edit` (null drops it), the rows reordered by `order`. */
    Path copyEdited(UnaryOperator<ObjectNode> edit, UnaryOperator<List<ObjectNode>> order) throws IOException {
        return copyEdited("", edit, order);
    }

    /** As above, editing only the files whose name starts with `file`. */
    Path copyEdited(String file, UnaryOperator<ObjectNode> edit, UnaryOperator<List<ObjectNode>> order) throws IOException {
        Path copy = TestSupport.tempDir("realclient-edited");
        try (var walk = Files.walk(DIR)) {
            for (Path path : walk.filter(p -> p.toString().endsWith(".jsonl")).toList()) {
                boolean edited = path.getFileName().toString().startsWith(file);
                List<ObjectNode> rows = new ArrayList<>();
                for (String line : Files.readAllLines(path)) {
                    ObjectNode row = (ObjectNode) TestSupport.JSON.readTree(line);
                    row = edited ? edit.apply(row) : row;
                    if (row != null) rows.add(row);
                }
                StringBuilder out = new StringBuilder();
                for (ObjectNode row : edited ? order.apply(rows) : rows) out.append(TestSupport.JSON.writeValueAsString(row)).append('\n');
                Path target = copy.resolve(DIR.relativize(path).toString());
                Files.createDirectories(target.getParent());
                Files.writeString(target, out, StandardCharsets.UTF_8);
            }
        }
        return copy;
    }

    /** Asserts each generation shows one of the requests, as `expected` makes it from a request body, with its settings. */
    static Set<Integer> assertEachShowsARequest(List<Generation> generations, List<JsonNode> requests, Function<JsonNode, JsonNode> expected) {
        Set<Integer> shown = new HashSet<>();
        for (Generation generation : generations) {
            int match = -1;
            for (int i = 0; i < requests.size() && match < 0; i++) {
                if (expected.apply(requests.get(i)).equals(generation.messages())) match = i;
            }
            assertTrue(match >= 0, () -> generation.key() + " (" + generation.from() + ") shows no request the client sent: " + generation.input());
            JsonNode body = requests.get(match);
            assertEquals(body.path("max_tokens").asInt(), generation.parameters().path("max_tokens").asInt(), "max_tokens");
            assertEquals(body.path("thinking").path("type").asText(), generation.parameters().path("thinking").asText(), "thinking");
            assertEquals(body.path("output_config").path("effort").asText(), generation.parameters().path("effort").asText(), "effort");
            shown.add(match);
        }
        return shown;
    }

    @Test
    void fullInputIsEveryRequestTheClientSentAndNewInputItsNewMessages() throws IOException {
        List<JsonNode> requests = clientRequests();
        List<Generation> full = replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full");
        assertTrue(full.stream().allMatch(g -> g.from().equals("request")), "every call rebuilt whole and proven by its digest");
        assertEquals(requests.size(), assertEachShowsARequest(full, requests, RealClientInputTest::wholeRequest).size(),
                "every request the client sent is some generation's input");
        for (Generation generation : full) {
            JsonNode tools = generation.input().path("tools");
            assertTrue(tools.size() > 5, "the tools it offered");
        }
        long withSchemas = full.stream().filter(g -> g.input().path("tools").path(0).isObject()).count();
        long traces = full.stream().map(g -> g.key().split("/")[0] + g.input().path("tools").size()).distinct().count();
        assertEquals(traces, withSchemas, "the tool schemas once per trace (and tool list), names after");

        List<Generation> fresh = replay(DIR);
        assertTrue(fresh.stream().allMatch(g -> g.from().equals("request_new")), "the default is new, from the request rows");
        assertTrue(fresh.stream().allMatch(g -> g.input().size() == 1), "messages only");
        assertEquals(requests.size(), assertEachShowsARequest(fresh, requests, RealClientInputTest::newMessages).size());
    }

    @Test
    void withoutRequestRowsNewInputIsEveryMessageTheTranscriptHolds() throws IOException {
        // Where the server-side switch was off: no api-request rows. The prompt, tool results and rows Claude Code added
        // are exact; what it renders from attachment rows (environment, date...) is named, since only their data is kept.
        Path stripped = copyEdited(row -> row.path("type").asText().startsWith("api-request") ? null : row, rows -> rows);
        List<JsonNode> requests = clientRequests();
        Set<Integer> shown = new HashSet<>();
        int named = 0;
        for (Generation generation : replay(stripped, "CC_LANGFUSE_GENERATION_INPUT", "full")) {
            assertEquals("transcript", generation.from(), "full falls back to new without request rows");
            List<JsonNode> attached = new ArrayList<>();
            generation.meta().path("input_attachments").forEach(attached::add);
            named += attached.isEmpty() ? 0 : 1;
            int match = -1;
            for (int i = 0; i < requests.size() && match < 0; i++) {
                JsonNode sent = RealClientInputTest.newMessages(requests.get(i));
                JsonNode rendered = attached.isEmpty() ? sent : withoutRenderedAttachments(sent);
                if (rendered.equals(generation.messages())) match = i;
            }
            assertTrue(match >= 0, () -> generation.key() + " shows " + generation.input());
            shown.add(match);
        }
        assertEquals(requests.size(), shown.size(), "every request is some generation's");
        assertTrue(named > 0, "the first call of each turn names the attachments the client rendered into it");
    }

    /** The messages without what Claude Code renders from attachment rows: system-reminder blocks and system messages. */
    static JsonNode withoutRenderedAttachments(JsonNode messages) {
        ArrayNode kept = TestSupport.JSON.createArrayNode();
        for (JsonNode message : messages) {
            if (message.path("role").asText().equals("system")) continue;
            ArrayNode blocks = TestSupport.JSON.createArrayNode();
            for (JsonNode block : message.path("content")) {
                if (!block.path("text").asText().startsWith("<system-reminder>")) blocks.add(block);
            }
            if (!blocks.isEmpty()) kept.addObject().put("role", message.path("role").asText()).set("content", blocks);
        }
        return kept;
    }

    @Test
    void offSendsNoInputButTheRequestsSettings() throws IOException {
        List<Generation> off = replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "off");
        List<JsonNode> requests = clientRequests();
        assertEquals(replay(DIR).size(), off.size());
        for (Generation generation : off) {
            assertNull(generation.input(), generation.key());
            assertNull(generation.from());
            JsonNode body = requests.get(0);
            assertEquals(body.path("max_tokens").asInt(), generation.parameters().path("max_tokens").asInt(), "the settings all the same");
        }
    }

    @Test
    void theHookSendsFullInputAcrossFiringsOverTheCollectorRoute() throws IOException {
        // One firing per prompt of the interactive session: the third turn's requests extend requests the hook read two
        // firings earlier, which its state carries. The spans go to a Collector's OTLP endpoint, inputs and all.
        env.put("CC_LANGFUSE_GENERATION_INPUT", "full");
        env.put("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.baseUrl() + "/collector/v1/traces");
        Path transcript = TestSupport.tempDir("firings").resolve(INTERACTIVE + ".jsonl");
        List<String> lines = Files.readAllLines(DIR.resolve(INTERACTIVE + ".jsonl"));
        List<Integer> stops = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (TestSupport.JSON.readTree(lines.get(i)).path("subtype").asText().equals("stop_hook_summary")) stops.add(i);
        }
        assertEquals(3, stops.size(), "three prompts, three stops");
        for (int stop : stops) {
            Files.write(transcript, lines.subList(0, stop + 1));
            TestSupport.fireHook(env, INTERACTIVE, transcript);
        }
        assertEquals(3, receiver.acceptedRoots().size());
        assertTrue(receiver.requests().stream().allMatch(r -> r.path().equals("/collector/v1/traces")));
        List<Generation> sent = generations(receiver);
        String log = TestSupport.log(home);
        assertTrue(sent.stream().allMatch(g -> g.from().equals("request")), log);
        assertEquals(5, assertEachShowsARequest(sent, clientRequests(), RealClientInputTest::wholeRequest).size(),
                "alpha's two calls, beta's, gamma's two");
    }

    @Test
    void aFiringThatReadsIntoTheNextTurnCarriesTheRequestsALaterTurnExtends() throws IOException {
        // A detached firing may read after Claude Code went on: the next turn's request rows are there (the last one
        // perhaps half written), its answer not. That turn waits for a later firing, which must still rebuild its
        // requests whole from the carried ones: in the interactive session (gamma's requests extend beta's) and in the
        // --continue one (a new process's first request names every message of the first by hash).
        assertEveryCutInsideALaterTurnKeepsTheInputsWhole(INTERACTIVE, 3, 5);
        assertEveryCutInsideALaterTurnKeepsTheInputsWhole(ECHO, 2, 3);
    }

    /**
     * For each two rows inside the last turn: one firing per earlier stop, one at each of the two rows (with half of the
     * next row written), one at the last stop; every turn once, every generation showing a request whole.
     */
    void assertEveryCutInsideALaterTurnKeepsTheInputsWhole(String session, int turns, int requests) throws IOException {
        List<String> lines = Files.readAllLines(DIR.resolve(session + ".jsonl"));
        List<Integer> stops = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (TestSupport.JSON.readTree(lines.get(i)).path("subtype").asText().equals("stop_hook_summary")) stops.add(i);
        }
        assertEquals(turns, stops.size(), session + ": one stop per prompt");
        int last = stops.get(turns - 1);
        for (int cut = stops.get(turns - 2) + 1; cut < last; cut++) for (int again = cut; again < last; again++) {
            try (OtlpReceiver cutReceiver = new OtlpReceiver()) {
                Path cutHome = TestSupport.tempHome();
                Map<String, String> cutEnv = TestSupport.hookEnv(cutHome, cutReceiver.baseUrl());
                cutEnv.put("CC_LANGFUSE_GENERATION_INPUT", "full");
                Path transcript = TestSupport.tempDir("firings").resolve(session + ".jsonl");
                List<Integer> ends = new ArrayList<>(stops.subList(0, turns - 1));
                ends.addAll(List.of(cut, again, last));
                for (int end : ends) {
                    Files.write(transcript, lines.subList(0, end + 1));
                    String next = lines.get(end + 1);
                    if (end != last) Files.writeString(transcript, next.substring(0, next.length() / 2), java.nio.file.StandardOpenOption.APPEND);
                    TestSupport.fireHook(cutEnv, session, transcript);
                }
                String where = session + " cut after rows " + cut + " and " + again + "\n" + TestSupport.log(cutHome);
                assertEquals(turns, cutReceiver.acceptedRoots().size(), where);
                List<Generation> sent = generations(cutReceiver);
                assertTrue(sent.stream().allMatch(g -> g.from().equals("request")), where);
                assertEquals(requests, assertEachShowsARequest(sent, clientRequests(), RealClientInputTest::wholeRequest).size(), where);
                TestSupport.deleteTree(cutHome);
            }
        }
    }

    @Test
    void backfillSendsTheInputsReplayShows() throws IOException {
        Path projects = home.resolve(".claude/projects/-realclient-2.1.332");
        try (var walk = Files.walk(DIR)) {
            for (Path path : walk.toList()) {
                Path target = projects.resolve(DIR.relativize(path).toString());
                if (Files.isDirectory(path)) Files.createDirectories(target);
                else Files.copy(path, target);
            }
        }
        env.put("CC_LANGFUSE_GENERATION_INPUT", "full");
        picocli.CommandLine cli = new picocli.CommandLine(new litefuse_hook(env));
        cli.setOut(new java.io.PrintWriter(new java.io.StringWriter()));
        assertEquals(0, cli.execute("backfill", "--project", "realclient"));
        Map<String, JsonNode> replayed = new LinkedHashMap<>();
        for (Generation generation : replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full")) replayed.put(generation.key(), generation.input());
        Map<String, JsonNode> backfilled = new LinkedHashMap<>();
        for (Generation generation : generations(receiver)) backfilled.put(generation.key(), generation.input());
        assertEquals(replayed, backfilled, "same ids, same inputs");
    }

    @Test
    void aCutInputKeepsItsNewestMessagesWholeAndSaysWhatWasCut() throws IOException {
        // First the tool schemas become names, then the oldest messages go; the newest stay whole.
        List<Generation> cut = replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full", "CC_LANGFUSE_MAX_CHARS", "12000");
        List<Generation> whole = replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full");
        int cuts = 0;
        int omittedInAll = 0;
        for (int i = 0; i < cut.size(); i++) {
            Generation generation = cut.get(i);
            if (!generation.meta().path("input_truncated").asBoolean(false)) {
                assertEquals(whole.get(i), generation);
                continue;
            }
            cuts++;
            JsonNode messages = generation.messages();
            JsonNode original = whole.get(i).messages();
            int omitted = generation.meta().path("input_omitted_messages").asInt();
            omittedInAll += omitted;
            assertEquals(omitted, generation.input().path("omitted_messages").asInt(), "the input says so too");
            assertEquals(original.size() - omitted, messages.size());
            assertEquals(original.get(original.size() - 1), messages.get(messages.size() - 1), "the newest message whole");
            assertEquals(whole.get(i).input().toString().length(), generation.meta().path("input_orig_len").asInt());
            assertTrue(generation.input().toString().length() <= 12000);
            assertTrue(generation.input().path("tools").path(0).isTextual(), "tools by name");
        }
        assertTrue(cuts > 0 && omittedInAll > 0, "a 12000-character limit cuts the system prompt and tools of a full request");
        // A limit below the newest message: its longest texts are cut short, and the input is still JSON (of() parses it).
        int shortened = 0;
        for (Generation generation : replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full", "CC_LANGFUSE_MAX_CHARS", "3000")) {
            assertTrue(generation.input().toString().length() <= 3000, generation.input().toString());
            assertFalse(generation.messages().isEmpty(), "at least the newest message");
            if (generation.input().toString().contains(" more characters]")) shortened++;
        }
        assertTrue(shortened > 0);
    }

    @Test
    void inputsAreMasked() throws IOException {
        for (Generation generation : replay(DIR, "CC_LANGFUSE_MASK_PATTERNS", "alpha prompt")) {
            assertFalse(generation.input().toString().contains("alpha prompt"), generation.input().toString());
        }
    }

    @Test
    void aModeThatIsNoneOfTheThreeIsReportedAndNewApplies() {
        Map<String, String> environment = new HashMap<>(env);
        environment.put("CC_LANGFUSE_GENERATION_INPUT", "everything");
        litefuse_hook.Config config = litefuse_hook.Config.loadConfig(environment);
        assertEquals(litefuse_hook.Config.GenerationInput.NEW, config.trace().generationInput());
        assertTrue(config.problems().stream().anyMatch(p -> p.contains("CC_LANGFUSE_GENERATION_INPUT") && p.contains("new, full or off")),
                config.problems().toString());
    }

    /**
     * A transcript whose request rows are damaged: every generation still shows what the model was sent, whole where
     * its request could be rebuilt and proven, else what new mode shows; one debug line says why; nothing else changes.
     */
    void assertFallsBack(Path edited, String why) throws IOException {
        List<Generation> whole = replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full");
        List<Generation> fresh = replay(edited);
        Files.deleteIfExists(TestSupport.layout(home).log());
        List<Generation> damaged = replay(edited, "CC_LANGFUSE_GENERATION_INPUT", "full");
        assertEquals(whole.stream().map(Generation::key).toList(), damaged.stream().map(Generation::key).toList(), "the same generations");
        int fellBack = 0;
        for (int i = 0; i < damaged.size(); i++) {
            Generation generation = damaged.get(i);
            boolean rebuilt = generation.from().equals("request");
            assertEquals((rebuilt ? whole : fresh).get(i), generation, "whole as the client sent it, else as new mode shows it");
            if (!rebuilt) fellBack++;
        }
        assertTrue(fellBack > 0, "some generation fell back");
        String log = TestSupport.log(home);
        assertTrue(log.contains(why), "the debug line says why: " + why + "\n" + log);
    }

    /** The sessions with the first row of `type` whose JSON contains `marker` changed by `change`. */
    Path editFirst(String type, String marker, java.util.function.Consumer<ObjectNode> change) throws IOException {
        boolean[] done = {false};
        return copyEdited(row -> {
            if (!done[0] && row.path("type").asText().equals(type) && row.toString().contains(marker)) {
                done[0] = true;
                change.accept(row);
            }
            return row;
        }, rows -> rows);
    }

    /** The marker of the blob of a message that is no transcript row: the system message Claude Code adds to a prompt. */
    static final String ENVIRONMENT_BLOB = "Primary working directory";

    @Test
    void aMissingBlobFallsBack() throws IOException {
        boolean[] dropped = {false};
        Path edited = copyEdited(row -> {
            boolean drop = !dropped[0] && row.path("type").asText().equals("api-request-blob") && row.toString().contains(ENVIRONMENT_BLOB);
            dropped[0] |= drop;
            return drop ? null : row;
        }, rows -> rows);
        assertFallsBack(edited, "a message it adds is in no blob or row read");
    }

    @Test
    void aMissingShapeFallsBack() throws IOException {
        assertFallsBack(copyEdited(row -> row.path("type").asText().equals("api-request-shape") ? null : row, rows -> rows),
                "its shape (system and tools) is in no row read");
    }

    @Test
    void aHashThatResolvesToNothingFallsBack() throws IOException {
        assertFallsBack(editFirst("api-request", "\"keep\":0", row -> ((ArrayNode) row.get("tail")).set(0, "0".repeat(64))),
                "a message it adds is in no blob or row read");
    }

    @Test
    void aKeepLongerThanItsBaseFallsBack() throws IOException {
        assertFallsBack(editFirst("api-request", "\"keep\":2", row -> row.put("keep", 99)), "it keeps 99 messages of a request that had");
    }

    @Test
    void aRequestThatDoesNotMatchItsDigestFallsBack() throws IOException {
        // A blob whose text is not what the client hashed: the rebuilt request is not the one it sent, so it is not shown whole.
        assertFallsBack(editFirst("api-request-blob", ENVIRONMENT_BLOB, row -> {
            ObjectNode block = (ObjectNode) row.path("message").path("content").path(0);
            block.put("text", block.path("text").asText().replace("Platform: linux", "Platform: linuX"));
        }), "the rebuilt request does not match its requestDigest");
    }

    @Test
    void aBlobOrARequestRowOutOfOrderIsStillFound() throws IOException {
        // The client writes a request's blobs before it; one that lands after it (rows go through a queue) is looked
        // for again when the generation is built.
        Path blobLate = copyEdited(row -> row, rows -> moveAfterNext(rows, "api-request-blob", ENVIRONMENT_BLOB, "api-request"));
        List<Generation> blobs = replay(blobLate, "CC_LANGFUSE_GENERATION_INPUT", "full");
        assertTrue(blobs.stream().allMatch(g -> g.from().equals("request")), blobs.stream().map(Generation::from).toList().toString());
        assertEquals(replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full"), blobs);
        // A request row that lands after its answer's rows is still found by the id the answer names.
        Path requestLate = copyEdited(row -> row, rows -> moveAfterNext(rows, "api-request", "\"keep\":0", "assistant"));
        List<Generation> late = replay(requestLate, "CC_LANGFUSE_GENERATION_INPUT", "full");
        assertTrue(late.stream().allMatch(g -> g.from().equals("request")));
        assertEquals(replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full"), late);
    }

    @Test
    void aRequestRowWrittenBeforeItsTurnsPromptIsStillTheGenerationsInput() throws IOException {
        // Claude Code writes rows through a queue: a busy machine may see a turn's first request row land before the
        // prompt row that starts the turn. The answer still names it (requestRef), so it is still found.
        Path early = copyEdited(row -> row, rows -> moveBeforePrevious(moveBeforePrevious(rows, "api-request", "8ea5e43c", "user"),
                "api-request", "c7591383", "user"));
        List<String> echo = Files.readAllLines(early.resolve(ECHO + ".jsonl"));
        int request = -1;
        int prompt = -1;
        for (int i = 0; i < echo.size(); i++) {
            if (echo.get(i).contains("\"type\":\"api-request\"") && echo.get(i).contains("8ea5e43c")) request = i;
            if (echo.get(i).contains("\"type\":\"user\"") && echo.get(i).contains("and once more")) prompt = i;
        }
        assertTrue(request >= 0 && request < prompt, "the request row moved before the prompt: " + request + ", " + prompt);
        List<Generation> moved = replay(early, "CC_LANGFUSE_GENERATION_INPUT", "full");
        assertTrue(moved.stream().allMatch(g -> g.from().equals("request")), moved.stream().map(Generation::from).toList().toString());
        assertEquals(replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full").size(), moved.size());
    }

    /** The rows with the first row of `type` containing `marker` moved before the previous row of type `before`. */
    static List<ObjectNode> moveBeforePrevious(List<ObjectNode> rows, String type, String marker, String before) {
        List<ObjectNode> moved = new ArrayList<>(rows);
        for (int i = 0; i < moved.size(); i++) {
            if (!moved.get(i).path("type").asText().equals(type) || !moved.get(i).toString().contains(marker)) continue;
            for (int j = i - 1; j >= 0; j--) {
                if (moved.get(j).path("type").asText().equals(before)) {
                    moved.add(j, moved.remove(i));
                    return moved;
                }
            }
        }
        return moved;
    }

    /** The rows with the first row of `type` containing `marker` moved after the next row of type `after`. */
    static List<ObjectNode> moveAfterNext(List<ObjectNode> rows, String type, String marker, String after) {
        List<ObjectNode> moved = new ArrayList<>(rows);
        for (int i = 0; i < moved.size(); i++) {
            if (!moved.get(i).path("type").asText().equals(type) || !moved.get(i).toString().contains(marker)) continue;
            for (int j = i + 1; j < moved.size(); j++) {
                if (moved.get(j).path("type").asText().equals(after)) {
                    moved.add(j, moved.remove(i));
                    return moved;
                }
            }
        }
        return moved;
    }

    @Test
    void aRequestWhoseAnswerNeverCameChangesNothing() throws IOException {
        // An attempt the API refused: its request row, then Claude Code's API-error row (no requestRef), then the retry.
        Path edited = copyEdited(ECHO, row -> row, rows -> {
            List<ObjectNode> out = new ArrayList<>();
            boolean done = false;
            for (ObjectNode row : rows) {
                if (!done && row.path("type").asText().equals("api-request") && row.toString().contains("\"keep\":2")) {
                    ObjectNode attempt = row.deepCopy().put("id", "00000000-0000-4000-8000-000000000000");
                    ObjectNode error = TestSupport.JSON.createObjectNode().put("type", "assistant").put("uuid", "00000000-0000-4000-8000-0000000000e1")
                            .put("parentUuid", row.path("parentUuid").asText(null)).put("sessionId", row.path("sessionId").asText())
                            .put("timestamp", row.path("timestamp").asText()).put("isApiErrorMessage", true);
                    error.putObject("message").put("role", "assistant").put("model", "<synthetic>").put("stop_reason", "stop_sequence")
                            .putArray("content").addObject().put("type", "text").put("text", "API Error: 500 overloaded");
                    out.add(attempt);
                    out.add(error);
                    done = true;
                }
                out.add(row);
            }
            assertTrue(done);
            return out;
        });
        List<Generation> whole = replay(DIR, "CC_LANGFUSE_GENERATION_INPUT", "full");
        List<Generation> withError = replay(edited, "CC_LANGFUSE_GENERATION_INPUT", "full");
        List<Generation> errors = withError.stream().filter(g -> !g.from().equals("request")).toList();
        String log = TestSupport.log(home);
        assertEquals(1, errors.size(), () -> "only the error row has no request of its own: " + errors + "\n" + log);
        assertEquals("transcript", errors.get(0).from());
        assertNotNull(errors.get(0).messages());
        List<Generation> others = new ArrayList<>(withError);
        others.removeAll(errors);
        assertEquals(whole.stream().map(Generation::input).toList(), others.stream().map(Generation::input).toList(),
                "every real call still shows its whole request");
    }
}
