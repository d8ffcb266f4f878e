import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What each generation says the model was sent, against what the real Claude Code sent the mock Messages API: in the
 * default mode, the messages after the request's last assistant message; in full mode, the whole request (system and
 * messages block for block, cache_control and thinking signatures aside); in both, the request's settings as model
 * parameters. Every request the mock got is some generation's; subagents included. Skipped where no loopback-only
 * network namespace can be made.
 */
class RealClientInputTest {

    @Test
    void newInputsAreTheMessagesAfterEachRequestsLastAnswer() throws Exception {
        RealClient.Result result = RealClient.threeSessions(RealClientTest.installed()).waitForSpans(3, 30_000).run();
        RealClientTest.keep(result, "inputs-new");
        RealClientTest.assertExitCodes(result, 0, 0, 0);
        Set<Integer> matched = new HashSet<>();
        for (JsonNode generation : generations(result)) {
            JsonNode input = RealClient.JSON.readTree(RealClient.attr(generation, "langfuse.observation.input"));
            assertEquals(Set.of("messages"), fieldNames(input), "new mode shows messages only: " + input);
            int request = matching(result, generation, body -> newMessages(body), input.path("messages"));
            matched.add(request);
            assertEquals("request_new", metadata(generation).path("input_from").asText(), generation.path("name").asText());
        }
        assertEquals(RealClient.THREE_SESSIONS_REQUESTS, matched.size(), "every request the mock got is some generation's input");
    }

    @Test
    void offSendsNoInputButEachRequestsSettings() throws Exception {
        RealClient.Result result = RealClient.threeSessions(RealClientTest.installed().env("CC_LANGFUSE_GENERATION_INPUT", "off"))
                .waitForSpans(3, 30_000).run();
        RealClientTest.keep(result, "inputs-off");
        RealClientTest.assertExitCodes(result, 0, 0, 0);
        Set<JsonNode> settings = new HashSet<>();
        for (JsonNode request : result.messageRequests()) {
            JsonNode body = request.path("body");
            ObjectNode expected = RealClient.JSON.createObjectNode().put("max_tokens", body.path("max_tokens").asInt())
                    .put("thinking", body.path("thinking").path("type").asText()).put("effort", body.path("output_config").path("effort").asText());
            settings.add(expected);
        }
        for (JsonNode generation : generations(result)) {
            assertNull(RealClient.attr(generation, "langfuse.observation.input"), generation.path("name").asText());
            assertFalse(metadata(generation).has("input_from"));
            ObjectNode parameters = (ObjectNode) RealClient.JSON.readTree(RealClient.attr(generation, "langfuse.observation.model.parameters"));
            assertEquals("standard", parameters.path("service_tier").asText(), "as the response reports it");
            parameters.remove(List.of("service_tier", "speed"));
            assertTrue(settings.contains(parameters), parameters + " is the settings of a request the client sent: " + settings);
        }
    }

    @Test
    void fullInputsAreTheWholeRequestsIncludingAThirdTurnOfOneProcess() throws Exception {
        // The three sessions of the other tests, then three prompts in one interactive process: its third turn's requests
        // extend requests two turns back, which the hook read in earlier firings (its state carries where their messages are).
        Map<String, Object> alphaAfterTool = Map.of("anyUserContains", "alpha prompt", "lastIsToolResult", true);
        Map<String, Object> gammaAfterTool = Map.of("anyUserContains", "gamma prompt", "lastIsToolResult", true);
        // Debug lines in the hook's log: a generation shown from the transcript says there why its request was not used.
        RealClient.Result result = RealClient.threeSessions(RealClientTest.installed().env("CC_LANGFUSE_GENERATION_INPUT", "full")
                        .env("CC_LANGFUSE_DEBUG", "true"))
                .interactive(List.of("--allowedTools", "Bash"), "alpha prompt", "beta prompt", "gamma prompt")
                .withStepRules(
                        MockAnthropic.rule(gammaAfterTool, MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("Gamma done."))),
                        MockAnthropic.rule(alphaAfterTool, MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0), MockAnthropic.text("Alpha done."))),
                        MockAnthropic.rule(Map.of("lastUserContains", "alpha prompt"), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0),
                                MockAnthropic.thinking("List first."), MockAnthropic.toolUse("Bash", Map.of("command", "echo one", "description", "One")))),
                        MockAnthropic.rule(Map.of("lastUserContains", "beta prompt"), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0),
                                MockAnthropic.text("Beta answer."))),
                        MockAnthropic.rule(Map.of("lastUserContains", "gamma prompt"), MockAnthropic.reply(MockAnthropic.usage(10, 5, 0, 0, 0),
                                MockAnthropic.toolUse("Bash", Map.of("command", "echo three", "description", "Three")))))
                .waitForSpans(6, 45_000)
                .run();
        RealClientTest.keep(result, "inputs-full");
        RealClientTest.assertExitCodes(result, 0, 0, 0, 0, 0);
        assertEquals(6, result.roots().size(), () -> "one trace per prompt; log:\n" + result.hookLog());
        Set<Integer> matched = new HashSet<>();
        Set<String> tracesWithSchemas = new HashSet<>();
        for (JsonNode generation : generations(result)) {
            JsonNode input = RealClient.JSON.readTree(RealClient.attr(generation, "langfuse.observation.input"));
            assertEquals("request", metadata(generation).path("input_from").asText(), () -> generation.path("name").asText() + "; log:\n" + result.hookLog());
            int request = matching(result, generation, body -> wholeRequest(body), input.path("messages"));
            matched.add(request);
            JsonNode body = result.messageRequests().get(request).path("body");
            JsonNode tools = input.path("tools");
            assertEquals(body.path("tools").size(), tools.size(), "every tool the request offered");
            if (tools.path(0).isObject()) {
                assertEquals(normalized(body.path("tools")), tools, "the schemas, as sent");
                assertTrue(tracesWithSchemas.add(generation.path("traceId").asText() + " " + tools.size()), "schemas once per trace and tool list");
            } else {
                for (int i = 0; i < tools.size(); i++) assertEquals(body.path("tools").path(i).path("name").asText(), tools.path(i).asText());
            }
        }
        assertEquals(result.messageRequests().size(), matched.size(), "every request the mock got is some generation's input");
        assertEquals(RealClient.THREE_SESSIONS_REQUESTS + 5, result.messageRequests().size(), "two tool round trips and a plain answer");
    }

    /** The generation spans the receiver got. */
    static List<JsonNode> generations(RealClient.Result result) {
        List<JsonNode> generations = result.spans().stream()
                .filter(span -> "generation".equals(RealClient.attr(span, "langfuse.observation.type"))).toList();
        assertFalse(generations.isEmpty());
        return generations;
    }

    static JsonNode metadata(JsonNode span) throws Exception {
        return RealClient.JSON.readTree(RealClient.attr(span, "langfuse.observation.metadata")).path("claude_code");
    }

    static Set<String> fieldNames(JsonNode node) {
        Set<String> names = new HashSet<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    /**
     * The index of a request the mock got whose expected input is the generation's (and whose settings are its model
     * parameters): the assertion that the generation shows what the model was sent.
     */
    static int matching(RealClient.Result result, JsonNode generation, java.util.function.Function<JsonNode, JsonNode> expected, JsonNode shown)
            throws Exception {
        List<JsonNode> requests = result.messageRequests();
        for (int i = 0; i < requests.size(); i++) {
            JsonNode body = requests.get(i).path("body");
            if (!expected.apply(body).equals(shown)) continue;
            JsonNode parameters = RealClient.JSON.readTree(RealClient.attr(generation, "langfuse.observation.model.parameters"));
            assertEquals(body.path("max_tokens").asInt(), parameters.path("max_tokens").asInt(), "max_tokens");
            assertEquals(body.path("thinking").path("type").asText(), parameters.path("thinking").asText(), "thinking");
            assertEquals(body.path("output_config").path("effort").asText(), parameters.path("effort").asText(), "effort");
            return i;
        }
        List<String> sent = new ArrayList<>();
        for (JsonNode request : requests) sent.add(expected.apply(request.path("body")).toString());
        throw new AssertionError(generation.path("name").asText() + " shows\n" + shown + "\nwhich is no request the mock got:\n"
                + String.join("\n", sent));
    }

    /** The messages after the request's last assistant message, as the hook shows them. */
    static JsonNode newMessages(JsonNode body) {
        ArrayNode messages = (ArrayNode) normalized(body.path("messages"));
        int last = -1;
        for (int i = 0; i < messages.size(); i++) if (messages.get(i).path("role").asText().equals("assistant")) last = i;
        ArrayNode fresh = RealClient.JSON.createArrayNode();
        for (int i = last + 1; i < messages.size(); i++) fresh.add(messages.get(i));
        return fresh;
    }

    /** The system prompt (Claude Code's billing header left out: it is no part of the recorded request) as a first message, then every message. */
    static JsonNode wholeRequest(JsonNode body) {
        ArrayNode messages = RealClient.JSON.createArrayNode();
        ArrayNode system = RealClient.JSON.createArrayNode();
        for (JsonNode block : body.path("system")) {
            if (!block.path("text").asText().startsWith("x-anthropic-billing-header")) system.add(normalized(block));
        }
        if (!system.isEmpty()) messages.addObject().put("role", "system").set("content", system);
        messages.addAll((ArrayNode) normalized(body.path("messages")));
        return messages;
    }

    /** A copy without cache_control and thinking signatures, text content as one text block: the form the hook shows. */
    static JsonNode normalized(JsonNode node) {
        if (node.isArray()) {
            ArrayNode copy = RealClient.JSON.createArrayNode();
            node.forEach(item -> copy.add(normalized(item)));
            return copy;
        }
        if (!node.isObject()) return node;
        ObjectNode copy = RealClient.JSON.createObjectNode();
        node.fields().forEachRemaining(field -> {
            if (field.getKey().equals("cache_control")) return;
            if (field.getKey().equals("signature") && node.path("type").asText().equals("thinking")) return;
            if (field.getKey().equals("content") && field.getValue().isTextual() && node.has("role")) {
                copy.putArray("content").addObject().put("type", "text").put("text", field.getValue().asText());
                return;
            }
            copy.set(field.getKey(), normalized(field.getValue()));
        });
        return copy;
    }
}
