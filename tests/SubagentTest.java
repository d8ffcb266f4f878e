import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Subagents in all three layouts, background and compaction agents, the Stop race, and quiet transcripts. */
public class SubagentTest extends ReceiverFixture {
    static final Path SPOTTER = TestSupport.testsDir().resolve(
            "projects/-home-USER-projects-spotter-worktrees-spotter-dov/4d5611e5-241a-462a-8d15-5122611a9569.jsonl");
    static final Path SPOTTER_AGENTS = SPOTTER.resolveSibling("4d5611e5-241a-462a-8d15-5122611a9569/subagents");
    static final Path FLAT = TestSupport.testsDir().resolve("projects/-Users-user-project/b3edadab-bca0-4054-9b41-f7ffa6941260.jsonl");
    static final Path BACKGROUND = TestSupport.testsDir().resolve("projects/-crafted-background/bgsession.jsonl");

    static litefuse_hook.TraceModel.Observation byName(litefuse_hook.TraceModel.TraceRecord trace, String name) {
        return trace.observations().stream().filter(o -> o.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no observation " + name + " in " + trace.name()));
    }

    static List<litefuse_hook.TraceModel.Observation> childrenOf(litefuse_hook.TraceModel.TraceRecord trace, String parentId) {
        return trace.observations().stream().filter(o -> parentId.equals(o.parentId())).toList();
    }

    static Map<String, Long> plus(Map<String, Long> a, Map<String, Long> b) {
        Map<String, Long> sum = new HashMap<>(a);
        b.forEach((k, v) -> sum.merge(k, v, Long::sum));
        return sum;
    }

    @Test
    void aToolCallCanOwnSeveralAgentRuns() throws IOException {
        // A Workflow call starts many agents: every run a call owns nests under it, each with its own steps.
        litefuse_hook.Config.GenerationInput mode = litefuse_hook.Config.GenerationInput.NEW;
        List<litefuse_hook.Transcript.Row> rows = litefuse_hook.Reader.readNewJsonl(SPOTTER, 0, litefuse_hook.Reader.unreadTypes(mode),
                litefuse_hook.Log.toStderr()).rows();
        litefuse_hook.Turns.EmissionPlan plan = litefuse_hook.Turns.planEmission(rows, litefuse_hook.Progress.SessionState.NEW,
                new litefuse_hook.Turns.AgentFiles(SPOTTER, mode, litefuse_hook.Log.toStderr()),
                new litefuse_hook.Requests.Store(mode, litefuse_hook.Log.toStderr()), true);
        litefuse_hook.Turns.Turn turn = plan.emissions().get(0).turn();
        litefuse_hook.Turns.AgentRun explore = turn.agents().stream().filter(agent -> agent.toolUseId() != null).findFirst().orElseThrow();
        // A second agent's own conversation (here the compaction helper's rows, run by the same call).
        litefuse_hook.Turns.Turn otherConversation = plan.emissions().get(1).turn().agents().get(0).turn();
        litefuse_hook.Turns.AgentRun second = litefuse_hook.Turns.AgentRun.called("second-run", explore.toolUseId(),
                litefuse_hook.Turns.AgentKind.TASK, "Plan", otherConversation, null);
        List<litefuse_hook.Turns.AgentRun> agents = new ArrayList<>(turn.agents());
        agents.add(second);
        litefuse_hook.TraceModel.TraceRecord trace = litefuse_hook.Traces.buildTrace(turn.withAgents(agents), 1,
                TestSupport.context(SPOTTER));
        litefuse_hook.TraceModel.Observation task = byName(trace, "Tool call: Task (#9)");
        assertEquals(List.of("Agent: Explore (a2898e3)", "Agent: Plan (second-run)"),
                childrenOf(trace, task.id()).stream().map(litefuse_hook.TraceModel.Observation::name).toList());
        List<litefuse_hook.TraceModel.Observation> runs = childrenOf(trace, task.id());
        assertTrue(childrenOf(trace, runs.get(0).id()).size() > 50, "the first run holds its own steps");
        assertEquals(otherConversation.assistantRows().size(), childrenOf(trace, runs.get(1).id()).stream()
                .filter(o -> o.type() == litefuse_hook.TraceModel.ObservationType.GENERATION).count(), "the second run holds its own generations");
        assertEquals(trace.observations().size(), trace.observations().stream().map(litefuse_hook.TraceModel.Observation::id).distinct().count(),
                "each run's spans have ids of their own");
    }

    @Test
    void agentsOf21xNestUnderTheirTaskCallsAndTotalsStayExact() throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(SPOTTER);
        assertEquals(3, traces.size(), "one trace per turn");
        litefuse_hook.TraceModel.Observation task = byName(traces.get(0), "Tool call: Task (#9)");
        List<litefuse_hook.TraceModel.Observation> agents = childrenOf(traces.get(0), task.id());
        assertEquals(1, agents.size());
        litefuse_hook.TraceModel.Observation agent = agents.get(0);
        assertEquals(litefuse_hook.TraceModel.ObservationType.AGENT, agent.type());
        assertEquals("Agent: Explore (a2898e3)", agent.name());
        List<litefuse_hook.TraceModel.Observation> steps = childrenOf(traces.get(0), agent.id());
        assertTrue(steps.size() > 50, "the subagent's own generations and tool calls: " + steps.size());
        assertTrue(steps.stream().filter(o -> o.type() == litefuse_hook.TraceModel.ObservationType.GENERATION).allMatch(o -> o.model().startsWith("claude-sonnet-4-5")));
        assertTrue(steps.stream().anyMatch(o -> o.usage() != null), "with its own usage");
        // The compaction helper shows as such, in the turn it ran in, beside the boundary event.
        litefuse_hook.TraceModel.Observation compaction = byName(traces.get(1), "Compaction agent (acompact-e1f845)");
        assertEquals(traces.get(1).root().id(), compaction.parentId());
        assertEquals("compaction", compaction.metadata().path("claude_code").path("agent_kind").asText());
        litefuse_hook.TraceModel.Observation boundary = byName(traces.get(1), "Conversation compacted");
        assertEquals(Instant.parse("2026-02-12T20:30:28.504Z"), boundary.start(), "the boundary event at its real time");
        assertEquals(boundary.start(), boundary.end());
        assertTrue(compaction.end().isBefore(boundary.start()), "the helper finished just before the boundary");

        // Main file plus subagent files, each message once; agent_progress copies in the main file count zero times.
        Map<String, Long> expected = TestSupport.usageOverUniqueMessages(SPOTTER);
        expected = plus(expected, TestSupport.usageOverUniqueMessages(SPOTTER_AGENTS.resolve("agent-a2898e3.jsonl"), true));
        expected = plus(expected, TestSupport.usageOverUniqueMessages(SPOTTER_AGENTS.resolve("agent-acompact-e1f845.jsonl"), true));
        assertEquals(expected, TestSupport.totalsOf(TestSupport.usagesOf(traces)));
        assertTrue(Files.readString(SPOTTER).contains("\"agent_progress\""), "the main file does hold progress copies");
    }

    @Test
    void flatAgentFilesOf20xNestAndWarmupAgentsStayOut() throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(FLAT);
        List<litefuse_hook.TraceModel.Observation> agents = traces.stream().flatMap(t -> t.observations().stream())
                .filter(o -> o.type() == litefuse_hook.TraceModel.ObservationType.AGENT).toList();
        assertEquals(List.of("a434715"), agents.stream().map(o -> o.metadata().path("claude_code").path("agentId").asText()).toList());
        litefuse_hook.TraceModel.TraceRecord withAgent = traces.stream().filter(t -> t.observations().contains(agents.get(0))).findFirst().orElseThrow();
        litefuse_hook.TraceModel.Observation parent = withAgent.observations().stream().filter(o -> o.id().equals(agents.get(0).parentId())).findFirst().orElseThrow();
        assertTrue(parent.name().startsWith("Tool call: Task"), parent.name());
        Map<String, Long> expected = plus(TestSupport.usageOverUniqueMessages(FLAT),
                TestSupport.usageOverUniqueMessages(FLAT.resolveSibling("agent-a434715.jsonl"), true));
        assertEquals(expected, TestSupport.totalsOf(TestSupport.usagesOf(traces)));
    }

    @Test
    void inlineSidechainsOf10xNestUnderTheirTask() throws IOException {
        Path file = TestSupport.transcript("d-kimuson__claude-code-viewer__5c0375b4.jsonl");
        litefuse_hook.TraceModel.TraceRecord trace = TestSupport.replay(file).get(0);
        List<litefuse_hook.TraceModel.Observation> agents = trace.observations().stream().filter(o -> o.type() == litefuse_hook.TraceModel.ObservationType.AGENT).toList();
        assertFalse(agents.isEmpty());
        for (litefuse_hook.TraceModel.Observation agent : agents) {
            litefuse_hook.TraceModel.Observation parent = trace.observations().stream().filter(o -> o.id().equals(agent.parentId())).findFirst().orElseThrow();
            assertTrue(parent.name().startsWith("Tool call: Task"), parent.name());
            assertFalse(childrenOf(trace, agent.id()).isEmpty());
        }
        Map<String, Long> inlineAgents = TestSupport.usageOverUniqueMessages(file, true);
        assertEquals(inlineAgents, TestSupport.totalsOf(TestSupport.usagesOf(List.of(trace))), "main and inline agent messages, once each");
    }

    @Test
    void backgroundAgentShowsUnderTheCallThatLaunchedIt() throws IOException {
        List<litefuse_hook.TraceModel.TraceRecord> traces = TestSupport.replay(BACKGROUND);
        assertEquals(2, traces.size());
        litefuse_hook.TraceModel.Observation agent = byName(traces.get(0), "Background agent: general-purpose (bg1)");
        assertEquals(byName(traces.get(0), "Tool call: Task (#1)").id(), agent.parentId(), "under the Task call that launched it");
        assertEquals("The API has three endpoints: a, b, c.", agent.output());
        assertEquals(List.of("claude-haiku-4-5"), childrenOf(traces.get(0), agent.id()).stream()
                .map(litefuse_hook.TraceModel.Observation::model).filter(m -> m != null).distinct().toList());
        assertTrue(traces.get(1).observations().stream().noneMatch(o -> o.type() == litefuse_hook.TraceModel.ObservationType.AGENT),
                "not in the turn its notification started");
        assertTrue(traces.get(0).root().end().isBefore(agent.end()), "the turn ends with its own steps; the agent ran on");
        // The notification turn says what started it.
        com.fasterxml.jackson.databind.JsonNode origin = traces.get(1).header().metadata().path("claude_code").path("origin");
        assertEquals("task-notification", origin.path("kind").asText());
        assertEquals("bg1", origin.path("task_id").asText());
        assertEquals("completed", origin.path("status").asText());
        assertTrue(traces.get(1).header().tags().contains("origin:task-notification"), traces.get(1).header().tags().toString());
        assertEquals("task-notification", traces.get(1).header().metadata().path("origin").asText());
        Map<String, Long> expected = plus(TestSupport.usageOverUniqueMessages(BACKGROUND),
                TestSupport.usageOverUniqueMessages(BACKGROUND.resolveSibling("bgsession/subagents/agent-bg1.jsonl"), true));
        assertEquals(expected, TestSupport.totalsOf(TestSupport.usagesOf(traces)));
    }

    @Test
    void stopRaceWaitsForTheFinalRowWhenClaudeCodeSaysTheTurnIsOver() throws Exception {
        List<String> lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
        Path transcript = home.resolve("race.jsonl");
        Files.write(transcript, lines.subList(0, lines.size() - 1));
        String payload = TestSupport.JSON.createObjectNode().put("session_id", "race").put("transcript_path", transcript.toString())
                .put("hook_event_name", "Stop").put("last_assistant_message", "README.md describes a demo project.").toString();
        Thread writer = new Thread(() -> {
            try {
                Thread.sleep(400);
                Files.writeString(transcript, lines.get(lines.size() - 1) + "\n", StandardOpenOption.APPEND);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        writer.start();
        litefuse_hook.Hook.runHook(env, new ByteArrayInputStream(payload.getBytes(StandardCharsets.UTF_8)));
        writer.join();
        assertEquals(5, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
        assertEquals("README.md describes a demo project.", receiver.acceptedRoots().get(4).attr("langfuse.trace.output"));
        assertTrue(receiver.acceptedSpans().stream().anyMatch(s -> s.name().equals("Final response (#2)")));
    }

    @Test
    void aTurnLeftInProgressIsSentByALaterRunOfAnySession() throws IOException {
        List<String> lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
        Path first = home.resolve("first.jsonl");
        Files.write(first, lines.subList(0, lines.size() - 1));
        TestSupport.fireHook(env, "first", first);
        assertEquals(4, receiver.acceptedRoots().size(), "turn 5 waits for its final response");
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(first, 4));
        // The final row lands after the last Stop of that session; another session's run sends the turn.
        Files.writeString(first, lines.get(lines.size() - 1) + "\n", StandardOpenOption.APPEND);
        Path second = home.resolve("second.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), second);
        TestSupport.fireHook(env, "second", second);
        assertEquals(6, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(first, second));
        assertTrue(receiver.acceptedRoots().stream().anyMatch(r -> "README.md describes a demo project.".equals(r.attr("langfuse.trace.output"))));
    }

    @Test
    void aTurnKilledMidLoopIsSentOnceItsTranscriptHasGoneQuiet() throws IOException {
        List<String> lines = Files.readAllLines(TestSupport.transcript("crafted__edge-cases.jsonl"));
        Path killed = home.resolve("killed.jsonl");
        Files.write(killed, lines.subList(0, HookTest.indexOfUuid(lines, "u5") + 3));
        TestSupport.fireHook(env, "killed", killed);
        assertEquals(4, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(killed, 4));
        Files.setLastModifiedTime(killed, FileTime.from(Instant.now().minusSeconds(3600)));
        Path other = home.resolve("other.jsonl");
        Files.copy(TestSupport.transcript("marot__spotter__short.jsonl"), other);
        TestSupport.fireHook(env, "other", other);
        Set<String> inputs = receiver.acceptedRoots().stream().map(r -> r.attr("langfuse.trace.input")).collect(Collectors.toCollection(TreeSet::new));
        assertTrue(inputs.contains("Summarise README.md"), "the killed turn, as complete as it will ever be: " + inputs);
        assertEquals(6, receiver.acceptedRoots().size());
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(killed, other));
    }
}
