import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Claude Code's own prices, learned from its cost-state rows (real rows of 2.1.332 in tests/staged): the fit, the span
 * rule (a cost only where the rows seen determine it), bad rows, and the hook pricing every generation so that a
 * session's generations add up to Claude Code's own total, workflow agents included.
 */
public class PricesTest extends ReceiverFixture {
    static final String MODEL = "claude-opus-5-5";

    static JsonNode costState(String usage, double cost, boolean unknown) throws IOException {
        return TestSupport.JSON.readTree("{\"type\":\"cost-state\",\"modelUsage\":{\"" + MODEL + "\":{" + usage + ",\"costUSD\":" + cost
                + "}},\"hasUnknownModelCost\":" + unknown + "}");
    }

    /** The two real rows: 222 input and 68 output tokens cost $0.002248; 385 and 118 cost $0.0039 ($4 and $20 per million). */
    static List<litefuse_hook.Prices.Sample> realSamples() throws IOException {
        List<litefuse_hook.Prices.Sample> samples = new ArrayList<>();
        for (Path file : List.of(BackgroundWorkTest.transcript("agents-print", BackgroundWorkTest.BACKGROUND_SESSION),
                BackgroundWorkTest.transcript("agents-print", BackgroundWorkTest.WORKFLOW_SESSION))) {
            for (String line : Files.readAllLines(file)) {
                if (line.contains("\"cost-state\"")) samples.addAll(litefuse_hook.Prices.samplesOf(TestSupport.JSON.readTree(line)));
            }
        }
        assertEquals(2, samples.size());
        return samples;
    }

    @Test
    void twoRowsDetermineInputAndOutputRates() throws IOException {
        litefuse_hook.Prices.Rates rates = litefuse_hook.Prices.Rates.learn(realSamples(), new ArrayList<>());
        litefuse_hook.Prices.Cost cost = rates.costOf(MODEL, Map.of("input", 100L, "output", 10L));
        assertNotNull(cost);
        assertEquals(100 * 4e-6 + 10 * 2e-5, cost.totalUsd(), 1e-12);
        assertEquals(4e-4, cost.byKind().get("input"), 1e-12);
        assertEquals(2e-4, cost.byKind().get("output"), 1e-12);
        assertNull(rates.costOf(MODEL, Map.of("input", 100L, "cache_read_input_tokens", 5L)), "no row had cache reads: not determined");
        assertNull(rates.costOf("claude-other-model", Map.of("input", 100L)), "a model never seen");
    }

    @Test
    void oneRowDeterminesOnlyItsOwnMultiples() throws IOException {
        litefuse_hook.Prices.Rates rates = litefuse_hook.Prices.Rates.learn(realSamples().subList(0, 1), new ArrayList<>());
        assertNull(rates.costOf(MODEL, Map.of("input", 100L, "output", 10L)), "a model seen once: no cost rather than a wrong one");
        litefuse_hook.Prices.Cost twice = rates.costOf(MODEL, Map.of("input", 444L, "output", 136L));
        assertNotNull(twice, "twice the row is determined");
        assertEquals(2 * 0.002248, twice.totalUsd(), 1e-12);
        assertEquals(Map.of(), twice.byKind(), "but not how it splits by kind");
    }

    @Test
    void rowsThatDoNotFitAreLeftOutAndBadRowsGiveNothing() throws IOException {
        List<litefuse_hook.Prices.Sample> samples = new ArrayList<>(realSamples());
        // Fast mode, or any price that is not one rate per token kind: it contradicts the two rows.
        samples.addAll(litefuse_hook.Prices.samplesOf(costState("\"inputTokens\":607,\"outputTokens\":186", 0.05, false)));
        List<String> leftOut = new ArrayList<>();
        litefuse_hook.Prices.Rates rates = litefuse_hook.Prices.Rates.learn(samples, leftOut);
        assertEquals(List.of(MODEL), leftOut);
        assertEquals(100 * 4e-6, rates.costOf(MODEL, Map.of("input", 100L)).totalUsd(), 1e-12, "the rows that fit still count");
        assertEquals(List.of(), litefuse_hook.Prices.samplesOf(costState("\"inputTokens\":10,\"outputTokens\":1", 0.01, true)), "hasUnknownModelCost");
        assertEquals(List.of(), litefuse_hook.Prices.samplesOf(costState("\"inputTokens\":-10,\"outputTokens\":1", 0.01, false)), "negative");
        assertEquals(List.of(), litefuse_hook.Prices.samplesOf(costState("\"inputTokens\":10,\"outputTokens\":1", -1, false)), "negative cost");
        assertEquals(List.of(), litefuse_hook.Prices.samplesOf(costState("\"inputTokens\":1e300,\"outputTokens\":1", 1, false)), "absurd");
        assertEquals(List.of(), litefuse_hook.Prices.samplesOf(TestSupport.JSON.readTree(
                "{\"type\":\"cost-state\",\"modelUsage\":{\"m\":{\"inputTokens\":1,\"costUSD\":\"cheap\"}}}")), "not a number");
    }

    @Test
    void rowsThatImplyANegativePriceGiveNoCost() throws IOException {
        // Consistent, but only with output tokens paying back: no price list looks like that.
        List<litefuse_hook.Prices.Sample> samples = new ArrayList<>();
        samples.addAll(litefuse_hook.Prices.samplesOf(costState("\"inputTokens\":100,\"outputTokens\":0", 0.001, false)));
        samples.addAll(litefuse_hook.Prices.samplesOf(costState("\"inputTokens\":100,\"outputTokens\":100", 0.0005, false)));
        litefuse_hook.Prices.Rates rates = litefuse_hook.Prices.Rates.learn(samples, new ArrayList<>());
        assertNull(rates.costOf(MODEL, Map.of("input", 10L, "output", 10L)), "a negative output rate prices nothing");
        assertNull(rates.costOf(MODEL, Map.of("input", 10L, "output", 100L)));
    }

    /** Every span received with a cost, by trace. */
    static double costOfSpans(List<OtlpReceiver.ReceivedSpan> spans) throws IOException {
        double total = 0;
        for (OtlpReceiver.ReceivedSpan span : spans) {
            String cost = span.attr("langfuse.observation.cost_details");
            if (cost != null) total += TestSupport.JSON.readTree(cost).path("total").asDouble();
        }
        return total;
    }

    @Test
    void onceLearnedEveryGenerationAddsUpToClaudeCodesOwnTotal() throws IOException {
        // A first session, whole: its cost-state row is one equation, not enough to price anything.
        Path projects = Files.createDirectories(home.resolve(".claude/projects/-realclient-agents"));
        Path first = copySession("agents-print", BackgroundWorkTest.BACKGROUND_SESSION, projects);
        TestSupport.fireHook(env, BackgroundWorkTest.BACKGROUND_SESSION, first);
        assertTrue(receiver.storedSpans().stream().allMatch(s -> s.attr("langfuse.observation.cost_details") == null), "no cost before rates are known");
        assertTrue(Files.readString(TestSupport.layout(home).prices()).contains(MODEL), "the row is kept");
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(TestSupport.layout(home).prices())));
        // The workflow session: with its own row, the rates are determined; its generations, agents' too, add up.
        receiver.clear();
        int before = receiver.storedSpans().size();
        Path second = copySession("agents-print", BackgroundWorkTest.WORKFLOW_SESSION, projects);
        TestSupport.fireHook(env, BackgroundWorkTest.WORKFLOW_SESSION, second);
        List<OtlpReceiver.ReceivedSpan> spans = receiver.storedSpans().subList(before, receiver.storedSpans().size());
        assertEquals(0.0039, costOfSpans(spans), 1e-6, "Claude Code's totalCostUSD for the session");
        OtlpReceiver.ReceivedSpan agentGeneration = spans.stream().filter(s -> "generation".equals(s.attr("langfuse.observation.type")))
                .filter(s -> s.attr("langfuse.observation.usage_details") != null && s.attr("langfuse.observation.usage_details").contains("\"input\":101"))
                .findFirst().orElseThrow();
        JsonNode cost = TestSupport.JSON.readTree(agentGeneration.attr("langfuse.observation.cost_details"));
        assertEquals(101 * 4e-6, cost.path("input").asDouble(), 1e-12, "an agent's generation, by kind");
        assertEquals(11 * 2e-5, cost.path("output").asDouble(), 1e-12);
        assertEquals(101 * 4e-6 + 11 * 2e-5, cost.path("total").asDouble(), 1e-12);
        JsonNode rootMeta = TestSupport.JSON.readTree(spans.stream().filter(s -> s.parentSpanId().isEmpty()).findFirst().orElseThrow()
                .attr("langfuse.trace.metadata")).path("claude_code");
        assertEquals("claude-code", rootMeta.path("cost_source").asText());
    }

    @Test
    void claudeCodesTotalIsCheckedAgainstWhatWasSent() throws Exception {
        Path projects = Files.createDirectories(home.resolve(".claude/projects/-realclient-agents"));
        TestSupport.fireHook(env, BackgroundWorkTest.BACKGROUND_SESSION, copySession("agents-print", BackgroundWorkTest.BACKGROUND_SESSION, projects));
        Path workflow = copySession("agents-print", BackgroundWorkTest.WORKFLOW_SESSION, projects);
        // Claude Code's total says more than its rows price: a cost the hook cannot see (or a hook bug). One line.
        Files.writeString(workflow, Files.readString(workflow).replace("\"totalCostUSD\":0.0039", "\"totalCostUSD\":0.0049"));
        TestSupport.fireHook(env, BackgroundWorkTest.WORKFLOW_SESSION, workflow);
        String log = TestSupport.log(home);
        assertEquals(1, log.lines().filter(line -> line.contains("Cost check, session " + BackgroundWorkTest.WORKFLOW_SESSION
                + ": Claude Code counts $0.004900, the generations sent carry $0.003900")).count(), log);
        assertTrue(log.lines().noneMatch(line -> line.contains("Cost check, session " + BackgroundWorkTest.BACKGROUND_SESSION)),
                "the first session's generation went out before any price was known: not checked");
        JsonNode state = null;
        try (Stream<Path> files = Files.list(TestSupport.layout(home).sessions())) {
            for (Path file : files.filter(litefuse_hook.StateLayout::isState).toList()) {
                JsonNode candidate = TestSupport.JSON.readTree(file.toFile());
                if (candidate.path("session_id").asText().equals(BackgroundWorkTest.WORKFLOW_SESSION)) state = candidate;
            }
        }
        assertNotNull(state);
        assertEquals(0.0039, state.path("cost_sent_usd").asDouble(), 1e-9, "the session's cost as sent, kept in its state");
        assertEquals(0, state.path("cost_unpriced").asInt());
        TestSupport.Run doctor = TestSupport.runCliProcess(env, new byte[0], "doctor", "--dir", home.toString());
        assertTrue(doctor.stdout().contains("Cost: session " + BackgroundWorkTest.WORKFLOW_SESSION
                + ": Claude Code counts $0.004900, its generations carried $0.003900 as sent (they differ)"), doctor.stdout());
    }

    @Test
    void backfillLearnsFromTheWholeHistoryBeforeItSends() throws Exception {
        Path projects = Files.createDirectories(home.resolve(".claude/projects/-realclient-agents"));
        copySession("agents-print", BackgroundWorkTest.BACKGROUND_SESSION, projects);
        copySession("agents-print", BackgroundWorkTest.WORKFLOW_SESSION, projects);
        TestSupport.Run dryRun = TestSupport.runCliProcess(env, new byte[0], "backfill", "--dry-run");
        // Both sessions' rows first: then every generation of both is priced, background and workflow agents' too.
        assertTrue(dryRun.stdout().contains("cost by Claude Code's prices $0.006148, for 11 of 11 generation(s)"), dryRun.stdout() + dryRun.stderr());
    }

    static Path copySession(String fixture, String session, Path projects) throws IOException {
        Path source = BackgroundWorkTest.STAGED.resolve(fixture).resolve("project");
        try (Stream<Path> walk = Files.walk(source)) {
            for (Path path : walk.filter(p -> p.getFileName().toString().startsWith(session) || p.toString().contains("/" + session + "/")).toList()) {
                Path copy = projects.resolve(source.relativize(path).toString());
                if (Files.isDirectory(path)) Files.createDirectories(copy);
                else {
                    Files.createDirectories(copy.getParent());
                    Files.copy(path, copy);
                }
            }
        }
        return projects.resolve(session + ".jsonl");
    }
}
