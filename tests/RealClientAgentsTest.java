import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Work Claude Code runs in the background, with the real client: a workflow of three agents in two phases (the mock
 * answers each agent through StructuredOutput) and a background Agent call, in `claude -p` and in the interactive
 * client. Every agent's generations and tokens arrive exactly once (spans counted as received), under the Workflow or
 * Agent call of the turn that launched them, and the turn a task notification starts says so in its origin.
 */
class RealClientAgentsTest {
    static final String SCRIPT = """
            export const meta = { name: 'gather-combine', description: 'Gather two words, combine them', phases: [{ title: 'Gather' }, { title: 'Combine' }] }
            const SCHEMA = { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] }
            const words = await parallel(['alpha', 'beta'].map(w => () => agent(`WF-AGENT gather ${w}`, { label: `gather:${w}`, phase: 'Gather', schema: SCHEMA })))
            const combined = await agent(`WF-AGENT combine ${words.map(x => x.word).join(' ')}`, { label: 'combine', phase: 'Combine', schema: SCHEMA })
            return { combined }
            """;

    /** Each agent's tokens as the mock returns them (input, output), by its label. */
    static final Map<String, long[]> AGENT_TOKENS = Map.of("gather:alpha", new long[]{101, 11}, "gather:beta", new long[]{102, 12},
            "combine", new long[]{103, 13});

    static ObjectNode structured(String marker, long input, long output, String word, long delayMillis) {
        ObjectNode rule = MockAnthropic.rule(Map.of("anyUserContains", marker, "lastIsToolResult", false),
                MockAnthropic.reply(MockAnthropic.usage(input, output, 0, 0, 0), MockAnthropic.toolUse("StructuredOutput", Map.of("word", word))));
        ((ObjectNode) rule.get("reply")).put("delay_ms", delayMillis);
        return rule;
    }

    /** The mock's side of both sessions: the workflow's agents (one slow, so it ends after the launching turn), the background agent, the main turns. */
    static ObjectNode[] rules() {
        return new ObjectNode[]{
            structured("WF-AGENT gather alpha", 101, 11, "alpha", 0),
            structured("WF-AGENT gather beta", 102, 12, "beta", 2500),
            structured("WF-AGENT combine", 103, 13, "alpha+beta", 0),
            MockAnthropic.rule(Map.of("anyUserContains", "BG-AGENT", "lastIsToolResult", false),
                    MockAnthropic.reply(MockAnthropic.usage(61, 6, 0, 0, 0), MockAnthropic.toolUse("Bash", Map.of("command", "sleep 3; echo bg", "description", "Slow")))),
            MockAnthropic.rule(Map.of("anyUserContains", "BG-AGENT", "lastIsToolResult", true),
                    MockAnthropic.reply(MockAnthropic.usage(62, 7, 0, 0, 0), MockAnthropic.text("Background work done."))),
            MockAnthropic.rule(Map.of("lastUserContains", "task-notification"), 0,
                    MockAnthropic.reply(MockAnthropic.usage(7, 8, 0, 0, 0), MockAnthropic.text("It finished."))),
            MockAnthropic.rule(Map.of("lastUserContains", "run a workflow please"),
                    MockAnthropic.reply(MockAnthropic.usage(31, 32, 0, 0, 0), MockAnthropic.text("Starting it."),
                            MockAnthropic.toolUse("Workflow", Map.of("script", SCRIPT)))),
            MockAnthropic.rule(Map.of("lastUserContains", "now a background agent please"),
                    MockAnthropic.reply(MockAnthropic.usage(51, 5, 0, 0, 0), MockAnthropic.toolUse("Agent", Map.of("description", "Slow job",
                            "prompt", "BG-AGENT: run the slow job", "subagent_type", "general-purpose", "run_in_background", true)))),
            MockAnthropic.rule(Map.of("lastIsToolResult", true), 0,
                    MockAnthropic.reply(MockAnthropic.usage(41, 42, 0, 0, 0), MockAnthropic.text("It is running."))),
        };
    }

    /**
     * The scenario, and with LITEFUSE_REALCLIENT_KEEP a copy of the projects folder at every Stop and SessionEnd (taken
     * beside the hook, as it reads them): the stages tests/staged/ replays offline.
     */
    static RealClient.Scenario scenario() {
        RealClient.Scenario scenario = RealClientTest.installed().rule(rules());
        if (RealClientTest.KEEP == null) return scenario;
        ObjectNode hooks = RealClient.JSON.createObjectNode();
        for (String event : List.of("Stop", "SessionEnd")) {
            RealClient.addHook(hooks, event, "mkdir -p \"$HOME/../snapshots\" && cp -r \"$HOME/.claude/projects\" \"$HOME/../snapshots/$(date +%s%N)-" + event + "\"");
        }
        ObjectNode settings = RealClient.JSON.createObjectNode();
        settings.set("hooks", hooks);
        return scenario.file("home/.claude/settings.json", settings.toPrettyString());
    }

    @Test
    void workflowAndBackgroundAgentInPrintMode() throws Exception {
        RealClient.Result result = scenario()
                .claude("-p", "run a workflow please", "--allowedTools", "Workflow")
                .claude("-p", "now a background agent please", "--allowedTools", "Agent,Bash")
                .waitForSpans(4, 30_000).run();
        keep(result, "agents-print");
        RealClientTest.assertExitCodes(result, 0, 0);
        assertAgentsOnce(result);
    }

    @Test
    void workflowAndBackgroundAgentInteractive() throws Exception {
        RealClient.Result result = scenario()
                .interactive(List.of("--allowedTools", "Workflow,Agent,Bash", "--permission-mode", "default"),
                        List.of(new RealClient.Scenario.Prompt("run a workflow please", 2),
                                new RealClient.Scenario.Prompt("now a background agent please", 2)))
                .waitForSpans(4, 30_000).run();
        keep(result, "agents-interactive");
        RealClientTest.assertExitCodes(result, 0);
        assertAgentsOnce(result);
    }

    @Test
    void twoRunsOfOneScriptShowEachUnderItsOwnCall() throws Exception {
        RealClient.Result result = scenario()
                // Each rule answers once: the second run's agents get their own.
                .rule(structured("WF-AGENT gather alpha", 101, 11, "alpha", 0), structured("WF-AGENT gather beta", 102, 12, "beta", 0),
                        structured("WF-AGENT combine", 103, 13, "alpha+beta", 0))
                .rule(MockAnthropic.rule(Map.of("lastUserContains", "run it twice please"),
                        MockAnthropic.reply(MockAnthropic.usage(33, 34, 0, 0, 0), MockAnthropic.text("Twice."),
                                MockAnthropic.toolUse("Workflow", Map.of("script", SCRIPT)), MockAnthropic.toolUse("Workflow", Map.of("script", SCRIPT)))))
                .claude("-p", "run it twice please", "--allowedTools", "Workflow")
                .waitForSpans(2, 30_000).run();
        keep(result, "agents-twice");
        RealClientTest.assertExitCodes(result, 0);
        result.assertEverySpanOnce();
        List<JsonNode> spans = result.spans();
        List<JsonNode> calls = spans.stream().filter(span -> span.path("name").asText().startsWith("Tool call: Workflow")).toList();
        List<JsonNode> runs = spans.stream().filter(span -> "chain".equals(RealClient.attr(span, "langfuse.observation.type"))).toList();
        assertEquals(2, calls.size(), () -> "two Workflow calls; log:\n" + result.hookLog());
        assertEquals(2, runs.size(), "two runs");
        assertEquals(Set.of(calls.get(0).path("spanId").asText(), calls.get(1).path("spanId").asText()),
                Set.of(runs.get(0).path("parentSpanId").asText(), runs.get(1).path("parentSpanId").asText()), "each run under its own call");
        long input = AGENT_TOKENS.values().stream().mapToLong(tokens -> tokens[0]).sum();
        long output = AGENT_TOKENS.values().stream().mapToLong(tokens -> tokens[1]).sum();
        for (JsonNode run : runs) {
            assertTrue(RealClient.attr(run, "langfuse.observation.input").contains("gather-combine"), "the script as input");
            assertEquals(List.of(input, output), tokensUnder(spans, run.path("spanId").asText()), "each run's three agents, once");
        }
    }

    /**
     * Claude Code's own cost on every generation once its rows have taught the rates: two sessions with different mixes
     * of input and output (one row is one equation), then a workflow session whose every generation, its agents' too, is
     * priced, adding up to the totalCostUSD Claude Code wrote for it; no session gets a cost other than its own.
     */
    @Test
    void onceTwoSessionsHaveTaughtTheRatesEveryGenerationAddsUpToClaudeCodesTotal() throws Exception {
        RealClient.Result result = scenario()
                .rule(MockAnthropic.rule(Map.of("lastUserContains", "first session please"),
                        MockAnthropic.reply(MockAnthropic.usage(20, 30, 0, 0, 0), MockAnthropic.text("One."))),
                        MockAnthropic.rule(Map.of("lastUserContains", "second session please"),
                                MockAnthropic.reply(MockAnthropic.usage(90, 4, 0, 0, 0), MockAnthropic.text("Two."))))
                .claude("-p", "first session please").claude("-p", "second session please")
                .claude("-p", "run a workflow please", "--allowedTools", "Workflow")
                .waitForSpans(4, 30_000).run();
        keep(result, "cost");
        RealClientTest.assertExitCodes(result, 0, 0, 0, 0);
        result.assertEverySpanOnce();
        Map<String, Double> costOf = new HashMap<>();
        Map<String, Integer> pricedOf = new HashMap<>();
        for (JsonNode span : result.spans()) {
            String cost = RealClient.attr(span, "langfuse.observation.cost_details");
            if (cost == null) continue;
            costOf.merge(RealClient.attr(span, "session.id"), RealClient.JSON.readTree(cost).path("total").asDouble(), Double::sum);
            pricedOf.merge(RealClient.attr(span, "session.id"), 1, Integer::sum);
        }
        List<Path> sessions = result.mainTranscripts();
        assertEquals(3, sessions.size(), sessions.toString());
        Path workflow = null;
        for (Path transcript : sessions) {
            if (Files.readString(transcript).contains("run a workflow please")) workflow = transcript;
        }
        assertNotNull(workflow);
        String workflowSession = workflow.getFileName().toString().replace(".jsonl", "");
        double claudeCodeTotal = 0;
        for (JsonNode row : RealClient.Result.rows(workflow)) {
            if ("cost-state".equals(row.path("type").asText())) claudeCodeTotal = row.path("totalCostUSD").asDouble();
        }
        assertTrue(claudeCodeTotal > 0, "Claude Code wrote its cost");
        assertEquals(claudeCodeTotal, costOf.getOrDefault(workflowSession, 0.0), 1e-6, () -> "the workflow session's generations, agents' included: "
                + costOf + "\n" + result.hookLog());
        assertEquals(6, pricedOf.get(workflowSession), "every generation with usage: 3 of the two turns, 3 of the agents");
        // The hook runs detached: a session's Stop firing may already find its own cost row (written as claude -p ends),
        // which determines that session's one generation exactly. Whatever a session got, it is Claude Code's own.
        for (Path transcript : sessions) {
            String session = transcript.getFileName().toString().replace(".jsonl", "");
            double total = 0;
            for (JsonNode row : RealClient.Result.rows(transcript)) {
                if ("cost-state".equals(row.path("type").asText())) total = row.path("totalCostUSD").asDouble();
            }
            if (costOf.containsKey(session)) assertEquals(total, costOf.get(session), 1e-6, session);
        }
        System.out.println("REALCLIENT | cost | Claude Code's total " + claudeCodeTotal + " USD | Langfuse's sum " + costOf.get(workflowSession)
                + " USD over " + pricedOf.get(workflowSession) + " generations | all sessions' sums " + costOf);
    }

    /**
     * Four turns: the launch of the workflow, its notification, the launch of the background agent, its notification.
     * Every span once; the run with its phases and agents under the Workflow call, the background agent under the
     * Agent call; each agent's tokens as the mock returned them; the notification turns' origin.
     */
    static void assertAgentsOnce(RealClient.Result result) throws IOException {
        assertEquals(4, result.roots().size(), () -> "four turns; log:\n" + result.hookLog());
        result.assertEverySpanOnce();
        List<JsonNode> spans = result.spans();
        Map<String, JsonNode> byId = new HashMap<>();
        for (JsonNode span : spans) byId.put(span.path("spanId").asText(), span);
        JsonNode workflowCall = only(spans, span -> span.path("name").asText().startsWith("Tool call: Workflow"));
        JsonNode run = only(spans, span -> "chain".equals(RealClient.attr(span, "langfuse.observation.type")));
        assertEquals(workflowCall.path("spanId").asText(), run.path("parentSpanId").asText(), "the run under the call that launched it");
        assertEquals(workflowCall.path("traceId").asText(), run.path("traceId").asText());
        assertTrue(run.path("name").asText().startsWith("Workflow: gather-combine (wf_"), run.path("name").asText());
        assertTrue(RealClient.attr(run, "langfuse.observation.metadata").contains("\"status\":\"completed\""));
        for (String phase : List.of("Phase 1: Gather", "Phase 2: Combine")) {
            JsonNode span = only(spans, s -> s.path("name").asText().equals(phase));
            assertEquals(run.path("spanId").asText(), span.path("parentSpanId").asText(), phase);
        }
        for (Map.Entry<String, long[]> agent : AGENT_TOKENS.entrySet()) {
            JsonNode span = only(spans, s -> s.path("name").asText().startsWith("Agent: " + agent.getKey() + " ("));
            String phase = agent.getKey().startsWith("gather") ? "Phase 1: Gather" : "Phase 2: Combine";
            assertEquals(phase, byId.get(span.path("parentSpanId").asText()).path("name").asText(), agent.getKey());
            assertEquals(List.of(agent.getValue()[0], agent.getValue()[1]), tokensUnder(spans, span.path("spanId").asText()), agent.getKey());
        }
        JsonNode agentCall = only(spans, span -> span.path("name").asText().startsWith("Tool call: Agent"));
        JsonNode background = only(spans, span -> span.path("name").asText().startsWith("Background agent: general-purpose ("));
        assertEquals(agentCall.path("spanId").asText(), background.path("parentSpanId").asText(), "under the call that launched it");
        assertEquals(List.of(61L + 62L, 6L + 7L), tokensUnder(spans, background.path("spanId").asText()));
        List<JsonNode> notified = result.roots().stream().filter(root -> RealClient.attr(root, "langfuse.trace.tags").contains("origin:task-notification")).toList();
        assertEquals(2, notified.size(), "the two turns the notifications started, tagged");
        for (JsonNode root : notified) {
            JsonNode origin = RealClient.JSON.readTree(RealClient.attr(root, "langfuse.trace.metadata")).path("claude_code").path("origin");
            assertEquals("task-notification", origin.path("kind").asText());
            assertEquals("completed", origin.path("status").asText());
            String toolUseId = origin.path("tool_use_id").asText();
            assertTrue(toolUseId.equals(toolUseIdOf(workflowCall)) || toolUseId.equals(toolUseIdOf(agentCall)), origin.toString());
            assertNotNull(origin.path("task_id").textValue());
        }
    }

    static String toolUseIdOf(JsonNode toolSpan) throws IOException {
        return RealClient.JSON.readTree(RealClient.attr(toolSpan, "langfuse.observation.metadata")).path("claude_code").path("tool_use_id").asText();
    }

    static JsonNode only(List<JsonNode> spans, java.util.function.Predicate<JsonNode> test) {
        List<JsonNode> found = spans.stream().filter(test).toList();
        assertEquals(1, found.size(), () -> "exactly one such span among " + spans.stream().map(s -> s.path("name").asText()).toList());
        return found.get(0);
    }

    /** Input and output tokens of the generations under a span (at any depth), each span as received. */
    static List<Long> tokensUnder(List<JsonNode> spans, String ancestorId) throws IOException {
        Map<String, String> parentOf = new HashMap<>();
        for (JsonNode span : spans) parentOf.put(span.path("spanId").asText(), span.path("parentSpanId").asText());
        long input = 0;
        long output = 0;
        for (JsonNode span : spans) {
            String usage = RealClient.attr(span, "langfuse.observation.usage_details");
            if (usage == null) continue;
            String id = span.path("spanId").asText();
            while (id != null && !id.isEmpty() && !id.equals(ancestorId)) id = parentOf.get(id);
            if (id == null || id.isEmpty()) continue;
            JsonNode details = RealClient.JSON.readTree(usage);
            input += details.path("input").asLong();
            output += details.path("output").asLong();
        }
        return List.of(input, output);
    }

    /** With LITEFUSE_REALCLIENT_KEEP: the whole projects folder (workflow runs, meta files), the log and the result. */
    static void keep(RealClient.Result result, String name) throws IOException {
        if (RealClientTest.KEEP == null) return;
        Path target = Path.of(RealClientTest.KEEP, name);
        Path projects = result.home().resolve(".claude/projects");
        try (Stream<Path> walk = Files.walk(projects)) {
            for (Path path : walk.toList()) {
                Path copy = target.resolve("projects").resolve(projects.relativize(path).toString());
                if (Files.isDirectory(path)) Files.createDirectories(copy);
                else Files.copy(path, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
        Path snapshots = result.work().resolve("snapshots");
        if (Files.isDirectory(snapshots)) {
            try (Stream<Path> walk = Files.walk(snapshots)) {
                for (Path path : walk.toList()) {
                    Path copy = target.resolve("snapshots").resolve(snapshots.relativize(path).toString());
                    if (Files.isDirectory(path)) Files.createDirectories(copy);
                    else Files.copy(path, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        Files.writeString(target.resolve("hook.log"), result.hookLog());
        Files.writeString(target.resolve("result.json"), result.json().toPrettyString());
    }
}
