import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.zip.GZIPInputStream;

/**
 * Loopback OTLP/HTTP receiver for the benchmark: answers every POST like Langfuse (200, body "{}") and counts
 * the spans (and root spans) in each request by walking the protobuf wire format of ExportTraceServiceRequest
 * (resource_spans=1 -> scope_spans=2 -> spans=2; a span without parent_span_id=4 is a root), without building
 * objects, so it takes little CPU away from the exporter on a 2-core machine.
 *
 * GET /bench/stats  -> {"requests":..,"bad_requests":..,"spans":..,"roots":..,"body_bytes":..,"window_ms":..}
 *                      window_ms: from the start of the first request to the end of the last response
 * GET /bench/reset  -> zero the counters;  GET /bench/stop -> exit.
 *
 * Usage: java BenchReceiver PORT_FILE MAX_SECONDS [KEYSTORE PASSWORD]   (binds 127.0.0.1 on a free port, writes it
 * to PORT_FILE, and exits by itself after MAX_SECONDS at the latest; with a PKCS12 key, also serves HTTPS on another
 * free port, written to PORT_FILE.https, after PORT_FILE).
 */
public final class BenchReceiver {
    private static final Object LOCK = new Object();
    private static long requests, badRequests, spans, roots, bodyBytes, firstStart = -1, lastEnd = -1;

    public static void main(String[] args) throws Exception {
        Path portFile = Path.of(args[0]);
        long maxSeconds = Long.parseLong(args[1]);
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        ExecutorService pool = Executors.newFixedThreadPool(4, r -> {
            Thread t = new Thread(r, "receiver");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(pool);
        server.createContext("/", BenchReceiver::handle);
        server.start();
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(maxSeconds * 1000);
            } catch (InterruptedException ignored) {
            }
            System.err.println("BenchReceiver: lifetime of " + maxSeconds + "s reached, exiting");
            Runtime.getRuntime().halt(0);
        }, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
        if (args.length > 3) {
            // The same receiver over HTTPS on the key in args[2] (PKCS12, password args[3]); its port in PORT_FILE.https.
            com.sun.net.httpserver.HttpsServer https = com.sun.net.httpserver.HttpsServer.create(
                    new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
            java.security.KeyStore store = java.security.KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(Path.of(args[2]))) {
                store.load(in, args[3].toCharArray());
            }
            javax.net.ssl.KeyManagerFactory keys = javax.net.ssl.KeyManagerFactory.getInstance(javax.net.ssl.KeyManagerFactory.getDefaultAlgorithm());
            keys.init(store, args[3].toCharArray());
            javax.net.ssl.SSLContext tls = javax.net.ssl.SSLContext.getInstance("TLS");
            tls.init(keys.getKeyManagers(), null, null);
            https.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(tls));
            https.setExecutor(pool);
            https.createContext("/", BenchReceiver::handle);
            https.start();
            Path httpsTmp = portFile.resolveSibling(portFile.getFileName() + ".https.tmp");
            Files.writeString(httpsTmp, Integer.toString(https.getAddress().getPort()));
            Files.move(httpsTmp, portFile.resolveSibling(portFile.getFileName() + ".https"), StandardCopyOption.ATOMIC_MOVE,
                    StandardCopyOption.REPLACE_EXISTING);
        }
        Path tmp = portFile.resolveSibling(portFile.getFileName() + ".tmp");
        Files.writeString(tmp, Integer.toString(server.getAddress().getPort()));
        Files.move(tmp, portFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Thread.currentThread().join(); // the watchdog or /bench/stop ends the process
    }

    private static void handle(HttpExchange exchange) throws IOException {
        long start = System.nanoTime();
        String path = exchange.getRequestURI().getPath();
        byte[] body;
        try (InputStream in = exchange.getRequestBody()) {
            body = in.readAllBytes();
        }
        if (path.startsWith("/bench/")) {
            control(exchange, path);
            return;
        }
        long[] counts = null;
        try {
            byte[] raw = body;
            if ("gzip".equalsIgnoreCase(exchange.getRequestHeaders().getFirst("Content-Encoding"))) {
                raw = new GZIPInputStream(new ByteArrayInputStream(body)).readAllBytes();
            }
            counts = countSpans(raw);
        } catch (IOException | RuntimeException e) {
            counts = null;
        }
        int status = counts == null ? 400 : 200;
        byte[] response = (status == 200 ? "{}" : "{\"message\":\"bad request\"}").getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, response.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(response);
        }
        long end = System.nanoTime();
        synchronized (LOCK) {
            requests++;
            bodyBytes += body.length;
            if (counts == null) badRequests++;
            else {
                spans += counts[0];
                roots += counts[1];
            }
            if (firstStart < 0 || start < firstStart) firstStart = start;
            if (end > lastEnd) lastEnd = end;
        }
    }

    private static void control(HttpExchange exchange, String path) throws IOException {
        String answer;
        synchronized (LOCK) {
            switch (path) {
                case "/bench/reset" -> {
                    requests = badRequests = spans = roots = bodyBytes = 0;
                    firstStart = lastEnd = -1;
                    answer = "{}";
                }
                case "/bench/stats", "/bench/stop" -> answer = String.format(
                        "{\"requests\":%d,\"bad_requests\":%d,\"spans\":%d,\"roots\":%d,\"body_bytes\":%d,\"window_ms\":%.3f}",
                        requests, badRequests, spans, roots, bodyBytes,
                        firstStart < 0 ? 0.0 : (lastEnd - firstStart) / 1e6);
                default -> answer = "{\"message\":\"unknown\"}";
            }
        }
        byte[] bytes = answer.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(200, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
        if (path.equals("/bench/stop")) {
            new Thread(() -> Runtime.getRuntime().halt(0)).start();
        }
    }

    // ---- protobuf wire walking ----

    /** {spans, roots} of an ExportTraceServiceRequest. */
    static long[] countSpans(byte[] b) {
        long[] counts = new long[2];
        Reader request = new Reader(b, 0, b.length);
        while (request.more()) {
            int tag = (int) request.varint();
            if (tag == ((1 << 3) | 2)) { // resource_spans
                Reader resourceSpans = request.sub();
                while (resourceSpans.more()) {
                    int t2 = (int) resourceSpans.varint();
                    if (t2 == ((2 << 3) | 2)) { // scope_spans
                        Reader scopeSpans = resourceSpans.sub();
                        while (scopeSpans.more()) {
                            int t3 = (int) scopeSpans.varint();
                            if (t3 == ((2 << 3) | 2)) { // span
                                Reader span = scopeSpans.sub();
                                counts[0]++;
                                boolean hasParent = false;
                                while (span.more()) {
                                    int t4 = (int) span.varint();
                                    if (t4 == ((4 << 3) | 2)) {
                                        hasParent |= span.sub().length() > 0;
                                    } else {
                                        span.skip(t4 & 7);
                                    }
                                }
                                if (!hasParent) counts[1]++;
                            } else {
                                scopeSpans.skip(t3 & 7);
                            }
                        }
                    } else {
                        resourceSpans.skip(t2 & 7);
                    }
                }
            } else {
                request.skip(tag & 7);
            }
        }
        return counts;
    }

    static final class Reader {
        final byte[] b;
        int pos;
        final int end;

        Reader(byte[] b, int pos, int end) {
            this.b = b;
            this.pos = pos;
            this.end = end;
        }

        boolean more() {
            return pos < end;
        }

        int length() {
            return end - pos;
        }

        long varint() {
            long value = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) throw new IllegalArgumentException("truncated varint");
                byte x = b[pos++];
                value |= (long) (x & 0x7f) << shift;
                if (x >= 0) return value;
            }
            throw new IllegalArgumentException("bad varint");
        }

        Reader sub() {
            int len = (int) varint();
            if (len < 0 || pos + len > end) throw new IllegalArgumentException("bad length");
            Reader r = new Reader(b, pos, pos + len);
            pos += len;
            return r;
        }

        void skip(int wireType) {
            switch (wireType) {
                case 0 -> varint();
                case 1 -> pos += 8;
                case 2 -> sub();
                case 5 -> pos += 4;
                default -> throw new IllegalArgumentException("wire type " + wireType);
            }
            if (pos > end) throw new IllegalArgumentException("truncated field");
        }
    }
}
