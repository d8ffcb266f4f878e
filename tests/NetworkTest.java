import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Langfuse behind a company's network: an HTTPS receiver on a throwaway CA, a forward proxy (CONNECT, with and without
 * credentials), mutual TLS. Each failure is one clear log line naming the setting to use, the turns wait and go out
 * once the setting is right, every span once; nothing turns verification off.
 */
class NetworkTest {
    static final String TRANSCRIPT = "crafted__edge-cases.jsonl";
    TestCa ca;
    Path home;
    Path certificates;
    OtlpReceiver receiver;
    Path transcript;

    @BeforeEach
    void setUp() throws Exception {
        ca = new TestCa("litefuse test CA");
        home = TestSupport.tempHome();
        certificates = Files.createDirectories(home.resolve("certificates"));
        transcript = home.resolve("t.jsonl");
        Files.copy(TestSupport.transcript(TRANSCRIPT), transcript);
    }

    @AfterEach
    void tearDown() {
        if (receiver != null) receiver.close();
        TestSupport.deleteTree(home);
    }

    /** An HTTPS receiver at 127.0.0.1 on a certificate of the test CA (`client`: it asks for a client certificate). */
    OtlpReceiver httpsReceiver(TestCa.Issued server, boolean client) throws Exception {
        receiver = OtlpReceiver.https(server.context(client ? ca.certificate : null), client, "127.0.0.1");
        return receiver;
    }

    Map<String, String> env(String... settings) {
        Map<String, String> env = new HashMap<>(TestSupport.hookEnv(home, receiver.baseUrl()));
        for (int i = 0; i < settings.length; i += 2) env.put(settings[i], settings[i + 1]);
        return env;
    }

    String caFile() throws IOException {
        return ca.writeCertificate(certificates.resolve("ca.pem")).toString();
    }

    void assertEverySpanOnce() throws IOException {
        TestSupport.assertEverySpanOnce(receiver, TestSupport.expectedSpanKeys(transcript));
    }

    @Test
    void aPrivateCaIsAddedToTheTrustNotPutInItsPlace() throws Exception {
        httpsReceiver(ca.issue("localhost"), false);
        TestSupport.fireHook(env(), "s", transcript);
        String log = TestSupport.log(home);
        assertTrue(log.contains("127.0.0.1's certificate is signed by a CA this machine does not trust: set OTEL_EXPORTER_OTLP_CERTIFICATE"), log);
        assertTrue(log.contains("5 turn(s) kept and sent again on a later run"), log);
        assertEquals(0, receiver.storedSpans().size(), "verification stays on");
        // The CA as Claude Code users already give it to Node: the kept turns go out, once.
        TestSupport.fireHook(env("NODE_EXTRA_CA_CERTS", caFile()), "s", transcript);
        assertEverySpanOnce();
        litefuse_hook.Network network = litefuse_hook.Config.loadConfig(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile())).network();
        assertEquals(List.of("1 CA certificate(s) from OTEL_EXPORTER_OTLP_CERTIFICATE"), network.tls().added());
    }

    @Test
    void theJdksOwnTrustStaysBesideTheAddedCa() throws Exception {
        // A server on another CA, which only the JDK's trust store holds (javax.net.ssl.trustStore of the hook's JVM),
        // while OTEL_EXPORTER_OTLP_CERTIFICATE names this test's CA: the hook must trust both.
        TestCa jdkKnown = new TestCa("a CA the JDK trusts");
        receiver = OtlpReceiver.https(jdkKnown.issue("localhost").context(null), false, "127.0.0.1");
        java.security.KeyStore store = java.security.KeyStore.getInstance("PKCS12");
        store.load(null, null);
        store.setCertificateEntry("jdk-known", jdkKnown.certificate);
        Path trustStore = certificates.resolve("jdk-trust.p12");
        try (var out = Files.newOutputStream(trustStore)) {
            store.store(out, "changeit".toCharArray());
        }
        Map<String, String> env = env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile(), "JAVA_TOOL_OPTIONS",
                "-Djavax.net.ssl.trustStore=" + trustStore + " -Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12");
        assertEquals(0, TestSupport.runHookProcess(env, TestSupport.payload("s", transcript)).exitCode());
        assertEverySpanOnce();
    }

    @Test
    void aCaFileThatDoesNotParseIsOneLineAndTheJdkTrustStays() throws Exception {
        httpsReceiver(ca.issue("localhost"), false);
        Path broken = Files.writeString(certificates.resolve("broken.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        TestSupport.fireHook(env("OTEL_EXPORTER_OTLP_CERTIFICATE", broken.toString()), "s", transcript);
        String log = TestSupport.log(home);
        assertEquals(1, log.lines().filter(line -> line.contains("Ignoring OTEL_EXPORTER_OTLP_CERTIFICATE=" + broken)).count(), log);
        assertTrue(log.contains("signed by a CA this machine does not trust"), "no trust added, none taken away: " + log);
        assertEquals(0, receiver.storedSpans().size());
    }

    @Test
    void mutualTlsSendsTheClientCertificate() throws Exception {
        httpsReceiver(ca.issue("localhost"), true);
        Path[] client = ca.issue("hook-client").write(certificates, "client");
        TestSupport.fireHook(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile()), "s", transcript);
        assertEquals(0, receiver.storedSpans().size(), "no client certificate, no entry");
        // TLS 1.3 refuses a missing client certificate after the client has started its request: where the body went
        // out whole, for all the hook knows the server may have taken it, so it asks Langfuse before sending again
        // (here at once: no settle time); doctor names the cause (below).
        String log = TestSupport.log(home);
        assertTrue(log.contains("Export outcome unknown") || log.contains("Export failed"), log);
        TestSupport.fireHook(env("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", caFile(), "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", client[0].toString(),
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", client[1].toString(), "CC_LANGFUSE_UNKNOWN_SETTLE_MS", "0"), "s", transcript);
        assertEverySpanOnce();
    }

    @Test
    void aProxyWithCredentialsTunnelsHttpsAndTheCredentialsStayOutOfTheLog() throws Exception {
        httpsReceiver(ca.issue("localhost"), false);
        try (ConnectProxy proxy = new ConnectProxy("corp user:p@ss word", 0)) {
            // Without credentials: a 407, one line, the turns wait. In a process of its own, as Claude Code runs the hook.
            TestSupport.Run first = TestSupport.runHookProcess(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile(), "HTTPS_PROXY", proxy.url(null)),
                    TestSupport.payload("s", transcript));
            assertEquals(0, first.exitCode());
            String log = TestSupport.log(home);
            assertTrue(log.contains("the proxy http://127.0.0.1:" + proxy.port() + " refused to connect without credentials (HTTP 407): put user:password in HTTPS_PROXY"), log);
            assertEquals(0, receiver.storedSpans().size());
            // With them (URL-encoded, lower-case variable): the tunnel opens, the kept turns go out once.
            TestSupport.Run second = TestSupport.runHookProcess(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile(),
                    "https_proxy", proxy.url("corp%20user:p%40ss%20word")), TestSupport.payload("s", transcript));
            assertEquals(0, second.exitCode());
            assertTrue(TestSupport.log(home).contains("Sent "), TestSupport.log(home) + proxy.heads);
            assertEverySpanOnce();
            assertTrue(proxy.heads.stream().anyMatch(head -> head.startsWith("CONNECT 127.0.0.1:") && head.toLowerCase(java.util.Locale.ROOT).contains("proxy-authorization: basic ")),
                    proxy.heads.toString());
            String after = TestSupport.log(home) + second.stdout() + second.stderr();
            assertFalse(after.contains("p@ss") || after.contains("p%40ss") || after.contains("corp user") || after.contains("corp%20user"), after);
        }
    }

    @Test
    void aRefusedConnectAndAnUnreachableProxyAreOneLineEach() throws Exception {
        httpsReceiver(ca.issue("localhost"), false);
        int closed = OtlpReceiver.closedPort();
        TestSupport.fireHook(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile(), "HTTPS_PROXY", "http://127.0.0.1:" + closed), "s", transcript);
        String log = TestSupport.log(home);
        assertTrue(log.contains("Export failed: cannot reach the proxy http://127.0.0.1:" + closed + " (HTTPS_PROXY)"), log);
        assertTrue(log.contains("5 turn(s) kept and sent again on a later run"), log);
        try (ConnectProxy proxy = new ConnectProxy(null, 0)) {
            // NO_PROXY names the host: straight there, the proxy sees nothing.
            TestSupport.fireHook(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile(), "HTTPS_PROXY", proxy.url(null), "NO_PROXY", "example.com, 127.0.0.1"),
                    "s", transcript);
            assertEverySpanOnce();
            assertEquals(List.of(), proxy.heads);
        }
    }

    @Test
    void plainHttpGoesThroughHttpProxy() throws Exception {
        receiver = new OtlpReceiver();
        try (ConnectProxy proxy = new ConnectProxy(null, 0)) {
            TestSupport.fireHook(env("HTTP_PROXY", proxy.url(null), "HTTPS_PROXY", "http://127.0.0.1:" + OtlpReceiver.closedPort()), "s", transcript);
            assertEverySpanOnce();
            assertTrue(proxy.heads.stream().anyMatch(head -> head.startsWith("POST " + receiver.baseUrl() + "/api/public/otel/v1/traces ")), proxy.heads.toString());
        }
    }

    @Test
    void noProxyReadsLikeCurl() {
        List<String> noProxy = List.of("example.com", ".corp.internal", "10.0.0.0/8", "fd00::/8", "127.0.0.1");
        assertTrue(litefuse_hook.Network.bypasses(noProxy, "example.com"));
        assertTrue(litefuse_hook.Network.bypasses(noProxy, "langfuse.example.com"));
        assertFalse(litefuse_hook.Network.bypasses(noProxy, "notexample.com"));
        assertTrue(litefuse_hook.Network.bypasses(noProxy, "langfuse.corp.internal"));
        assertTrue(litefuse_hook.Network.bypasses(noProxy, "10.20.30.40"));
        assertFalse(litefuse_hook.Network.bypasses(noProxy, "11.0.0.1"));
        assertTrue(litefuse_hook.Network.bypasses(noProxy, "[fd12::1]"));
        assertTrue(litefuse_hook.Network.bypasses(noProxy, "127.0.0.1"));
        assertFalse(litefuse_hook.Network.bypasses(noProxy, "localhost"), "curl does not skip localhost unless told");
        assertTrue(litefuse_hook.Network.bypasses(List.of("*"), "cloud.langfuse.com"));
        List<String> problems = new java.util.ArrayList<>();
        litefuse_hook.Network network = litefuse_hook.Network.fromEnv(Map.of("HTTPS_PROXY", "socks5://proxy:1080", "HTTP_PROXY", "http://u:pw@proxy"), problems);
        assertEquals(List.of("Ignoring HTTPS_PROXY: a socks5:// proxy is not supported (use an http:// proxy)"), problems);
        assertNull(network.proxyFor(java.net.URI.create("https://cloud.langfuse.com")));
        assertEquals("http://****@proxy:1080", network.proxyFor(java.net.URI.create("http://langfuse.local")).shown());
    }

    @Test
    void installPassesTheNetworkSettingsOn() throws IOException {
        Map<String, String> block = litefuse_hook.ClaudeSettings.envBlock("pk-lf-1", "sk-lf-1", "https://langfuse.corp", Map.of(
                "https_proxy", "http://proxy:3128", "NO_PROXY", "localhost", "OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/corp/ca.pem",
                "NODE_EXTRA_CA_CERTS", "/etc/corp/bundle.pem", "OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem"));
        assertEquals("http://proxy:3128", block.get("HTTPS_PROXY"));
        assertEquals("localhost", block.get("NO_PROXY"));
        // Claude Code keeps OTEL_* variables from its hooks: install writes their CC_ form, which the hook reads first.
        assertEquals("/etc/corp/ca.pem", block.get("CC_OTEL_EXPORTER_OTLP_CERTIFICATE"));
        assertEquals("/etc/corp/bundle.pem", block.get("NODE_EXTRA_CA_CERTS"));
        assertEquals("/k.pem", block.get("CC_OTEL_EXPORTER_OTLP_CLIENT_KEY"));
        assertEquals("/c.pem", block.get("CC_OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"));
        assertEquals(List.of("1 CA certificate(s) from OTEL_EXPORTER_OTLP_CERTIFICATE"), litefuse_hook.Network.fromEnv(Map.of(
                "CC_OTEL_EXPORTER_OTLP_CERTIFICATE", caFile()), new java.util.ArrayList<>()).tls().added(), "the hook reads the CC_ form");
        assertTrue(litefuse_hook.Setting.HTTPS_PROXY.isSecret("http://u:p@proxy:3128"), "a proxy URL with a password: the settings file is kept 0600");
        assertFalse(litefuse_hook.Setting.HTTPS_PROXY.isSecret("http://proxy:3128"), "without one it is no secret");
        assertTrue(litefuse_hook.ClaudeSettings.holdsSecret(TestSupport.JSON.createObjectNode().set("env",
                TestSupport.JSON.createObjectNode().put("https_proxy", "http://u:p@proxy:3128"))));
    }

    /** What doctor says of each certificate problem, and the setting it points to. */
    @Test
    void doctorTellsEachCertificateProblemApart() throws Exception {
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        httpsReceiver(ca.issue("localhost"), false);
        cases.put("unknown CA", problem(env()));
        receiver.close();
        httpsReceiver(ca.issue("wrong.example"), false);
        cases.put("wrong host", problem(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile())));
        receiver.close();
        httpsReceiver(ca.issue("localhost", Instant.now().minus(Duration.ofDays(3)), Instant.now().minus(Duration.ofDays(1))), false);
        cases.put("expired", problem(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile())));
        receiver.close();
        httpsReceiver(ca.issue("localhost"), true);
        Path[] stranger = new TestCa("another CA").issue("hook-client").write(certificates, "stranger");
        cases.put("client certificate refused", problem(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile(),
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", stranger[0].toString(), "OTEL_EXPORTER_OTLP_CLIENT_KEY", stranger[1].toString())));
        assertTrue(cases.get("unknown CA").contains("signed by a CA this machine does not trust: set OTEL_EXPORTER_OTLP_CERTIFICATE"), cases.toString());
        assertTrue(cases.get("wrong host").contains("certificate is for another host name"), cases.toString());
        assertTrue(cases.get("expired").contains("certificate has expired"), cases.toString());
        assertTrue(cases.get("client certificate refused").contains("refused the client certificate"), cases.toString());
        // And the report shows the way: the proxy (password hidden) and what was added to the trust.
        TestSupport.Run doctor = TestSupport.runCliProcess(env("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile(), "HTTPS_PROXY", "http://u:pw-hidden-42@127.0.0.1:1"),
                new byte[0], "doctor", "--dir", home.toString());
        assertTrue(doctor.stdout().contains("ok    Proxy: to 127.0.0.1 through http://****@127.0.0.1:1 (HTTPS_PROXY)"), doctor.stdout());
        assertTrue(doctor.stdout().contains("ok    TLS: the JDK's trust, and 1 CA certificate(s) from OTEL_EXPORTER_OTLP_CERTIFICATE"), doctor.stdout());
        assertTrue(doctor.stdout().contains("cannot reach the proxy http://****@127.0.0.1:1 (HTTPS_PROXY)"), doctor.stdout());
        assertFalse(doctor.stdout().contains("pw-hidden-42"), doctor.stdout());
    }

    private static String problem(Map<String, String> env) {
        litefuse_hook.LangfuseApi.CredentialCheck check = litefuse_hook.LangfuseApi.checkCredentials(litefuse_hook.Config.loadConfig(env));
        assertFalse(check.ok());
        return check.problem();
    }
}
