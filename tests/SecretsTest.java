import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Credentials are masked before export (on by default, one switch off, user patterns added). */
public class SecretsTest extends ReceiverFixture {
    static final litefuse_hook.Masker MASKER = litefuse_hook.Masker.fromEnv(null, null, new java.util.ArrayList<>());
    static final List<String> SECRETS = List.of(
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "sk-proj-AbCdEfGhIjKlMnOpQrStUv1234",
            "sk-lf-1234abcd-5678-efgh-ijkl-9876mnopqrst",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
            "eyJhbGciOiJIUzI1NiJ9.bearer-token-value",
            "hunter2-db-password",
            "s3cr3t-value-from-env",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7");

    static final String LEAKY = String.join("\n",
            "export ANTHROPIC_API_KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "openai = \"sk-proj-AbCdEfGhIjKlMnOpQrStUv1234\"",
            "LANGFUSE_SECRET_KEY=sk-lf-1234abcd-5678-efgh-ijkl-9876mnopqrst",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "token: ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 and github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "slack xoxb-1234567890-0987654321-AbCdEfGhIjKl",
            "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.bearer-token-value' https://api.example.com",
            "DB_PASSWORD=hunter2-db-password",
            "  MY_APP_SECRET = s3cr3t-value-from-env",
            "-----BEGIN PRIVATE KEY-----",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
            "-----END PRIVATE KEY-----",
            "primary_key = 1",
            "the word sk-short and the key idea stay");

    @Test
    void standardPatternsMaskEveryKindAndLeaveTheRest() {
        String masked = MASKER.text(LEAKY);
        for (String secret : SECRETS) assertFalse(masked.contains(secret), secret + " in\n" + masked);
        assertTrue(masked.contains("export ANTHROPIC_API_KEY=[REDACTED]"), masked);
        assertTrue(masked.contains("Authorization: Bearer [REDACTED]"), masked);
        assertTrue(masked.contains("DB_PASSWORD=[REDACTED]"), masked);
        assertTrue(masked.contains("primary_key = 1"), "ordinary code stays");
        assertTrue(masked.contains("the word sk-short and the key idea stay"), masked);
        assertEquals(masked, MASKER.text(masked), "masking is idempotent");
    }

    Path leakyTranscript() throws IOException {
        // A prompt, a tool input and a tool output that all carry credentials.
        String json = TestSupport.JSON.writeValueAsString(LEAKY);
        String text = Files.readString(TestSupport.transcript("crafted__edge-cases.jsonl"))
                .replace("\"Summarise README.md\"", json)
                .replace("\"file_path\":\"/tmp/demo/README.md\"", "\"file_path\":\"/tmp/.env\",\"note\":" + json)
                .replace("\"# Demo\\nA demo project.\"", json);
        Path transcript = home.resolve("leaky.jsonl");
        Files.writeString(transcript, text);
        return transcript;
    }

    @Test
    void nothingSecretReachesTheWire() throws IOException {
        Path transcript = leakyTranscript();
        TestSupport.fireHook(TestSupport.hookEnv(home, receiver.baseUrl()), "s", transcript);
        assertEquals(5, receiver.acceptedRoots().size());
        StringBuilder everything = new StringBuilder();
        receiver.acceptedSpans().forEach(span -> everything.append(span.attributes()).append('\n'));
        for (String secret : SECRETS) assertFalse(everything.toString().contains(secret), secret);
        assertTrue(everything.toString().contains("[REDACTED]"));
        for (Path file : List.of(TestSupport.layout(home).log())) {
            assertFalse(Files.readString(file).contains(TestSupport.SECRET_KEY));
        }
    }

    @Test
    void maskingCanBeTurnedOffAndExtended() throws IOException {
        Path transcript = leakyTranscript();
        litefuse_hook.TraceModel.TraceRecord unmasked = litefuse_hook.Pipeline.replayFile(transcript,
                litefuse_hook.Traces.TraceContext.of(TestSupport.options("u", "CC_LANGFUSE_MASK_SECRETS", "false"), "s", "t")).get(4);
        assertTrue(unmasked.header().input().contains("AKIAIOSFODNN7EXAMPLE"), "CC_LANGFUSE_MASK_SECRETS=false sends text as it is");

        Map<String, String> env = new HashMap<>(TestSupport.hookEnv(home, receiver.baseUrl()));
        env.put("CC_LANGFUSE_MASK_PATTERNS", "ACME-[0-9]{6}\n(?<secret>internal\\.example\\.com)\n[unclosed");
        litefuse_hook.Config config = litefuse_hook.Config.loadConfig(env);
        assertEquals("Ticket [REDACTED] on [REDACTED]", config.trace().masker().text("Ticket ACME-123456 on internal.example.com"));
        assertTrue(config.trace().masker().standard(), "extra patterns come on top of the standard ones");
        assertEquals(2, config.trace().masker().extra().size(), "the invalid regex is ignored");
    }
}
