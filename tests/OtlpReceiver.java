import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.stream.Collectors;
import java.util.zip.GZIPInputStream;

/**
 * A loopback OTLP/HTTP receiver that answers like Langfuse's /api/public/otel/v1/traces and decodes every request
 * with the official OTLP protobuf classes, so tests assert on what really crossed the wire.
 */
public final class OtlpReceiver implements AutoCloseable {

    /** One decoded request: the path, the headers (lower-case names) and the spans in it. */
    public record Request(String path, Map<String, String> headers, int status, List<ReceivedSpan> spans) {
    }

    /** One span as Langfuse would read it: hex ids, nanos, scope, and attributes as plain Java values. */
    public record ReceivedSpan(String traceId, String spanId, String parentSpanId, String name, long startNanos,
                               long endNanos, String scope, Map<String, Object> attributes,
                               Map<String, Object> resource) {
        public String attr(String key) {
            Object value = attributes.get(key);
            return value == null ? null : value.toString();
        }

        public boolean isRoot() {
            return parentSpanId.isEmpty();
        }
    }

    /** How the receiver answers one request: a status, an optional Retry-After, a delay, or never. */
    public record Behaviour(int status, String retryAfter, long delayMillis, boolean hangs, boolean stores) {
        public static Behaviour ok() {
            return new Behaviour(200, null, 0, false, true);
        }

        public static Behaviour status(int status) {
            return new Behaviour(status, null, 0, false, status == 200);
        }

        public static Behaviour retryAfter(int status, String retryAfter) {
            return new Behaviour(status, retryAfter, 0, false, false);
        }

        public static Behaviour slow(long delayMillis) {
            return new Behaviour(200, null, delayMillis, false, true);
        }

        /** Stores the request, then answers `status`: a gateway that timed out while the server behind it took the batch. */
        public static Behaviour storesThenFails(int status) {
            return new Behaviour(status, null, 0, false, true);
        }

        /** Stores the request, then never answers. */
        public static Behaviour never() {
            return new Behaviour(0, null, 0, true, true);
        }

        /** Never answers and stores nothing: the request got lost on the way in. */
        public static Behaviour lost() {
            return new Behaviour(0, null, 0, true, false);
        }
    }

    private final HttpServer server;
    private final List<Request> requests = new CopyOnWriteArrayList<>();
    private final java.util.concurrent.ConcurrentLinkedQueue<Behaviour> script = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
    private volatile Behaviour standing = Behaviour.ok();

    public OtlpReceiver() throws IOException {
        this(HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0), "http://127.0.0.1");
    }

    private final String origin;

    private OtlpReceiver(HttpServer server, String origin) {
        this.server = server;
        this.origin = origin;
        server.createContext("/", this::handle);
        server.setExecutor(Executors.newCachedThreadPool());
        server.start();
    }

    /**
     * The same receiver over HTTPS, on the certificate `tls` holds; with `clientCertificate`, only a client that shows a
     * certificate its trust accepts gets through (mutual TLS). Its base URL names `host` (localhost: the name the
     * certificate is for), on loopback.
     */
    public static OtlpReceiver https(javax.net.ssl.SSLContext tls, boolean clientCertificate, String host) throws IOException {
        com.sun.net.httpserver.HttpsServer server = com.sun.net.httpserver.HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(tls) {
            @Override
            public void configure(com.sun.net.httpserver.HttpsParameters params) {
                javax.net.ssl.SSLParameters parameters = tls.getDefaultSSLParameters();
                parameters.setNeedClientAuth(clientCertificate);
                params.setSSLParameters(parameters);
            }
        });
        return new OtlpReceiver(server, "https://" + host);
    }

    /** The base URL to give the hook as LANGFUSE_BASE_URL. */
    public String baseUrl() {
        return origin + ":" + server.getAddress().getPort();
    }

    /** Makes the next requests answer with this HTTP status (200 accepts and records the spans). */
    public void respondWith(int httpStatus) {
        respondWith(Behaviour.status(httpStatus));
    }

    /** How every request is answered from now on (after any scripted ones). */
    public void respondWith(Behaviour behaviour) {
        standing = behaviour;
    }

    private volatile Runnable onBody = () -> { };

    /** Runs `check` as each export's body arrives, before it is stored or answered. */
    public void onBody(Runnable check) {
        onBody = check;
    }

    /** Answers the next requests with these behaviours, one each, before the standing one. */
    public void script(Behaviour... next) {
        script.addAll(List.of(next));
    }

    private final List<ReceivedSpan> stored = new CopyOnWriteArrayList<>();
    private final List<Request> lookups = new CopyOnWriteArrayList<>();
    private volatile boolean observationsApi = true;

    private volatile boolean hiddenFromObservations;

    /** Stored spans that the v2 observations API does not list yet: a server that took them on its slower path. */
    public void hideFromObservations(boolean hidden) {
        hiddenFromObservations = hidden;
    }

    /** Without it the receiver answers 404 to GET /api/public/v2/observations, as servers before Langfuse v4 do. */
    public void observationsApi(boolean available) {
        observationsApi = available;
    }

    /**
     * Langfuse v4's GET /api/public/v2/observations over the stored spans: traceId, fromStartTime / toStartTime
     * (inclusive) and limit, answering {"data": [{"id", "traceId", "startTime", "parentObservationId"}], "meta": {}}.
     */
    private void handleObservations(HttpExchange exchange, Map<String, String> headers) throws IOException {
        lookups.add(new Request(exchange.getRequestURI().getPath() + "?" + exchange.getRequestURI().getRawQuery(), headers,
                observationsApi ? 200 : 404, List.of()));
        Map<String, String> query = new LinkedHashMap<>();
        for (String pair : String.valueOf(exchange.getRequestURI().getRawQuery()).split("&")) {
            int equals = pair.indexOf('=');
            if (equals > 0) query.put(pair.substring(0, equals), java.net.URLDecoder.decode(pair.substring(equals + 1), StandardCharsets.UTF_8));
        }
        String auth = exchange.getRequestHeaders().getFirst("Authorization");
        int status = !observationsApi ? 404 : auth == null || !auth.startsWith("Basic ") ? 401 : 200;
        StringBuilder body = new StringBuilder();
        if (status == 200) {
            long from = query.containsKey("fromStartTime") ? nanos(query.get("fromStartTime")) : Long.MIN_VALUE;
            long to = query.containsKey("toStartTime") ? nanos(query.get("toStartTime")) : Long.MAX_VALUE;
            int limit = Integer.parseInt(query.getOrDefault("limit", "50"));
            List<String> items = stored.stream()
                    .filter(span -> !hiddenFromObservations && span.traceId().equals(query.get("traceId")))
                    .filter(span -> span.startNanos() / 1_000_000 * 1_000_000 >= from && span.startNanos() / 1_000_000 * 1_000_000 <= to)
                    .map(span -> "{\"id\":\"" + span.spanId() + "\",\"traceId\":\"" + span.traceId() + "\",\"startTime\":\""
                            + java.time.Instant.ofEpochSecond(0, span.startNanos()) + "\",\"parentObservationId\":"
                            + (span.isRoot() ? "null" : "\"" + span.parentSpanId() + "\"") + "}")
                    .distinct().limit(limit).toList();
            body.append("{\"data\":[").append(String.join(",", items)).append("],\"meta\":{}}");
        } else {
            body.append("{\"message\":\"not found\"}");
        }
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    static long nanos(String isoInstant) {
        java.time.Instant instant = java.time.Instant.parse(isoInstant);
        return instant.getEpochSecond() * 1_000_000_000L + instant.getNano();
    }

    /** Every span the receiver stored (a span sent twice is here twice): what a Langfuse v4 user would see. */
    public List<ReceivedSpan> storedSpans() {
        return List.copyOf(stored);
    }

    /** How many stored spans are extra copies of a span stored before (same trace and span id). */
    public long spansReceivedTwice() {
        Set<String> seen = new java.util.HashSet<>();
        return stored.stream().filter(span -> !seen.add(span.traceId() + "/" + span.spanId())).count();
    }

    /** The GET requests to Langfuse's API (projects, v2 observations), with their headers. */
    public List<Request> lookups() {
        return List.copyOf(lookups);
    }

    /** Only these keys pass GET /api/public/projects (null: any Basic credentials do). */
    private volatile String acceptedAuthorization;

    public void acceptOnly(String publicKey, String secretKey) {
        acceptedAuthorization = "Basic " + java.util.Base64.getEncoder().encodeToString((publicKey + ":" + secretKey).getBytes(StandardCharsets.UTF_8));
    }

    /** Langfuse's project endpoint, as doctor calls it with the keys. */
    private void handleProjects(HttpExchange exchange) throws IOException {
        String auth = exchange.getRequestHeaders().getFirst("Authorization");
        boolean ok = auth != null && auth.startsWith("Basic ") && (acceptedAuthorization == null || acceptedAuthorization.equals(auth));
        byte[] body = (ok ? "{\"data\":[{\"id\":\"proj-123\",\"name\":\"test-project\"}]}" : "{\"message\":\"Invalid credentials\"}")
                .getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(ok ? 200 : 401, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    private void handle(HttpExchange exchange) throws IOException {
        Map<String, String> headers = new LinkedHashMap<>();
        exchange.getRequestHeaders().forEach((name, values) -> headers.put(name.toLowerCase(), String.join(",", values)));
        if (exchange.getRequestMethod().equals("GET") && exchange.getRequestURI().getPath().equals("/api/public/projects")) {
            lookups.add(new Request(exchange.getRequestURI().getPath(), headers, 200, List.of()));
            handleProjects(exchange);
            return;
        }
        if (exchange.getRequestMethod().equals("GET") && exchange.getRequestURI().getPath().equals("/api/public/v2/observations")) {
            handleObservations(exchange, headers);
            return;
        }
        byte[] body;
        try (InputStream in = exchange.getRequestBody()) {
            body = in.readAllBytes();
        }
        onBody.run();
        Behaviour behaviour = script.poll();
        if (behaviour == null) behaviour = standing;
        int answer = behaviour.status();
        List<ReceivedSpan> spans = List.of();
        try {
            if ("gzip".equalsIgnoreCase(headers.get("content-encoding"))) {
                body = new GZIPInputStream(new ByteArrayInputStream(body)).readAllBytes();
            }
            spans = decode(ExportTraceServiceRequest.parseFrom(body));
        } catch (IOException | RuntimeException e) {
            answer = 400;
        }
        // Like Langfuse, a request whose body arrived whole is stored before it is answered (or never answered).
        boolean stores = behaviour.stores() && answer != 400;
        if (stores) stored.addAll(spans);
        if (behaviour.hangs()) {
            requests.add(new Request(exchange.getRequestURI().getPath(), headers, 0, spans));
            try {
                closed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            exchange.close();
            return;
        }
        if (behaviour.delayMillis() > 0) {
            try {
                Thread.sleep(behaviour.delayMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        requests.add(new Request(exchange.getRequestURI().getPath(), headers, answer, spans));
        byte[] response = (answer == 200 ? "{}" : "{\"message\":\"error " + answer + "\"}").getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        if (behaviour.retryAfter() != null) exchange.getResponseHeaders().add("Retry-After", behaviour.retryAfter());
        exchange.sendResponseHeaders(answer, response.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(response);
        }
    }

    static List<ReceivedSpan> decode(ExportTraceServiceRequest request) {
        List<ReceivedSpan> spans = new ArrayList<>();
        HexFormat hex = HexFormat.of();
        for (ResourceSpans resourceSpans : request.getResourceSpansList()) {
            Map<String, Object> resource = toMap(resourceSpans.getResource().getAttributesList());
            for (ScopeSpans scopeSpans : resourceSpans.getScopeSpansList()) {
                for (io.opentelemetry.proto.trace.v1.Span span : scopeSpans.getSpansList()) {
                    spans.add(new ReceivedSpan(hex.formatHex(span.getTraceId().toByteArray()),
                            hex.formatHex(span.getSpanId().toByteArray()),
                            hex.formatHex(span.getParentSpanId().toByteArray()), span.getName(),
                            span.getStartTimeUnixNano(), span.getEndTimeUnixNano(), scopeSpans.getScope().getName(),
                            toMap(span.getAttributesList()), resource));
                }
            }
        }
        return spans;
    }

    static Map<String, Object> toMap(List<KeyValue> attributes) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (KeyValue kv : attributes) map.put(kv.getKey(), toJava(kv.getValue()));
        return map;
    }

    static Object toJava(AnyValue value) {
        return switch (value.getValueCase()) {
            case STRING_VALUE -> value.getStringValue();
            case BOOL_VALUE -> value.getBoolValue();
            case INT_VALUE -> value.getIntValue();
            case DOUBLE_VALUE -> value.getDoubleValue();
            case ARRAY_VALUE -> value.getArrayValue().getValuesList().stream().map(OtlpReceiver::toJava).collect(Collectors.toList());
            default -> value.toString();
        };
    }

    public List<Request> requests() {
        return List.copyOf(requests);
    }

    /** Spans of the requests the receiver accepted (answered 200). */
    public List<ReceivedSpan> acceptedSpans() {
        return requests.stream().filter(r -> r.status() == 200).flatMap(r -> r.spans().stream()).collect(Collectors.toList());
    }

    /** Root spans accepted, one per trace sent; a trace sent twice shows up twice here. */
    public List<ReceivedSpan> acceptedRoots() {
        return acceptedSpans().stream().filter(ReceivedSpan::isRoot).collect(Collectors.toList());
    }

    public Set<String> acceptedTraceIds() {
        return acceptedRoots().stream().map(ReceivedSpan::traceId).collect(Collectors.toCollection(TreeSet::new));
    }

    public void clear() {
        requests.clear();
        lookups.clear();
    }

    @Override
    public void close() {
        closed.countDown();
        server.stop(0);
    }

    /** A loopback port with nothing listening: a server that is down. */
    public static int closedPort() throws IOException {
        try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
