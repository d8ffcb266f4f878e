import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Work Claude Code runs in the background, offline: sessions the real client 2.1.332 wrote against the mock
 * (tests/staged/: a workflow of three agents in two phases, background Agent calls), with a copy of their files at
 * every Stop and SessionEnd as the hook found them (stages.json: each file's length then). Replay shows each run and
 * agent under the call that started it; the hook, fired at each stage, sends every span once, each agent as it
 * finishes; damaged runs cost one log line and nothing else.
 */
public class BackgroundWorkTest extends ReceiverFixture {
    static final Path STAGED = TestSupport.testsDir().resolve("staged");
    static final String WORKFLOW_SESSION = "26c6dc9c-5e3b-4dd1-b1ec-acb96e2616a4";
    static final String BACKGROUND_SESSION = "f3910b36-7174-42fe-8ede-784f099758a9";
    static final String INTERACTIVE_SESSION = "cb3e3fa7-5982-48be-b78d-6d409a454b41";

    static Path transcript(String fixture, String session) {
        return STAGED.resolve(fixture).resolve("project").resolve(session + ".jsonl");
    }

    static litefuse_hook.TraceModel.Observation named(litefuse_hook.TraceModel.TraceRecord trace, String prefix) {
        List<litefuse_hook.TraceModel.Observation> found = trace.observations().stream().filter(o -> o.name().startsWith(prefix)).toList();
        assertEquals(1, found.size(), () -> prefix + " in " + trace.observations().stream().map(litefuse_hook.TraceModel.Observation::name).toList());
        return found.get(0);
    }

    /** Usage over the unique messages of a session's main file and of every agent file under its folder (workflow agents too). */
    static Map<String, Long> usageOfAllFiles(Path transcript) throws IOException {
        Map<String, Long> total = TestSupport.usageOverUniqueMessages(transcript);
        Path folder = transcript.resolveSibling(transcript.getFileName().toString().replace(".jsonl", ""));
        if (!Files.isDirectory(folder)) return total;
        try (Stream<Path> walk = Files.walk(folder)) {
            for (Path agent : walk.filter(p -> p.getFileName().toString().matches("agent-.*\\.jsonl")).toList()) {
                SubagentTest.plus(total, TestSupport.usageOverUniqueMessages(agent, true)).forEach(total::put);
            }
        }
        return total;
    }

    @Test
    void replayShowsTheRunItsPhasesAndItsAgentsUnderTheWorkflowCall() throws IOException {
        Path file = transcript("agents-print", WORKFLOW_SESSION);
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(file);
        assertEquals(2, traces.size(), "the launch and the turn the notification started");
        litefuse_hook.TraceModel.TraceRecord launch = traces.get(0);
        litefuse_hook.TraceModel.Observation call = named(launch, "Tool call: Workflow");
        litefuse_hook.TraceModel.Observation run = named(launch, "Workflow: gather-combine (wf_");
        assertEquals(litefuse_hook.TraceModel.ObservationType.CHAIN, run.type());
        assertEquals(call.id(), run.parentId());
        assertTrue(run.input().startsWith("export const meta = { name: 'gather-combine'"), "the script as input");
        assertEquals("{\"combined\":{\"word\":\"alpha+beta\"}}", run.output(), "the result as output");
        JsonNode runMeta = run.metadata().path("claude_code");
        assertEquals("completed", runMeta.path("status").asText());
        assertEquals(3, runMeta.path("agent_count").asInt());
        assertEquals("[\"Gather\",\"Combine\"]", runMeta.path("phases").toString());
        litefuse_hook.TraceModel.Observation gather = named(launch, "Phase 1: Gather");
        litefuse_hook.TraceModel.Observation combine = named(launch, "Phase 2: Combine");
        assertEquals(run.id(), gather.parentId());
        assertEquals(run.id(), combine.parentId());
        for (String label : List.of("gather:alpha", "gather:beta", "combine")) {
            litefuse_hook.TraceModel.Observation agent = named(launch, "Agent: " + label + " (");
            assertEquals(label.startsWith("gather") ? gather.id() : combine.id(), agent.parentId(), label);
            JsonNode meta = agent.metadata().path("claude_code");
            assertEquals("workflow-subagent", meta.path("agentType").asText(), "from meta.json");
            assertEquals(label, meta.path("description").asText());
            assertEquals("claude-opus-5-5", meta.path("model").asText());
            assertEquals(label.startsWith("gather") ? "Gather" : "Combine", meta.path("workflow_phase").asText());
            assertEquals("workflow", meta.path("agent_kind").asText());
            long[] tokens = RealClientAgentsTest.AGENT_TOKENS.get(label);
            List<Long> input = launch.observations().stream().filter(o -> agent.id().equals(o.parentId()) && o.usage() != null)
                    .map(o -> o.usage().get("input")).toList();
            assertEquals(List.of(tokens[0]), input, label + ": its one generation, with the mock's tokens");
        }
        assertTrue(launch.root().end().isBefore(combine.end()), "the turn ends with its own steps; the run went on");
        assertEquals(usageOfAllFiles(file), TestSupport.totalsOf(TestSupport.usagesOf(traces)),
                "the session's tokens: its main file, every agent file, each message once");
        JsonNode origin = traces.get(1).header().metadata().path("claude_code").path("origin");
        assertEquals("task-notification", origin.path("kind").asText());
        assertEquals(call.metadata().path("claude_code").path("tool_use_id").asText(), origin.path("tool_use_id").asText());
        assertEquals("completed", origin.path("status").asText());
        assertTrue(origin.path("task_id").asText().matches("[a-z0-9]+"), origin.toString());
        assertTrue(traces.get(1).header().tags().contains("origin:task-notification"));
        assertFalse(traces.get(0).header().tags().contains("origin:task-notification"), "a typed prompt is no notification");
    }

    /** Writes the files as they were at one stage into `projects`. */
    static void layOut(Path fixture, JsonNode stage, Path projects) throws IOException {
        Path project = fixture.resolve("project");
        var files = stage.path("files").fields();
        while (files.hasNext()) {
            var file = files.next();
            Path target = projects.resolve(file.getKey());
            Files.createDirectories(target.getParent());
            if (file.getValue().isObject()) {
                Files.writeString(target, file.getValue().path("content").asText(), StandardCharsets.UTF_8);
            } else {
                byte[] whole = Files.readAllBytes(project.resolve(file.getKey()));
                Files.write(target, java.util.Arrays.copyOf(whole, file.getValue().asInt()));
            }
        }
    }

    /** Fires the hook at every stage of a fixture, as Claude Code did; returns the log. */
    String fireStages(String fixture) throws IOException {
        Path dir = STAGED.resolve(fixture);
        Path projects = home.resolve(".claude/projects/-realclient-agents");
        for (JsonNode stage : TestSupport.JSON.readTree(dir.resolve("stages.json").toFile())) {
            layOut(dir, stage, projects);
            String session = stage.path("session").asText();
            fire(session, projects.resolve(session + ".jsonl"), stage.path("event").asText());
        }
        return TestSupport.log(home);
    }

    @Test
    void theHookSendsEachAgentOnceAsItFinishes() throws IOException {
        // The receiver keeps what it stored, as Langfuse does: the sessions of both fixtures add up.
        List<Path> sessions = new ArrayList<>();
        for (String fixture : List.of("agents-print", "agents-interactive")) {
            TestSupport.deleteTree(home.resolve(".claude"));
            String log = fireStages(fixture);
            try (Stream<Path> files = Files.list(STAGED.resolve(fixture).resolve("project"))) {
                files.filter(p -> p.toString().endsWith(".jsonl")).sorted().forEach(sessions::add);
            }
            assertEquals(0, receiver.spansReceivedTwice(), fixture + ": no span twice");
            TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(sessions));
            assertTrue(log.contains("more observations)"), fixture + ": some agents went out after their turn\n" + log);
            for (Path stateFile : stateFiles()) {
                JsonNode state = TestSupport.JSON.readTree(stateFile.toFile());
                assertTrue(state.path("waiting_turns").isEmpty() && !state.path("open_turn").path("waits_for_agents").asBoolean(),
                        fixture + ": no turn waits at the end\n" + state.toPrettyString());
            }
        }
    }

    List<Path> stateFiles() throws IOException {
        try (Stream<Path> files = Files.list(home.resolve(".claude/state/litefuse"))) {
            return files.filter(p -> p.getFileName().toString().matches("[0-9a-f]{64}\\.json")).toList();
        }
    }

    @Test
    void anUnfinishedAgentWaitsAndTheRunSpanGoesOutOnce() throws IOException {
        // The first stage of the print session: the Workflow call returned, one agent has started, none has finished.
        Path transcript = printStage(0);
        TestSupport.fireHook(env, WORKFLOW_SESSION, transcript);
        List<String> first = receiver.acceptedSpans().stream().map(OtlpReceiver.ReceivedSpan::name).toList();
        assertTrue(first.contains("Tool call: Workflow (#2)"), first.toString());
        assertTrue(first.stream().noneMatch(name -> name.startsWith("Agent:") || name.startsWith("Workflow:") || name.startsWith("Phase")),
                "nothing of a run that has not finished: " + first);
        JsonNode state = TestSupport.JSON.readTree(stateFiles().get(0).toFile());
        assertTrue(state.path("open_turn").path("waits_for_agents").asBoolean(), state.toPrettyString());
        // The same files again, ten minutes on: still running (the run was just written to), so still nothing of it.
        TestSupport.fireHook(env, WORKFLOW_SESSION, transcript);
        assertEquals(first.size(), receiver.acceptedSpans().size(), "no span while the run is running");
        // Then the whole session: the agents, the phases and the run, once each.
        printStage(2);
        TestSupport.fireHook(env, WORKFLOW_SESSION, transcript);
        assertEquals(1, receiver.acceptedSpans().stream().filter(s -> s.name().startsWith("Workflow: gather-combine")).count());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(List.of(transcript)));
    }

    /** The print session's files as they were at stage `index` of its stages.json; its transcript. */
    Path printStage(int index) throws IOException {
        Path dir = STAGED.resolve("agents-print");
        Path projects = home.resolve(".claude/projects/-realclient-agents");
        layOut(dir, TestSupport.JSON.readTree(dir.resolve("stages.json").toFile()).get(index), projects);
        return projects.resolve(WORKFLOW_SESSION + ".jsonl");
    }

    /** A copy of the print session's files to damage. */
    Path copyOfWorkflowSession() throws IOException {
        Path target = home.resolve(".claude/projects/-realclient-agents");
        Path source = STAGED.resolve("agents-print/project");
        try (Stream<Path> walk = Files.walk(source)) {
            for (Path path : walk.toList()) {
                Path copy = target.resolve(source.relativize(path).toString());
                if (Files.isDirectory(path)) Files.createDirectories(copy);
                else Files.copy(path, copy);
            }
        }
        return target.resolve(WORKFLOW_SESSION + ".jsonl");
    }

    static Path runDir(Path transcript) throws IOException {
        try (Stream<Path> runs = Files.list(transcript.resolveSibling(WORKFLOW_SESSION).resolve("subagents/workflows"))) {
            return runs.findFirst().orElseThrow();
        }
    }

    static Path runRecord(Path transcript) throws IOException {
        return transcript.resolveSibling(WORKFLOW_SESSION).resolve("workflows").resolve(runDir(transcript).getFileName() + ".json");
    }

    /** Every file of the session written `minutes` ago. */
    static void age(Path transcript, int minutes) throws IOException {
        FileTime then = FileTime.from(Instant.now().minusSeconds(60L * minutes));
        try (Stream<Path> walk = Files.walk(transcript.getParent())) {
            for (Path path : walk.filter(Files::isRegularFile).toList()) Files.setLastModifiedTime(path, then);
        }
    }

    List<String> names() {
        return receiver.acceptedSpans().stream().map(OtlpReceiver.ReceivedSpan::name).toList();
    }

    @Test
    void aRunWithoutItsRecordIsSentOnceItHasBeenQuietForTenMinutes() throws IOException {
        Path transcript = copyOfWorkflowSession();
        Files.delete(runRecord(transcript));
        TestSupport.fireHook(env, WORKFLOW_SESSION, transcript);
        assertTrue(names().stream().noneMatch(name -> name.startsWith("Workflow:")), "a run still being written waits");
        assertEquals(3, names().stream().filter(name -> name.startsWith("Agent:")).count(), "its finished agents (the journal says so) go out");
        age(transcript, 11);
        TestSupport.fireHook(env, WORKFLOW_SESSION, transcript);
        OtlpReceiver.ReceivedSpan run = receiver.acceptedSpans().stream().filter(s -> s.name().startsWith("Workflow:")).findFirst().orElseThrow();
        assertEquals("WARNING", run.attr("langfuse.observation.level"));
        assertEquals("workflow running", run.attr("langfuse.observation.status_message"));
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(List.of(transcript)));
        assertTrue(TestSupport.log(home).contains("has no record"), TestSupport.log(home));
    }

    @Test
    void aStoppedRunShowsItsStatusAndEveryAgentThatRan() throws IOException {
        Path transcript = copyOfWorkflowSession();
        ObjectNode record = (ObjectNode) TestSupport.JSON.readTree(runRecord(transcript).toFile());
        record.put("status", "stopped");
        Files.writeString(runRecord(transcript), record.toString());
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(transcript);
        litefuse_hook.TraceModel.Observation run = named(traces.get(0), "Workflow:");
        assertEquals(litefuse_hook.TraceModel.Level.WARNING, run.level());
        assertEquals("workflow stopped", run.statusMessage());
        assertEquals(3, traces.get(0).observations().stream().filter(o -> o.name().startsWith("Agent:")).count());
    }

    @Test
    void damagedRunFilesCostOneLineEachAndNothingElse() throws IOException {
        Path transcript = copyOfWorkflowSession();
        Path run = runDir(transcript);
        List<Path> agents;
        try (Stream<Path> files = Files.list(run)) {
            agents = files.filter(p -> p.toString().endsWith(".jsonl") && !p.getFileName().toString().equals("journal.jsonl")).sorted().toList();
        }
        // One agent's file is gone (the journal still names it), one is cut mid-line, one's meta.json is broken;
        // the journal ends in a broken line.
        Files.delete(agents.get(0));
        byte[] cut = Files.readAllBytes(agents.get(1));
        Files.write(agents.get(1), java.util.Arrays.copyOf(cut, cut.length - 40));
        Files.writeString(Path.of(agents.get(2).toString().replace(".jsonl", ".meta.json")), "{not json");
        Files.writeString(run.resolve("journal.jsonl"), Files.readString(run.resolve("journal.jsonl")) + "{\"type\":\"res");
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(transcript);
        List<String> agentNames = traces.get(0).observations().stream().map(litefuse_hook.TraceModel.Observation::name)
                .filter(name -> name.startsWith("Agent:")).toList();
        assertEquals(2, agentNames.size(), "the two agents whose files are there: " + agentNames);
        litefuse_hook.TraceModel.Observation withoutMeta = traces.get(0).observations().stream()
                .filter(o -> o.name().contains(agents.get(2).getFileName().toString().replaceAll("agent-|\\.jsonl", ""))).findFirst().orElseThrow();
        assertFalse(withoutMeta.metadata().path("claude_code").has("description"), "no facts from a broken meta.json");
        assertTrue(withoutMeta.name().startsWith("Agent: "), "still named by the journal's label");
        named(traces.get(0), "Workflow: gather-combine");
        // In hook mode: each problem is one log line, and the turns are sent.
        TestSupport.fireHook(env, WORKFLOW_SESSION, transcript);
        String log = TestSupport.log(home);
        assertEquals(1, count(log, "whose file is gone"), log);
        assertEquals(1, count(log, "not a JSON object"), log);
        assertEquals(1, count(log, "broken line(s) of"), log);
        assertEquals(1, count(log, agents.get(1).getFileName() + ": a line without its end"), log);
        assertEquals(2, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(List.of(transcript)));
    }

    static int count(String text, String part) {
        int n = 0;
        for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1)) n++;
        return n;
    }

    @Test
    void aSessionThatEndsWhileItsRunGoesOnIsSentAsTheRunFinishes() throws IOException {
        // SessionEnd fires while the run is still going (Move to background and exit): one line, the turn waits, and
        // the next run of any session sends the rest once the run has ended.
        Path transcript = printStage(0);
        fire(WORKFLOW_SESSION, transcript, "SessionEnd");
        assertEquals(1, count(TestSupport.log(home), "ended with background work still running"), TestSupport.log(home));
        assertTrue(Files.list(home.resolve(".claude/state/litefuse/pending")).findAny().isPresent(), "the session waits in the spool");
        // Another session's Stop, once both have ended: the spool is worked off.
        printStage(5);
        Path other = transcript.resolveSibling(BACKGROUND_SESSION + ".jsonl");
        fire(BACKGROUND_SESSION, other, "Stop");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(List.of(transcript, other)));
    }

    void fire(String session, Path transcript, String event) {
        String payload = TestSupport.JSON.createObjectNode().put("session_id", session).put("transcript_path", transcript.toString())
                .put("hook_event_name", event).toString();
        litefuse_hook.Hook.runHook(env, new java.io.ByteArrayInputStream(payload.getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void backgroundAgentsShowUnderTheirAgentCall() throws IOException {
        for (Path file : List.of(transcript("agents-print", BACKGROUND_SESSION), transcript("agents-interactive", INTERACTIVE_SESSION))) {
            List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(file);
            litefuse_hook.TraceModel.TraceRecord launch = traces.stream().filter(t -> t.observations().stream()
                    .anyMatch(o -> o.name().startsWith("Tool call: Agent"))).findFirst().orElseThrow();
            litefuse_hook.TraceModel.Observation agent = named(launch, "Background agent: general-purpose (");
            assertEquals(named(launch, "Tool call: Agent").id(), agent.parentId());
            JsonNode meta = agent.metadata().path("claude_code");
            assertEquals("Slow job", meta.path("description").asText());
            assertEquals("background", meta.path("request_shape").asText());
            assertEquals(usageOfAllFiles(file), TestSupport.totalsOf(TestSupport.usagesOf(traces)), file.getFileName().toString());
        }
    }
}
