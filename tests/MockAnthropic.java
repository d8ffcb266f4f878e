import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.GZIPInputStream;

/**
 * A loopback mock of the Anthropic API as Claude Code uses it: {@code POST /v1/messages} streamed as server-sent events
 * exactly as the real API streams them (message_start, ping, content_block_start/delta/stop for text, thinking and
 * tool_use with input_json_delta, message_delta with stop_reason and usage, message_stop), or as one JSON message
 * when the request does not ask to stream; {@code POST /v1/messages/count_tokens}; {@code GET /v1/models}; anything
 * else is recorded and answered 404 the way the API does.
 *
 * <p>Scripted by rules, plain JSON so that a scenario can carry them into another JVM. A rule is
 * <pre>{"when": {...}, "times": 1, "reply": {...}}</pre>
 * and every request is answered by the first rule that still has uses left and whose {@code when} holds (all of
 * its keys must): {@code model} (substring of the requested model), {@code stream} (boolean), {@code path}
 * (exact), {@code lastIsToolResult} (the last message is a user message carrying a tool_result),
 * {@code lastUserContains} (text of the last user message, tool results included), {@code anyUserContains},
 * {@code systemContains} (the system prompt), {@code hasTool} / {@code lacksTool} (a tool name offered or not),
 * {@code toolResultContains} (text of the tool results in the last message). {@code times} is how many requests the
 * rule answers (default 1; 0 means any number). A request no rule answers gets {@link #DEFAULT_TEXT}.
 *
 * <p>A reply is {@code {"content": [blocks], "stop_reason": ..., "usage": {...}, "model": ..., "id": ...,
 * "request_id": ..., "delay_ms": n}} with blocks built by {@link #text}, {@link #thinking} and {@link #toolUse};
 * stop_reason defaults to tool_use when a block is a tool_use and to end_turn otherwise. An error reply is
 * {@code {"status": 529, "error": {"type": "overloaded_error", "message": "Overloaded"}}}.
 */
public final class MockAnthropic implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    static final String DEFAULT_TEXT = "(mock) no scripted reply";

    /** One request as it arrived: method, path, query, headers with lower-case names, body (JSON when it parsed). */
    public record Request(int index, String method, String path, String query, Map<String, String> headers,
                          JsonNode body, String rawBody, int rule, String replyId, long receivedMillis) {
        public ObjectNode toJson() {
            ObjectNode node = NODES.objectNode();
            node.put("index", index).put("method", method).put("path", path).put("query", query);
            ObjectNode h = node.putObject("headers");
            headers.forEach(h::put);
            if (body != null) node.set("body", body);
            else node.put("rawBody", rawBody);
            node.put("rule", rule).put("replyId", replyId).put("receivedMillis", receivedMillis);
            return node;
        }
    }

    private final HttpServer server;
    private final List<Request> requests = new CopyOnWriteArrayList<>();
    private final List<ObjectNode> rules = new CopyOnWriteArrayList<>();
    private final Map<ObjectNode, Integer> used = new java.util.IdentityHashMap<>();
    private final AtomicInteger counter = new AtomicInteger();

    public MockAnthropic() throws IOException {
        this(0);
    }

    public MockAnthropic(int port) throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 0);
        server.createContext("/", this::handle);
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "mock-anthropic");
            t.setDaemon(true);
            return t;
        }));
        server.start();
    }

    /** The base URL to give Claude Code as ANTHROPIC_BASE_URL. */
    public String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** Appends rules (see the class comment) after those already there. */
    public MockAnthropic script(JsonNode... next) {
        for (JsonNode rule : next) addRule(rule);
        return this;
    }

    public MockAnthropic script(Iterable<? extends JsonNode> next) {
        for (JsonNode rule : next) addRule(rule);
        return this;
    }

    private void addRule(JsonNode rule) {
        if (!rule.isObject() || !rule.has("reply")) throw new IllegalArgumentException("a rule needs a reply: " + rule);
        rules.add(((ObjectNode) rule).deepCopy());
    }

    /** Drops every rule, used or not. */
    public synchronized void clearScript() {
        rules.clear();
        used.clear();
    }

    public List<Request> requests() {
        return List.copyOf(requests);
    }

    /** The Messages API requests (count_tokens and other endpoints left out). */
    public List<Request> messageRequests() {
        return requests.stream().filter(r -> r.path().equals("/v1/messages")).toList();
    }

    @Override
    public void close() {
        server.stop(0);
    }

    // ---------------------------------------------------------------- building rules

    public static ObjectNode text(String text) {
        return NODES.objectNode().put("type", "text").put("text", text);
    }

    public static ObjectNode thinking(String thinking) {
        return NODES.objectNode().put("type", "thinking").put("thinking", thinking);
    }

    /** A tool_use block; input is a JSON object given as a map or a JsonNode. */
    public static ObjectNode toolUse(String name, Object input) {
        ObjectNode block = NODES.objectNode().put("type", "tool_use").put("name", name);
        block.set("input", JSON.valueToTree(input));
        return block;
    }

    /** Usage as the API reports it; cache_creation_input_tokens is the sum of the 5m and 1h parts. */
    public static ObjectNode usage(long input, long output, long cacheRead, long cacheWrite5m, long cacheWrite1h) {
        ObjectNode usage = NODES.objectNode().put("input_tokens", input).put("output_tokens", output)
                .put("cache_read_input_tokens", cacheRead).put("cache_creation_input_tokens", cacheWrite5m + cacheWrite1h);
        usage.putObject("cache_creation").put("ephemeral_5m_input_tokens", cacheWrite5m).put("ephemeral_1h_input_tokens", cacheWrite1h);
        return usage;
    }

    public static ObjectNode reply(ObjectNode usage, ObjectNode... content) {
        ObjectNode reply = NODES.objectNode();
        ArrayNode blocks = reply.putArray("content");
        for (ObjectNode block : content) blocks.add(block);
        if (usage != null) reply.set("usage", usage);
        return reply;
    }

    /** An error reply: the HTTP status and the API's error type, e.g. 529 overloaded_error. */
    public static ObjectNode error(int status, String type, String message) {
        ObjectNode reply = NODES.objectNode().put("status", status);
        reply.putObject("error").put("type", type).put("message", message);
        return reply;
    }

    /** A rule answering once; when is a map of conditions (see the class comment), empty for any request. */
    public static ObjectNode rule(Map<String, ?> when, ObjectNode reply) {
        return rule(when, 1, reply);
    }

    public static ObjectNode rule(Map<String, ?> when, int times, ObjectNode reply) {
        ObjectNode rule = NODES.objectNode();
        rule.set("when", JSON.valueToTree(when == null ? Map.of() : when));
        rule.put("times", times);
        rule.set("reply", reply);
        return rule;
    }

    // ---------------------------------------------------------------- serving

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            byte[] raw;
            try (InputStream in = exchange.getRequestBody()) {
                raw = in.readAllBytes();
            }
            Map<String, String> headers = new LinkedHashMap<>();
            exchange.getRequestHeaders().forEach((name, values) -> headers.put(name.toLowerCase(), String.join(",", values)));
            if ("gzip".equalsIgnoreCase(headers.get("content-encoding"))) {
                raw = new GZIPInputStream(new ByteArrayInputStream(raw)).readAllBytes();
            }
            String rawBody = new String(raw, StandardCharsets.UTF_8);
            JsonNode body = null;
            if (!rawBody.isBlank()) {
                try {
                    body = JSON.readTree(rawBody);
                } catch (IOException e) {
                    body = null;
                }
            }
            String method = exchange.getRequestMethod();
            String path = exchange.getRequestURI().getPath();
            String query = exchange.getRequestURI().getRawQuery();
            int n = counter.incrementAndGet();
            String requestId = "req_mock_" + String.format("%04d", n);
            exchange.getResponseHeaders().add("request-id", requestId);
            exchange.getResponseHeaders().add("anthropic-organization-id", "00000000-0000-0000-0000-000000000000");

            if (method.equals("POST") && path.equals("/v1/messages") && body != null) {
                int[] ruleIndex = {-1};
                ObjectNode reply = pick(path, body, ruleIndex);
                String id = reply.has("id") ? reply.get("id").asText() : "msg_mock_" + String.format("%04d", n);
                requests.add(new Request(n, method, path, query, headers, body, body == null ? rawBody : null, ruleIndex[0], id, System.currentTimeMillis()));
                if (reply.path("delay_ms").asLong() > 0) sleep(reply.path("delay_ms").asLong());
                if (reply.has("status") && reply.get("status").asInt() != 200) {
                    sendError(exchange, reply.get("status").asInt(), reply.path("error").path("type").asText("api_error"),
                            reply.path("error").path("message").asText("mock error"), requestId);
                } else if (body.path("stream").asBoolean()) {
                    stream(exchange, body, reply, id);
                } else {
                    sendJson(exchange, 200, message(body, reply, id, true));
                }
                return;
            }
            requests.add(new Request(n, method, path, query, headers, body, body == null ? rawBody : null, -1, null, System.currentTimeMillis()));
            if (method.equals("POST") && path.equals("/v1/messages/count_tokens")) {
                sendJson(exchange, 200, NODES.objectNode().put("input_tokens", Math.max(1, raw.length / 4)));
            } else if (method.equals("GET") && path.equals("/v1/models")) {
                sendJson(exchange, 200, models());
            } else if (method.equals("GET") && path.startsWith("/v1/models/")) {
                sendJson(exchange, 200, model(path.substring("/v1/models/".length())));
            } else if (method.equals("HEAD")) {
                exchange.sendResponseHeaders(200, -1);
            } else {
                sendError(exchange, 404, "not_found_error", "Not found: " + method + " " + path, requestId);
            }
        } catch (RuntimeException e) {
            e.printStackTrace();
            throw e;
        }
    }

    private synchronized ObjectNode pick(String path, JsonNode body, int[] ruleIndex) {
        for (int i = 0; i < rules.size(); i++) {
            ObjectNode rule = rules.get(i);
            int times = rule.path("times").asInt(1);
            int usedSoFar = used.getOrDefault(rule, 0);
            if (times > 0 && usedSoFar >= times) continue;
            if (!matches(rule.path("when"), path, body)) continue;
            used.put(rule, usedSoFar + 1);
            ruleIndex[0] = i;
            return (ObjectNode) rule.get("reply");
        }
        return reply(null, text(DEFAULT_TEXT));
    }

    static boolean matches(JsonNode when, String path, JsonNode body) {
        if (when == null || when.isMissingNode() || when.isNull()) return true;
        var fields = when.fields();
        while (fields.hasNext()) {
            var field = fields.next();
            JsonNode want = field.getValue();
            boolean ok = switch (field.getKey()) {
                case "model" -> body.path("model").asText().contains(want.asText());
                case "stream" -> body.path("stream").asBoolean() == want.asBoolean();
                case "path" -> path.equals(want.asText());
                case "lastIsToolResult" -> lastIsToolResult(body) == want.asBoolean();
                case "lastUserContains" -> textOf(lastUser(body)).contains(want.asText());
                case "anyUserContains" -> anyUserText(body).contains(want.asText());
                case "systemContains" -> systemText(body).contains(want.asText());
                case "hasTool" -> toolNames(body).contains(want.asText());
                case "lacksTool" -> !toolNames(body).contains(want.asText());
                case "toolResultContains" -> toolResultText(lastUser(body)).contains(want.asText());
                default -> throw new IllegalArgumentException("unknown condition " + field.getKey());
            };
            if (!ok) return false;
        }
        return true;
    }

    static JsonNode lastUser(JsonNode body) {
        JsonNode messages = body.path("messages");
        for (int i = messages.size() - 1; i >= 0; i--) {
            if ("user".equals(messages.get(i).path("role").asText())) return messages.get(i);
        }
        return NODES.objectNode();
    }

    static boolean lastIsToolResult(JsonNode body) {
        JsonNode messages = body.path("messages");
        // Claude Code may append a system-role message (environment) after the last user message.
        for (int i = messages.size() - 1; i >= 0; i--) {
            JsonNode message = messages.get(i);
            String role = message.path("role").asText();
            if (role.equals("system")) continue;
            if (!role.equals("user")) return false;
            for (JsonNode block : message.path("content")) {
                if ("tool_result".equals(block.path("type").asText())) return true;
            }
            return false;
        }
        return false;
    }

    static String textOf(JsonNode message) {
        JsonNode content = message.path("content");
        if (content.isTextual()) return content.asText();
        StringBuilder text = new StringBuilder();
        for (JsonNode block : content) {
            if (block.has("text")) text.append(block.get("text").asText()).append('\n');
            if ("tool_result".equals(block.path("type").asText())) text.append(toolResultBlockText(block)).append('\n');
        }
        return text.toString();
    }

    static String toolResultText(JsonNode message) {
        StringBuilder text = new StringBuilder();
        for (JsonNode block : message.path("content")) {
            if ("tool_result".equals(block.path("type").asText())) text.append(toolResultBlockText(block)).append('\n');
        }
        return text.toString();
    }

    static String toolResultBlockText(JsonNode block) {
        return plainText(block.path("content"));
    }

    /** A content that is either a string or a list of text blocks (a tool result's, the system prompt), as text. */
    static String plainText(JsonNode content) {
        if (content.isTextual()) return content.asText();
        StringBuilder text = new StringBuilder();
        for (JsonNode part : content) text.append(part.path("text").asText()).append('\n');
        return text.toString();
    }

    static String anyUserText(JsonNode body) {
        StringBuilder text = new StringBuilder();
        for (JsonNode message : body.path("messages")) {
            if ("user".equals(message.path("role").asText())) text.append(textOf(message));
        }
        return text.toString();
    }

    static String systemText(JsonNode body) {
        return plainText(body.path("system"));
    }

    static List<String> toolNames(JsonNode body) {
        List<String> names = new ArrayList<>();
        for (JsonNode tool : body.path("tools")) names.add(tool.path("name").asText());
        return names;
    }

    // ---------------------------------------------------------------- answers

    /** The reply's blocks as the API returns them, tool_use ids filled in. */
    private ArrayNode blocks(ObjectNode reply, String messageId) {
        ArrayNode blocks = NODES.arrayNode();
        int i = 0;
        for (JsonNode block : reply.path("content")) {
            ObjectNode copy = ((ObjectNode) block).deepCopy();
            switch (copy.path("type").asText()) {
                case "tool_use" -> {
                    if (!copy.has("id")) copy.put("id", "toolu_mock_" + messageId.replaceAll("[^0-9]", "") + "_" + i);
                    if (!copy.has("input")) copy.putObject("input");
                }
                case "thinking" -> {
                    if (!copy.has("signature")) copy.put("signature", "mock-signature-" + messageId + "-" + i);
                }
                default -> {
                }
            }
            blocks.add(copy);
            i++;
        }
        return blocks;
    }

    private static String stopReason(ObjectNode reply, ArrayNode blocks) {
        if (reply.has("stop_reason")) return reply.get("stop_reason").asText();
        for (JsonNode block : blocks) if ("tool_use".equals(block.path("type").asText())) return "tool_use";
        return "end_turn";
    }

    private static ObjectNode fullUsage(ObjectNode reply) {
        JsonNode given = reply.path("usage");
        long cache5m = given.path("cache_creation").path("ephemeral_5m_input_tokens").asLong(0);
        long cache1h = given.path("cache_creation").path("ephemeral_1h_input_tokens").asLong(0);
        long cacheWrite = given.has("cache_creation_input_tokens") ? given.get("cache_creation_input_tokens").asLong() : cache5m + cache1h;
        if (!given.has("cache_creation") && cacheWrite > 0) cache5m = cacheWrite;
        ObjectNode usage = NODES.objectNode();
        usage.put("input_tokens", given.path("input_tokens").asLong(10));
        usage.put("cache_creation_input_tokens", cacheWrite);
        usage.put("cache_read_input_tokens", given.path("cache_read_input_tokens").asLong(0));
        usage.putObject("cache_creation").put("ephemeral_5m_input_tokens", cache5m).put("ephemeral_1h_input_tokens", cache1h);
        usage.put("output_tokens", given.path("output_tokens").asLong(5));
        usage.put("service_tier", "standard");
        return usage;
    }

    private ObjectNode message(JsonNode request, ObjectNode reply, String id, boolean complete) {
        ObjectNode message = NODES.objectNode();
        message.put("id", id).put("type", "message").put("role", "assistant");
        message.put("model", reply.has("model") ? reply.get("model").asText() : request.path("model").asText("claude-mock"));
        ArrayNode blocks = blocks(reply, id);
        message.set("content", complete ? blocks : NODES.arrayNode());
        if (complete) message.put("stop_reason", stopReason(reply, blocks));
        else message.putNull("stop_reason");
        message.putNull("stop_sequence");
        ObjectNode usage = fullUsage(reply);
        if (!complete) usage.put("output_tokens", Math.min(1, usage.get("output_tokens").asLong()));
        message.set("usage", usage);
        return message;
    }

    private void stream(HttpExchange exchange, JsonNode request, ObjectNode reply, String id) throws IOException {
        exchange.getResponseHeaders().add("Content-Type", "text/event-stream; charset=utf-8");
        exchange.getResponseHeaders().add("Cache-Control", "no-cache");
        exchange.sendResponseHeaders(200, 0);
        OutputStream out = exchange.getResponseBody();
        ArrayNode blocks = blocks(reply, id);
        event(out, "message_start", NODES.objectNode().put("type", "message_start").set("message", message(request, reply, id, false)));
        event(out, "ping", NODES.objectNode().put("type", "ping"));
        for (int i = 0; i < blocks.size(); i++) {
            ObjectNode block = (ObjectNode) blocks.get(i);
            String type = block.path("type").asText();
            ObjectNode start = NODES.objectNode().put("type", "content_block_start").put("index", i);
            switch (type) {
                case "text" -> {
                    start.putObject("content_block").put("type", "text").put("text", "");
                    event(out, "content_block_start", start);
                    for (String piece : pieces(block.path("text").asText(), 16)) {
                        delta(out, i, NODES.objectNode().put("type", "text_delta").put("text", piece));
                    }
                }
                case "thinking" -> {
                    start.putObject("content_block").put("type", "thinking").put("thinking", "").put("signature", "");
                    event(out, "content_block_start", start);
                    for (String piece : pieces(block.path("thinking").asText(), 16)) {
                        delta(out, i, NODES.objectNode().put("type", "thinking_delta").put("thinking", piece));
                    }
                    delta(out, i, NODES.objectNode().put("type", "signature_delta").put("signature", block.path("signature").asText()));
                }
                case "redacted_thinking" -> {
                    start.set("content_block", block);
                    event(out, "content_block_start", start);
                }
                case "tool_use", "server_tool_use" -> {
                    ObjectNode head = start.putObject("content_block");
                    head.put("type", type).put("id", block.path("id").asText()).put("name", block.path("name").asText());
                    head.putObject("input");
                    event(out, "content_block_start", start);
                    delta(out, i, NODES.objectNode().put("type", "input_json_delta").put("partial_json", ""));
                    for (String piece : pieces(block.path("input").toString(), 24)) {
                        delta(out, i, NODES.objectNode().put("type", "input_json_delta").put("partial_json", piece));
                    }
                }
                default -> throw new IllegalArgumentException("unknown block type " + type);
            }
            event(out, "content_block_stop", NODES.objectNode().put("type", "content_block_stop").put("index", i));
        }
        ObjectNode usage = fullUsage(reply);
        ObjectNode messageDelta = NODES.objectNode().put("type", "message_delta");
        messageDelta.putObject("delta").put("stop_reason", stopReason(reply, blocks)).putNull("stop_sequence");
        ObjectNode deltaUsage = messageDelta.putObject("usage");
        deltaUsage.put("input_tokens", usage.get("input_tokens").asLong());
        deltaUsage.put("cache_creation_input_tokens", usage.get("cache_creation_input_tokens").asLong());
        deltaUsage.put("cache_read_input_tokens", usage.get("cache_read_input_tokens").asLong());
        deltaUsage.put("output_tokens", usage.get("output_tokens").asLong());
        event(out, "message_delta", messageDelta);
        event(out, "message_stop", NODES.objectNode().put("type", "message_stop"));
        out.close();
    }

    private static List<String> pieces(String text, int size) {
        List<String> pieces = new ArrayList<>();
        int i = 0;
        while (i < text.length()) {
            int end = Math.min(text.length(), i + size);
            if (end < text.length() && Character.isHighSurrogate(text.charAt(end - 1))) end++;
            pieces.add(text.substring(i, end));
            i = end;
        }
        if (pieces.isEmpty()) pieces.add("");
        return pieces;
    }

    private static void delta(OutputStream out, int index, ObjectNode delta) throws IOException {
        ObjectNode event = NODES.objectNode().put("type", "content_block_delta").put("index", index);
        event.set("delta", delta);
        event(out, "content_block_delta", event);
    }

    private static void event(OutputStream out, String name, JsonNode data) throws IOException {
        out.write(("event: " + name + "\ndata: " + JSON.writeValueAsString(data) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void sendJson(HttpExchange exchange, int status, JsonNode body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    private static void sendError(HttpExchange exchange, int status, String type, String message, String requestId) throws IOException {
        ObjectNode body = NODES.objectNode().put("type", "error");
        body.putObject("error").put("type", type).put("message", message);
        body.put("request_id", requestId);
        if (status == 429 || status == 529) exchange.getResponseHeaders().add("retry-after", "0");
        sendJson(exchange, status, body);
    }

    private static final List<String[]> MODELS = List.of(
            new String[]{"claude-opus-5-5", "Claude Opus 5.5"},
            new String[]{"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"},
            new String[]{"claude-haiku-4-5-20251001", "Claude Haiku 4.5"});

    private static ObjectNode model(String id) {
        String name = MODELS.stream().filter(m -> m[0].equals(id)).map(m -> m[1]).findFirst().orElse(id);
        return NODES.objectNode().put("type", "model").put("id", id).put("display_name", name).put("created_at", "2025-01-01T00:00:00Z");
    }

    private static ObjectNode models() {
        ObjectNode list = NODES.objectNode();
        ArrayNode data = list.putArray("data");
        for (String[] m : MODELS) data.add(model(m[0]));
        list.put("has_more", false).put("first_id", MODELS.get(0)[0]).put("last_id", MODELS.get(MODELS.size() - 1)[0]);
        return list;
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
