import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A forward proxy on loopback, as companies run them: CONNECT tunnels (HTTPS) and absolute-URI requests (plain HTTP),
 * optionally asking for Basic credentials (407 with Proxy-Authenticate) and delaying each way by `delayMillis` (a
 * round trip's worth of distance). It records the head of every request it got.
 */
final class ConnectProxy implements AutoCloseable {
    private final ServerSocket server;
    private final String credentials;
    private final long delayMillis;
    final List<String> heads = new CopyOnWriteArrayList<>();

    /** `credentials` user:password the proxy asks for (null: none); `delayMillis` added before each forwarded chunk. */
    ConnectProxy(String credentials, long delayMillis) throws IOException {
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        this.credentials = credentials;
        this.delayMillis = delayMillis;
        Thread acceptor = new Thread(this::accept, "connect-proxy");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /**
     * The bench's distance to the receiver (bench/run.sh compiles this file): java ConnectProxy PORT_FILE DELAY_MS
     * MAX_SECONDS, each round trip through it 2 x DELAY_MS longer (this kernel has no netem).
     */
    public static void main(String[] args) throws Exception {
        ConnectProxy proxy = new ConnectProxy(null, Long.parseLong(args[1]));
        java.nio.file.Path portFile = java.nio.file.Path.of(args[0]);
        java.nio.file.Path tmp = portFile.resolveSibling(portFile.getFileName() + ".tmp");
        java.nio.file.Files.writeString(tmp, Integer.toString(proxy.port()));
        java.nio.file.Files.move(tmp, portFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        Thread.sleep(Long.parseLong(args[2]) * 1000);
        Runtime.getRuntime().halt(0);
    }

    int port() {
        return server.getLocalPort();
    }

    /** The proxy's URL, with `userInfo` (user:password, URL-encoded) when not null. */
    String url(String userInfo) {
        return "http://" + (userInfo == null ? "" : userInfo + "@") + "127.0.0.1:" + port();
    }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket client = server.accept();
                Thread worker = new Thread(() -> serve(client), "connect-proxy-client");
                worker.setDaemon(true);
                worker.start();
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket client) {
        try (client) {
            InputStream in = client.getInputStream();
            OutputStream out = client.getOutputStream();
            String head = readHead(in);
            if (head == null) return;
            heads.add(head);
            String[] requestLine = head.substring(0, head.indexOf("\r\n")).split(" ");
            // Header names are case-insensitive (the JDK writes Proxy-authorization).
            if (credentials != null && !head.toLowerCase(java.util.Locale.ROOT).contains("proxy-authorization: basic "
                    + java.util.Base64.getEncoder().encodeToString(credentials.getBytes(StandardCharsets.UTF_8)).toLowerCase(java.util.Locale.ROOT))) {
                out.write(("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n"
                        + "Content-Length: 0\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.flush();
                return;
            }
            if (requestLine[0].equals("CONNECT")) {
                String[] target = requestLine[1].split(":");
                try (Socket upstream = new Socket(target[0], Integer.parseInt(target[1]))) {
                    upstream.setTcpNoDelay(true);
                    client.setTcpNoDelay(true);
                    out.write("HTTP/1.1 200 Connection established\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                    pipeBothWays(client, upstream);
                }
            } else {
                java.net.URI uri = java.net.URI.create(requestLine[1]);
                try (Socket upstream = new Socket(uri.getHost(), uri.getPort())) {
                    String forwarded = requestLine[0] + " " + uri.getRawPath() + (uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery())
                            + " " + requestLine[2] + head.substring(head.indexOf("\r\n"));
                    upstream.getOutputStream().write(forwarded.getBytes(StandardCharsets.ISO_8859_1));
                    pipeBothWays(client, upstream);
                }
            }
        } catch (IOException | RuntimeException e) {
            // The client or the target went away: the tunnel ends.
        }
    }

    private void pipeBothWays(Socket client, Socket upstream) throws IOException {
        Thread up = new Thread(() -> pipe(client, upstream), "connect-proxy-up");
        up.setDaemon(true);
        up.start();
        pipe(upstream, client);
    }

    private void pipe(Socket from, Socket to) {
        byte[] buffer = new byte[16 * 1024];
        try {
            InputStream in = from.getInputStream();
            OutputStream out = to.getOutputStream();
            for (int n; (n = in.read(buffer)) >= 0; ) {
                if (delayMillis > 0) Thread.sleep(delayMillis);
                out.write(buffer, 0, n);
                out.flush();
            }
            to.shutdownOutput();
        } catch (IOException | InterruptedException e) {
            // One side closed.
        }
    }

    /** The request line and headers, up to the blank line; null when the client sent nothing. */
    private static String readHead(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        for (int b; (b = in.read()) >= 0; ) {
            head.write(b);
            matched = (b == "\r\n\r\n".charAt(matched)) ? matched + 1 : (b == '\r' ? 1 : 0);
            if (matched == 4) return head.toString(StandardCharsets.ISO_8859_1);
        }
        return null;
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
