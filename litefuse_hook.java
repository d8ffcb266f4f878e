///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//DEPS io.opentelemetry:opentelemetry-bom:1.67.0@pom
//DEPS io.opentelemetry:opentelemetry-sdk
//DEPS io.opentelemetry:opentelemetry-exporter-otlp
//DEPS com.fasterxml.jackson.core:jackson-databind:2.22.4
//DEPS info.picocli:picocli:4.7.7
//COMPILE_OPTIONS -encoding UTF-8 -XDstringConcat=inline
// Serial GC and less inlining: on two cores C2 compiles a big replay's hot code for seconds, a core it takes from the work.
//RUNTIME_OPTIONS -XX:+UseSerialGC -XX:FreqInlineSize=100 -XX:InlineSmallCode=1000
//DESCRIPTION Claude Code -> Langfuse / Litefuse hook (Stop and SessionEnd).
//DESCRIPTION Reads only the new part of a Claude Code transcript, groups rows into user turns and sends one
//DESCRIPTION trace per turn over OpenTelemetry. Run without arguments as the hook; `replay FILE` shows the traces.

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.common.ComponentLoader;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanBuilder;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceState;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.common.export.Compressor;
import io.opentelemetry.sdk.common.export.HttpSender;
import io.opentelemetry.sdk.common.export.HttpSenderConfig;
import io.opentelemetry.sdk.common.export.HttpSenderProvider;
import io.opentelemetry.sdk.common.export.MemoryMode;
import io.opentelemetry.sdk.common.export.MessageWriter;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.IdGenerator;
import io.opentelemetry.sdk.trace.ReadWriteSpan;
import io.opentelemetry.sdk.trace.ReadableSpan;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.SpanProcessor;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.logging.Handler;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

@Command(name = "litefuse-hook", mixinStandardHelpOptions = true, version = "litefuse-hook " + litefuse_hook.VERSION,
        subcommands = {litefuse_hook.Replay.class, litefuse_hook.Backfill.class, litefuse_hook.Install.class, litefuse_hook.Uninstall.class,
                litefuse_hook.Doctor.class, litefuse_hook.Last.class},
        description = {"Claude Code hook (Stop and SessionEnd) that sends one Langfuse trace per user turn.",
                "Without a subcommand it runs as the hook: it reads the hook payload on stdin and always exits 0."})
public class litefuse_hook implements Callable<Integer> {

    /** The environment the commands read (the process's; tests hand in their own). */
    final Map<String, String> environment;

    litefuse_hook() {
        this(System.getenv());
    }

    litefuse_hook(Map<String, String> environment) {
        this.environment = environment;
    }

    static final String VERSION = "0.2.0";

    public static void main(String[] args) {
        // Hook mode has nothing to parse; skipping picocli there saves a quarter second of start-up on every Stop.
        if (args.length > 0) System.exit(new CommandLine(new litefuse_hook()).execute(args));
        new litefuse_hook().call();
        // halt, not exit: Runtime.exit sets up the System.Logger machinery to log itself (15 ms of a hook run), and
        // hook mode has nothing left to flush or run at shutdown. The exit code is 0, whatever happened.
        Runtime.getRuntime().halt(0);
    }

    /** Hook mode: whatever happens, exit 0 (a Stop hook's exit code 2 would tell Claude Code not to stop). */
    @Override
    public Integer call() {
        try {
            Hook.runHook(environment, System.in);
        } catch (Throwable t) {
            // Only a failure before the log exists lands here (runHook logs its own): nothing to tell, still exit 0.
        }
        return 0;
    }

    // ----------------- Sections. Each uses only the sections above it: general helpers first, commands last. -----------------

    /** General helpers every section may use: text, time, hashing, a file's age, a sleep. */
    static final class Helpers {
        private Helpers() {
        }

        /** How much of a text a status message, a log line or a --json preview shows. */
        static final int PREVIEW_CHARS = 200;

        static String firstNonBlank(String... values) {
            for (String value : values) {
                if (value != null && !value.isBlank()) return value.trim();
            }
            return null;
        }

        /** The text stripped and cut to PREVIEW_CHARS, with an ellipsis where it was cut. */
        static String preview(String text) {
            if (text == null) return null;
            String flat = text.strip();
            return flat.length() <= PREVIEW_CHARS ? flat : flat.substring(0, PREVIEW_CHARS) + "…";
        }

        /** "pk-lf-…f00d": enough to recognise a public key (a secret gets describeSecret: not one character). */
        static String redactKey(String key) {
            if (key == null || key.isBlank()) return "(not set)";
            int cut = key.indexOf('-', key.indexOf('-') + 1);
            String prefix = cut > 0 && cut < 8 ? key.substring(0, cut + 1) : key.substring(0, Math.min(3, key.length()));
            return prefix + "…" + (key.length() > 12 ? key.substring(key.length() - 4) : "");
        }

        /** The first executable `command` on env's PATH, or null. */
        static Path onPath(Map<String, String> env, String command) {
            for (String dir : env.getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
                if (!dir.isEmpty() && Files.isExecutable(Paths.get(dir, command))) return Paths.get(dir, command);
            }
            return null;
        }

        /** Deletes a folder and everything in it, as far as it can: what is left is left quietly. */
        static void deleteTree(Path root) {
            try (java.util.stream.Stream<Path> walk = Files.walk(root)) {
                walk.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            } catch (IOException e) {
                // A folder that is gone already, or not readable: nothing more to remove.
            }
        }

        /** "set, 44 characters": that a secret is there, and not one character of it. */
        static String describeSecret(String secret) {
            return secret == null || secret.isBlank() ? "(not set)" : "set, " + secret.length() + " characters";
        }

        /** An ISO-8601 instant, or null when the text is not one. */
        static Instant parseInstant(String text) {
            try {
                return text.isEmpty() ? null : Instant.parse(text);
            } catch (DateTimeParseException e) {
                return null;
            }
        }

        /** A 64-bit FNV-1a fingerprint: eight bytes instead of a String (row uuids), or a cheap file name. */
        static long fingerprint(String text) {
            long hash = 0xcbf29ce484222325L;
            for (int i = 0; i < text.length(); i++) {
                hash = (hash ^ text.charAt(i)) * 0x100000001b3L;
            }
            return hash;
        }

        static byte[] sha256(String text) {
            return sha256(text.getBytes(StandardCharsets.UTF_8));
        }

        static byte[] sha256(byte[] bytes) {
            try {
                return MessageDigest.getInstance("SHA-256").digest(bytes);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 is part of every JDK", e);
            }
        }

        /** When the file was last written; the epoch when that cannot be read. */
        static Instant lastModified(Path file) {
            try {
                return Files.getLastModifiedTime(file).toInstant();
            } catch (IOException e) {
                return Instant.EPOCH;
            }
        }

        static void sleepQuietly(long millis) {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Files only their owner may read, in folders only their owner may enter, replaced whole (never half-written). */
    static final class PrivateFiles {
        private PrivateFiles() {
        }

        static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

        static void ensurePrivateDir(Path dir) throws IOException {
            if (Files.isDirectory(dir)) return;
            if (dir.getParent() != null) ensurePrivateDir(dir.getParent());
            try {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            } catch (FileAlreadyExistsException e) {
                // Another process created it first.
            } catch (UnsupportedOperationException e) {
                Files.createDirectories(dir);
            }
        }

        static void ensurePrivateFile(Path file) throws IOException {
            if (Files.exists(file)) return;
            try {
                Files.createFile(file, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
            } catch (FileAlreadyExistsException e) {
                // Another process created it first.
            } catch (UnsupportedOperationException e) {
                Files.createFile(file);
            }
        }

        /**
         * Replaces `file` with `bytes`, never half-written: a private temporary file of this writer's own beside it (so
         * writers need no lock), forced to disk, given `mode`, then renamed over the file.
         */
        static void writeAtomically(Path file, byte[] bytes, Set<PosixFilePermission> mode) throws IOException {
            write(file, bytes, mode, true);
        }

        /** As writeAtomically, owner-only, but not forced to disk: for a record a crash may lose, never half-written. */
        static void replace(Path file, byte[] bytes) throws IOException {
            write(file, bytes, OWNER_ONLY, false);
        }

        private static void write(Path file, byte[] bytes, Set<PosixFilePermission> mode, boolean force) throws IOException {
            Path tmp = createPrivateTemp(file);
            try {
                try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                    ByteBuffer buffer = ByteBuffer.wrap(bytes);
                    while (buffer.hasRemaining()) channel.write(buffer);
                    if (force) channel.force(true);
                }
                if (!mode.equals(OWNER_ONLY)) Files.setPosixFilePermissions(tmp, mode);
                try {
                    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
        }

        /**
         * A new owner-only file `.<name>-<hex>.tmp` beside `file`, this writer's own (created new: a name another writer
         * took is skipped). Not Files.createTempFile: seeding its SecureRandom took 2–3 ms of a hook run.
         */
        private static Path createPrivateTemp(Path file) throws IOException {
            for (long suffix = System.nanoTime(); ; suffix++) {
                Path tmp = file.resolveSibling("." + file.getFileName() + "-" + Long.toHexString(suffix) + ".tmp");
                try {
                    try {
                        return Files.createFile(tmp, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
                    } catch (UnsupportedOperationException e) {
                        return Files.createFile(tmp);
                    }
                } catch (FileAlreadyExistsException e) {
                    // Another writer's: the next name.
                }
            }
        }
    }

    /**
     * JSON through Jackson's streaming parser and generator and its tree nodes, without an ObjectMapper: building
     * one costs about 30 ms of a hook run's start-up (measured with the AOT cache), more than reading a turn.
     */
    static final class Json {
        private Json() {
        }

        static final JsonFactory FACTORY = new JsonFactory();
        static final JsonNodeFactory NODES = JsonNodeFactory.instance;
        private static final JsonNode UNREAD_TEXT = NODES.textNode("");

        /** One JSON value from the bytes (what follows it is ignored, as ObjectMapper.readTree does); null if none. */
        static JsonNode parse(byte[] bytes, int offset, int length) throws IOException {
            try (JsonParser parser = FACTORY.createParser(bytes, offset, length)) {
                return parser.nextToken() == null ? null : node(parser);
            }
        }

        /**
         * A JSON object, except that when its "type" is one of `skipped` the rest is not read and the result is just
         * {"type": ...}, whatever order the fields came in. Anything but an object parses as with parse(). When
         * toolUseResult is an object, the strings below its fields (Read's file text, Edit's patch lines: a tenth of a
         * transcript's bytes) are left unread as "": only its fields and the sizes of what they hold are read. Any other
         * toolUseResult (an MCP tool's list of blocks) is shown whole, so it is read whole.
         */
        static JsonNode parseRow(byte[] bytes, int offset, int length, Set<String> skipped) throws IOException {
            try (JsonParser parser = FACTORY.createParser(bytes, offset, length)) {
                if (parser.nextToken() != JsonToken.START_OBJECT) return parser.currentToken() == null ? null : node(parser);
                ObjectNode object = NODES.objectNode();
                while (parser.nextToken() == JsonToken.FIELD_NAME) {
                    String name = parser.currentName();
                    parser.nextToken();
                    boolean summarised = name.equals("toolUseResult") && parser.currentToken() == JsonToken.START_OBJECT;
                    JsonNode value = node(parser, summarised ? 1 : Integer.MAX_VALUE);
                    if (name.equals("type") && value.isTextual() && skipped.contains(value.textValue())) {
                        return NODES.objectNode().set("type", value);
                    }
                    object.set(name, value);
                }
                return object;
            }
        }

        static JsonNode parse(byte[] bytes) throws IOException {
            return parse(bytes, 0, bytes.length);
        }

        static JsonNode parse(String text) throws IOException {
            try (JsonParser parser = FACTORY.createParser(text)) {
                return parser.nextToken() == null ? null : node(parser);
            }
        }

        private static JsonNode node(JsonParser parser) throws IOException {
            return node(parser, Integer.MAX_VALUE);
        }

        /** The value at the parser; strings nested deeper than `textDepth` levels below it are left unread, as "". */
        private static JsonNode node(JsonParser parser, int textDepth) throws IOException {
            switch (parser.currentToken()) {
                case START_OBJECT -> {
                    ObjectNode object = NODES.objectNode();
                    while (parser.nextToken() == JsonToken.FIELD_NAME) {
                        String name = parser.currentName();
                        parser.nextToken();
                        object.set(name, node(parser, textDepth - 1));
                    }
                    return object;
                }
                case START_ARRAY -> {
                    ArrayNode array = NODES.arrayNode();
                    while (parser.nextToken() != JsonToken.END_ARRAY) array.add(node(parser, textDepth - 1));
                    return array;
                }
                case VALUE_STRING -> {
                    // Jackson skips a string it was never asked for without decoding it.
                    return textDepth >= 0 ? NODES.textNode(parser.getText()) : UNREAD_TEXT;
                }
                case VALUE_NUMBER_INT -> {
                    return switch (parser.getNumberType()) {
                        case INT -> NODES.numberNode(parser.getIntValue());
                        case LONG -> NODES.numberNode(parser.getLongValue());
                        default -> NODES.numberNode(parser.getBigIntegerValue());
                    };
                }
                case VALUE_NUMBER_FLOAT -> {
                    return NODES.numberNode(parser.getDoubleValue());
                }
                case VALUE_TRUE -> {
                    return NODES.booleanNode(true);
                }
                case VALUE_FALSE -> {
                    return NODES.booleanNode(false);
                }
                case VALUE_NULL -> {
                    return NODES.nullNode();
                }
                default -> throw new com.fasterxml.jackson.core.JsonParseException(parser, "unexpected " + parser.currentToken());
            }
        }

        /** Writes a tree token by token. */
        static void write(JsonGenerator generator, JsonNode node) throws IOException {
            switch (node.getNodeType()) {
                case OBJECT -> {
                    generator.writeStartObject();
                    for (Map.Entry<String, JsonNode> field : node.properties()) {
                        generator.writeFieldName(field.getKey());
                        write(generator, field.getValue());
                    }
                    generator.writeEndObject();
                }
                case ARRAY -> {
                    generator.writeStartArray();
                    for (JsonNode item : node) write(generator, item);
                    generator.writeEndArray();
                }
                case STRING -> generator.writeString(node.textValue());
                case NUMBER -> {
                    switch (node.numberType()) {
                        case INT -> generator.writeNumber(node.intValue());
                        case LONG -> generator.writeNumber(node.longValue());
                        case BIG_INTEGER -> generator.writeNumber(node.bigIntegerValue());
                        case BIG_DECIMAL -> generator.writeNumber(node.decimalValue());
                        default -> generator.writeNumber(node.doubleValue());
                    }
                }
                case BOOLEAN -> generator.writeBoolean(node.booleanValue());
                default -> generator.writeNull();
            }
        }

        /** Compact JSON text. */
        static String toJson(JsonNode node) {
            java.io.StringWriter text = new java.io.StringWriter();
            try (JsonGenerator generator = FACTORY.createGenerator(text)) {
                write(generator, node);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return text.toString();
        }

        /** UTF-8 bytes, laid out by `printer` (null: compact). */
        static byte[] toBytes(JsonNode node, com.fasterxml.jackson.core.PrettyPrinter printer) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (JsonGenerator generator = FACTORY.createGenerator(bytes)) {
                if (printer != null) generator.setPrettyPrinter(printer);
                write(generator, node);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return bytes.toByteArray();
        }

        static ObjectNode tree(Map<String, Long> numbers) {
            ObjectNode object = NODES.objectNode();
            numbers.forEach(object::put);
            return object;
        }

        /** Amounts in USD by key (a generation's cost_details). */
        static ObjectNode amounts(Map<String, Double> usd) {
            ObjectNode object = NODES.objectNode();
            usd.forEach(object::put);
            return object;
        }

        static ArrayNode tree(List<String> texts) {
            ArrayNode array = NODES.arrayNode();
            texts.forEach(array::add);
            return array;
        }
    }

    /**
     * Masks common credentials before anything is exported: API keys (sk-..., sk-ant-..., AKIA..., GitHub and Slack
     * tokens), Authorization headers, private-key blocks, and .env lines whose name holds SECRET, TOKEN, PASSWORD or
     * KEY. A pattern with a group named `secret` masks only that group (the header or variable name stays readable).
     */
    record Masker(boolean standard, List<Rule> extra, Map<String, String> memo) {
        private static final String MASK = "[REDACTED]";
        /** Texts shorter than this are masked again rather than remembered: the look-up would cost about as much. */
        private static final int MEMO_MIN_LENGTH = 512;

        /** A pattern, and a cheap test that must pass before the regex runs (most text holds no credential). */
        private record Rule(Pattern pattern, java.util.function.Predicate<String> mightMatch) {
        }

        /** The standard patterns, compiled when text is first masked: a run with nothing to send never pays for them. */
        private static final class Standard {
            static final List<Rule> RULES = List.of(
                new Rule(Pattern.compile("-----BEGIN[A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----[\\s\\S]*?(?:-----END[A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----|$)"),
                        text -> text.contains("PRIVATE KEY")),
                new Rule(Pattern.compile("(?i)(?<![A-Za-z0-9_])(?:proxy-)?authorization[\"']?\\s*[:=]\\s*[\"']?(?:(?:bearer|basic|token|digest)\\s+)?(?<secret>[^\\s\"',;\\\\]+)"),
                        text -> text.contains("uthorization") || text.contains("UTHORIZATION")),
                new Rule(Pattern.compile("(?m)^[ \\t]*(?:export[ \\t]+)?[A-Za-z_][A-Za-z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|KEY)[A-Za-z0-9_]*[ \\t]*=[ \\t]*(?<secret>\\S[^\\r\\n]*)"),
                        text -> text.indexOf('=') >= 0 && (text.contains("KEY") || text.contains("TOKEN") || text.contains("SECRET")
                                || text.contains("PASSW"))),
                new Rule(Pattern.compile("(?<![A-Za-z0-9_])sk-ant-[A-Za-z0-9_-]{10,}"), text -> containsWordStart(text, "sk-ant-")),
                new Rule(Pattern.compile("(?<![A-Za-z0-9_])sk-[A-Za-z0-9_-]{16,}"), text -> containsWordStart(text, "sk-")),
                new Rule(Pattern.compile("(?<![A-Za-z0-9_])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9_])"),
                        text -> text.contains("AKIA") || text.contains("ASIA")),
                new Rule(Pattern.compile("(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})"),
                        text -> containsGithubToken(text)),
                new Rule(Pattern.compile("(?<![A-Za-z0-9_])xox[abposr]-[A-Za-z0-9-]{10,}"), text -> text.contains("xox")));
        }

        /** On unless CC_LANGFUSE_MASK_SECRETS=false; CC_LANGFUSE_MASK_PATTERNS adds regexes, one per line. */
        static Masker fromEnv(String enabled, String extraPatterns, List<String> problems) {
            if ("false".equalsIgnoreCase(enabled == null ? "" : enabled.trim())) return new Masker(false, List.of(), null);
            List<Rule> rules = new ArrayList<>();
            if (extraPatterns != null) {
                for (String regex : extraPatterns.split("\\R")) {
                    if (regex.isBlank()) continue;
                    try {
                        rules.add(new Rule(Pattern.compile(regex.strip()), text -> true));
                    } catch (java.util.regex.PatternSyntaxException e) {
                        problems.add("Ignoring CC_LANGFUSE_MASK_PATTERNS entry that is not a valid regex: " + e.getDescription());
                    }
                }
            }
            return new Masker(true, List.copyOf(rules), null);
        }

        /** gh[pousr]_ or github_pat_ somewhere: one search for "gh" (rare) instead of one per prefix. */
        private static boolean containsGithubToken(String text) {
            for (int at = text.indexOf("gh"); at >= 0 && at + 3 < text.length(); at = text.indexOf("gh", at + 2)) {
                if (text.charAt(at + 3) == '_' && "pousr".indexOf(text.charAt(at + 2)) >= 0) return true;
            }
            return text.contains("github_pat_");
        }

        /** `word` somewhere not preceded by a letter, digit or underscore ("sk-" but not "task-"). */
        private static boolean containsWordStart(String text, String word) {
            for (int at = text.indexOf(word); at >= 0; at = text.indexOf(word, at + 1)) {
                if (at == 0) return true;
                char before = text.charAt(at - 1);
                if (!Character.isLetterOrDigit(before) && before != '_') return true;
            }
            return false;
        }

        /**
         * The same masking for one trace, remembering long texts: a tool result is shown as the tool's output and again
         * in the next call's input, and a full-mode input repeats the conversation, so each is masked once.
         */
        Masker forOneTrace() {
            return off() ? this : new Masker(standard, extra, new HashMap<>());
        }

        String describe() {
            if (!standard) return extra.isEmpty() ? "off" : extra.size() + " patterns";
            return "standard patterns" + (extra.isEmpty() ? "" : " and " + extra.size() + " more");
        }

        private boolean off() {
            return !standard && extra.isEmpty();
        }

        String text(String value) {
            if (value == null || off()) return value;
            if (memo != null && value.length() >= MEMO_MIN_LENGTH) return memo.computeIfAbsent(value, this::maskNow);
            return maskNow(value);
        }

        private String maskNow(String value) {
            String masked = value;
            if (standard) {
                for (Rule rule : Standard.RULES) {
                    if (rule.mightMatch().test(masked)) masked = maskWith(rule.pattern(), masked);
                }
            }
            for (Rule rule : extra) {
                if (rule.mightMatch().test(masked)) masked = maskWith(rule.pattern(), masked);
            }
            return masked;
        }

        private static String maskWith(Pattern pattern, String value) {
            Matcher matcher = pattern.matcher(value);
            if (!matcher.find()) return value;
            boolean hasSecretGroup = pattern.pattern().contains("(?<secret>");
            StringBuilder out = new StringBuilder(value.length());
            int last = 0;
            do {
                int start = hasSecretGroup ? matcher.start("secret") : matcher.start();
                int end = hasSecretGroup ? matcher.end("secret") : matcher.end();
                if (start < 0 || value.startsWith(MASK, start)) continue;
                out.append(value, last, start).append(MASK);
                last = end;
            } while (matcher.find());
            return out.append(value, last, value.length()).toString();
        }

        /**
         * `node` with every string value masked: the node itself when nothing changed, else a copy of the containers on
         * the way to what changed (the rest shared; nothing is ever mutated).
         */
        JsonNode json(JsonNode node) {
            if (node == null || off()) return node;
            if (node.isTextual()) {
                String masked = text(node.asText());
                return masked.equals(node.asText()) ? node : Json.NODES.textNode(masked);
            }
            if (node.isObject()) {
                ObjectNode copy = null;
                for (Map.Entry<String, JsonNode> field : node.properties()) {
                    JsonNode masked = json(field.getValue());
                    if (masked != field.getValue() && copy == null) copy = Json.NODES.objectNode().setAll((ObjectNode) node);
                    if (copy != null) copy.set(field.getKey(), masked);
                }
                return copy == null ? node : copy;
            }
            if (node.isArray()) {
                ArrayNode copy = null;
                for (int i = 0; i < node.size(); i++) {
                    JsonNode masked = json(node.get(i));
                    if (masked != node.get(i) && copy == null) copy = Json.NODES.arrayNode().addAll((ArrayNode) node);
                    if (copy != null) copy.set(i, masked);
                }
                return copy == null ? node : copy;
            }
            return node;
        }
    }

    /**
     * Every variable the hook reads, declared once: its name, the form that wins over it (CC_..., a proxy's lower case), whether it holds a
     * secret, whether `install` writes it into the env block, and the plugin option (`.claude-plugin/plugin.json`'s
     * userConfig) that fills it in where it is not set. Config reads them, install copies them, the launcher gates on
     * them, doctor says where each came from.
     */
    enum Setting {
        TRACE_TO_LANGFUSE("TRACE_TO_LANGFUSE", null, InstallCopy.ALWAYS, null, false),
        PUBLIC_KEY("LANGFUSE_PUBLIC_KEY", "CC_LANGFUSE_PUBLIC_KEY", InstallCopy.ALWAYS, "public_key", false),
        SECRET_KEY("LANGFUSE_SECRET_KEY", "CC_LANGFUSE_SECRET_KEY", InstallCopy.ALWAYS, "secret_key", true),
        BASE_URL("LANGFUSE_BASE_URL", "CC_LANGFUSE_BASE_URL", InstallCopy.ALWAYS, "base_url", false),
        USER_ID("LITEFUSE_USER_ID", null, InstallCopy.WHEN_SET, "user_id", false),
        TAGS("CC_LANGFUSE_TAGS", null, InstallCopy.WHEN_SET, "tags", false),
        ENVIRONMENT("LANGFUSE_TRACING_ENVIRONMENT", null, InstallCopy.WHEN_SET, "environment", false),
        TRACEPARENT("CC_LANGFUSE_TRACEPARENT", null, InstallCopy.NEVER, null, false),
        GENERATION_INPUT("CC_LANGFUSE_GENERATION_INPUT", null, InstallCopy.WHEN_SET, "generation_input", false),
        MAX_CHARS("CC_LANGFUSE_MAX_CHARS", null, InstallCopy.WHEN_SET, null, false),
        EXPORT_BUDGET_MS("CC_LANGFUSE_EXPORT_BUDGET_MS", null, InstallCopy.WHEN_SET, null, false),
        UNKNOWN_SETTLE_MS("CC_LANGFUSE_UNKNOWN_SETTLE_MS", null, InstallCopy.WHEN_SET, null, false),
        DEBUG("CC_LANGFUSE_DEBUG", null, InstallCopy.WHEN_SET, null, false),
        LOG_MAX_BYTES("CC_LANGFUSE_LOG_MAX_BYTES", null, InstallCopy.WHEN_SET, null, false),
        MASK_SECRETS("CC_LANGFUSE_MASK_SECRETS", null, InstallCopy.WHEN_SET, null, false),
        MASK_PATTERNS("CC_LANGFUSE_MASK_PATTERNS", null, InstallCopy.WHEN_SET, null, false),
        OTLP_ENDPOINT("OTEL_EXPORTER_OTLP_ENDPOINT", "CC_OTEL_EXPORTER_OTLP_ENDPOINT", InstallCopy.WHEN_SET, null, false),
        OTLP_TRACES_ENDPOINT("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "CC_OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", InstallCopy.WHEN_SET, null, false),
        OTLP_HEADERS("OTEL_EXPORTER_OTLP_HEADERS", "CC_OTEL_EXPORTER_OTLP_HEADERS", InstallCopy.WHEN_SET, null, true),
        OTLP_TRACES_HEADERS("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "CC_OTEL_EXPORTER_OTLP_TRACES_HEADERS", InstallCopy.WHEN_SET, null, true),
        HTTPS_PROXY("HTTPS_PROXY", "https_proxy", InstallCopy.WHEN_SET, null, true),
        HTTP_PROXY("HTTP_PROXY", "http_proxy", InstallCopy.WHEN_SET, null, true),
        NO_PROXY("NO_PROXY", "no_proxy", InstallCopy.WHEN_SET, null, false),
        OTLP_CERTIFICATE("OTEL_EXPORTER_OTLP_CERTIFICATE", "CC_OTEL_EXPORTER_OTLP_CERTIFICATE", InstallCopy.WHEN_SET, null, false),
        OTLP_TRACES_CERTIFICATE("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "CC_OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", InstallCopy.WHEN_SET, null, false),
        OTLP_CLIENT_KEY("OTEL_EXPORTER_OTLP_CLIENT_KEY", "CC_OTEL_EXPORTER_OTLP_CLIENT_KEY", InstallCopy.WHEN_SET, null, false),
        OTLP_TRACES_CLIENT_KEY("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "CC_OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", InstallCopy.WHEN_SET, null, false),
        OTLP_CLIENT_CERTIFICATE("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "CC_OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", InstallCopy.WHEN_SET, null, false),
        OTLP_TRACES_CLIENT_CERTIFICATE("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "CC_OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", InstallCopy.WHEN_SET, null, false),
        NODE_EXTRA_CA_CERTS("NODE_EXTRA_CA_CERTS", null, InstallCopy.WHEN_SET, null, false),
        SSL_CERT_FILE("SSL_CERT_FILE", null, InstallCopy.WHEN_SET, null, false);

        /** What `install` does with a setting: always writes it (tracing on, keys, host), copies it when set, or never. */
        enum InstallCopy { ALWAYS, WHEN_SET, NEVER }

        private final String variable;
        private final String override;
        private final InstallCopy install;
        private final String pluginOption;
        private final boolean secret;

        Setting(String variable, String override, InstallCopy install, String pluginOption, boolean secret) {
            this.variable = variable;
            this.override = override;
            this.install = install;
            this.pluginOption = pluginOption;
            this.secret = secret;
        }

        String variable() {
            return variable;
        }

        InstallCopy install() {
            return install;
        }

        boolean secret() {
            return secret;
        }

        /** The plugin option's key in plugin.json (`public_key`), or null. */
        String pluginOption() {
            return pluginOption;
        }

        /** How Claude Code hands the plugin option to the hook: CLAUDE_PLUGIN_OPTION_<KEY>; null without one. */
        String pluginVariable() {
            return pluginOption == null ? null : pluginVariable(pluginOption);
        }

        /** The variable Claude Code sets for a plugin option (`public_key`: CLAUDE_PLUGIN_OPTION_PUBLIC_KEY). */
        static String pluginVariable(String option) {
            return "CLAUDE_PLUGIN_OPTION_" + option.toUpperCase(Locale.ROOT);
        }

        /** The names it may be set by, the winner first: the CC_ form, the variable, the plugin option. */
        List<String> names() {
            List<String> names = new ArrayList<>(3);
            if (override != null) names.add(override);
            names.add(variable);
            if (pluginOption != null) names.add(pluginVariable(pluginOption));
            return names;
        }

        /** Its value in `env` (trimmed), from the first of its names that is set; null when none is. */
        String read(Map<String, String> env) {
            return Helpers.firstNonBlank(override == null ? null : env.get(override), env.get(variable),
                    pluginOption == null ? null : env.get(pluginVariable(pluginOption)));
        }

        /** Which of its names gave the value read(env) returns; null when none did. */
        String sourceIn(Map<String, String> env) {
            for (String name : names()) {
                if (Helpers.firstNonBlank(env.get(name)) != null) return name;
            }
            return null;
        }

        /**
         * The name install writes it under: the variable, but the CC_ form of an OTEL_* setting, since Claude Code keeps
         * OTEL_* variables (its own telemetry's) from the hooks it runs (2.1.332: neither its settings' nor its own).
         */
        String installName() {
            return variable.startsWith("OTEL_") ? override : variable;
        }

        /** Whether this value of it is a secret: a key always, a proxy URL when it holds credentials (user:password@). */
        boolean isSecret(String value) {
            return secret && value != null && ((this != HTTPS_PROXY && this != HTTP_PROXY) || value.contains("@"));
        }
    }

    /**
     * Where the hook keeps its files (the reference's STATE_DIR, LOG_FILE, STATE_FILE, LOCK_FILE): ~/.claude/state holds
     * the log, and litefuse/ under it each session's state and lock, the spool of sessions waiting to be sent, the
     * stamps of transcripts seen unchanged, the project ids links need, the records of the last runs, and what install
     * added. Hook, commands and tests ask it; nobody else spells these names.
     */
    record StateLayout(Path stateDir) {
        static StateLayout under(Path home) {
            return new StateLayout(home.resolve(".claude").resolve("state"));
        }

        Path log() {
            return stateDir.resolve("litefuse_hook.log");
        }

        /** The log as it was before its last rotation: one old file kept. */
        Path previousLog() {
            return stateDir.resolve("litefuse_hook.log.1");
        }

        /** Held while a line is written (and the log rotated), so that no line goes to a file just moved. */
        Path logLock() {
            return stateDir.resolve("litefuse_hook.log.lock");
        }

        Path sessions() {
            return stateDir.resolve("litefuse");
        }

        /** A session's state, by its key (StateFiles.stateKey). */
        Path state(String key) {
            return sessions().resolve(key + ".json");
        }

        Path lock(String key) {
            return sessions().resolve(key + ".lock");
        }

        /** A state file's name is its key: 64 hex digits. */
        static boolean isState(Path file) {
            return file.getFileName().toString().matches("[0-9a-f]{64}\\.json");
        }

        /** The spool: one marker per session whose turns wait to be sent. */
        Path pending() {
            return sessions().resolve("pending");
        }

        Path pendingMarker(String key) {
            return pending().resolve(key + ".json");
        }

        /** The transcript's stamp as the session's last clean run left it; named by a cheap fingerprint, no digest. */
        Path seen(String sessionId, Path transcript) {
            return sessions().resolve("seen-" + Long.toHexString(Helpers.fingerprint(sessionId + "::" + transcript)) + ".txt");
        }

        /** The last sessions' cost checks: Claude Code's total against what was sent (Prices.recordCheck). */
        Path costChecks() {
            return sessions().resolve("cost-checks.json");
        }

        /** Claude Code's prices as its cost-state rows showed them (Prices). */
        Path prices() {
            return sessions().resolve("prices.json");
        }

        /** When state pruning last went through every session, or where it stopped (StatePruning). */
        Path pruned() {
            return sessions().resolve("pruned.json");
        }

        /** Langfuse project ids by host and public key, for links. */
        Path projectIds() {
            return sessions().resolve("projects.json");
        }

        /** One record of the hook's runs (RunRecord.Kind): `last-run.json`, `last-sent.json`, `last-error.json`. */
        Path runRecord(String kind) {
            return sessions().resolve("last-" + kind + ".json");
        }

        /** What install added, so uninstall removes exactly that. */
        Path installManifest() {
            return sessions().resolve("install.json");
        }
    }

    /**
     * The way to Langfuse through a company's network: the proxy the environment names for the endpoint (HTTPS_PROXY,
     * HTTP_PROXY and NO_PROXY, either case, as curl and Claude Code read them; credentials in the proxy URL answer the
     * proxy's 407) and the TLS settings (OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, NODE_EXTRA_CA_CERTS and SSL_CERT_FILE
     * added to the JDK's trust, never replacing it; OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_KEY / _CLIENT_CERTIFICATE for
     * mutual TLS). Every connection the hook opens to Langfuse comes from `open`.
     */
    static final class Network {
        /** A proxy from a URL such as http://user:password@proxy:3128 (credentials optional); `setting`: where it came from. */
        record ProxyServer(String host, int port, String user, String password, String setting) {
            /** As logs and doctor show it: the password never, the user as ****. */
            String shown() {
                return "http://" + (user == null ? "" : "****@") + host + ":" + port;
            }

            @Override
            public String toString() {
                return shown();
            }
        }

        /** The TLS context the connections use (null: the JDK's own), what was added to it, and what could not be read. */
        record Tls(javax.net.ssl.SSLContext context, List<String> added, List<String> problems) {
        }

        private final ProxyServer httpsProxy;
        private final ProxyServer httpProxy;
        private final List<String> noProxy;
        private final Map<String, String> tlsFiles;
        private Tls tls;

        private Network(ProxyServer httpsProxy, ProxyServer httpProxy, List<String> noProxy, Map<String, String> tlsFiles) {
            this.httpsProxy = httpsProxy;
            this.httpProxy = httpProxy;
            this.noProxy = noProxy;
            this.tlsFiles = tlsFiles;
        }

        /** The settings as the environment gives them; a proxy URL that cannot be used is one problem and no proxy. */
        static Network fromEnv(Map<String, String> env, List<String> problems) {
            Map<String, String> tlsFiles = new LinkedHashMap<>();
            for (Setting setting : List.of(Setting.OTLP_TRACES_CERTIFICATE, Setting.OTLP_CERTIFICATE, Setting.NODE_EXTRA_CA_CERTS,
                    Setting.SSL_CERT_FILE, Setting.OTLP_TRACES_CLIENT_KEY, Setting.OTLP_CLIENT_KEY, Setting.OTLP_TRACES_CLIENT_CERTIFICATE,
                    Setting.OTLP_CLIENT_CERTIFICATE)) {
                String value = setting.read(env);
                if (value != null) tlsFiles.put(setting.variable(), value);
            }
            String noProxy = Setting.NO_PROXY.read(env);
            ProxyServer https = proxy(Setting.HTTPS_PROXY, env, problems);
            ProxyServer http = proxy(Setting.HTTP_PROXY, env, problems);
            if ((https != null && https.user() != null) || (http != null && http.user() != null)) {
                // The JDK answers a proxy's Basic challenge on an HTTPS tunnel only when told so before its first connection.
                System.setProperty("jdk.http.auth.tunneling.disabledSchemes", "");
                System.setProperty("jdk.http.auth.proxying.disabledSchemes", "");
            }
            return new Network(https, http, noProxy == null ? List.of() : List.of(noProxy.toLowerCase(Locale.ROOT).split("[,\\s]+")),
                    Map.copyOf(tlsFiles));
        }

        private static ProxyServer proxy(Setting setting, Map<String, String> env, List<String> problems) {
            String value = setting.read(env);
            if (value == null) return null;
            String name = setting.sourceIn(env);
            try {
                java.net.URI uri = java.net.URI.create(value.contains("://") ? value : "http://" + value);
                if (!"http".equalsIgnoreCase(uri.getScheme())) {
                    problems.add("Ignoring " + name + ": a " + uri.getScheme() + ":// proxy is not supported (use an http:// proxy)");
                    return null;
                }
                if (uri.getHost() == null) throw new IllegalArgumentException("no host");
                String userInfo = uri.getUserInfo();
                int colon = userInfo == null ? -1 : userInfo.indexOf(':');
                return new ProxyServer(uri.getHost(), uri.getPort() < 0 ? 1080 : uri.getPort(),
                        userInfo == null ? null : colon < 0 ? userInfo : userInfo.substring(0, colon),
                        colon < 0 ? null : userInfo.substring(colon + 1), name);
            } catch (IllegalArgumentException e) {
                problems.add("Ignoring " + name + ": not a proxy URL such as http://proxy.example.com:3128");
                return null;
            }
        }

        /** The proxy a request to `uri` goes through; null: straight there (no proxy set, or NO_PROXY names the host). */
        ProxyServer proxyFor(java.net.URI uri) {
            ProxyServer proxy = "https".equalsIgnoreCase(uri.getScheme()) ? httpsProxy : httpProxy;
            return proxy == null || bypasses(noProxy, uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT)) ? null : proxy;
        }

        /** NO_PROXY as curl reads it: `*`, a host, a domain and its subdomains (`example.com`, `.example.com`), an IP or a CIDR range. */
        static boolean bypasses(List<String> noProxy, String host) {
            String bare = host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
            for (String entry : noProxy) {
                String name = entry.replaceFirst("^\\*?\\.", "").replaceFirst(":\\d+$", "");
                if (entry.equals("*") || bare.equals(name) || (!name.isEmpty() && bare.endsWith("." + name)) || inRange(bare, name)) return true;
            }
            return false;
        }

        /** Whether an IP literal lies in a CIDR range (`10.0.0.0/8`, `fd00::/8`); host names never resolve here. */
        private static boolean inRange(String host, String range) {
            int slash = range.indexOf('/');
            if (slash < 0 || !isIpLiteral(host) || !isIpLiteral(range.substring(0, slash))) return false;
            try {
                byte[] address = java.net.InetAddress.getByName(host).getAddress();
                byte[] network = java.net.InetAddress.getByName(range.substring(0, slash)).getAddress();
                int bits = Integer.parseInt(range.substring(slash + 1));
                if (address.length != network.length || bits < 0 || bits > address.length * 8) return false;
                for (int i = 0; i < bits; i++) {
                    int mask = 0x80 >> (i % 8);
                    if ((address[i / 8] & mask) != (network[i / 8] & mask)) return false;
                }
                return true;
            } catch (java.net.UnknownHostException | NumberFormatException e) {
                return false;
            }
        }

        private static boolean isIpLiteral(String text) {
            return text.matches("[0-9.]+") || (text.contains(":") && text.matches("[0-9a-fA-F:.]+"));
        }

        /** A connection to `uri`, through the proxy it goes through, with the TLS settings; not yet connected. */
        java.net.HttpURLConnection open(java.net.URI uri) throws IOException {
            ProxyServer proxy = proxyFor(uri);
            java.net.URL url = uri.toURL();
            java.net.HttpURLConnection connection = (java.net.HttpURLConnection) (proxy == null ? url.openConnection(java.net.Proxy.NO_PROXY)
                    : url.openConnection(new java.net.Proxy(java.net.Proxy.Type.HTTP, java.net.InetSocketAddress.createUnresolved(proxy.host(), proxy.port()))));
            if (proxy != null && proxy.user() != null) connection.setAuthenticator(proxyAuthenticator(proxy));
            // Only an https connection builds the TLS settings: a firing to an http endpoint never reads a CA file.
            if (connection instanceof javax.net.ssl.HttpsURLConnection https && tls().context() != null) {
                https.setSSLSocketFactory(tls().context().getSocketFactory());
            }
            return connection;
        }

        /** Answers the proxy's 407 with the URL's credentials, and nobody else. */
        private static java.net.Authenticator proxyAuthenticator(ProxyServer proxy) {
            String password = proxy.password() == null ? "" : java.net.URLDecoder.decode(proxy.password(), StandardCharsets.UTF_8);
            String user = java.net.URLDecoder.decode(proxy.user(), StandardCharsets.UTF_8);
            return new java.net.Authenticator() {
                @Override
                protected java.net.PasswordAuthentication getPasswordAuthentication() {
                    return getRequestorType() == RequestorType.PROXY ? new java.net.PasswordAuthentication(user, password.toCharArray()) : null;
                }
            };
        }

        /** The TLS context, built on first use: the JDK's trust plus every CA file set, and the client certificate if set. */
        Tls tls() {
            if (tls == null) tls = buildTls(tlsFiles);
            return tls;
        }

        private static Tls buildTls(Map<String, String> files) {
            List<String> added = new ArrayList<>();
            List<String> problems = new ArrayList<>();
            List<byte[]> caFiles = new ArrayList<>();
            String traceCa = files.get(Setting.OTLP_TRACES_CERTIFICATE.variable());
            for (Setting setting : List.of(traceCa != null ? Setting.OTLP_TRACES_CERTIFICATE : Setting.OTLP_CERTIFICATE,
                    Setting.NODE_EXTRA_CA_CERTS, Setting.SSL_CERT_FILE)) {
                String path = files.get(setting.variable());
                if (path == null) continue;
                // The hook's own setting is checked whole; the bundles other tools share (often the system's 150 CAs) by
                // their markers only, so a firing does not decode them.
                byte[] pem = readPem(setting.variable(), path, setting == Setting.NODE_EXTRA_CA_CERTS || setting == Setting.SSL_CERT_FILE, problems);
                if (pem == null) continue;
                caFiles.add(pem);
                added.add(pemBlocks(pem, true) + " CA certificate(s) from " + setting.variable());
            }
            javax.net.ssl.KeyManager[] keys = clientKeys(files, added, problems);
            if (caFiles.isEmpty() && keys == null) return new Tls(null, List.copyOf(added), List.copyOf(problems));
            try {
                javax.net.ssl.X509ExtendedTrustManager jdk = trustManager(null);
                javax.net.ssl.SSLContext context = javax.net.ssl.SSLContext.getInstance("TLS");
                context.init(keys, new javax.net.ssl.TrustManager[]{caFiles.isEmpty() ? jdk : new AddedTrust(jdk, caFiles)}, null);
                return new Tls(context, List.copyOf(added), List.copyOf(problems));
            } catch (java.security.GeneralSecurityException e) {
                problems.add("Could not set up TLS with " + String.join(", ", files.keySet()) + " (" + e.getMessage() + "); using the JDK's own trust");
                return new Tls(null, List.of(), List.copyOf(problems));
            }
        }

        private static final Pattern PEM_CERTIFICATE = Pattern.compile("-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\\s]+)-----END CERTIFICATE-----");

        /** A CA file's bytes when it holds at least one PEM certificate (checked cheaply); else null and one problem. */
        private static byte[] readPem(String variable, String path, boolean markersOnly, List<String> problems) {
            try {
                byte[] bytes = Files.readAllBytes(Path.of(path));
                if (pemBlocks(bytes, markersOnly) > 0) return bytes;
                problems.add("Ignoring " + variable + "=" + path + ": no PEM certificate in it");
            } catch (IOException | java.nio.file.InvalidPathException e) {
                problems.add("Ignoring " + variable + "=" + path + ": cannot read it (" + e.getClass().getSimpleName() + ")");
            }
            return null;
        }

        /** How many PEM certificate blocks `pem` holds: by their markers, or those whose base64 is a DER structure (0x30). */
        private static int pemBlocks(byte[] pem, boolean markersOnly) {
            int count = 0;
            String text = new String(pem, StandardCharsets.ISO_8859_1);
            if (markersOnly) {
                for (int at = text.indexOf("-----BEGIN CERTIFICATE-----"); at >= 0; at = text.indexOf("-----BEGIN CERTIFICATE-----", at + 1)) count++;
                return count;
            }
            Matcher block = PEM_CERTIFICATE.matcher(text);
            while (block.find()) {
                try {
                    byte[] der = java.util.Base64.getMimeDecoder().decode(block.group(1));
                    if (der.length > 0 && der[0] == 0x30) count++;
                } catch (IllegalArgumentException e) {
                    // Not base64: not a certificate.
                }
            }
            return count;
        }

        /** The PKIX trust manager over `anchors` (null: the JDK's own CAs). */
        private static javax.net.ssl.X509ExtendedTrustManager trustManager(java.security.KeyStore anchors) throws java.security.GeneralSecurityException {
            javax.net.ssl.TrustManagerFactory factory = javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
            factory.init(anchors);
            for (javax.net.ssl.TrustManager manager : factory.getTrustManagers()) {
                if (manager instanceof javax.net.ssl.X509ExtendedTrustManager x509) return x509;
            }
            throw new java.security.KeyStoreException("no X.509 trust manager");
        }

        /**
         * The JDK's trust, and the CA files besides it: a server the JDK trusts is checked by it alone; only one it refuses
         * is checked against the files, parsed then (a system bundle of 150 CAs takes a cold JVM about a second, so a
         * firing to Langfuse Cloud with SSL_CERT_FILE set never pays for it). Hostname checks stay on either way.
         */
        private static final class AddedTrust extends javax.net.ssl.X509ExtendedTrustManager {
            private final javax.net.ssl.X509ExtendedTrustManager jdk;
            private final List<byte[]> caFiles;
            private javax.net.ssl.X509ExtendedTrustManager added;

            AddedTrust(javax.net.ssl.X509ExtendedTrustManager jdk, List<byte[]> caFiles) {
                this.jdk = jdk;
                this.caFiles = caFiles;
            }

            private synchronized javax.net.ssl.X509ExtendedTrustManager added() throws java.security.cert.CertificateException {
                if (added != null) return added;
                try {
                    java.security.KeyStore anchors = java.security.KeyStore.getInstance(java.security.KeyStore.getDefaultType());
                    anchors.load(null, null);
                    java.security.cert.CertificateFactory factory = java.security.cert.CertificateFactory.getInstance("X.509");
                    int index = 0;
                    for (byte[] pem : caFiles) {
                        // Block by block: a bundle may hold other PEM blocks, or a damaged one, beside its certificates.
                        Matcher block = PEM_CERTIFICATE.matcher(new String(pem, StandardCharsets.ISO_8859_1));
                        while (block.find()) {
                            try {
                                anchors.setCertificateEntry("added-" + index++, factory.generateCertificate(
                                        new java.io.ByteArrayInputStream(java.util.Base64.getMimeDecoder().decode(block.group(1)))));
                            } catch (java.security.cert.CertificateException | IllegalArgumentException damaged) {
                                // Left out; the others still count.
                            }
                        }
                    }
                    added = trustManager(anchors);
                    return added;
                } catch (IOException | java.security.GeneralSecurityException e) {
                    throw new java.security.cert.CertificateException("the CA files could not be read: " + e.getMessage(), e);
                }
            }

            @Override
            public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType, java.net.Socket socket)
                    throws java.security.cert.CertificateException {
                try {
                    jdk.checkServerTrusted(chain, authType, socket);
                } catch (java.security.cert.CertificateException refused) {
                    added().checkServerTrusted(chain, authType, socket);
                }
            }

            @Override
            public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType, javax.net.ssl.SSLEngine engine)
                    throws java.security.cert.CertificateException {
                try {
                    jdk.checkServerTrusted(chain, authType, engine);
                } catch (java.security.cert.CertificateException refused) {
                    added().checkServerTrusted(chain, authType, engine);
                }
            }

            @Override
            public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType) throws java.security.cert.CertificateException {
                try {
                    jdk.checkServerTrusted(chain, authType);
                } catch (java.security.cert.CertificateException refused) {
                    added().checkServerTrusted(chain, authType);
                }
            }

            @Override
            public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType, java.net.Socket socket)
                    throws java.security.cert.CertificateException {
                jdk.checkClientTrusted(chain, authType, socket);
            }

            @Override
            public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType, javax.net.ssl.SSLEngine engine)
                    throws java.security.cert.CertificateException {
                jdk.checkClientTrusted(chain, authType, engine);
            }

            @Override
            public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType) throws java.security.cert.CertificateException {
                jdk.checkClientTrusted(chain, authType);
            }

            @Override
            public java.security.cert.X509Certificate[] getAcceptedIssuers() {
                return jdk.getAcceptedIssuers();
            }
        }

        /** The client certificate and its PKCS#8 key (the OpenTelemetry form), read by the exporter's own TlsUtil; null when not set. */
        private static javax.net.ssl.KeyManager[] clientKeys(Map<String, String> files, List<String> added, List<String> problems) {
            boolean traces = files.containsKey(Setting.OTLP_TRACES_CLIENT_KEY.variable()) || files.containsKey(Setting.OTLP_TRACES_CLIENT_CERTIFICATE.variable());
            Setting keySetting = traces ? Setting.OTLP_TRACES_CLIENT_KEY : Setting.OTLP_CLIENT_KEY;
            Setting certificateSetting = traces ? Setting.OTLP_TRACES_CLIENT_CERTIFICATE : Setting.OTLP_CLIENT_CERTIFICATE;
            String key = files.get(keySetting.variable());
            String certificate = files.get(certificateSetting.variable());
            if (key == null && certificate == null) return null;
            if (key == null || certificate == null) {
                problems.add("Ignoring " + (key == null ? certificateSetting : keySetting).variable() + ": a client certificate needs both "
                        + keySetting.variable() + " and " + certificateSetting.variable());
                return null;
            }
            try {
                javax.net.ssl.X509KeyManager manager = io.opentelemetry.exporter.internal.TlsUtil.keyManager(
                        Files.readAllBytes(Path.of(key)), Files.readAllBytes(Path.of(certificate)));
                added.add("the client certificate of " + certificateSetting.variable());
                return new javax.net.ssl.KeyManager[]{manager};
            } catch (IOException | RuntimeException e) {
                problems.add("Ignoring " + keySetting.variable() + " and " + certificateSetting.variable() + ": not a PEM certificate and its "
                        + "unencrypted PKCS#8 key (`openssl pkcs8 -topk8 -nocrypt` converts one) (" + e.getClass().getSimpleName() + ")");
                return null;
            }
        }

        /**
         * For a failure `explain` could not name: a TLS handshake straight with the host and a short read (a TLS 1.3
         * server refuses a client certificate only after the handshake, when HttpURLConnection is already writing its
         * request and sees the connection close). The problem it finds, or null.
         */
        String probeTls(java.net.URI uri) {
            if (!"https".equalsIgnoreCase(uri.getScheme()) || proxyFor(uri) != null) return null;
            javax.net.ssl.SSLSocketFactory factory = tls().context() != null ? tls().context().getSocketFactory()
                    : (javax.net.ssl.SSLSocketFactory) javax.net.ssl.SSLSocketFactory.getDefault();
            int port = uri.getPort() < 0 ? 443 : uri.getPort();
            try (java.net.Socket plain = new java.net.Socket()) {
                plain.connect(new java.net.InetSocketAddress(uri.getHost(), port), 5_000);
                try (javax.net.ssl.SSLSocket socket = (javax.net.ssl.SSLSocket) factory.createSocket(plain, uri.getHost(), port, true)) {
                    javax.net.ssl.SSLParameters parameters = socket.getSSLParameters();
                    parameters.setEndpointIdentificationAlgorithm("HTTPS");
                    socket.setSSLParameters(parameters);
                    socket.setSoTimeout(1_500);
                    socket.startHandshake();
                    // A server that took the handshake waits for a request: the read times out, and all is well. One that
                    // closes at once refused the client (TLS 1.3 sends its alert after the handshake, and it may be lost).
                    if (socket.getInputStream().read() >= 0) return null;
                    boolean sent = socket.getSession().getLocalCertificates() != null;
                    return uri.getHost() + " refused the client certificate (it closed the connection right after the TLS handshake"
                            + (sent ? "" : "; none was sent") + "): check OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY";
                }
            } catch (java.net.SocketTimeoutException e) {
                return null;
            } catch (IOException e) {
                return explain(e, uri, null);
            }
        }

        /** One sentence for a connection that failed: which proxy or certificate problem it was, and what to set. */
        static String explain(IOException e, java.net.URI uri, ProxyServer proxy) {
            String message = String.valueOf(e.getMessage());
            String via = proxy == null ? "" : " through the proxy " + proxy.shown() + " (" + proxy.setting() + ")";
            if (proxy != null && message.contains("407")) {
                return "the proxy " + proxy.shown() + " refused " + (proxy.user() == null ? "to connect without credentials" : "the credentials")
                        + " (HTTP 407): put user:password in " + proxy.setting();
            }
            if (proxy != null && message.startsWith("Unable to tunnel through proxy")) {
                return "the proxy " + proxy.shown() + " (" + proxy.setting() + ") refused to connect to " + uri.getHost() + ": "
                        + message.replaceFirst("^.*Proxy returns \"(.*)\"$", "$1");
            }
            if (proxy != null && e instanceof java.net.ConnectException) {
                return "cannot reach the proxy " + proxy.shown() + " (" + proxy.setting() + "): " + message;
            }
            Throwable cause = e;
            while (cause.getCause() != null) cause = cause.getCause();
            String why = String.valueOf(cause.getMessage());
            if (cause instanceof java.security.cert.CertPathValidatorException || why.contains("unable to find valid certification path")) {
                return uri.getHost() + "'s certificate is signed by a CA this machine does not trust" + via
                        + ": set OTEL_EXPORTER_OTLP_CERTIFICATE (or NODE_EXTRA_CA_CERTS) to your CA's PEM file";
            }
            if (why.contains("No subject alternative") || why.contains("doesn't match any of the subject alternative names")) {
                return uri.getHost() + "'s certificate is for another host name" + via + " (" + why + "): check LANGFUSE_BASE_URL";
            }
            if (cause instanceof java.security.cert.CertificateExpiredException || why.contains("validity check failed") || why.contains("NotAfter")) {
                return uri.getHost() + "'s certificate has expired" + via + ": the server's certificate must be renewed";
            }
            if (why.contains("Received fatal alert") && (why.contains("bad_certificate") || why.contains("certificate_required")
                    || why.contains("unknown_ca") || why.contains("certificate_unknown") || why.contains("access_denied"))) {
                return uri.getHost() + " refused the client certificate" + via + " (" + why
                        + "): check OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY";
            }
            return null;
        }
    }
    /**
     * Everything the hook reads from its environment, grouped by what uses it: the Langfuse project, how traces are
     * sent, how they are built, and where the hook keeps its files. The secret key is never part of toString().
     */
    record Config(boolean enabled, Langfuse langfuse, ExportOptions export, TraceOptions trace, Network network, StateLayout layout,
                  Path home, boolean debug, long logMaxBytes, List<String> problems) {

        /** The Langfuse project: its host and keys. */
        record Langfuse(String baseUrl, String publicKey, String secretKey) {
            boolean hasKeys() {
                return publicKey != null && !publicKey.isBlank() && secretKey != null && !secretKey.isBlank();
            }

            /** What every request to Langfuse itself carries: Basic auth from the keys, who we are, the v4 opt-in. */
            Map<String, String> headers() {
                Map<String, String> headers = new LinkedHashMap<>();
                if (hasKeys()) {
                    headers.put("Authorization", "Basic " + Base64.getEncoder().encodeToString(
                            (publicKey + ":" + secretKey).getBytes(StandardCharsets.UTF_8)));
                    headers.put("x-langfuse-public-key", publicKey);
                }
                headers.put("x-langfuse-sdk-name", "litefuse-hook");
                headers.put("x-langfuse-sdk-version", VERSION);
                // Langfuse v4 writes such requests straight to its real-time events table; older servers ignore it.
                headers.put(INGESTION_VERSION_HEADER, "4");
                return headers;
            }

            @Override
            public String toString() {
                return "Langfuse[baseUrl=" + baseUrl + ", publicKey=" + publicKey + "]";
            }
        }

        /**
         * How traces are sent: the standard OTEL_EXPORTER_OTLP_* route (null: Langfuse's own OTLP path), the time a firing
         * may take, and how long an export with an unknown outcome is given to show up before its turns are sent again.
         */
        record ExportOptions(String otlpEndpoint, Map<String, String> otlpHeaders, long budgetMillis, long unknownSettleMillis) {
        }

        /**
         * How traces are built and labelled: their user, tags, environment, parent span, longest text, masking, and how
         * much of each model call a generation shows.
         */
        record TraceOptions(String userId, List<String> tags, String environment, TraceParent parent, int maxChars, Masker masker,
                            GenerationInput generationInput) {
        }

        /**
         * What a generation's input holds (CC_LANGFUSE_GENERATION_INPUT): the messages new to the model at that call
         * (default), the whole request it was sent where the transcript records it, or nothing.
         */
        enum GenerationInput {
            NEW, FULL, OFF;

            /** `new`, `full` or `off` (any case); anything else is reported and the default applies. */
            static GenerationInput of(String value, List<String> problems) {
                if (value == null) return NEW;
                for (GenerationInput mode : values()) {
                    if (mode.name().equalsIgnoreCase(value)) return mode;
                }
                problems.add("Ignoring " + Setting.GENERATION_INPUT.variable() + "=\"" + Helpers.preview(value)
                        + "\": it takes new, full or off; using new");
                return NEW;
            }
        }

        /** A W3C traceparent's trace and span: the span every turn's root becomes a child of. */
        record TraceParent(String traceId, String spanId) {
        }

        /** Langfuse's OTLP path, unless the standard OTEL_EXPORTER_OTLP_* variables route traces elsewhere. */
        String tracesEndpoint() {
            return export.otlpEndpoint() != null ? export.otlpEndpoint() : langfuse.baseUrl() + "/api/public/otel/v1/traces";
        }

        /** Keys for Langfuse, or an OpenTelemetry endpoint (a collector that adds its own credentials). */
        boolean canExport() {
            return langfuse.hasKeys() || export.otlpEndpoint() != null;
        }

        /** Basic auth from the keys, then OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, which win on a clash. */
        Map<String, String> exportHeaders() {
            Map<String, String> headers = langfuse.headers();
            export.otlpHeaders().forEach((name, value) -> {
                headers.keySet().removeIf(existing -> existing.equalsIgnoreCase(name));
                headers.put(name, value);
            });
            return headers;
        }

        @Override
        public String toString() {
            return "Config[enabled=" + enabled + ", publicKey=" + langfuse.publicKey() + ", endpoint=" + tracesEndpoint()
                    + ", otlpHeaders=" + export.otlpHeaders().keySet() + ", userId="
                    + trace.userId() + ", debug=" + debug + ", maxChars=" + trace.maxChars() + ", home=" + home + ", budgetMs="
                    + export.budgetMillis() + ", masking=" + trace.masker().describe() + ", environment=" + trace.environment() + "]";
        }

        private static final String DEFAULT_BASE_URL = "https://cloud.langfuse.com";
        static final int DEFAULT_MAX_CHARS = 1_000_000;
        private static final long DEFAULT_EXPORT_BUDGET_MS = 3_000;
        private static final long DEFAULT_UNKNOWN_SETTLE_MS = 30_000;
        private static final long DEFAULT_LOG_MAX_BYTES = 5L * 1024 * 1024;
        static final String INGESTION_VERSION_HEADER = "x-langfuse-ingestion-version";

        static Config loadConfig(Map<String, String> env) {
            List<String> problems = new ArrayList<>();
            Path home = Paths.get(Helpers.firstNonBlank(env.get("HOME"), System.getProperty("user.home")));
            Langfuse langfuse = new Langfuse(
                    withoutTrailingSlashes(Helpers.firstNonBlank(Setting.BASE_URL.read(env), DEFAULT_BASE_URL)),
                    Setting.PUBLIC_KEY.read(env), Setting.SECRET_KEY.read(env));
            ExportOptions export = new ExportOptions(otlpTracesEndpoint(env),
                    parseOtlpHeaders(Helpers.firstNonBlank(Setting.OTLP_TRACES_HEADERS.read(env), Setting.OTLP_HEADERS.read(env))),
                    parseAtLeast(Setting.EXPORT_BUDGET_MS.read(env), 1, DEFAULT_EXPORT_BUDGET_MS),
                    parseAtLeast(Setting.UNKNOWN_SETTLE_MS.read(env), 0, DEFAULT_UNKNOWN_SETTLE_MS));
            TraceOptions trace = new TraceOptions(resolveUserId(env), traceTags(Setting.TAGS.read(env)),
                    tracingEnvironment(Setting.ENVIRONMENT.read(env), problems),
                    traceParent(Setting.TRACEPARENT.read(env), problems),
                    (int) parseAtLeast(Setting.MAX_CHARS.read(env), 1, DEFAULT_MAX_CHARS),
                    Masker.fromEnv(Setting.MASK_SECRETS.read(env), Setting.MASK_PATTERNS.read(env), problems),
                    GenerationInput.of(Setting.GENERATION_INPUT.read(env), problems));
            return new Config(isEnabled(env), langfuse, export, trace, Network.fromEnv(env, problems), StateLayout.under(home), home,
                    "true".equalsIgnoreCase(Setting.DEBUG.read(env)), parseAtLeast(Setting.LOG_MAX_BYTES.read(env), 1024, DEFAULT_LOG_MAX_BYTES),
                    List.copyOf(problems));
        }

        /** "claude-code" and the extra tags of CC_LANGFUSE_TAGS (comma-separated), each once. */
        private static List<String> traceTags(String extra) {
            Set<String> tags = new LinkedHashSet<>(List.of("claude-code"));
            if (extra != null) {
                for (String tag : extra.split(",")) {
                    if (!tag.isBlank()) tags.add(tag.strip());
                }
            }
            return List.copyOf(tags);
        }

        /** CC_LANGFUSE_TRACEPARENT as W3C Trace Context defines it (version 00, non-zero ids); anything else is reported. */
        private static TraceParent traceParent(String text, List<String> problems) {
            if (text == null) return null;
            Matcher matcher = Pattern.compile("([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?").matcher(text);
            boolean valid = matcher.matches() && !matcher.group(1).equals("ff") && !(matcher.group(1).equals("00") && matcher.group(5) != null)
                    && !matcher.group(2).matches("0+") && !matcher.group(3).matches("0+");
            if (valid) return new TraceParent(matcher.group(2), matcher.group(3));
            problems.add("Ignoring " + Setting.TRACEPARENT.variable() + "=\"" + Helpers.preview(text) + "\": not a W3C traceparent "
                    + "(00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>)");
            return null;
        }

        /**
         * LANGFUSE_TRACING_ENVIRONMENT as the Langfuse SDKs validate it: lowercase letters, digits, `-` and `_`, at most
         * 40 characters, not starting with "langfuse". A bad value is reported and left out (Langfuse's default applies).
         */
        private static String tracingEnvironment(String environment, List<String> problems) {
            if (environment == null) return null;
            if (environment.matches("[a-z0-9_-]{1,40}") && !environment.startsWith("langfuse")) return environment;
            problems.add("Ignoring " + Setting.ENVIRONMENT.variable() + "=\"" + Helpers.preview(environment) + "\": Langfuse accepts lowercase "
                    + "letters, digits, '-' and '_', at most 40 characters, not starting with \"langfuse\"");
            return null;
        }

        /** TRACE_TO_LANGFUSE=true; or, as a plugin configured with keys, unless TRACE_TO_LANGFUSE turns it off. */
        private static boolean isEnabled(Map<String, String> env) {
            String trace = env.getOrDefault(Setting.TRACE_TO_LANGFUSE.variable(), "").trim();
            if (!trace.isEmpty()) return trace.equalsIgnoreCase("true");
            return Helpers.firstNonBlank(env.get(Setting.PUBLIC_KEY.pluginVariable())) != null;
        }

        /** A URL without the slashes it may end with (https://host/ and https://host are one Langfuse). */
        private static String withoutTrailingSlashes(String url) {
            int end = url.length();
            while (end > 0 && url.charAt(end - 1) == '/') end--;
            return url.substring(0, end);
        }

        /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, or OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces (the OTel spec's rule). */
        private static String otlpTracesEndpoint(Map<String, String> env) {
            String traces = Setting.OTLP_TRACES_ENDPOINT.read(env);
            if (traces != null) return traces;
            String base = Setting.OTLP_ENDPOINT.read(env);
            return base == null ? null : withoutTrailingSlashes(base) + "/v1/traces";
        }

        /** The OTel spec's header list: comma-separated key=value pairs, values URL-encoded. */
        private static Map<String, String> parseOtlpHeaders(String list) {
            Map<String, String> headers = new LinkedHashMap<>();
            if (list == null) return headers;
            for (String pair : list.split(",")) {
                int equals = pair.indexOf('=');
                if (equals <= 0) continue;
                headers.put(pair.substring(0, equals).strip(),
                        java.net.URLDecoder.decode(pair.substring(equals + 1).strip(), StandardCharsets.UTF_8));
            }
            return headers;
        }

        /** LITEFUSE_USER_ID, then the OS user, then the host name (as the reference's getpass.getuser() fallback). */
        private static String resolveUserId(Map<String, String> env) {
            String user = Helpers.firstNonBlank(Setting.USER_ID.read(env), System.getProperty("user.name"), env.get("USER"), env.get("HOSTNAME"));
            // The file is read only when nothing above names anyone.
            return user != null ? user : Helpers.firstNonBlank(readHostName(), "unknown");
        }

        private static String readHostName() {
            try {
                return Files.readString(Paths.get("/etc/hostname")).trim();
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }

        /** The number in `value` when it is at least `min`, else the fallback. */
        private static long parseAtLeast(String value, long min, long fallback) {
            // Unset is the usual case: answered without the exception that Long.parseLong("") throws.
            if (value == null || value.isBlank()) return fallback;
            try {
                long parsed = Long.parseLong(value.trim());
                return parsed >= min ? parsed : fallback;
            } catch (NumberFormatException e) {
                return fallback;
            }
        }
    }

    /**
     * The log: one line per event, appended to the hook's log file (never on Claude Code's terminal), or to stderr for
     * the commands. An object handed to what logs, so nothing shares a mutable static.
     */
    static final class Log {
        private final Path file;
        private final Path previous;
        private final Path lockFile;
        private final long maxBytes;
        private final boolean debugEnabled;
        /** The file and its folder exist, private: checked once, not per line (again after a failed write). */
        private volatile boolean fileReady;
        /** The last error logged, for the record of the run (RunRecord): doctor reads that, not the log's text. */
        private volatile String lastError;

        /** A firing tells a log it cannot rotate once, not at every line. */
        private volatile boolean rotationFailed;

        private Log(Path file, Path previous, Path lockFile, long maxBytes, boolean debugEnabled) {
            this.file = file;
            this.previous = previous;
            this.lockFile = lockFile;
            this.maxBytes = maxBytes;
            this.debugEnabled = debugEnabled;
        }

        /** The hook's log file, ~/.claude/state/litefuse_hook.log, rotated to litefuse_hook.log.1 past CC_LANGFUSE_LOG_MAX_BYTES. */
        static Log toFile(Config config) {
            StateLayout layout = config.layout();
            return new Log(layout.log(), layout.previousLog(), layout.logLock(), config.logMaxBytes(), config.debug());
        }

        static Log toStderr() {
            return new Log(null, null, null, 0, false);
        }

        boolean debugEnabled() {
            return debugEnabled;
        }

        /** Appends one line; never throws (the hook must never fail because of its log). */
        private void log(String level, String message) {
            String line = timestamp(System.currentTimeMillis()) + " [" + level + "] " + message.replace('\n', ' ') + "\n";
            if (file == null) {
                System.err.print(line);
                return;
            }
            try {
                if (!fileReady) {
                    PrivateFiles.ensurePrivateDir(file.getParent());
                    PrivateFiles.ensurePrivateFile(lockFile);
                    fileReady = true;
                }
                append(line.getBytes(StandardCharsets.UTF_8));
            } catch (IOException | RuntimeException e) {
                fileReady = false; // best effort: the next line checks the file again; nothing else to tell
            }
        }

        /** The threads of one JVM take turns: a file lock belongs to the JVM, not to a thread. */
        private static final java.util.concurrent.locks.ReentrantLock APPENDING = new java.util.concurrent.locks.ReentrantLock();

        /**
         * Appends one whole line under the log's lock, after moving the log to .log.1 when the line would take it past
         * maxBytes. Every writer opens the log by name under that lock, so no line goes to a file another firing just moved.
         */
        private void append(byte[] line) throws IOException {
            APPENDING.lock();
            try (FileChannel lock = FileChannel.open(lockFile, StandardOpenOption.WRITE);
                 java.nio.channels.FileLock held = lock.lock()) {
                long size = Files.exists(file) ? Files.size(file) : 0;
                if (size > 0 && size + line.length > maxBytes) rotate();
                PrivateFiles.ensurePrivateFile(file);
                Files.write(file, line, StandardOpenOption.APPEND);
            } finally {
                APPENDING.unlock();
            }
        }

        private void rotate() throws IOException {
            try {
                Files.move(file, previous, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                if (rotationFailed) return;
                rotationFailed = true;
                byte[] line = (timestamp(System.currentTimeMillis()) + " [WARN] Could not rotate the log to " + previous + " ("
                        + e.getClass().getSimpleName() + "); it grows past " + maxBytes + " bytes (" + Setting.LOG_MAX_BYTES.variable() + ")\n")
                        .getBytes(StandardCharsets.UTF_8);
                Files.write(file, line, StandardOpenOption.APPEND);
            }
        }

        void debug(String message) {
            if (debugEnabled) log("DEBUG", message);
        }

        /**
         * "2026-01-31 12:00:00Z": UTC, composed by hand, since a formatter and the local zone (the time-zone database)
         * would cost a hook run some 20 ms of start-up for one line.
         */
        static String timestamp(long epochMillis) {
            LocalDateTime utc = LocalDateTime.ofEpochSecond(Math.floorDiv(epochMillis, 1000), 0, java.time.ZoneOffset.UTC);
            return utc.getYear() + "-" + two(utc.getMonthValue()) + "-" + two(utc.getDayOfMonth()) + " " + two(utc.getHour()) + ":"
                    + two(utc.getMinute()) + ":" + two(utc.getSecond()) + "Z";
        }

        private static String two(int value) {
            return value < 10 ? "0" + value : String.valueOf(value);
        }

        /** Nanoseconds as seconds with two decimals ("0.06s"), without a Formatter. */
        static String seconds(long nanos) {
            long hundredths = Math.round(nanos / 1e7);
            return hundredths / 100 + "." + two((int) (hundredths % 100)) + "s";
        }

        void info(String message) {
            log("INFO", message);
        }

        void warn(String message) {
            log("WARN", message);
        }

        void error(String message) {
            lastError = message;
            log("ERROR", message);
        }

        /** The last message error() logged through this log; null when none. */
        String lastError() {
            return lastError;
        }
    }

    /** State and locking: private files, written atomically, one lock per session. */
    static final class StateFiles {
        private StateFiles() {
        }

        /** An exclusive advisory lock on one session's lock file, taken with a bounded wait. */
        static final class FileLock implements AutoCloseable {
            private final FileChannel channel;
            private final java.nio.channels.FileLock lock;

            private FileLock(FileChannel channel, java.nio.channels.FileLock lock) {
                this.channel = channel;
                this.lock = lock;
            }

            /** Returns null when another process holds the lock for longer than the timeout. */
            static FileLock acquire(Path path, long timeoutMillis) throws IOException {
                PrivateFiles.ensurePrivateDir(path.getParent());
                PrivateFiles.ensurePrivateFile(path);
                FileChannel channel = FileChannel.open(path, StandardOpenOption.WRITE);
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
                try {
                    while (true) {
                        java.nio.channels.FileLock lock = tryLock(channel);
                        if (lock != null) return new FileLock(channel, lock);
                        if (System.nanoTime() > deadline) break;
                        Thread.sleep(20);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                channel.close();
                return null;
            }

            private static java.nio.channels.FileLock tryLock(FileChannel channel) throws IOException {
                try {
                    return channel.tryLock();
                } catch (OverlappingFileLockException e) {
                    return null; // held by another thread of this JVM
                }
            }

            @Override
            public void close() throws IOException {
                try {
                    lock.release();
                } finally {
                    channel.close();
                }
            }
        }

        /** Reads a state file; a missing or unreadable one yields an empty object (the turn ids keep re-sends idempotent). */
        static ObjectNode loadState(Path stateFile, Log log) {
            try {
                if (!Files.exists(stateFile)) return Json.NODES.objectNode();
                JsonNode parsed = Json.parse(Files.readAllBytes(stateFile));
                if (parsed instanceof ObjectNode object) return object;
                log.warn("State file " + stateFile + " is not a JSON object; starting this session afresh");
            } catch (IOException e) {
                log.warn("State file " + stateFile + " is unreadable (" + e.getClass().getSimpleName() + "); starting this session afresh");
            }
            return Json.NODES.objectNode();
        }

        /** Writes the state atomically and owner-only (see writeAtomically). */
        static void saveState(Path stateFile, ObjectNode state) throws IOException {
            PrivateFiles.ensurePrivateDir(stateFile.getParent());
            PrivateFiles.writeAtomically(stateFile, Json.toBytes(state, new com.fasterxml.jackson.core.util.DefaultPrettyPrinter()),
                    PrivateFiles.OWNER_ONLY);
        }

        /** A stable key even if session ids collide: sha256(session_id::transcript_path). */
        static String stateKey(String sessionId, String transcriptPath) {
            return sha256Hex(sessionId + "::" + transcriptPath);
        }

        private static String sha256Hex(String text) {
            return HexFormat.of().formatHex(Helpers.sha256(text));
        }
    }

    /** The hook payload Claude Code writes on stdin. */
    static final class Payload {
        private Payload() {
        }

        private static final int MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

        /** The Stop payload from stdin; empty, oversized or garbage input yields an empty object and one log line. */
        static JsonNode readHookPayload(InputStream stdin, Log log) {
            try {
                byte[] data = stdin.readNBytes(MAX_PAYLOAD_BYTES + 1);
                if (data.length > MAX_PAYLOAD_BYTES) {
                    log.warn("Hook payload on stdin is larger than " + MAX_PAYLOAD_BYTES + " bytes; ignoring it");
                    return Json.NODES.objectNode();
                }
                // Bytes, not text: the same parser as the transcript's lines, set up once. No value at all: no payload.
                JsonNode payload = Json.parse(data);
                if (payload == null) return Json.NODES.objectNode();
                if (payload.isObject()) return payload;
                log.warn("Hook payload on stdin is not a JSON object; ignoring it");
            } catch (IOException e) {
                log.warn("Hook payload on stdin is not valid JSON; ignoring it");
            }
            return Json.NODES.objectNode();
        }

        /**
         * What a firing is about: the session and its transcript, the final text Claude Code reports (the Stop race),
         * and the event (Stop, or SessionEnd: the session is over, so its last turn is sent as it stands).
         */
        record HookTarget(String sessionId, Path transcriptPath, String lastAssistantMessage, String event) {
            boolean sessionEnded() {
                return "SessionEnd".equals(event);
            }
        }

        /** Accepts the field spellings the reference accepts (camelCase, snake_case, nested objects). */
        static HookTarget extractSessionAndTranscript(JsonNode payload, Path home, Log log) {
            String sessionId = Helpers.firstNonBlank(payload.path("sessionId").textValue(), payload.path("session_id").textValue(),
                    payload.path("session").path("id").textValue());
            String transcript = Helpers.firstNonBlank(payload.path("transcriptPath").textValue(),
                    payload.path("transcript_path").textValue(), payload.path("transcript").path("path").textValue());
            Path transcriptPath = null;
            if (transcript != null) {
                try {
                    String expanded = transcript.startsWith("~/") ? home + transcript.substring(1) : transcript;
                    transcriptPath = Paths.get(expanded).toAbsolutePath().normalize();
                } catch (RuntimeException e) {
                    log.warn("Hook payload has an unusable transcript path");
                }
            }
            return new HookTarget(sessionId, transcriptPath, payload.path("last_assistant_message").textValue(),
                    payload.path("hook_event_name").textValue());
        }
    }

    /** Transcript helpers: what a row is and what it holds. */
    static final class Transcript {
        private Transcript() {
        }

        static JsonNode getContent(JsonNode row) {
            JsonNode message = row.get("message");
            if (message != null && message.isObject()) return message.get("content");
            return row.get("content");
        }

        /**
         * Claude Code rows carry type=user/assistant, or message.role in some versions. A row of another type is not a
         * conversation row even when it holds a message (2.1.3xx's api-request-blob copies what went to the API).
         */
        static String getRole(JsonNode row) {
            String type = row.path("type").asText("");
            if (type.equals("user") || type.equals("assistant")) return type;
            if (!type.isEmpty()) return null;
            String role = row.path("message").path("role").asText("");
            if (role.equals("user") || role.equals("assistant")) return role;
            return null;
        }

        private static boolean isToolResult(JsonNode row) {
            return "user".equals(getRole(row)) && !iterToolResults(getContent(row)).isEmpty();
        }

        static List<JsonNode> iterToolResults(JsonNode content) {
            return blocksOfType(content, "tool_result");
        }

        static List<JsonNode> iterToolUses(JsonNode content) {
            return blocksOfType(content, "tool_use");
        }

        static List<JsonNode> blocksOfType(JsonNode content, String type) {
            List<JsonNode> out = new ArrayList<>();
            if (content != null && content.isArray()) {
                for (JsonNode block : content) {
                    if (block.isObject() && type.equals(block.path("type").asText())) out.add(block);
                }
            }
            return out;
        }

        /** The text of a content value: a string, or the text blocks of a block list joined by newlines. */
        static String extractText(JsonNode content) {
            if (content == null || content.isNull()) return "";
            if (content.isTextual()) return content.asText();
            if (!content.isArray()) return "";
            List<String> parts = new ArrayList<>();
            for (JsonNode block : content) {
                if (block.isTextual()) parts.add(block.asText());
                else if ("text".equals(block.path("type").asText())) parts.add(block.path("text").asText(""));
            }
            parts.removeIf(String::isEmpty);
            return String.join("\n", parts);
        }

        /** The text of a tool_result's content; image blocks become a one-line summary, never base64. */
        static String toolResultText(JsonNode content) {
            if (content == null || content.isNull()) return "";
            if (content.isTextual()) return content.asText();
            if (!content.isArray()) return Json.toJson(content);
            List<String> parts = new ArrayList<>();
            for (JsonNode block : content) {
                String type = block.path("type").asText();
                if (type.equals("text")) parts.add(block.path("text").asText(""));
                else if (type.equals("image")) parts.add(mediaSummary(block));
                else parts.add(Json.toJson(block));
            }
            return String.join("\n", parts);
        }

        /** "[image: image/png, ~12345 bytes]": an image or document block in one line, never its base64. */
        static String mediaSummary(JsonNode block) {
            JsonNode source = block.path("source");
            int approxBytes = source.path("data").asText("").length() * 3 / 4;
            return "[" + block.path("type").asText("image") + ": " + source.path("media_type").asText("unknown") + ", ~" + approxBytes + " bytes]";
        }

        record Truncated(String text, boolean truncated, int origLen) {
            /** Adds `<prefix>_truncated` and `<prefix>_orig_len` to metadata, only when the text was cut. */
            void describeInto(ObjectNode metadata, String prefix) {
                if (!truncated) return;
                metadata.put(prefix + "_truncated", true);
                metadata.put(prefix + "_orig_len", origLen);
            }
        }

        static Truncated truncateText(String text, int maxChars) {
            if (text == null) return new Truncated("", false, 0);
            if (text.length() <= maxChars) return new Truncated(text, false, text.length());
            return new Truncated(text.substring(0, maxChars), true, text.length());
        }

        /** The model of an assistant row; null for Claude Code's locally generated "<synthetic>" rows. */
        static String getModel(JsonNode row) {
            String model = row.path("message").path("model").asText("");
            if (model.isEmpty() || model.equals("<synthetic>")) return null;
            return model;
        }

        static String getMessageId(JsonNode row) {
            String id = row.path("message").path("id").asText("");
            return id.isEmpty() ? null : id;
        }

        /** Claude Code's locally written "No response requested." rows: <synthetic>, and not an API error. */
        static boolean isLocalPlaceholder(JsonNode row) {
            return "<synthetic>".equals(row.path("message").path("model").asText())
                    && !row.path("isApiErrorMessage").asBoolean(false);
        }

        private static Instant getTimestamp(JsonNode row) {
            return Helpers.parseInstant(row.path("timestamp").asText(""));
        }

        /** What a user row is, checked in the order of docs/transcript-format.md. */
        enum UserRowKind { TOOL_RESULT, COMPACT_SUMMARY, META, INTERRUPT, COMMAND, LOCAL_OUTPUT, TASK_NOTIFICATION, PROMPT }

        private static final Pattern COMMAND_NAME = Pattern.compile("<command-name>\\s*/?([^<]*?)\\s*</command-name>");
        private static final Pattern COMMAND_ARGS = Pattern.compile("<command-args>([\\s\\S]*?)</command-args>");

        private static final Set<String> INTERRUPT_MARKERS =
                Set.of("[Request interrupted by user]", "[Request interrupted by user for tool use]");

        static UserRowKind classifyUserRow(JsonNode row) {
            if (isToolResult(row)) return UserRowKind.TOOL_RESULT;
            if (row.path("isCompactSummary").asBoolean(false)) return UserRowKind.COMPACT_SUMMARY;
            if (row.path("isMeta").asBoolean(false)) return UserRowKind.META;
            String text = extractText(getContent(row));
            String trimmed = text.strip();
            if (INTERRUPT_MARKERS.contains(trimmed)) return UserRowKind.INTERRUPT;
            if (text.contains("<command-name>")) return UserRowKind.COMMAND;
            if (trimmed.startsWith("<local-command-stdout>") || trimmed.startsWith("<local-command-stderr>")
                    || trimmed.startsWith("<bash-input>") || trimmed.startsWith("<bash-stdout>")
                    || trimmed.startsWith("<bash-stderr>") || trimmed.startsWith("<local-command-caveat>")) {
                return UserRowKind.LOCAL_OUTPUT;
            }
            if (trimmed.startsWith("<task-notification>")
                    || "task-notification".equals(row.path("origin").path("kind").asText())) {
                return UserRowKind.TASK_NOTIFICATION;
            }
            return UserRowKind.PROMPT;
        }

        private static final Pattern NOTIFICATION_FIELD = Pattern.compile("<(task-id|tool-use-id|status)>\\s*([^<]*?)\\s*</\\1>");

        /**
         * Who started the turn this user row opens, as `claude_code.origin` shows it: the row's own `origin` (2.1.178+:
         * kind, producer...), with, for a task notification, the kind where the row has none and the task, tool call and
         * status it reports. Null when the row says nothing of it (a prompt typed before 2.1.178).
         */
        static ObjectNode origin(JsonNode row, UserRowKind kind) {
            ObjectNode origin = row.path("origin").isObject() ? ((ObjectNode) row.get("origin")).deepCopy() : null;
            if (kind != UserRowKind.TASK_NOTIFICATION) return origin;
            if (origin == null) origin = Json.NODES.objectNode();
            if (!origin.path("kind").isTextual()) origin.put("kind", "task-notification");
            Matcher field = NOTIFICATION_FIELD.matcher(extractText(getContent(row)));
            while (field.find()) origin.put(field.group(1).replace('-', '_'), field.group(2));
            return origin;
        }

        /** The meta row Claude Code writes when a Stop hook blocks the stop ("Stop hook feedback:\n<reason>"). */
        static boolean isStopHookFeedback(JsonNode row) {
            return extractText(getContent(row)).startsWith("Stop hook feedback:");
        }

        /** The prompt as the user typed it: "/name args" for a slash command, the text otherwise. */
        static String promptText(JsonNode row, UserRowKind kind) {
            String text = extractText(getContent(row));
            if (kind != UserRowKind.COMMAND) return text;
            Matcher name = COMMAND_NAME.matcher(text);
            if (!name.find()) return text;
            Matcher args = COMMAND_ARGS.matcher(text);
            String arguments = args.find() ? args.group(1).strip() : "";
            return ("/" + name.group(1).strip() + (arguments.isEmpty() ? "" : " " + arguments));
        }

        /** One transcript row, the byte offset where its line starts and the line's length in bytes. */
        record Row(JsonNode json, long offset, int length, String uuid, Instant timestamp) {
            /** Reads the fields every step needs once, where the row is parsed. */
            Row(JsonNode json, long offset, int length) {
                this(json, offset, length, json.path("uuid").asText(""), getTimestamp(json));
            }

            String type() {
                return json.path("type").asText("");
            }
        }

        private static final Set<String> CLAUDE_CODE_ROW_TYPES = Set.of("user", "assistant", "system", "summary", "progress",
                "attachment", "file-history-snapshot", "file-history-delta", "queue-operation", "last-prompt", "ai-title",
                "custom-title", "agent-name", "permission-mode", "mode", "pr-link", "bridge-session");

        static boolean isClaudeCodeRow(JsonNode row) {
            return CLAUDE_CODE_ROW_TYPES.contains(row.path("type").asText());
        }
    }

    /** Per-session progress: what the hook has read and sent of each transcript, as its state file keeps it. */
    static final class Progress {
        private Progress() {
        }

        /**
         * Per-session progress: where to read next, how many turns were sent, which user rows began them, what the
         * transcript looked like then (file identity and a hash of its first bytes, to notice a replaced file), the last
         * turn sent (it may still grow: its spans are remembered so only new ones go out), earlier turns that wait for
         * work they started in the background (workflow runs, background agents: sent again as it finishes), an export
         * whose outcome is not known yet (asked about before anything is sent again), and, in full input mode, where
         * the last recorded requests' messages are (Requests.Store.carry: a later run rebuilds requests that extend them).
         */
        record SessionState(long offset, int turnCount, List<String> emittedUserUuids, TranscriptIdentity identity,
                            SentTurn openTurn, List<SentTurn> waitingTurns, InFlight inFlight, JsonNode requestCarry, CostSent costSent) {
            /** A session nothing was read or sent of yet (replay starts from it). */
            static final SessionState NEW = new SessionState(0, 0, List.of(), null, null, List.of(), null, null, CostSent.NONE);

            /** Read again from the start: turns already sent stay skipped and keep their numbers; requests are found anew. */
            SessionState restart() {
                return new SessionState(0, turnCount, emittedUserUuids, null, openTurn, waitingTurns, inFlight, null, costSent);
            }

            SessionState withInFlight(InFlight export) {
                return new SessionState(offset, turnCount, emittedUserUuids, identity, openTurn, waitingTurns, export, requestCarry, costSent);
            }

            SessionState withOffset(long next, TranscriptIdentity now) {
                return new SessionState(next, turnCount, emittedUserUuids, now, openTurn, waitingTurns, inFlight, requestCarry, costSent);
            }

            /** The same, with what Langfuse acknowledged of this run's traces counted into the session's cost. */
            SessionState withCostSent(CostSent more) {
                return new SessionState(offset, turnCount, emittedUserUuids, identity, openTurn, waitingTurns, inFlight, requestCarry,
                        costSent.plus(more));
            }

            SessionState withRequestCarry(JsonNode carry) {
                return new SessionState(offset, turnCount, emittedUserUuids, identity, openTurn, waitingTurns, inFlight, carry, costSent);
            }

            /** What was sent of the turn this user row began, if it may still grow (the open turn, or one that waits); else null. */
            SentTurn sentTurn(String userUuid) {
                if (openTurn != null && openTurn.userUuid().equals(userUuid)) return openTurn;
                for (SentTurn waiting : waitingTurns) {
                    if (waiting.userUuid().equals(userUuid)) return waiting;
                }
                return null;
            }

            /** Where the next run must read from to see every turn that may still grow (Long.MAX_VALUE: none). */
            long growingFrom() {
                long from = openTurn == null ? Long.MAX_VALUE : openTurn.offset();
                for (SentTurn waiting : waitingTurns) from = Math.min(from, waiting.offset());
                return from;
            }

            /**
             * Records parts Langfuse has: their turns count as sent; the newest becomes the open turn, and a turn it
             * replaces stays only while it waits for background work.
             */
            SessionState recordSent(List<SentPart> parts) {
                List<String> emitted = new ArrayList<>(emittedUserUuids);
                int count = turnCount;
                SentTurn open = openTurn;
                List<SentTurn> waiting = new ArrayList<>(waitingTurns);
                for (SentPart part : parts) {
                    SentTurn sent = part.turn();
                    if (!emitted.contains(sent.userUuid())) emitted.add(sent.userUuid());
                    count = Math.max(count, sent.turnNumber());
                    SentTurn before = open != null && open.userUuid().equals(sent.userUuid()) ? open : null;
                    for (SentTurn entry : waiting) if (entry.userUuid().equals(sent.userUuid())) before = entry;
                    SentTurn merged = before == null ? sent : before.plus(sent);
                    waiting.removeIf(entry -> entry.userUuid().equals(sent.userUuid()));
                    if (open == null || open.userUuid().equals(sent.userUuid()) || sent.turnNumber() >= open.turnNumber()) {
                        if (open != null && !open.userUuid().equals(sent.userUuid()) && open.waitsForAgents()) waiting.add(open);
                        open = merged;
                    } else if (merged.waitsForAgents()) {
                        waiting.add(merged);
                    }
                }
                return new SessionState(offset, count, List.copyOf(emitted), identity, open, List.copyOf(waiting), inFlight, requestCarry, costSent);
            }

            /** These turns wait no more (their background work finished with nothing left to send). */
            SessionState settled(List<String> userUuids) {
                if (userUuids.isEmpty()) return this;
                List<SentTurn> waiting = waitingTurns.stream().filter(entry -> !userUuids.contains(entry.userUuid())).toList();
                SentTurn open = openTurn != null && userUuids.contains(openTurn.userUuid()) ? openTurn.waiting(false) : openTurn;
                return new SessionState(offset, turnCount, emittedUserUuids, identity, open, waiting, inFlight, requestCarry, costSent);
            }
        }

        /**
         * The transcript file (inode) and a checksum of its first bytes: CRC-32, or SHA-256 in states written before
         * (`sha256`), which are checked the old way once and then saved the new one.
         */
        private record TranscriptIdentity(String fileKey, int headLength, String headChecksum, boolean sha256) {
        }

        /**
         * What has been sent of one turn: its trace, when it last went out, its spans, the messages whose usage they
         * carried (never counted twice), and whether it waits for work it started in the background.
         */
        record SentTurn(String userUuid, int turnNumber, long offset, String traceId, Instant sentAt, List<String> spanIds,
                        List<String> usageMessageIds, boolean waitsForAgents) {
            SentTurn plus(SentTurn more) {
                List<String> spans = new ArrayList<>(spanIds);
                spans.addAll(more.spanIds());
                List<String> usage = new ArrayList<>(usageMessageIds);
                usage.addAll(more.usageMessageIds());
                return new SentTurn(userUuid, turnNumber, offset, traceId, more.sentAt(), List.copyOf(spans), List.copyOf(usage),
                        more.waitsForAgents());
            }

            SentTurn waiting(boolean waits) {
                return new SentTurn(userUuid, turnNumber, offset, traceId, sentAt, spanIds, usageMessageIds, waits);
            }
        }

        /** One turn's spans in one export, and the span to look for in Langfuse if nobody learns how the export went. */
        record SentPart(SentTurn turn, String witnessId, Instant witnessStart) {
        }

        /**
         * What the session's acknowledged generations cost by Claude Code's prices, and how many with usage had no price:
         * what a cost-state row of the session is checked against (only when none was unpriced).
         */
        record CostSent(double usd, int unpriced) {
            static final CostSent NONE = new CostSent(0, 0);

            CostSent plus(CostSent more) {
                return new CostSent(usd + more.usd(), unpriced + more.unpriced());
            }
        }

        /** An export recorded before it starts: a run killed or cut off mid-export leaves it, and the next run asks. */
        record InFlight(Instant since, List<SentPart> parts) {
        }

        static SessionState loadSessionState(ObjectNode state) {
            List<String> emitted = new ArrayList<>();
            for (JsonNode uuid : state.path("emitted_user_uuids")) emitted.add(uuid.asText());
            boolean sha256 = !state.has("head_crc32");
            TranscriptIdentity identity = state.has("head_crc32") || state.has("head_sha256") ? new TranscriptIdentity(
                    state.path("file_key").textValue(), state.path("head_length").asInt(0),
                    state.path(sha256 ? "head_sha256" : "head_crc32").asText(), sha256) : null;
            SentTurn open = state.path("open_turn").isObject() ? readSentTurn(state.get("open_turn")) : null;
            List<SentTurn> waiting = new ArrayList<>();
            for (JsonNode turn : state.path("waiting_turns")) waiting.add(readSentTurn(turn));
            InFlight inFlight = null;
            if (state.path("in_flight").isObject()) {
                List<SentPart> parts = new ArrayList<>();
                for (JsonNode part : state.path("in_flight").path("parts")) {
                    parts.add(new SentPart(readSentTurn(part), part.path("witness").asText(),
                            parseInstant(part.path("witness_start").asText(""), Instant.EPOCH)));
                }
                Instant since = parseInstant(state.path("in_flight").path("since").asText(""), Instant.EPOCH);
                if (!parts.isEmpty()) inFlight = new InFlight(since, List.copyOf(parts));
            }
            return new SessionState(Math.max(0, state.path("offset").asLong(0)), Math.max(0, state.path("turn_count").asInt(0)),
                    List.copyOf(emitted), identity, open, List.copyOf(waiting), inFlight,
                    state.path("request_carry").isObject() ? state.get("request_carry") : null,
                    new CostSent(state.path("cost_sent_usd").asDouble(0), state.path("cost_unpriced").asInt(0)));
        }

        private static SentTurn readSentTurn(JsonNode node) {
            // Loops, not lambdas: install's training run never reads a sent turn, so its archive would lack them (0.5 ms each).
            List<String> spans = new ArrayList<>();
            for (JsonNode id : node.path("span_ids")) spans.add(id.asText());
            List<String> usage = new ArrayList<>();
            for (JsonNode id : node.path("usage_message_ids")) usage.add(id.asText());
            return new SentTurn(node.path("user_uuid").asText(""), node.path("turn_number").asInt(0),
                    Math.max(0, node.path("offset").asLong(0)), node.path("trace_id").asText(""),
                    parseInstant(node.path("sent_at").asText(""), Instant.EPOCH), List.copyOf(spans), List.copyOf(usage),
                    node.path("waits_for_agents").asBoolean(false));
        }

        private static Instant parseInstant(String text, Instant fallback) {
            return Objects.requireNonNullElse(Helpers.parseInstant(text), fallback);
        }

        static ObjectNode writeSessionState(SessionState sessionState, String sessionId, Path transcriptPath) {
            ObjectNode state = Json.NODES.objectNode();
            state.put("session_id", sessionId);
            state.put("transcript_path", transcriptPath.toString());
            state.put("offset", sessionState.offset());
            state.put("turn_count", sessionState.turnCount());
            ArrayNode emitted = state.putArray("emitted_user_uuids");
            sessionState.emittedUserUuids().forEach(emitted::add);
            if (sessionState.openTurn() != null) writeSentTurn(state.putObject("open_turn"), sessionState.openTurn());
            if (!sessionState.waitingTurns().isEmpty()) {
                ArrayNode waiting = state.putArray("waiting_turns");
                for (SentTurn turn : sessionState.waitingTurns()) writeSentTurn(waiting.addObject(), turn);
            }
            InFlight inFlight = sessionState.inFlight();
            if (inFlight != null) {
                ObjectNode node = state.putObject("in_flight");
                node.put("since", inFlight.since().toString());
                ArrayNode parts = node.putArray("parts");
                for (SentPart part : inFlight.parts()) {
                    ObjectNode entry = writeSentTurn(parts.addObject(), part.turn());
                    entry.put("witness", part.witnessId());
                    entry.put("witness_start", part.witnessStart().toString());
                }
            }
            TranscriptIdentity identity = sessionState.identity();
            if (identity != null) {
                state.put("file_key", identity.fileKey());
                state.put("head_length", identity.headLength());
                state.put(identity.sha256() ? "head_sha256" : "head_crc32", identity.headChecksum());
            }
            if (sessionState.requestCarry() != null) state.set("request_carry", sessionState.requestCarry());
            if (!sessionState.costSent().equals(CostSent.NONE)) {
                state.put("cost_sent_usd", sessionState.costSent().usd());
                state.put("cost_unpriced", sessionState.costSent().unpriced());
            }
            state.put("updated", Instant.now().toString());
            return state;
        }

        private static ObjectNode writeSentTurn(ObjectNode node, SentTurn turn) {
            node.put("user_uuid", turn.userUuid());
            node.put("turn_number", turn.turnNumber());
            node.put("offset", turn.offset());
            node.put("trace_id", turn.traceId());
            node.put("sent_at", turn.sentAt().toString());
            ArrayNode spans = node.putArray("span_ids");
            turn.spanIds().forEach(spans::add);
            ArrayNode usage = node.putArray("usage_message_ids");
            turn.usageMessageIds().forEach(usage::add);
            if (turn.waitsForAgents()) node.put("waits_for_agents", true);
            return node;
        }

        private static final int HEAD_BYTES = 4096;

        /**
         * The file's identity (inode) and a checksum of its first `length` bytes: a CRC-32 unless `sha256`. A checksum,
         * not a digest: it only tells an append from a rewrite, and a cold JVM took 1.5 ms of every firing for the
         * SHA-256 of 4 KiB, against 0.4 ms for the JDK's CRC-32 (zlib's; CRC-32C is Java code, interpreted as slowly).
         */
        private static TranscriptIdentity transcriptIdentity(Path transcriptPath, int length, boolean sha256) throws IOException {
            Object fileKey = Files.readAttributes(transcriptPath, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
            byte[] head;
            try (InputStream in = Files.newInputStream(transcriptPath)) {
                head = in.readNBytes(length);
            }
            String checksum;
            if (sha256) {
                checksum = HexFormat.of().formatHex(Helpers.sha256(head));
            } else {
                java.util.zip.CRC32 crc = new java.util.zip.CRC32();
                crc.update(head);
                checksum = Long.toHexString(crc.getValue());
            }
            return new TranscriptIdentity(fileKey == null ? null : fileKey.toString(), head.length, checksum, sha256);
        }

        /**
         * The identity to save with `offset`: the one `startedFrom` holds when it covers as many bytes (transcriptChange
         * verified it as this run began), else read and hashed anew. Reusing it saves a read and a digest per run, and
         * a rewrite during the run still shows on the next one.
         */
        static TranscriptIdentity transcriptIdentity(Path transcriptPath, long offset, SessionState startedFrom) throws IOException {
            TranscriptIdentity verified = startedFrom.identity();
            int length = (int) Math.min(HEAD_BYTES, offset);
            if (verified != null && !verified.sha256() && verified.headLength() == length) return verified;
            return transcriptIdentity(transcriptPath, length, false);
        }

        /** Why the saved offset no longer fits the transcript (shrunk, replaced, rewritten), or null when it does. */
        static String transcriptChange(Path transcriptPath, SessionState state) throws IOException {
            if (state.offset() == 0) return null;
            long size = Files.size(transcriptPath);
            if (size < state.offset()) return "shrank below the saved offset (" + size + " < " + state.offset() + " bytes)";
            TranscriptIdentity saved = state.identity();
            if (saved == null) return null;
            TranscriptIdentity now = transcriptIdentity(transcriptPath, saved.headLength(), saved.sha256());
            if (saved.fileKey() != null && now.fileKey() != null && !saved.fileKey().equals(now.fileKey())) {
                return "was replaced by a new file";
            }
            if (!saved.headChecksum().equals(now.headChecksum())) return "was rewritten (its first bytes changed)";
            return null;
        }
    }

    /** The incremental reader: the complete lines after an offset, streamed as rows. */
    static final class Reader {
        private Reader() {
        }

        static final int MAX_LINE_BYTES = 64 * 1024 * 1024;

        record ReadResult(List<Transcript.Row> rows, long endOffset, int badLines) {
        }

        /**
         * Row types nothing downstream reads (copies of subagent messages, file snapshots, titles...): parsed only up to
         * their type and kept as {"type": ...} (a tenth of a transcript's bytes, or more). The request and attachment rows
         * are read only as far as generations show what the model was sent (unreadTypes).
         */
        private static final Set<String> UNREAD_ROW_TYPES = Set.of("progress", "file-history-snapshot", "file-history-delta",
                "queue-operation", "last-prompt", "ai-title", "custom-title", "agent-name", "permission-mode", "mode", "pr-link",
                "bridge-session", "atis-latch", "tools-used");

        static final String REQUEST_BLOB = "api-request-blob";
        static final String REQUEST_SHAPE = "api-request-shape";

        /** The row types left unread for this input mode: request blobs and attachments unless inputs are shown, shapes unless in full. */
        static Set<String> unreadTypes(Config.GenerationInput mode) {
            Set<String> unread = new HashSet<>(UNREAD_ROW_TYPES);
            if (mode == Config.GenerationInput.OFF) unread.addAll(List.of(REQUEST_BLOB, "attachment"));
            if (mode != Config.GenerationInput.FULL) unread.add(REQUEST_SHAPE);
            return Set.copyOf(unread);
        }

        /** Where parsed rows go: the types left unread, the consumer of each row, the log for lines that are not rows. */
        record RowSink(Set<String> unreadTypes, Consumer<Transcript.Row> consumer, Log log) {
        }

        /** The row whose line starts at `offset`, read whole; null when there is none (a line cut short, a changed file). */
        static JsonNode readRowAt(FileChannel channel, long offset) throws IOException {
            if (offset < 0) return null;
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            ByteBuffer buffer = ByteBuffer.allocate(8192);
            for (long at = offset; line.size() <= MAX_LINE_BYTES; ) {
                buffer.clear();
                int read = channel.read(buffer, at);
                if (read <= 0) return null;
                for (int i = 0; i < read; i++) {
                    if (buffer.get(i) == '\n') {
                        line.write(buffer.array(), 0, i);
                        try {
                            JsonNode row = Json.parse(line.toByteArray());
                            return row != null && row.isObject() ? row : null;
                        } catch (JsonProcessingException e) {
                            return null;
                        }
                    }
                }
                line.write(buffer.array(), 0, read);
                at += read;
            }
            return null;
        }

        /** Reads the complete lines after `offset`; a trailing line without newline waits unless it is a whole object. */
        static ReadResult readNewJsonl(Path transcriptPath, long offset, Set<String> unreadTypes, Log log) throws IOException {
            List<Transcript.Row> rows = new ArrayList<>();
            try (InputStream in = Files.newInputStream(transcriptPath)) {
                in.skipNBytes(offset);
                JsonlStats stats = streamJsonl(in, offset, true, new RowSink(unreadTypes, rows::add, log));
                return new ReadResult(rows, stats.endOffset(), stats.badLines());
            }
        }

        private record JsonlStats(long endOffset, int badLines) {
        }

        /**
         * Streams JSON-object lines from `in` (positioned at `startOffset`) into `sink`, one line in memory at a time.
         * Broken lines are skipped with one log line each. endOffset is just after the last line consumed.
         */
        static JsonlStats streamJsonl(InputStream in, long startOffset, boolean acceptWholeTail, RowSink sink) throws IOException {
            byte[] chunk = new byte[1 << 18];
            ByteBuffer words = ByteBuffer.wrap(chunk).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            byte[] carry = new byte[8192];
            int carried = 0;
            boolean oversized = false;
            long chunkStart = startOffset;
            long lineStart = startOffset;
            long consumedTo = startOffset;
            int badLines = 0;
            int read;
            while ((read = in.readNBytes(chunk, 0, chunk.length)) > 0) {
                int from = 0;
                for (int newline = nextNewline(words, 0, read); newline >= 0; newline = nextNewline(words, from, read)) {
                    boolean ok;
                    if (oversized) {
                        ok = parseLine(null, 0, 0, lineStart, true, sink);
                    } else if (carried == 0) {
                        // The common case: the whole line sits in this chunk; parse it where it is.
                        ok = parseLine(chunk, from, newline - from, lineStart, false, sink);
                    } else {
                        carry = append(carry, carried, chunk, from, newline - from);
                        ok = parseLine(carry, 0, carried + newline - from, lineStart, false, sink);
                    }
                    if (!ok) badLines++;
                    carried = 0;
                    oversized = false;
                    from = newline + 1;
                    lineStart = chunkStart + from;
                    consumedTo = lineStart;
                }
                int rest = read - from;
                if (!oversized) {
                    if (carried + rest > MAX_LINE_BYTES) {
                        oversized = true;
                        carried = 0;
                    } else {
                        carry = append(carry, carried, chunk, from, rest);
                        carried += rest;
                    }
                }
                chunkStart += read;
            }
            if (carried > 0 && acceptWholeTail && !oversized) {
                // A last line without its newline counts only when it is one whole object: read all of it.
                JsonNode tail = parseJsonObject(carry, 0, carried, true, sink.unreadTypes());
                if (tail != null) {
                    sink.consumer().accept(new Transcript.Row(tail, lineStart, carried));
                    consumedTo = chunkStart;
                }
            }
            return new JsonlStats(consumedTo, badLines);
        }

        private static final long NEWLINES = 0x0A0A0A0A0A0A0A0AL;

        /**
         * The first '\n' in `bytes` from `from` (inclusive) to `to`, or -1. Eight bytes at a time: a byte of the word
         * XOR NEWLINES is zero where the newline is, and (x - 0x01..) & ~x & 0x80.. flags the lowest zero byte.
         */
        private static int nextNewline(ByteBuffer bytes, int from, int to) {
            int i = from;
            for (; i + Long.BYTES <= to; i += Long.BYTES) {
                long word = bytes.getLong(i) ^ NEWLINES;
                long zeros = (word - 0x0101010101010101L) & ~word & 0x8080808080808080L;
                if (zeros != 0) return i + (Long.numberOfTrailingZeros(zeros) >>> 3);
            }
            for (; i < to; i++) {
                if (bytes.get(i) == '\n') return i;
            }
            return -1;
        }

        /** `carry` with `length` bytes of `source` appended after its first `used` bytes (growing it when needed). */
        private static byte[] append(byte[] carry, int used, byte[] source, int offset, int length) {
            byte[] target = carry;
            if (used + length > carry.length) target = java.util.Arrays.copyOf(carry, Math.max(carry.length * 2, used + length));
            System.arraycopy(source, offset, target, used, length);
            return target;
        }

        /** Parses one line into the sink; returns false (after one log line) when it is not a transcript row. */
        private static boolean parseLine(byte[] bytes, int offset, int length, long position, boolean oversized, RowSink sink) {
            Log log = sink.log();
            if (oversized) {
                log.warn("Skipped transcript line at byte " + position + ": longer than " + MAX_LINE_BYTES + " bytes");
                return false;
            }
            if (isBlank(bytes, offset, length)) return true;
            JsonNode row = parseJsonObject(bytes, offset, length, false, sink.unreadTypes());
            if (row == null) {
                log.warn("Skipped transcript line at byte " + position + ": not a JSON object (" + length + " bytes)");
                return false;
            }
            String problem = rowProblem(row);
            if (problem != null) {
                log.warn("Skipped transcript row at byte " + position + ": " + problem);
                return false;
            }
            sink.consumer().accept(new Transcript.Row(row, position, length));
            return true;
        }

        /** Why a row cannot be a transcript row (fields of the wrong type), or null when it can. */
        private static String rowProblem(JsonNode row) {
            for (String field : List.of("type", "uuid", "parentUuid", "timestamp", "sessionId")) {
                JsonNode value = row.get(field);
                if (value != null && !value.isNull() && !value.isTextual()) return "field '" + field + "' is not a string";
            }
            String role = Transcript.getRole(row);
            JsonNode message = row.get("message");
            if (role != null && message != null && !message.isObject()) return "field 'message' is not an object";
            if ("assistant".equals(role) && (message == null || !message.isObject())) return "assistant row without a message";
            JsonNode content = message == null ? null : message.get("content");
            if (role != null && content != null && !content.isNull() && !content.isTextual() && !content.isArray()) {
                return "field 'message.content' is neither text nor a list";
            }
            return null;
        }

        private static boolean isBlank(byte[] bytes, int offset, int length) {
            for (int i = offset; i < offset + length; i++) {
                if (bytes[i] != ' ' && bytes[i] != '\t' && bytes[i] != '\r') return false;
            }
            return true;
        }

        /**
         * A row, or null. `readAll` reads even an unread type to its end (to tell a complete last line from a cut one).
         * Jackson reads UTF-8 bytes directly; a line with invalid UTF-8 is decoded with replacement characters instead.
         */
        private static JsonNode parseJsonObject(byte[] bytes, int offset, int length, boolean readAll, Set<String> unreadTypes) {
            try {
                JsonNode node = readAll ? Json.parse(bytes, offset, length) : Json.parseRow(bytes, offset, length, unreadTypes);
                if (node == null || !node.isObject()) return null;
                JsonNode type = node.get("type");
                boolean unread = readAll && type != null && type.isTextual() && unreadTypes.contains(type.textValue());
                return unread ? Json.NODES.objectNode().set("type", type) : node;
            } catch (IOException e) {
                try {
                    String lenient = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPLACE)
                            .onUnmappableCharacter(CodingErrorAction.REPLACE).decode(ByteBuffer.wrap(bytes, offset, length)).toString();
                    JsonNode node = Json.parse(lenient);
                    return node != null && node.isObject() ? node : null;
                } catch (IOException | RuntimeException again) {
                    return null;
                }
            }
        }
    }

    /**
     * What each model call was sent, as Claude Code 2.1.3xx records it (only while a server-side switch is on: a
     * transcript without these rows gets its inputs from the turn, in Traces). An `api-request` row names its shape
     * (`api-request-shape`: system blocks and tools), the earlier request whose first `keep` messages it keeps (`base`),
     * and the hashes of the messages it adds (`tail`), each an `api-request-blob` or a message the transcript already
     * holds as rows. A hash is the SHA-256 of the message as canonical JSON (keys sorted, text content as one text block,
     * cache_control left out), so every message found by its hash is the one the model got. A whole request is used only
     * when the SHA-256 of it in the same form (cache_control where `cacheControl` puts it, the metadata-like keys out)
     * equals its `requestDigest`.
     */
    static final class Requests {
        private Requests() {
        }

        /**
         * A model call as recorded: the messages new to it (after the request's last assistant message), and, in full
         * mode, the whole request: every message, system blocks, tools.
         */
        record Call(List<JsonNode> newMessages, List<JsonNode> messages, JsonNode system, JsonNode tools) {
            boolean whole() {
                return messages != null;
            }
        }

        /** The body keys Claude Code leaves out of a request's digest (they change from call to call, or say nothing of it). */
        private static final Set<String> UNDIGESTED_KEYS = Set.of("metadata", "stream", "thread", "diagnostics", "safeguards", "data_flow");

        /** A message a request names, where the transcript holds it (a blob row, a user row, or an assistant message's rows), and its hash. */
        private record Source(JsonNode message, char kind, long[] offsets, int bytes, String hash) {
            Source withHash(String known) {
                return new Source(message, kind, offsets, bytes, known);
            }
        }

        /** One recorded request: its row, the messages it adds (null where none is known by that hash), all of them in full mode. */
        private static final class Recorded {
            final JsonNode row;
            final List<Source> tail = new ArrayList<>();
            List<Source> messages;
            String unbuilt;
            /** Its request row as this run read it; null for one an earlier run carried. */
            Transcript.Row read;

            Recorded(JsonNode row) {
                this.row = row;
            }

            /** Where its request row is in the transcript; -1 for one an earlier run carried (it lies before this run's start). */
            long offset() {
                return read == null ? -1 : read.offset();
            }

            int keep() {
                return Math.max(0, row.path("keep").asInt(0));
            }

            int length() {
                return messages != null ? messages.size() : keep() + tail.size();
            }
        }

        /**
         * The request rows of one transcript as they stream in, and the messages their hashes name: blobs, and the
         * transcript's own user rows and assistant messages, hashed only when a request asks for a hash no blob has.
         * Bounded: the oldest messages and requests are forgotten first (a request that needs them shows new input).
         * Until a transcript shows its first request row only a few recent messages are kept: older transcripts have none.
         */
        static final class Store {
            private static final int MAX_REQUESTS = 1024;
            private static final long MAX_MESSAGE_BYTES = 16L << 20;
            private static final long MESSAGE_BYTES_BEFORE_REQUESTS = 1L << 20;
            /** Requests a later hook run may find as the base of its first one (full mode): the last few. */
            private static final int CARRIED_REQUESTS = 4;
            private final Config.GenerationInput mode;
            private final Log log;
            private final Map<String, JsonNode> shapes = new HashMap<>();
            private final Map<String, Long> shapeOffsets = new HashMap<>();
            private final LinkedHashMap<String, Recorded> requests = new LinkedHashMap<>();
            private final LinkedHashMap<String, Source> known = new LinkedHashMap<>();
            private final ArrayDeque<Source> unhashed = new ArrayDeque<>();
            private long bytes;
            private String openAssistantId;
            private ArrayNode openAssistantContent;
            private List<Long> openAssistantOffsets;
            private int openAssistantBytes;

            Store(Config.GenerationInput mode, Log log) {
                this.mode = mode;
                this.log = log;
            }

            void accept(Transcript.Row row) {
                if (mode == Config.GenerationInput.OFF) return;
                JsonNode json = row.json();
                switch (row.type()) {
                    case "assistant" -> addAssistantRow(json, row);
                    case "user" -> {
                        if (json.path("message").isObject()) {
                            JsonNode content = json.path("message").path("content");
                            remember(new Source(message("user", content), 'u', new long[]{row.offset()}, row.length(), null));
                        }
                    }
                    case Reader.REQUEST_BLOB -> {
                        if (json.path("hash").isTextual() && json.path("message").isObject()) {
                            String hash = json.path("hash").textValue();
                            remember(new Source(asSent(json.path("message")), 'b', new long[]{row.offset()}, row.length(), hash));
                        }
                    }
                    case Reader.REQUEST_SHAPE -> {
                        if (json.path("shapeHash").isTextual() && json.path("shape").isObject()) {
                            shapes.put(json.path("shapeHash").textValue(), json.path("shape"));
                            shapeOffsets.put(json.path("shapeHash").textValue(), row.offset());
                        }
                    }
                    case "api-request" -> record(row);
                    default -> {
                        // Other rows are no part of a request.
                    }
                }
            }

            /** The request rows with these ids that this run read, wherever they were (a turn's first one may come before its prompt). */
            Map<String, Transcript.Row> rows(Collection<String> requestIds) {
                Map<String, Transcript.Row> rows = new LinkedHashMap<>();
                for (String id : requestIds) {
                    Recorded recorded = requests.get(id);
                    if (recorded != null && recorded.read != null) rows.put(id, recorded.read);
                }
                return rows;
            }

            /** The calls these request ids name, as far as they are recorded; one debug line for each that is not. */
            Map<String, Call> calls(Collection<String> requestIds) {
                Map<String, Call> calls = new HashMap<>();
                if (mode == Config.GenerationInput.OFF) return calls;
                for (String id : requestIds) {
                    Call call = call(id);
                    if (call != null) calls.put(id, call);
                }
                return calls;
            }

            private Call call(String requestId) {
                Recorded recorded = requests.get(requestId);
                if (recorded == null) {
                    if (!requests.isEmpty()) log.debug("Request " + requestId + ": its row is not in what was read; its input comes from the turn");
                    return null;
                }
                complete(recorded, 0);
                List<JsonNode> fresh = newMessages(recorded);
                if (mode == Config.GenerationInput.FULL) {
                    JsonNode shape = shapes.get(recorded.row.path("shapeHash").asText(""));
                    String problem = recorded.unbuilt != null ? recorded.unbuilt
                            : shape == null ? "its shape (system and tools) is in no row read"
                            : !digestMatches(recorded, shape) ? "the rebuilt request does not match its requestDigest" : null;
                    if (problem == null) return new Call(fresh, messagesOf(recorded.messages), shape.get("system"), shape.get("tools"));
                    log.debug("Request " + requestId + " shown as its new messages, not whole: " + problem);
                }
                if (fresh == null) {
                    log.debug("Request " + requestId + ": the messages new to it are not all in what was read; its input comes from the turn");
                    return null;
                }
                return new Call(fresh, null, null, null);
            }

            private void addAssistantRow(JsonNode json, Transcript.Row row) {
                String id = json.path("message").path("id").asText("");
                if (!id.equals(openAssistantId)) {
                    closeAssistant();
                    openAssistantId = id;
                    openAssistantContent = Json.NODES.arrayNode();
                    openAssistantOffsets = new ArrayList<>();
                    openAssistantBytes = 0;
                }
                JsonNode content = json.path("message").path("content");
                if (content.isArray()) openAssistantContent.addAll((ArrayNode) content);
                else if (content.isTextual()) openAssistantContent.add(textBlock(content.textValue()));
                openAssistantOffsets.add(row.offset());
                openAssistantBytes += row.length();
            }

            /** The rows of one assistant message are over once another message starts or a request names the message. */
            private void closeAssistant() {
                if (openAssistantId == null) return;
                long[] offsets = openAssistantOffsets.stream().mapToLong(Long::longValue).toArray();
                remember(new Source(message("assistant", openAssistantContent), 'a', offsets, openAssistantBytes, null));
                openAssistantId = null;
                openAssistantContent = null;
            }

            /** Keeps a message, by its hash when known (a blob), else to be hashed when a request asks; forgets the oldest past the bound. */
            private void remember(Source source) {
                if (source.hash() != null) known.put(source.hash(), source);
                else unhashed.add(source);
                bytes += source.bytes();
                long bound = requests.isEmpty() ? MESSAGE_BYTES_BEFORE_REQUESTS : MAX_MESSAGE_BYTES;
                while (bytes > bound && (!unhashed.isEmpty() || known.size() > 1)) {
                    Source dropped = !unhashed.isEmpty() ? unhashed.poll() : known.remove(known.keySet().iterator().next());
                    bytes -= dropped.bytes();
                }
            }

            /** The message with this hash: a blob, or a transcript message (hashing those not hashed yet, oldest first). */
            private Source resolve(String hash) {
                Source found = known.get(hash);
                if (found != null) return found;
                while (!unhashed.isEmpty()) {
                    Source next = unhashed.poll();
                    Source hashed = next.withHash(messageHash(next.message()));
                    known.put(hashed.hash(), hashed);
                    if (hashed.hash().equals(hash)) return hashed;
                }
                // A request row follows the answer it extends at once, so that answer's rows may be all there is of it yet.
                if (openAssistantId != null && messageHash(message("assistant", openAssistantContent)).equals(hash)) {
                    closeAssistant();
                    return resolve(hash);
                }
                return null;
            }

            private void record(Transcript.Row read) {
                JsonNode row = read.json();
                String id = row.path("id").asText("");
                if (id.isEmpty()) return;
                Recorded recorded = new Recorded(row);
                recorded.read = read;
                for (JsonNode hash : row.path("tail")) recorded.tail.add(hash.isTextual() ? resolve(hash.textValue()) : null);
                if (mode == Config.GenerationInput.FULL) recorded.messages = allMessages(recorded);
                requests.put(id, recorded);
                if (requests.size() > MAX_REQUESTS) requests.remove(requests.keySet().iterator().next());
            }

            /**
             * A request whose row came before a message it adds (Claude Code writes rows through a queue: on a busy machine
             * a turn's first request row can land before its prompt row), built again now that the rows after it are read;
             * its base first, which may have come early too.
             */
            private void complete(Recorded recorded, int depth) {
                boolean missing = recorded.tail.contains(null);
                if (!missing && (recorded.messages != null || mode != Config.GenerationInput.FULL)) return;
                Recorded base = requests.get(recorded.row.path("base").asText(""));
                if (base != null && base != recorded && depth < MAX_REQUESTS) complete(base, depth + 1);
                JsonNode hashes = recorded.row.path("tail");
                for (int i = 0; i < recorded.tail.size(); i++) {
                    if (recorded.tail.get(i) == null && hashes.path(i).isTextual()) recorded.tail.set(i, resolve(hashes.path(i).textValue()));
                }
                if (mode == Config.GenerationInput.FULL && recorded.messages == null) {
                    recorded.unbuilt = null;
                    recorded.messages = allMessages(recorded);
                }
            }

            /** Every message of the request: the first `keep` of its base's, then its tail; null (and why) when one is missing. */
            private List<Source> allMessages(Recorded recorded) {
                List<Source> messages = new ArrayList<>();
                if (recorded.keep() > 0) {
                    Recorded base = requests.get(recorded.row.path("base").asText(""));
                    if (base == null || base.messages == null) {
                        recorded.unbuilt = "the request it extends is not in what was read";
                        return null;
                    }
                    if (recorded.keep() > base.messages.size()) {
                        recorded.unbuilt = "it keeps " + recorded.keep() + " messages of a request that had " + base.messages.size();
                        return null;
                    }
                    messages.addAll(base.messages.subList(0, recorded.keep()));
                }
                for (Source message : recorded.tail) {
                    if (message == null) {
                        recorded.unbuilt = "a message it adds is in no blob or row read";
                        return null;
                    }
                    messages.add(message);
                }
                return List.copyOf(messages);
            }

            /** The messages after the request's last assistant message (its base's, where its own part has none); null when one is unknown. */
            private List<JsonNode> newMessages(Recorded request) {
                ArrayDeque<JsonNode> fresh = new ArrayDeque<>();
                for (int position = request.length() - 1; position >= 0; position--) {
                    Source message = messageAt(request, position);
                    if (message == null) return null;
                    if (message.message().path("role").asText("").equals("assistant")) break;
                    fresh.addFirst(message.message());
                }
                return List.copyOf(fresh);
            }

            /** The request's message at `position`, from its tail or, before it, from the requests it extends. */
            private Source messageAt(Recorded request, int position) {
                Recorded at = request;
                while (at != null) {
                    if (at.messages != null) return position < at.messages.size() ? at.messages.get(position) : null;
                    if (position >= at.keep()) return position - at.keep() < at.tail.size() ? at.tail.get(position - at.keep()) : null;
                    at = requests.get(at.row.path("base").asText(""));
                }
                return null;
            }

            /**
             * What a later hook run needs to rebuild requests extending this run's, in full mode: the last requests before
             * `before` (where it will read from) whose messages are all known, each message by its hash and where its rows
             * are, and their shapes' rows. Null: none.
             */
            ObjectNode carry(long before) {
                if (mode != Config.GenerationInput.FULL) return null;
                ArrayNode carried = Json.NODES.arrayNode();
                List<Recorded> whole = new ArrayList<>();
                // Only requests before where the next run reads: the ones after it (a turn left in progress) it reads again,
                // and carried they would crowd out the older requests a later turn extends.
                for (Recorded recorded : requests.values()) {
                    if (recorded.offset() < before && recorded.messages != null && shapeOffsets.containsKey(recorded.row.path("shapeHash").asText(""))) {
                        whole.add(recorded);
                    }
                }
                for (Recorded recorded : whole.subList(Math.max(0, whole.size() - CARRIED_REQUESTS), whole.size())) {
                    ObjectNode entry = carried.addObject();
                    entry.set("row", recorded.row);
                    entry.put("shape_offset", shapeOffsets.get(recorded.row.path("shapeHash").asText("")));
                    ArrayNode messages = entry.putArray("messages");
                    for (Source source : recorded.messages) {
                        ArrayNode ref = messages.addArray().add(source.hash()).add(String.valueOf(source.kind()));
                        for (long offset : source.offsets()) ref.add(offset);
                    }
                }
                return carried.isEmpty() ? null : Json.NODES.objectNode().set("requests", carried);
            }

            /**
             * Takes in what an earlier run carried (see carry): its requests whole, their messages and shapes read again
             * from the transcript where they are. A message or shape that no longer reads back leaves its request out
             * (a request built on it shows its new messages instead); a changed one fails the request's digest check.
             */
            void seed(JsonNode carry, Path transcript) {
                if (mode != Config.GenerationInput.FULL || carry == null) return;
                try (FileChannel channel = FileChannel.open(transcript, StandardOpenOption.READ)) {
                    for (JsonNode entry : carry.path("requests")) {
                        Recorded recorded = reread(entry, channel);
                        if (recorded != null) requests.put(recorded.row.path("id").asText(""), recorded);
                    }
                } catch (IOException | RuntimeException e) {
                    log.debug("Could not read back the requests an earlier run carried: " + e);
                }
            }

            private Recorded reread(JsonNode entry, FileChannel channel) throws IOException {
                Recorded recorded = new Recorded(entry.path("row"));
                String shapeHash = recorded.row.path("shapeHash").asText("");
                if (!shapes.containsKey(shapeHash)) {
                    JsonNode shapeRow = Reader.readRowAt(channel, entry.path("shape_offset").asLong(-1));
                    if (shapeRow == null || !shapeHash.equals(shapeRow.path("shapeHash").asText())) return null;
                    shapes.put(shapeHash, shapeRow.path("shape"));
                    shapeOffsets.put(shapeHash, entry.path("shape_offset").asLong());
                }
                List<Source> messages = new ArrayList<>();
                for (JsonNode ref : entry.path("messages")) {
                    Source source = known.get(ref.path(0).asText(""));
                    if (source == null) source = readSource(ref, channel);
                    if (source == null) return null;
                    known.put(source.hash(), source);
                    messages.add(source);
                }
                recorded.messages = List.copyOf(messages);
                return recorded;
            }

            /** A carried message read back from its rows: a blob's message, a user row's, or an assistant message's rows joined. */
            private static Source readSource(JsonNode ref, FileChannel channel) throws IOException {
                char kind = ref.path(1).asText(" ").charAt(0);
                long[] offsets = new long[Math.max(0, ref.size() - 2)];
                ArrayNode content = Json.NODES.arrayNode();
                JsonNode blob = null;
                for (int i = 0; i < offsets.length; i++) {
                    offsets[i] = ref.path(i + 2).asLong(-1);
                    JsonNode row = Reader.readRowAt(channel, offsets[i]);
                    if (row == null) return null;
                    if (kind == 'b') blob = asSent(row.path("message"));
                    else if (row.path("message").path("content").isArray()) content.addAll((ArrayNode) row.path("message").path("content"));
                    else content.add(textBlock(row.path("message").path("content").asText("")));
                }
                if (offsets.length == 0) return null;
                JsonNode message = kind == 'b' ? blob : message(kind == 'a' ? "assistant" : "user", content);
                return new Source(message, kind, offsets, 0, ref.path(0).asText(""));
            }
        }

        private static List<JsonNode> messagesOf(List<Source> sources) {
            List<JsonNode> messages = new ArrayList<>(sources.size());
            for (Source source : sources) messages.add(source.message());
            return messages;
        }

        /** A message as the API takes it: a role and a list of blocks (a text content becomes one text block, as Claude Code hashes it). */
        static ObjectNode message(String role, JsonNode content) {
            ObjectNode message = Json.NODES.objectNode();
            message.put("role", role);
            message.set("content", content.isArray() ? content
                    : content.isTextual() ? Json.NODES.arrayNode().add(textBlock(content.textValue())) : Json.NODES.arrayNode());
            return message;
        }

        /** Consecutive messages of one role as one (Claude Code sends a prompt and the text it adds to it as one user message). */
        static List<JsonNode> mergeConsecutive(List<JsonNode> messages) {
            List<JsonNode> merged = new ArrayList<>();
            for (JsonNode message : messages) {
                JsonNode last = merged.isEmpty() ? null : merged.get(merged.size() - 1);
                if (last == null || !last.path("role").equals(message.path("role"))) {
                    merged.add(message);
                    continue;
                }
                ObjectNode joined = message(last.path("role").asText(), Json.NODES.arrayNode()
                        .addAll((ArrayNode) last.path("content").deepCopy()).addAll((ArrayNode) message.path("content").deepCopy()));
                merged.set(merged.size() - 1, joined);
            }
            return merged;
        }

        /** A recorded message as it was sent, every field kept (a system message can carry its own output_config), text content as one block. */
        private static JsonNode asSent(JsonNode message) {
            if (!message.path("content").isTextual()) return message;
            ObjectNode copy = message.deepCopy();
            copy.set("content", Json.NODES.arrayNode().add(textBlock(message.path("content").textValue())));
            return copy;
        }

        private static ObjectNode textBlock(String text) {
            return Json.NODES.objectNode().put("type", "text").put("text", text);
        }

        static String messageHash(JsonNode message) {
            StringBuilder text = new StringBuilder();
            canonical(message, true, text);
            return HexFormat.of().formatHex(Helpers.sha256(text.toString()));
        }

        /** Whether the request rebuilt from its shape, params and messages, cache_control put back, hashes to its requestDigest. */
        private static boolean digestMatches(Recorded recorded, JsonNode shape) {
            String expected = recorded.row.path("requestDigest").textValue();
            if (expected == null) return false;
            ObjectNode request = Json.NODES.objectNode();
            recorded.row.path("params").properties().forEach(field -> request.set(field.getKey(), field.getValue()));
            if (shape.has("system")) request.set("system", shape.get("system"));
            if (shape.has("tools")) request.set("tools", shape.get("tools"));
            request.set("messages", Json.NODES.arrayNode().addAll(messagesOf(recorded.messages)));
            for (JsonNode control : recorded.row.path("cacheControl")) {
                if (!putAlong(request, control.path("path"), 0, control.path("value"))) return false;
            }
            for (String key : UNDIGESTED_KEYS) request.remove(key);
            StringBuilder text = new StringBuilder();
            canonical(request, false, text);
            return HexFormat.of().formatHex(Helpers.sha256(text.toString())).equals(expected);
        }

        /** Sets `cache_control` at the path's end, copying the containers on the way (the messages stay shared and unchanged). */
        private static boolean putAlong(JsonNode container, JsonNode path, int step, JsonNode value) {
            JsonNode key = path.path(step);
            JsonNode child = key.isInt() ? container.path(key.intValue()) : container.path(key.asText());
            if (!child.isContainerNode()) return false;
            JsonNode copy = child.deepCopy();
            if (step == path.size() - 1) {
                if (!(copy instanceof ObjectNode object)) return false;
                object.set("cache_control", value);
            } else if (!putAlong(copy, path, step + 1, value)) {
                return false;
            }
            if (container instanceof ObjectNode object) object.set(key.asText(), copy);
            else ((ArrayNode) container).set(key.intValue(), copy);
            return true;
        }

        /**
         * Canonical JSON as Claude Code hashes it (JavaScript's JSON.stringify of the value with its keys sorted):
         * strings escaped as JSON.stringify escapes them, integers plainly, cache_control left out if asked.
         */
        static void canonical(JsonNode node, boolean omitCacheControl, StringBuilder out) {
            switch (node.getNodeType()) {
                case OBJECT -> {
                    List<String> names = new ArrayList<>();
                    node.fieldNames().forEachRemaining(names::add);
                    java.util.Collections.sort(names);
                    char separator = '{';
                    for (String name : names) {
                        if (omitCacheControl && name.equals("cache_control")) continue;
                        out.append(separator);
                        separator = ',';
                        quote(name, out);
                        out.append(':');
                        canonical(node.get(name), omitCacheControl, out);
                    }
                    out.append(separator == '{' ? "{}" : "}");
                }
                case ARRAY -> {
                    out.append('[');
                    for (int i = 0; i < node.size(); i++) {
                        if (i > 0) out.append(',');
                        canonical(node.get(i), omitCacheControl, out);
                    }
                    out.append(']');
                }
                case STRING -> quote(node.textValue(), out);
                case NUMBER -> out.append(javaScriptNumber(node));
                case BOOLEAN -> out.append(node.booleanValue());
                default -> out.append("null");
            }
        }

        /** A number as JavaScript prints it: integers (and whole doubles) without a fraction, others as Java prints them. */
        private static String javaScriptNumber(JsonNode number) {
            if (number.isIntegralNumber()) return number.asText();
            double value = number.doubleValue();
            if (value == Math.rint(value) && Math.abs(value) < 1e21) return Long.toString((long) value);
            return Double.toString(value).replace("E", "e");
        }

        /** A string as JSON.stringify writes it: short escapes, other control characters and lone surrogates as lowercase \\u. */
        private static void quote(String text, StringBuilder out) {
            out.append('"');
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    default -> {
                        boolean loneSurrogate = Character.isHighSurrogate(c)
                                ? i + 1 >= text.length() || !Character.isLowSurrogate(text.charAt(i + 1))
                                : Character.isLowSurrogate(c) && (i == 0 || !Character.isHighSurrogate(text.charAt(i - 1)));
                        if (c < 0x20 || loneSurrogate) out.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                        else out.append(c);
                    }
                }
            }
            out.append('"');
        }

        /**
         * The request's settings as Langfuse shows model parameters (flat: numbers and short strings): max_tokens,
         * thinking (its type) and thinking_budget, effort, temperature, top_p and top_k where set.
         */
        static ObjectNode parameters(JsonNode params) {
            ObjectNode parameters = Json.NODES.objectNode();
            for (String name : List.of("max_tokens", "temperature", "top_p", "top_k")) {
                if (params.path(name).isNumber()) parameters.set(name, params.get(name));
            }
            JsonNode thinking = params.path("thinking");
            if (thinking.path("type").isTextual()) parameters.set("thinking", thinking.get("type"));
            if (thinking.path("budget_tokens").isNumber()) parameters.set("thinking_budget", thinking.get("budget_tokens"));
            if (params.path("output_config").path("effort").isTextual()) parameters.set("effort", params.path("output_config").get("effort"));
            return parameters;
        }

        /** A generation's input as JSON text within `maxChars`, and how many of its oldest messages were left out for that. */
        record Cut(Transcript.Truncated text, int omittedMessages) {
        }

        /**
         * The input as JSON text within `maxChars`, always valid JSON: whole; else with tool schemas as names, then its
         * newest messages whole (`omitted_messages` says how many older ones were left out); when even the newest alone
         * is too long, its longest strings cut short.
         */
        static Cut cut(ObjectNode input, int maxChars) {
            String whole = Json.toJson(input);
            if (whole.length() <= maxChars) return new Cut(new Transcript.Truncated(whole, false, whole.length()), 0);
            ObjectNode kept = input.deepCopy();
            if (kept.path("tools").path(0).isObject()) {
                ArrayNode names = Json.NODES.arrayNode();
                for (JsonNode tool : kept.path("tools")) names.add(tool.path("name").asText(""));
                kept.set("tools", names);
            }
            ArrayNode messages = (ArrayNode) kept.path("messages");
            int omitted = 0;
            int length = Json.toJson(kept).length() + "\"omitted_messages\":,".length() + 10;
            while (length > maxChars && messages.size() > 1) {
                length -= Json.toJson(messages.remove(0)).length() + 1;
                omitted++;
            }
            if (omitted > 0) {
                // omitted_messages first, where a reader sees it.
                ObjectNode ordered = Json.NODES.objectNode().put("omitted_messages", omitted);
                kept.properties().forEach(field -> ordered.set(field.getKey(), field.getValue()));
                kept = ordered;
            }
            String text = Json.toJson(kept);
            for (int cap = maxChars / 2; text.length() > maxChars && cap > 0; cap /= 2) {
                shortenStrings(kept, cap);
                text = Json.toJson(kept);
            }
            return new Cut(new Transcript.Truncated(text, true, whole.length()), omitted);
        }

        /** Every string in the tree longer than `cap` characters cut to `cap`, with a mark that says so. */
        private static void shortenStrings(JsonNode node, int cap) {
            if (node instanceof ObjectNode object) {
                for (Map.Entry<String, JsonNode> field : List.copyOf(object.properties())) {
                    if (field.getValue().isTextual() && field.getValue().textValue().length() > cap) {
                        object.put(field.getKey(), shortened(field.getValue().textValue(), cap));
                    } else {
                        shortenStrings(field.getValue(), cap);
                    }
                }
            } else if (node instanceof ArrayNode array) {
                for (int i = 0; i < array.size(); i++) {
                    if (array.get(i).isTextual() && array.get(i).textValue().length() > cap) array.set(i, shortened(array.get(i).textValue(), cap));
                    else shortenStrings(array.get(i), cap);
                }
            }
        }

        private static String shortened(String text, int cap) {
            return text.substring(0, cap) + "…[" + (text.length() - cap) + " more characters]";
        }

        /**
         * Messages as a generation shows them: thinking without its signature, images and documents as a one-line summary
         * (never base64), everything else as it was sent. The messages given are never changed.
         */
        static ArrayNode forDisplay(List<JsonNode> messages) {
            ArrayNode shown = Json.NODES.arrayNode();
            for (JsonNode message : messages) {
                ObjectNode copy = Json.NODES.objectNode();
                message.properties().forEach(field -> copy.set(field.getKey(),
                        field.getKey().equals("content") ? displayBlocks(field.getValue()) : field.getValue()));
                shown.add(copy);
            }
            return shown;
        }

        private static JsonNode displayBlocks(JsonNode content) {
            if (!content.isArray()) return content;
            ArrayNode blocks = Json.NODES.arrayNode();
            for (JsonNode block : content) {
                String type = block.path("type").asText("");
                switch (type) {
                    case "thinking" -> blocks.add(((ObjectNode) block.deepCopy()).without("signature"));
                    case "redacted_thinking" -> blocks.add(textBlock("[redacted thinking]"));
                    case "image", "document" -> blocks.add(textBlock(Transcript.mediaSummary(block)));
                    case "tool_result" -> {
                        ObjectNode result = block.deepCopy();
                        if (block.path("content").isArray()) result.set("content", displayBlocks(block.path("content")));
                        blocks.add(result);
                    }
                    default -> blocks.add(block);
                }
            }
            return blocks;
        }
    }

    /**
     * Workflow runs (the Workflow tool of Claude Code 2.1.3xx): the model's script starts agents in the background. A
     * run keeps `<session>/subagents/workflows/<run>/`, an `agent-<id>.jsonl` (and `.meta.json`) per agent and
     * `journal.jsonl` (launched, then started and result per agent), and, once it has ended, `<session>/workflows/<run>.json`
     * (name, phases, status, agent count, duration, result). The Workflow tool returns at once; the run ends turns later.
     */
    static final class Workflows {
        private Workflows() {
        }

        /**
         * A run as the Workflow tool's result announced it: the call, run and task ids, the workflow's name and summary,
         * the script sent with the call (empty when it named a script file or a predefined workflow), the file name
         * Claude Code kept the run's script under, the run it resumes (null: none), when the launch was written.
         */
        record Launch(String toolUseId, String runId, String taskId, String name, String summary, String script, String scriptFile,
                      String resumedFrom, Instant launched) {
            private static final Pattern RUN_ID = Pattern.compile("wf_[A-Za-z0-9-]+");
            private static final Pattern SCRIPT_FILE = Pattern.compile("[A-Za-z0-9_.-]+\\.js");

            /** The launch a Workflow tool result reports (a toolUseResult with a runId); null for any other result. */
            static Launch of(String toolUseId, JsonNode toolUse, JsonNode toolUseResult, Instant launched) {
                String runId = toolUseResult.path("runId").asText("");
                if (!RUN_ID.matcher(runId).matches()) return null;
                JsonNode input = toolUse.path("input");
                String scriptFile = toolUseResult.path("scriptPath").asText("").replaceFirst("^.*[/\\\\]", "");
                String resumedFrom = input.path("resumeFromRunId").asText("");
                return new Launch(toolUseId, runId, toolUseResult.path("taskId").asText(""),
                        Helpers.firstNonBlank(toolUseResult.path("workflowName").asText(""), input.path("name").asText(""), "workflow"),
                        toolUseResult.path("summary").asText(""), input.path("script").asText(""),
                        SCRIPT_FILE.matcher(scriptFile).matches() ? scriptFile : null, RUN_ID.matcher(resumedFrom).matches() ? resumedFrom : null,
                        launched == null ? Instant.EPOCH : launched);
            }
        }

        /** An agent of a run: its id, the script's label for it, its phase (null: none), whether the journal says it finished. */
        record Agent(String agentId, String label, String phase, boolean finished) {
        }

        /**
         * A run as its files say: the agents in the order they started, the record written when it ended (null before),
         * the phases in order, when any of its files was last written.
         */
        record Run(Launch launch, Path dir, List<Agent> agents, JsonNode record, List<String> phases, Instant lastWrite, String script) {
            boolean ended() {
                return record != null;
            }

            /** `completed`, `failed`, `stopped`...: the record's word; `running` before it exists. */
            String status() {
                return record == null ? "running" : record.path("status").asText("unknown");
            }

            Path agentFile(String agentId) {
                return dir.resolve("agent-" + agentId + ".jsonl");
            }
        }

        /** The run's files under the session's folder; a missing or broken file is one log line and counts as absent. */
        static Run read(Path sessionDir, Launch launch, Log log) {
            Path dir = sessionDir.resolve("subagents").resolve("workflows").resolve(launch.runId());
            Path recordFile = sessionDir.resolve("workflows").resolve(launch.runId() + ".json");
            JsonNode record = readJson(recordFile, log);
            Map<String, Agent> agents = new LinkedHashMap<>();
            Set<String> finished = new HashSet<>();
            readJournal(dir.resolve("journal.jsonl"), agents, finished, log);
            // A run whose files are not there yet is as fresh as its launch: it is not quiet.
            Instant lastWrite = Helpers.lastModified(recordFile);
            if (launch.launched().isAfter(lastWrite)) lastWrite = launch.launched();
            for (Path file : agentFiles(dir, log)) {
                String agentId = file.getFileName().toString().replaceFirst("^agent-(.*)\\.jsonl$", "$1");
                // A file the journal does not name (its journal cut or gone): the agent still ran.
                agents.putIfAbsent(agentId, new Agent(agentId, null, null, false));
                Instant written = Helpers.lastModified(file);
                if (written.isAfter(lastWrite)) lastWrite = written;
            }
            Instant journalWritten = Helpers.lastModified(dir.resolve("journal.jsonl"));
            if (journalWritten.isAfter(lastWrite)) lastWrite = journalWritten;
            List<Agent> list = new ArrayList<>();
            for (Agent agent : agents.values()) {
                list.add(new Agent(agent.agentId(), agent.label(), agent.phase(), finished.contains(agent.agentId())));
            }
            return new Run(launch, dir, List.copyOf(list), record, phases(record, list), lastWrite, script(sessionDir, launch, log));
        }

        /** The script the run ran: as the call sent it, else the copy Claude Code keeps per run under `workflows/scripts/`. */
        private static String script(Path sessionDir, Launch launch, Log log) {
            if (!launch.script().isEmpty() || launch.scriptFile() == null) return launch.script();
            Path file = sessionDir.resolve("workflows").resolve("scripts").resolve(launch.scriptFile());
            if (!Files.isRegularFile(file)) return "";
            try {
                return Files.readString(file, StandardCharsets.UTF_8);
            } catch (IOException e) {
                log.warn("Could not read " + file + ": " + e);
                return "";
            }
        }

        private static void readJournal(Path journal, Map<String, Agent> agents, Set<String> finished, Log log) {
            if (!Files.isRegularFile(journal)) return;
            try {
                int broken = 0;
                for (String line : Files.readAllLines(journal, StandardCharsets.UTF_8)) {
                    JsonNode row = line.isBlank() ? null : parseQuietly(line);
                    if (row == null) {
                        broken += line.isBlank() ? 0 : 1;
                        continue;
                    }
                    String agentId = row.path("agentId").asText("");
                    if (agentId.isEmpty()) continue;
                    if (row.path("type").asText("").equals("started")) {
                        agents.putIfAbsent(agentId, new Agent(agentId, row.path("label").textValue(), row.path("phase").textValue(), false));
                    } else {
                        finished.add(agentId);
                    }
                }
                if (broken > 0) log.warn("Skipped " + broken + " broken line(s) of " + journal);
            } catch (IOException e) {
                log.warn("Could not read " + journal + ": " + e);
            }
        }

        private static JsonNode parseQuietly(String line) {
            try {
                JsonNode node = Json.parse(line);
                return node != null && node.isObject() ? node : null;
            } catch (IOException e) {
                return null;
            }
        }

        private static List<Path> agentFiles(Path dir, Log log) {
            if (!Files.isDirectory(dir)) return List.of();
            try (java.util.stream.Stream<Path> listing = Files.list(dir)) {
                return listing.filter(f -> f.getFileName().toString().matches("agent-[A-Za-z0-9_-]+\\.jsonl")).sorted().toList();
            } catch (IOException e) {
                log.warn("Could not list " + dir + ": " + e);
                return List.of();
            }
        }

        /** A small JSON file (a run record, an agent's meta.json); null when it is absent, and when broken, with one log line. */
        static JsonNode readJson(Path file, Log log) {
            if (!Files.isRegularFile(file)) return null;
            try {
                JsonNode node = Json.parse(Files.readAllBytes(file));
                if (node != null && node.isObject()) return node;
            } catch (IOException e) {
                // Reported below, as for any content that is not an object.
            }
            log.warn("Ignoring " + file + ": not a JSON object");
            return null;
        }

        /** The phase titles: as the run's record lists them, else in the order its agents started in them. */
        private static List<String> phases(JsonNode record, List<Agent> agents) {
            Set<String> titles = new LinkedHashSet<>();
            if (record != null) {
                for (JsonNode phase : record.path("phases")) {
                    if (phase.path("title").isTextual()) titles.add(phase.path("title").textValue());
                }
            }
            for (Agent agent : agents) {
                if (agent.phase() != null) titles.add(agent.phase());
            }
            return List.copyOf(titles);
        }
    }

    /**
     * Claude Code's own prices, learned from its `cost-state` rows (2.1.3xx: written when a Claude Code process ends;
     * per model, cumulative token counts by kind and the cost Claude Code computed). The cost is linear in the counts,
     * so every row is one equation; a generation's cost is known exactly where its usage is a combination of rows seen
     * (it lies in their span), and only there: no guessed rate, no cost rather than a wrong one.
     */
    static final class Prices {
        private Prices() {
        }

        /** cost-state's usage kinds, in order, and the usage_details keys of a generation each one prices. */
        private static final List<String> KINDS = List.of("inputTokens", "outputTokens", "cacheReadInputTokens",
                "cacheCreationEphemeral5mInputTokens", "cacheCreationEphemeral1hInputTokens", "webSearchRequests");
        private static final List<String> USAGE_KEYS = List.of("input", "output", "cache_read_input_tokens",
                "input_cache_creation_5m", "input_cache_creation_1h", "web_search_requests");
        /** A row reproduced to this many USD fits; a usage this close to the rows' span (relative) lies in it. */
        private static final double FIT_USD = 1e-6;
        private static final double SPAN = 1e-9;
        private static final int KEPT_PER_MODEL = 64;

        /** One equation: a model's token counts by kind and what Claude Code charged for them. */
        record Sample(String model, double[] usage, double costUsd) {
        }

        /** What a generation cost by Claude Code's prices: the total, and by usage key where each rate is known. */
        record Cost(double totalUsd, Map<String, Double> byKind) {
        }

        /** The samples a `cost-state` row holds, one per model; none for a row that says a cost is unknown or is not sane. */
        static List<Sample> samplesOf(JsonNode row) {
            if (!"cost-state".equals(row.path("type").asText()) || row.path("hasUnknownModelCost").asBoolean(false)) return List.of();
            List<Sample> samples = new ArrayList<>();
            var models = row.path("modelUsage").fields();
            while (models.hasNext()) {
                var model = models.next();
                JsonNode usage = model.getValue();
                double[] vector = new double[KINDS.size()];
                boolean sane = usage.path("costUSD").isNumber();
                for (int k = 0; k < KINDS.size() && sane; k++) {
                    JsonNode count = usage.path(KINDS.get(k));
                    vector[k] = count.isNumber() ? count.asDouble() : 0;
                    sane = Double.isFinite(vector[k]) && vector[k] >= 0 && vector[k] < 1e13;
                }
                double cost = usage.path("costUSD").asDouble(-1);
                if (sane && Double.isFinite(cost) && cost >= 0 && cost < 1e7) samples.add(new Sample(model.getKey(), vector, cost));
            }
            return samples;
        }

        /** The usage of a generation as a vector over cost-state's kinds; null when it holds a kind Claude Code does not price. */
        private static double[] vectorOf(Map<String, Long> usageDetails) {
            double[] vector = new double[KINDS.size()];
            for (Map.Entry<String, Long> entry : usageDetails.entrySet()) {
                // A cache write the transcript does not split is priced as Claude Code prices it: at the 5-minute rate.
                String key = entry.getKey().equals("cache_creation_input_tokens") ? "input_cache_creation_5m" : entry.getKey();
                int kind = USAGE_KEYS.indexOf(key);
                if (kind < 0) return null;
                vector[kind] += entry.getValue();
            }
            return vector;
        }

        /**
         * What the samples determine, per model: an orthonormal basis of the usage vectors seen and the cost of each basis
         * vector. A sample the others already determine must agree with them to 1e-6 USD, or it is left out (fast mode,
         * long-context tiers: whatever is not linear) and named once in `leftOut`.
         */
        static final class Rates {
            private final Map<String, List<double[]>> basis = new HashMap<>();
            private final Map<String, List<Double>> basisCost = new HashMap<>();

            static Rates learn(List<Sample> samples, List<String> leftOut) {
                Rates rates = new Rates();
                for (Sample sample : samples) {
                    if (!rates.add(sample) && !leftOut.contains(sample.model())) leftOut.add(sample.model());
                }
                return rates;
            }

            private boolean add(Sample sample) {
                List<double[]> q = basis.computeIfAbsent(sample.model(), m -> new ArrayList<>());
                List<Double> d = basisCost.computeIfAbsent(sample.model(), m -> new ArrayList<>());
                double[] residual = sample.usage().clone();
                double predicted = project(q, d, residual);
                double length = norm(residual);
                if (length <= SPAN * Math.max(1, norm(sample.usage()))) return Math.abs(predicted - sample.costUsd()) <= FIT_USD;
                for (int k = 0; k < residual.length; k++) residual[k] /= length;
                q.add(residual);
                d.add((sample.costUsd() - predicted) / length);
                return true;
            }

            /** Takes the basis' part out of `vector` (left as the residual); returns the cost of that part. */
            private static double project(List<double[]> q, List<Double> d, double[] vector) {
                double cost = 0;
                // Twice over: Gram-Schmidt loses orthogonality once, not twice.
                for (int pass = 0; pass < 2; pass++) {
                    for (int j = 0; j < q.size(); j++) {
                        double a = dot(vector, q.get(j));
                        for (int k = 0; k < vector.length; k++) vector[k] -= a * q.get(j)[k];
                        cost += a * d.get(j);
                    }
                }
                return cost;
            }

            /** The cost of `vector` if the samples of `model` determine it; else null. */
            private Double costOf(String model, double[] vector) {
                List<double[]> q = basis.get(model);
                if (q == null) return null;
                double[] residual = vector.clone();
                double cost = project(q, basisCost.get(model), residual);
                return norm(residual) <= SPAN * Math.max(1, norm(vector)) ? cost : null;
            }

            /** A generation's cost, where the rows seen determine it: by kind too when each kind's rate is known. */
            Cost costOf(String model, Map<String, Long> usageDetails) {
                double[] vector = usageDetails == null || model == null ? null : vectorOf(usageDetails);
                Double total = vector == null ? null : costOf(model, vector);
                // Rows that fit with a negative price somewhere are no prices: no cost rather than a wrong one.
                if (total == null || total < -FIT_USD) return null;
                Map<String, Double> byKind = new LinkedHashMap<>();
                for (int k = 0; k < vector.length; k++) {
                    if (vector[k] == 0) continue;
                    double[] unit = new double[vector.length];
                    unit[k] = 1;
                    Double rate = costOf(model, unit);
                    if (rate != null && rate < 0) return null;
                    if (rate == null) return new Cost(Math.max(0, total), Map.of());
                    byKind.put(USAGE_KEYS.get(k), vector[k] * rate);
                }
                return new Cost(Math.max(0, total), byKind);
            }

            boolean isEmpty() {
                return basis.isEmpty();
            }
        }

        private static double dot(double[] a, double[] b) {
            double sum = 0;
            for (int i = 0; i < a.length; i++) sum += a[i] * b[i];
            return sum;
        }

        private static double norm(double[] a) {
            return Math.sqrt(dot(a, a));
        }

        /** One session's check: Claude Code's total against what its generations carried as sent, and when. */
        record Check(String sessionId, double claudeCodeUsd, double sentUsd, String at) {
            boolean agrees() {
                return Math.abs(claudeCodeUsd - sentUsd) <= FIT_USD;
            }
        }

        /** Keeps the newest checks, one per session, the last ten (`cost-checks.json`) for doctor. */
        static void recordCheck(Path file, Check check, Log log) throws IOException {
            List<Check> checks = new ArrayList<>(lastChecks(file, log));
            checks.removeIf(old -> old.sessionId().equals(check.sessionId()));
            checks.add(check);
            ArrayNode rows = Json.NODES.arrayNode();
            for (Check kept : checks.subList(Math.max(0, checks.size() - 10), checks.size())) {
                rows.addObject().put("session_id", kept.sessionId()).put("claude_code_usd", kept.claudeCodeUsd())
                        .put("sent_usd", kept.sentUsd()).put("at", kept.at());
            }
            ObjectNode root = Json.NODES.objectNode();
            root.set("checks", rows);
            StateFiles.saveState(file, root);
        }

        static List<Check> lastChecks(Path file, Log log) {
            List<Check> checks = new ArrayList<>();
            for (JsonNode row : StateFiles.loadState(file, log).path("checks")) {
                checks.add(new Check(row.path("session_id").asText(), row.path("claude_code_usd").asDouble(), row.path("sent_usd").asDouble(),
                        row.path("at").asText()));
            }
            return checks;
        }

        /** The samples of every cost-state row of a transcript (backfill learns from the history before it sends). */
        static List<Sample> samplesIn(Path transcript, Log log) {
            List<Sample> samples = new ArrayList<>();
            try (java.io.BufferedReader lines = Files.newBufferedReader(transcript, StandardCharsets.UTF_8)) {
                for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                    if (!line.contains("\"cost-state\"")) continue;
                    JsonNode row = Json.parse(line);
                    if (row != null) samples.addAll(samplesOf(row));
                }
            } catch (IOException | java.io.UncheckedIOException e) {
                log.warn("Could not read the cost rows of " + transcript + ": " + e);
            }
            return samples;
        }

        /** The samples kept on disk (`prices.json`): per model, [counts by kind..., cost]. Absent or broken: none. */
        static List<Sample> load(Path file, Log log) {
            List<Sample> samples = new ArrayList<>();
            var models = StateFiles.loadState(file, log).path("models").fields();
            while (models.hasNext()) {
                var model = models.next();
                for (JsonNode row : model.getValue()) {
                    if (!row.isArray() || row.size() != KINDS.size() + 1) continue;
                    double[] vector = new double[KINDS.size()];
                    for (int k = 0; k < vector.length; k++) vector[k] = row.get(k).asDouble();
                    samples.add(new Sample(model.getKey(), vector, row.get(KINDS.size()).asDouble()));
                }
            }
            return samples;
        }

        /** The kept samples and the new ones, each once, the newest KEPT_PER_MODEL per model; written whole, owner-only. */
        static void save(Path file, List<Sample> kept, List<Sample> added, Log log) throws IOException {
            Map<String, List<Sample>> byModel = new LinkedHashMap<>();
            for (Sample sample : kept) byModel.computeIfAbsent(sample.model(), m -> new ArrayList<>()).add(sample);
            for (Sample sample : added) {
                List<Sample> list = byModel.computeIfAbsent(sample.model(), m -> new ArrayList<>());
                if (list.stream().noneMatch(s -> java.util.Arrays.equals(s.usage(), sample.usage()) && s.costUsd() == sample.costUsd())) list.add(sample);
                if (list.size() > KEPT_PER_MODEL) list.remove(0);
            }
            ObjectNode root = Json.NODES.objectNode();
            ObjectNode models = root.putObject("models");
            byModel.forEach((model, list) -> {
                ArrayNode rows = models.putArray(model);
                for (Sample sample : list) {
                    ArrayNode row = rows.addArray();
                    for (double count : sample.usage()) row.add(count);
                    row.add(sample.costUsd());
                }
            });
            StateFiles.saveState(file, root);
        }
    }

    /** Turn assembly: rows into user turns, with their subagents; what a hook run sends. */
    static final class Turns {
        private Turns() {
        }

        enum TurnKind { PROMPT, COMMAND, TASK_NOTIFICATION }

        record ToolResult(JsonNode block, Transcript.Row row) {
        }

        /**
         * What a turn's model calls were sent, as far as the rows tell: the rows Claude Code added to the conversation
         * besides prompts and tool results (meta rows such as a slash command's expansion, 2.1.x attachment rows), the
         * api-request rows by id (2.1.3xx) and those requests as recorded (Requests).
         */
        record ModelInput(List<Transcript.Row> contextRows, Map<String, Transcript.Row> apiRequests, Map<String, Requests.Call> calls) {
        }

        /**
         * One user turn: the row that started it, the assistant rows (file order), tool results by tool_use id,
         * system rows, the interrupt marker if the user stopped it, inline subagent rows (1.0.x), the subagent runs
         * attached to it, the time of its last row of any kind, and what its model calls were sent as far as the rows tell.
         */
        record Turn(Transcript.Row userRow, TurnKind kind, List<Transcript.Row> assistantRows, Map<String, ToolResult> toolResultsById,
                    List<Transcript.Row> systemRows, Transcript.Row interruptRow, List<Transcript.Row> sidechainRows, List<AgentRun> agents,
                    Instant lastActivity, ModelInput modelInput, Launches launches) {
            boolean interrupted() {
                return interruptRow != null;
            }

            Transcript.Row lastAssistant() {
                return assistantRows.isEmpty() ? null : assistantRows.get(assistantRows.size() - 1);
            }

            Turn withAgents(List<AgentRun> attached) {
                return withAgents(attached, launches);
            }

            /** The turn with the agents to show and the work its calls started in the background. */
            Turn withAgents(List<AgentRun> attached, Launches launched) {
                return new Turn(userRow, kind, assistantRows, toolResultsById, systemRows, interruptRow, sidechainRows,
                        List.copyOf(attached), lastActivity, modelInput, launched);
            }

            /** Background work of this turn not finished yet: the turn is sent again as it finishes. */
            boolean waitsForAgents() {
                return !launches.waitingFor().isEmpty();
            }

            /**
             * The turn with its model calls as the store of its transcript records them: the requests among its rows and
             * those its answers name (requestRef). Claude Code writes rows through a queue, so on a busy machine a turn's
             * first request row can land before the prompt row that starts the turn.
             */
            Turn withCalls(Requests.Store requests) {
                Set<String> named = new LinkedHashSet<>(modelInput.apiRequests().keySet());
                for (Transcript.Row row : assistantRows) {
                    String requestRef = row.json().path("requestRef").asText("");
                    if (!requestRef.isEmpty()) named.add(requestRef);
                }
                if (named.isEmpty()) return this;
                Map<String, Transcript.Row> apiRequests = new HashMap<>(requests.rows(named));
                apiRequests.putAll(modelInput.apiRequests());
                ModelInput recorded = new ModelInput(modelInput.contextRows(), Map.copyOf(apiRequests), Map.copyOf(requests.calls(named)));
                return new Turn(userRow, kind, assistantRows, toolResultsById, systemRows, interruptRow, sidechainRows,
                        agents, lastActivity, recorded, launches);
            }

            /** Worth a trace: the model answered, or a subagent (a compaction, a background agent) did work in it. */
            boolean hasWork() {
                return !assistantRows.isEmpty() || !agents.isEmpty();
            }

            /** When the turn began: its user row's time, else its first assistant row's, else the epoch. */
            Instant firstTimestamp() {
                if (userRow.timestamp() != null) return userRow.timestamp();
                for (Transcript.Row row : assistantRows) {
                    if (row.timestamp() != null) return row.timestamp();
                }
                return Instant.EPOCH;
            }
        }

        /** What ran an agent: a Task/Agent tool call, one run in the background, a workflow run's script, or a compaction. */
        enum AgentKind {
            TASK, BACKGROUND, WORKFLOW, COMPACTION;

            /** As metadata shows it (`agent_kind`, and `subagent_type` when the agent has no type). */
            String label() {
                return name().toLowerCase(Locale.ROOT);
            }
        }

        /**
         * What a subagent's `agent-<id>.meta.json` says (2.1.3xx): its type, the description it was given, its model, its
         * workflow phase, whether it ran in the foreground or the background, how deep it was spawned, whether it finished.
         */
        record AgentMeta(String agentType, String description, String model, String workflowPhase, String requestShape,
                         int spawnDepth, boolean finished) {
            /** The meta.json beside an agent's file; null when it is absent or broken (one log line). */
            static AgentMeta read(Path agentFile, Log log) {
                Path file = agentFile.resolveSibling(agentFile.getFileName().toString().replaceFirst("\\.jsonl$", ".meta.json"));
                JsonNode meta = Workflows.readJson(file, log);
                if (meta == null) return null;
                return new AgentMeta(meta.path("agentType").textValue(), meta.path("description").textValue(), meta.path("model").textValue(),
                        meta.path("workflowPhase").textValue(), meta.path("requestShape").textValue(), meta.path("spawnDepth").asInt(0),
                        meta.path("finished").asBoolean(false));
            }
        }

        /** Where a workflow agent sits: its run, the script's label for it, its phase (null: none). */
        record WorkflowSlot(String runId, String label, String phase) {
        }

        /**
         * A subagent's own conversation, linked to the tool call that ran it (toolUseId; null for a compaction, which no
         * call runs), with the agent type its call named, its meta.json (null: none) and, for a workflow agent, its slot.
         */
        record AgentRun(String agentId, String toolUseId, AgentKind kind, String agentType, Turn turn, AgentMeta meta, WorkflowSlot slot) {
            /** An agent a Task/Agent call ran, in the foreground (TASK) or the background (BACKGROUND). */
            static AgentRun called(String agentId, String toolUseId, AgentKind kind, String agentType, Turn turn, AgentMeta meta) {
                return new AgentRun(agentId, toolUseId, kind, agentType, turn, meta, null);
            }

            /** An agent no tool call of the turn ran: it shows directly under the turn. */
            static AgentRun loose(String agentId, AgentKind kind, Turn turn) {
                return new AgentRun(agentId, null, kind, null, turn, null, null);
            }

            /** An agent a workflow run started, under the Workflow call that launched the run. */
            static AgentRun inWorkflow(String toolUseId, WorkflowSlot slot, String agentId, Turn turn, AgentMeta meta) {
                return new AgentRun(agentId, toolUseId, AgentKind.WORKFLOW, meta == null ? null : meta.agentType(), turn, meta, slot);
            }
        }

        /** A workflow run as a turn shows it; `settled`: it ended (or went quiet), so its own span and its phases' go out. */
        record RunShown(Workflows.Run run, boolean settled) {
        }

        /** What the turn's calls left running in the background: its workflow runs, and what of it has not finished yet. */
        record Launches(List<RunShown> runs, List<String> waitingFor) {
            static final Launches NONE = new Launches(List.of(), List.of());
        }

        /**
         * Groups rows into turns as they stream in; a turn is handed on when the next one starts (or at finish()).
         * In agent mode it reads a subagent's file: sidechain rows, one turn, prompted by the last user row before
         * the first answer.
         */
        static final class TurnAssembler {
            private final Consumer<Turn> sink;
            private final boolean agentMode;
            private final LongHashSet seenUuids = new LongHashSet();
            private Transcript.Row userRow;
            private TurnKind kind;
            private List<Transcript.Row> assistantRows = new ArrayList<>();
            private Map<String, ToolResult> toolResults = new LinkedHashMap<>();
            private List<Transcript.Row> systemRows = new ArrayList<>();
            private List<Transcript.Row> sidechainRows = new ArrayList<>();
            private Map<String, Transcript.Row> apiRequests = new HashMap<>();
            private List<Transcript.Row> contextRows = new ArrayList<>();
            private Transcript.Row interruptRow;
            private Instant lastActivity;

            TurnAssembler(Consumer<Turn> sink) {
                this(sink, false);
            }

            TurnAssembler(Consumer<Turn> sink, boolean agentMode) {
                this.sink = sink;
                this.agentMode = agentMode;
            }

            void accept(Transcript.Row row) {
                String uuid = row.uuid();
                // Claude Code repeats rows on session resume; the uuid is the identity.
                if (!uuid.isEmpty() && !seenUuids.add(Helpers.fingerprint(uuid))) return;
                if (!agentMode && row.json().path("isSidechain").asBoolean(false)) {
                    if (userRow != null) sidechainRows.add(row);
                    return;
                }
                String role = Transcript.getRole(row.json());
                if ("user".equals(role)) acceptUser(row);
                else if ("assistant".equals(role)) {
                    if (userRow != null && !Transcript.isLocalPlaceholder(row.json())) assistantRows.add(row);
                } else if (row.type().equals("system")) {
                    if (userRow != null && !"stop_hook_summary".equals(row.json().path("subtype").asText())) systemRows.add(row);
                } else if (row.type().equals("attachment")) {
                    // Only its type is shown (its data can be a whole system prompt).
                    JsonNode type = row.json().path("attachment").path("type");
                    ObjectNode slim = Json.NODES.objectNode().put("type", "attachment");
                    if (type.isTextual()) slim.putObject("attachment").set("type", type);
                    if (userRow != null) contextRows.add(new Transcript.Row(slim, row.offset(), row.length(), row.uuid(), row.timestamp()));
                } else if (row.type().equals("api-request")) {
                    // 2.1.3xx: when each Messages API request went out (assistant rows name it in requestRef).
                    String id = row.json().path("id").asText("");
                    if (userRow != null && !id.isEmpty()) apiRequests.put(id, row);
                }
                Instant time = row.timestamp();
                if (userRow != null && time != null && (lastActivity == null || time.isAfter(lastActivity))) lastActivity = time;
            }

            private void acceptUser(Transcript.Row row) {
                Transcript.UserRowKind userKind = Transcript.classifyUserRow(row.json());
                switch (userKind) {
                    case TOOL_RESULT -> {
                        for (JsonNode block : Transcript.iterToolResults(Transcript.getContent(row.json()))) {
                            String id = block.path("tool_use_id").asText("");
                            if (!id.isEmpty()) toolResults.put(id, new ToolResult(block, row));
                        }
                    }
                    case INTERRUPT -> {
                        if (userRow != null && interruptRow == null) interruptRow = row;
                    }
                    case PROMPT, COMMAND, TASK_NOTIFICATION -> {
                        if (agentMode) {
                            if (assistantRows.isEmpty()) startTurn(row, TurnKind.PROMPT);
                            return;
                        }
                        flush();
                        startTurn(row, userKind == Transcript.UserRowKind.PROMPT ? TurnKind.PROMPT
                                : userKind == Transcript.UserRowKind.COMMAND ? TurnKind.COMMAND : TurnKind.TASK_NOTIFICATION);
                    }
                    default -> {
                        // A Stop hook that blocked the stop: the turn goes on, and the trace shows why.
                        if (userKind == Transcript.UserRowKind.META && userRow != null) {
                            if (Transcript.isStopHookFeedback(row.json())) systemRows.add(row);
                            else contextRows.add(row);
                        }
                        if (agentMode && userRow == null) startTurn(row, TurnKind.PROMPT);
                        // Otherwise compact summaries, meta rows and local-command output are context, not turns.
                    }
                }
            }

            private void startTurn(Transcript.Row row, TurnKind turnKind) {
                userRow = row;
                kind = turnKind;
                lastActivity = row.timestamp();
            }

            void finish() {
                flush();
            }

            private void flush() {
                if (userRow != null) {
                    sink.accept(new Turn(userRow, kind, List.copyOf(assistantRows), Map.copyOf(toolResults),
                            trimTrailingSystemRows(systemRows, assistantRows, interruptRow), interruptRow,
                            List.copyOf(sidechainRows), List.of(), lastActivity,
                            new ModelInput(List.copyOf(contextRows), Map.copyOf(apiRequests), Map.of()), Launches.NONE));
                }
                userRow = null;
                assistantRows = new ArrayList<>();
                toolResults = new LinkedHashMap<>();
                systemRows = new ArrayList<>();
                sidechainRows = new ArrayList<>();
                apiRequests = new HashMap<>();
                contextRows = new ArrayList<>();
                interruptRow = null;
                lastActivity = null;
            }
        }

        /**
         * System rows written after the turn's last assistant row (stop hook, turn_duration, recaps) land after the
         * Stop hook ran, so the hook never sees them; dropping them keeps replay and hook traces identical.
         */
        private static List<Transcript.Row> trimTrailingSystemRows(List<Transcript.Row> systemRows, List<Transcript.Row> assistantRows, Transcript.Row interruptRow) {
            long last = assistantRows.isEmpty() ? -1 : assistantRows.get(assistantRows.size() - 1).offset();
            if (interruptRow != null) last = Math.max(last, interruptRow.offset());
            long cutoff = last;
            return systemRows.stream().filter(row -> row.offset() < cutoff).toList();
        }

        /** The user turns of `rows`; in agent mode (a subagent's file) the first prompt opens the one turn there is. */
        private static List<Turn> buildTurns(Iterable<Transcript.Row> rows, boolean agentMode) {
            List<Turn> turns = new ArrayList<>();
            TurnAssembler assembler = new TurnAssembler(turns::add, agentMode);
            rows.forEach(assembler::accept);
            assembler.finish();
            return turns;
        }

        /** A subagent's rows as one turn (the agent's prompt, its generations and tool calls); null without a prompt. */
        private static Turn buildAgentTurn(Iterable<Transcript.Row> rows) {
            List<Turn> turns = buildTurns(rows, true);
            return turns.isEmpty() ? null : turns.get(0);
        }

        /** An open-addressing set of longs (the JDK has none without boxing). */
        private static final class LongHashSet {
            private long[] slots = new long[1024];
            private boolean[] used = new boolean[1024];
            private int size;

            boolean add(long value) {
                if (size * 2 >= slots.length) grow();
                int mask = slots.length - 1;
                int index = (int) (value ^ (value >>> 32)) * 0x9E3779B9 & mask;
                while (used[index]) {
                    if (slots[index] == value) return false;
                    index = (index + 1) & mask;
                }
                used[index] = true;
                slots[index] = value;
                size++;
                return true;
            }

            private void grow() {
                long[] oldSlots = slots;
                boolean[] oldUsed = used;
                slots = new long[oldSlots.length * 2];
                used = new boolean[oldSlots.length * 2];
                size = 0;
                for (int i = 0; i < oldSlots.length; i++) {
                    if (oldUsed[i]) add(oldSlots[i]);
                }
            }
        }

        static final Set<String> AGENT_TOOLS = Set.of("Task", "Agent");
        private static final Pattern AGENT_ID_IN_TEXT = Pattern.compile("agentId: ?([A-Za-z0-9_-]+)");

        /** The agent a Task/Agent tool result names (toolUseResult.agentId, or "agentId: ..." in its text). */
        private static String agentIdOf(ToolResult result) {
            String id = result.row().json().path("toolUseResult").path("agentId").asText("");
            if (!id.isEmpty()) return id;
            Matcher matcher = AGENT_ID_IN_TEXT.matcher(Transcript.toolResultText(result.block().get("content")));
            return matcher.find() ? matcher.group(1) : null;
        }

        /** A background launch returns at once; its agent's work shows under the call once the agent has finished. */
        private static boolean isBackgroundLaunch(ToolResult result) {
            JsonNode toolUseResult = result.row().json().path("toolUseResult");
            String status = toolUseResult.path("status").asText("completed");
            return toolUseResult.path("isAsync").asBoolean(false) || status.equals("async_launched") || status.equals("running");
        }

        /**
         * Links the turn's subagents: Task/Agent calls to their agent files (2.0.x `agent-<id>.jsonl` beside the
         * transcript, 2.1.x `<session>/subagents/agent-<id>.jsonl`) or to inline sidechain rows (1.0.x); Workflow calls to
         * their runs' agents; compaction helpers to the turn they ran in. Work started in the background shows under the
         * call that started it once it has finished (AgentFiles says when); until then the turn waits for it.
         */
        static Turn attachAgents(Turn turn, AgentFiles files) {
            List<AgentRun> agents = new ArrayList<>();
            List<RunShown> runs = new ArrayList<>();
            List<String> waitingFor = new ArrayList<>();
            Set<String> attachedCalls = new HashSet<>();
            List<ToolCall> agentCalls = new ArrayList<>();
            for (ToolCall call : toolCallsFromAssistants(turn.assistantRows())) {
                ToolResult result = turn.toolResultsById().get(call.id());
                if (result != null && call.name().equals("Workflow")) {
                    Workflows.Launch launch = Workflows.Launch.of(call.id(), call.toolUse(), result.row().json().path("toolUseResult"),
                            result.row().timestamp());
                    if (launch != null) attachRun(files.workflowRun(launch), files, agents, runs, waitingFor);
                    continue;
                }
                if (!AGENT_TOOLS.contains(call.name())) continue;
                agentCalls.add(call);
                String agentId = result == null ? null : agentIdOf(result);
                Path file = agentId == null ? null : files.agentFile(agentId);
                if (file == null) continue;
                attachedCalls.add(call.id());
                boolean background = isBackgroundLaunch(result);
                Turn agentTurn = files.readAgentFile(file);
                AgentMeta meta = files.meta(file);
                if (background && !files.finished(agentId, file, meta)) {
                    waitingFor.add("background agent " + agentId);
                } else if (agentTurn != null) {
                    agents.add(AgentRun.called(agentId, call.id(), background ? AgentKind.BACKGROUND : AgentKind.TASK,
                            agentTypeOf(call, result), agentTurn, meta));
                }
            }
            attachSidechains(turn, agentCalls, attachedCalls, agents);
            Instant start = turn.firstTimestamp();
            Instant end = turn.lastActivity() == null ? start : turn.lastActivity().plusSeconds(5);
            for (Map.Entry<String, Turn> helper : files.compactionAgents(start).entrySet()) {
                Instant finished = helper.getValue().lastActivity();
                if (finished != null && !finished.isBefore(start) && !finished.isAfter(end)) {
                    agents.add(AgentRun.loose(helper.getKey(), AgentKind.COMPACTION, helper.getValue()));
                }
            }
            if (agents.isEmpty() && runs.isEmpty() && waitingFor.isEmpty()) return turn;
            return turn.withAgents(agents, new Launches(List.copyOf(runs), List.copyOf(waitingFor)));
        }

        /** A workflow run's finished agents, and the run itself once it has settled; what is left waits. */
        private static void attachRun(Workflows.Run run, AgentFiles files, List<AgentRun> agents, List<RunShown> runs, List<String> waitingFor) {
            String runId = run.launch().runId();
            boolean settled = run.ended() || files.settled(run.lastWrite());
            int shown = 0;
            for (Workflows.Agent agent : run.agents()) {
                Path file = run.agentFile(agent.agentId());
                if (!Files.isRegularFile(file)) {
                    // Warned once: on the firing that shows the run for good
                    if (settled) files.warn("Workflow run " + runId + ": its journal names agent " + agent.agentId() + ", whose file is gone");
                    shown++;
                    continue;
                }
                if (!(agent.finished() || run.ended() || files.settled(Helpers.lastModified(file)))) continue;
                Turn agentTurn = files.readAgentFile(file);
                AgentMeta meta = files.meta(file);
                shown++;
                if (agentTurn == null) continue;
                String phase = agent.phase() != null ? agent.phase() : meta == null ? null : meta.workflowPhase();
                String label = Helpers.firstNonBlank(agent.label(), meta == null ? null : meta.description(), agent.agentId());
                agents.add(AgentRun.inWorkflow(run.launch().toolUseId(), new WorkflowSlot(runId, label, phase), agent.agentId(), agentTurn, meta));
            }
            if (settled && !run.ended()) {
                files.warn("Workflow run " + runId + " has no record (workflows/" + runId + ".json) and its files are at rest: "
                        + "shown as running, with the agents it has");
            }
            runs.add(new RunShown(run, settled));
            if (!settled || shown < run.agents().size()) {
                waitingFor.add("workflow run " + runId + " (" + shown + " of " + run.agents().size() + " agents finished)");
            }
        }

        /** 1.0.x inline subagent rows, matched to the Task calls of the turn by prompt. */
        private static void attachSidechains(Turn turn, List<ToolCall> agentCalls, Set<String> attachedCalls, List<AgentRun> agents) {
            List<List<Transcript.Row>> chains = sidechainChains(turn.sidechainRows());
            for (int i = 0; i < chains.size(); i++) {
                Turn agentTurn = buildAgentTurn(chains.get(i));
                if (agentTurn == null) continue;
                String prompt = Transcript.extractText(Transcript.getContent(agentTurn.userRow().json())).strip();
                ToolCall match = agentCalls.stream().filter(call -> !attachedCalls.contains(call.id()))
                        .filter(call -> call.toolUse().path("input").path("prompt").asText("").strip().equals(prompt))
                        .findFirst().orElse(agentCalls.stream().filter(call -> !attachedCalls.contains(call.id())).findFirst().orElse(null));
                if (match == null) continue;
                attachedCalls.add(match.id());
                agents.add(AgentRun.called("sidechain-" + (i + 1), match.id(), AgentKind.TASK,
                        agentTypeOf(match, turn.toolResultsById().get(match.id())), agentTurn, null));
            }
        }

        static String agentTypeOf(ToolCall call, ToolResult result) {
            return Helpers.firstNonBlank(call.toolUse().path("input").path("subagent_type").asText(""),
                    result == null ? null : result.row().json().path("toolUseResult").path("agentType").asText(""));
        }

        /** 1.0.x inline subagent rows split into conversations: a row whose parent is in no chain starts a new one. */
        private static List<List<Transcript.Row>> sidechainChains(List<Transcript.Row> rows) {
            List<List<Transcript.Row>> chains = new ArrayList<>();
            Map<String, List<Transcript.Row>> chainOfUuid = new HashMap<>();
            for (Transcript.Row row : rows) {
                List<Transcript.Row> chain = chainOfUuid.get(row.json().path("parentUuid").asText(""));
                if (chain == null) {
                    chain = new ArrayList<>();
                    chains.add(chain);
                }
                chain.add(row);
                if (!row.uuid().isEmpty()) chainOfUuid.put(row.uuid(), chain);
            }
            return chains;
        }

        /**
         * Where a transcript's subagent files live, and how finished an agent started in the background must be to show:
         * for replay and backfill everything on disk shows; for the hook, what Claude Code marked finished (meta.json,
         * a task notification, the run's journal or record) or what nobody has written to for 10 minutes. Compaction
         * helpers are listed once.
         */
        static final class AgentFiles {
            private static final Duration QUIET = Duration.ofMinutes(10);
            private final Path transcript;
            /** `<session>/subagents/` beside `<session>.jsonl`, where Claude Code 2.1+ writes its agents. */
            private final Path subagentsDir;
            private final Config.GenerationInput generationInput;
            private final Log log;
            private final boolean everything;
            private final Instant now;
            private final Set<String> notifiedTaskIds = new HashSet<>();
            private final Map<String, Turn> compactionTurns = new HashMap<>();
            private Map<String, Path> compactionFiles;

            /** For a whole transcript at rest (replay, backfill): every agent on disk shows. */
            AgentFiles(Path transcript, Config.GenerationInput generationInput, Log log) {
                this(transcript, generationInput, log, true, Instant.EPOCH);
            }

            private AgentFiles(Path transcript, Config.GenerationInput generationInput, Log log, boolean everything, Instant now) {
                this.transcript = transcript;
                this.generationInput = generationInput;
                String name = transcript.getFileName().toString();
                this.subagentsDir = transcript.resolveSibling(name.endsWith(".jsonl") ? name.substring(0, name.length() - 6) : name)
                        .resolve("subagents");
                this.log = log;
                this.everything = everything;
                this.now = now;
            }

            /** For a hook run at `now`: background work shows once finished (or quiet for 10 minutes). */
            static AgentFiles forHook(Path transcript, Config.GenerationInput generationInput, Instant now, Log log) {
                return new AgentFiles(transcript, generationInput, log, false, now);
            }

            /** A task notification names this task (a background agent's task id is its agent id): it has finished. */
            void notified(String taskId) {
                notifiedTaskIds.add(taskId);
            }

            /** `<session>/subagents/agent-<id>.jsonl`, or `agent-<id>.jsonl` beside the transcript; null when neither exists. */
            Path agentFile(String agentId) {
                if (!agentId.matches("[A-Za-z0-9_-]+")) return null;
                for (Path candidate : List.of(subagentsDir.resolve("agent-" + agentId + ".jsonl"),
                        transcript.resolveSibling("agent-" + agentId + ".jsonl"))) {
                    if (Files.isRegularFile(candidate)) return candidate;
                }
                return null;
            }

            AgentMeta meta(Path agentFile) {
                return AgentMeta.read(agentFile, log);
            }

            void warn(String line) {
                log.warn(line);
            }

            Workflows.Run workflowRun(Workflows.Launch launch) {
                return Workflows.read(subagentsDir.getParent(), launch, log);
            }

            /** A background agent is done: meta.json says so, a task notification reported it, or its file went quiet. */
            boolean finished(String agentId, Path file, AgentMeta meta) {
                return everything || (meta != null && meta.finished()) || notifiedTaskIds.contains(agentId) || settled(Helpers.lastModified(file));
            }

            /** Files last written at `lastWrite` are as complete as they will be: at rest, or quiet for 10 minutes. */
            boolean settled(Instant lastWrite) {
                return everything || lastWrite.isBefore(now.minus(QUIET));
            }

            /**
             * Compaction helpers (`agent-acompact-*.jsonl`) by agent id, those written to since `notBefore` only: the
             * folder is listed once, and a helper that finished before the turn began is never read (the hook runs often).
             */
            Map<String, Turn> compactionAgents(Instant notBefore) {
                if (compactionFiles == null) compactionFiles = listCompactionFiles();
                Map<String, Turn> found = new LinkedHashMap<>();
                compactionFiles.forEach((id, file) -> {
                    if (Helpers.lastModified(file).isBefore(notBefore)) return;
                    Turn turn = compactionTurns.computeIfAbsent(id, key -> readAgentFile(file));
                    if (turn != null) found.put(id, turn);
                });
                return found;
            }

            private Map<String, Path> listCompactionFiles() {
                Map<String, Path> files = new LinkedHashMap<>();
                if (!Files.isDirectory(subagentsDir)) return files;
                try (java.util.stream.Stream<Path> listing = Files.list(subagentsDir)) {
                    listing.filter(f -> f.getFileName().toString().startsWith("agent-acompact-")).sorted()
                            .forEach(f -> files.put(f.getFileName().toString().replaceFirst("^agent-(.*)\\.jsonl$", "$1"), f));
                } catch (IOException e) {
                    log.warn("Could not list " + subagentsDir + ": " + e);
                }
                return files;
            }

            /** An agent's file as one turn, with its model calls as the file records them. */
            Turn readAgentFile(Path file) {
                try {
                    Reader.ReadResult read = Reader.readNewJsonl(file, 0, Reader.unreadTypes(generationInput), log);
                    long cut = Files.size(file) - read.endOffset();
                    if (cut > 0) log.warn("Left out the last " + cut + " byte(s) of " + file + ": a line without its end");
                    List<Transcript.Row> rows = read.rows();
                    Turn turn = buildAgentTurn(rows);
                    if (turn == null || turn.modelInput().apiRequests().isEmpty()) return turn;
                    Requests.Store requests = new Requests.Store(generationInput, log);
                    for (Transcript.Row row : rows) requests.accept(row);
                    return turn.withCalls(requests);
                } catch (IOException e) {
                    log.warn("Could not read subagent file " + file + ": " + e);
                    return null;
                }
            }
        }

        /**
         * A turn is over when the user interrupted it, or its last assistant row ended the message (stop_reason
         * end_turn, or, for versions that leave stop_reason null, a text block).
         */
        static boolean isTurnComplete(Turn turn) {
            if (turn.interrupted()) return true;
            Transcript.Row last = turn.lastAssistant();
            if (last == null) return false;
            String stopReason = last.json().path("message").path("stop_reason").asText("");
            if (stopReason.equals("tool_use") || stopReason.equals("pause_turn")) return false;
            if (!stopReason.isEmpty()) return true;
            return !Transcript.blocksOfType(Transcript.getContent(last.json()), "text").isEmpty();
        }

        /** A turn to send: a new one with its number, or the open turn (sentBefore) that grew since it was sent. */
        record Emission(Turn turn, int turnNumber, Progress.SentTurn sentBefore) {
            static Emission newTurn(Turn turn, int turnNumber) {
                return new Emission(turn, turnNumber, null);
            }

            /** The open turn again, with what it gained since `open` was sent: same number, only its new spans go out. */
            static Emission grown(Turn turn, Progress.SentTurn open) {
                return new Emission(turn, open.turnNumber(), open);
            }
        }

        /** What one hook run sends, and where the last turn waits (its user row's offset; -1: none) if it is still in progress. */
        record EmissionPlan(List<Emission> emissions, long deferredOffset) {
            boolean deferred() {
                return deferredOffset >= 0;
            }
        }

        /**
         * The one way rows become numbered turns, for hook mode, replay and backfill alike (so their ids and numbers agree):
         * rows stream in and turns are assembled; a turn sent before is skipped, except the open turn (the last one sent:
         * it may have grown); subagents are attached; every turn with work gets the next number after the state's count.
         * The last turn is handed on only when complete, unless `forceLast` (the session ended, the transcript went quiet,
         * or replay: the turn is as complete as it will ever be); otherwise it waits at its user row's offset.
         */
        static final class TurnPlanner {
            private final Progress.SessionState state;
            private final Set<String> emitted;
            private final AgentFiles agentFiles;
            private final Requests.Store requests;
            private final boolean forceLast;
            private final Consumer<Emission> sink;
            private final TurnAssembler assembler = new TurnAssembler(this::plan);
            private int newTurns;
            private boolean finishing;
            private long deferredOffset = -1;

            TurnPlanner(Progress.SessionState state, AgentFiles agentFiles, Requests.Store requests, boolean forceLast,
                        Consumer<Emission> sink) {
                this.state = state;
                this.emitted = new HashSet<>(state.emittedUserUuids());
                this.agentFiles = agentFiles;
                this.requests = requests;
                this.forceLast = forceLast;
                this.sink = sink;
            }

            /** A turn is planned when the next one starts, so the store has every row of it by then. */
            void accept(Transcript.Row row) {
                assembler.accept(row);
                requests.accept(row);
            }

            /** Ends the rows; returns where the last turn waits (its user row's offset), or -1 when none waits. */
            long finish() {
                // The assembler hands a turn on when the next one starts: what it hands on from here is the last.
                finishing = true;
                assembler.finish();
                return deferredOffset;
            }

            private void plan(Turn turn) {
                // The open turn, or an earlier one waiting for its background work: only what it gained goes out.
                Progress.SentTurn sentBefore = state.sentTurn(turn.userRow().uuid());
                if (sentBefore == null && emitted.contains(turn.userRow().uuid())) return;
                if (finishing && !forceLast && !isTurnComplete(turn)) {
                    deferredOffset = turn.userRow().offset();
                    return;
                }
                Turn withAgents = attachAgents(turn, agentFiles);
                if (!withAgents.hasWork()) return;
                Turn planned = withAgents.withCalls(requests);
                sink.accept(sentBefore != null ? Emission.grown(planned, sentBefore) : Emission.newTurn(planned, state.turnCount() + ++newTurns));
            }
        }

        /** What to send of the rows one hook run read (see TurnPlanner). */
        static EmissionPlan planEmission(List<Transcript.Row> rows, Progress.SessionState state, AgentFiles agentFiles,
                                         Requests.Store requests, boolean forceLast) {
            List<Emission> emissions = new ArrayList<>();
            // A turn is planned before the rows after it are read: the tasks they report finished are known first.
            for (Transcript.Row row : rows) {
                if (!"user".equals(row.type()) || Transcript.classifyUserRow(row.json()) != Transcript.UserRowKind.TASK_NOTIFICATION) continue;
                JsonNode taskId = Transcript.origin(row.json(), Transcript.UserRowKind.TASK_NOTIFICATION).path("task_id");
                if (taskId.isTextual()) agentFiles.notified(taskId.textValue());
            }
            TurnPlanner planner = new TurnPlanner(state, agentFiles, requests, forceLast, emissions::add);
            for (Transcript.Row row : rows) planner.accept(row);
            long deferredOffset = planner.finish();
            return new EmissionPlan(emissions, deferredOffset);
        }

        record ToolCall(JsonNode toolUse, Transcript.Row decisionRow, int stepIndex) {
            String id() {
                return toolUse.path("id").asText("");
            }

            String name() {
                return toolUse.path("name").asText("unknown");
            }
        }

        static List<ToolCall> toolCallsFromAssistants(List<Transcript.Row> assistantRows) {
            List<ToolCall> calls = new ArrayList<>();
            for (int i = 0; i < assistantRows.size(); i++) {
                for (JsonNode toolUse : Transcript.iterToolUses(Transcript.getContent(assistantRows.get(i).json()))) {
                    calls.add(new ToolCall(toolUse, assistantRows.get(i), i + 1));
                }
            }
            return calls;
        }
    }

    /**
     * What a trace is, as Langfuse shows it: observations (typed, levelled, with the model call a generation carries)
     * under a trace header. Records built by name; Traces builds them from turns, Export sends them, Render prints them.
     */
    static final class TraceModel {
        private TraceModel() {
        }

        /** Langfuse's observation types, as `langfuse.observation.type` names them. */
        enum ObservationType {
            SPAN, GENERATION, TOOL, AGENT, CHAIN, EVENT;

            String wireName() {
                return name().toLowerCase(Locale.ROOT);
            }
        }

        /** Langfuse's observation levels; DEFAULT is what Langfuse assumes when none is sent, so it is not sent. */
        enum Level { DEFAULT, WARNING, ERROR }

        /**
         * What one model call carries: the model, its token usage (null when another row of the message carries it), and
         * its request's settings as Langfuse's model parameters (empty when none are known). The place for what more a
         * call may carry (its cost; its input is the observation's): one component here, one attribute in
         * LangfuseAttributes, one field in Render.
         */
        /** A generation's model, usage, parameters, and its cost by Claude Code's prices (USD by usage key and "total"; null: not known). */
        record ModelCall(String model, Map<String, Long> usage, ObjectNode parameters, Map<String, Double> cost) {
            ModelCall withoutUsage() {
                return new ModelCall(model, null, parameters, null);
            }
        }

        /**
         * One Langfuse observation, fully described; ids are lowercase hex, times real (from the transcript). Built by
         * name: `Observation.event(id, parentId, name).at(time)...build()`, one factory per type.
         */
        record Observation(String id, String parentId, String name, ObservationType type, Instant start, Instant end,
                           String input, String output, ModelCall modelCall, Level level, String statusMessage, ObjectNode metadata) {

            /** A trace's root: the span with no parent that every other observation hangs from. */
            static Builder root(String id, String name) {
                return new Builder(ObservationType.SPAN, id, null, name);
            }

            static Builder generation(String id, String parentId, String name) {
                return new Builder(ObservationType.GENERATION, id, parentId, name);
            }

            static Builder tool(String id, String parentId, String name) {
                return new Builder(ObservationType.TOOL, id, parentId, name);
            }

            static Builder agent(String id, String parentId, String name) {
                return new Builder(ObservationType.AGENT, id, parentId, name);
            }

            /** A span that groups work (a workflow's phase). */
            static Builder span(String id, String parentId, String name) {
                return new Builder(ObservationType.SPAN, id, parentId, name);
            }

            /** Steps run in order by something other than a model (a workflow run: its script starts agents). */
            static Builder chain(String id, String parentId, String name) {
                return new Builder(ObservationType.CHAIN, id, parentId, name);
            }

            static Builder event(String id, String parentId, String name) {
                return new Builder(ObservationType.EVENT, id, parentId, name);
            }

            /** The model of a generation; null for anything else and for a row without one (<synthetic>). */
            String model() {
                return modelCall == null ? null : modelCall.model();
            }

            /** The token usage it carries; null when it carries none. */
            Map<String, Long> usage() {
                return modelCall == null ? null : modelCall.usage();
            }

            Map<String, Double> cost() {
                return modelCall == null ? null : modelCall.cost();
            }

            Observation withoutUsage() {
                return new Observation(id, parentId, name, type, start, end, input, output,
                        modelCall == null ? null : modelCall.withoutUsage(), level, statusMessage, metadata);
            }

            /** Names each part of an observation; what is not named is absent (no level: DEFAULT, no metadata: empty). */
            static final class Builder {
                private final ObservationType type;
                private final String id;
                private final String parentId;
                private final String name;
                private Instant start = Instant.EPOCH;
                private Instant end = Instant.EPOCH;
                private String input;
                private String output;
                private ModelCall modelCall;
                private Level level = Level.DEFAULT;
                private String statusMessage;
                private ObjectNode metadata;

                private Builder(ObservationType type, String id, String parentId, String name) {
                    this.type = type;
                    this.id = id;
                    this.parentId = parentId;
                    this.name = name;
                }

                /** An instant: an event, or anything that took no time. */
                Builder at(Instant instant) {
                    return between(instant, instant);
                }

                Builder between(Instant start, Instant end) {
                    this.start = start;
                    this.end = end;
                    return this;
                }

                Builder input(String input) {
                    this.input = input;
                    return this;
                }

                Builder output(String output) {
                    this.output = output;
                    return this;
                }

                Builder modelCall(ModelCall modelCall) {
                    this.modelCall = modelCall;
                    return this;
                }

                Builder level(Level level, String statusMessage) {
                    this.level = level;
                    this.statusMessage = statusMessage;
                    return this;
                }

                Builder metadata(ObjectNode metadata) {
                    this.metadata = metadata;
                    return this;
                }

                Observation build() {
                    return new Observation(id, parentId, name, type, start, end, input, output, modelCall, level, statusMessage,
                            metadata == null ? Json.NODES.objectNode() : metadata);
                }
            }
        }

        /**
         * What Langfuse shows for a trace as a whole: its id, name, session, user, release, environment, tags, input,
         * output and metadata (the `claude_code` object and flat keys Langfuse v4 can filter on, which go on every span),
         * and, under a caller's traceparent, the caller's span the root hangs from. Built by name: `TraceHeader.of(...)`.
         */
        record TraceHeader(String traceId, String name, String sessionId, String userId, String release, String environment,
                           List<String> tags, String input, String output, ObjectNode metadata, String parentSpanId) {

            static Builder of(String traceId, String name) {
                return new Builder(traceId, name);
            }

            /** Names each part of a trace header; what is not named is absent (no tags: none, no metadata: empty). */
            static final class Builder {
                private final String traceId;
                private final String name;
                private String sessionId;
                private String userId;
                private String release;
                private String environment;
                private List<String> tags = List.of();
                private String input;
                private String output;
                private ObjectNode metadata = Json.NODES.objectNode();
                private String parentSpanId;

                private Builder(String traceId, String name) {
                    this.traceId = traceId;
                    this.name = name;
                }

                Builder session(String sessionId, String release) {
                    this.sessionId = sessionId;
                    this.release = release;
                    return this;
                }

                Builder user(String userId, String environment, List<String> tags) {
                    this.userId = userId;
                    this.environment = environment;
                    this.tags = tags;
                    return this;
                }

                Builder content(String input, String output) {
                    this.input = input;
                    this.output = output;
                    return this;
                }

                Builder metadata(ObjectNode metadata) {
                    this.metadata = metadata;
                    return this;
                }

                /** The caller's span every turn's root becomes a child of (a W3C traceparent); null: none. */
                Builder parentSpan(String parentSpanId) {
                    this.parentSpanId = parentSpanId;
                    return this;
                }

                TraceHeader build() {
                    return new TraceHeader(traceId, name, sessionId, userId, release, environment, tags, input, output, metadata, parentSpanId);
                }
            }
        }

        /** One trace: its header and its observations, the root first (or, for the rest of a turn sent before, only what it has not sent). */
        record TraceRecord(TraceHeader header, List<Observation> observations) {
            String traceId() {
                return header.traceId();
            }

            String name() {
                return header.name();
            }

            /** The root observation (first, without a parent), or null for the rest of a turn whose root went before. */
            Observation root() {
                Observation first = observations.get(0);
                return first.parentId() == null ? first : null;
            }
        }
    }

    /** Trace building: a turn into Langfuse observations. Pure: no files, clock or network. */
    static final class Traces {
        private Traces() {
        }

        /** What trace building needs from outside the transcript: the session to assume, the transcript's path, the options. */
        record TraceContext(String fallbackSessionId, String transcriptPath, Config.TraceOptions options, Prices.Rates rates) {
            static TraceContext of(Config.TraceOptions options, String fallbackSessionId, String transcriptPath) {
                return new TraceContext(fallbackSessionId, transcriptPath, options, null);
            }

            /** The same, pricing generations by Claude Code's rates where they determine the cost (null: no cost sent). */
            TraceContext withRates(Prices.Rates learned) {
                return new TraceContext(fallbackSessionId, transcriptPath, options, learned == null || learned.isEmpty() ? null : learned);
            }

            Masker masker() {
                return options.masker();
            }

            int maxChars() {
                return options.maxChars();
            }
        }

        static String traceIdFor(String sessionId, String userUuid) {
            return HexFormat.of().formatHex(Helpers.sha256("litefuse-trace:" + sessionId + ":" + userUuid), 0, 16);
        }

        private static String spanIdFor(String turnId, String key) {
            return HexFormat.of().formatHex(Helpers.sha256("litefuse-span:" + turnId + ":" + key), 0, 8);
        }

        /** A row's identity for span ids: its uuid, or (for the rare row without one) its byte offset. */
        private static String rowKey(Transcript.Row row) {
            return row.uuid().isEmpty() ? "offset:" + row.offset() : row.uuid();
        }

        /** The trace of an emission: the whole turn, or, for the open turn, what it has not sent yet (null: nothing). */
        static TraceModel.TraceRecord traceOf(Turns.Emission emission, TraceContext ctx) {
            return unsentPart(buildTrace(emission.turn(), emission.turnNumber(), ctx), emission.sentBefore());
        }

        /**
         * The observations of one trace as they are built: the turn's id (span ids derive from it), the context, what
         * was built so far, the models it used, the tool lists whose schemas a generation's input showed already
         * (once per trace; later inputs name the tools), and the trace's masker.
         */
        private record Draft(String turnId, TraceContext ctx, List<TraceModel.Observation> observations, Set<String> models,
                             Set<JsonNode> toolSchemasShown, Masker masker) {
            static Draft start(String turnId, TraceContext ctx) {
                return new Draft(turnId, ctx, new ArrayList<>(), new LinkedHashSet<>(), java.util.Collections.newSetFromMap(new IdentityHashMap<>()),
                        ctx.masker().forOneTrace());
            }

            /** A draft for an agent's steps, built before the agent's span and listed after it: the trace's models, tools and masker. */
            Draft forSteps() {
                return new Draft(turnId, ctx, new ArrayList<>(), models, toolSchemasShown, masker);
            }

            String spanId(String key) {
                return spanIdFor(turnId, key);
            }

            void add(TraceModel.Observation observation) {
                observations.add(observation);
                if (observation.model() != null) models.add(observation.model());
            }
        }

        /** Where observations are being added: the trace's draft, the parent they hang from, and the rows' times. */
        private record Scope(Draft draft, String parentId, Timeline timeline) {
            String spanId(String key) {
                return draft.spanId(key);
            }

            Masker masker() {
                return draft.masker();
            }

            int maxChars() {
                return draft.ctx().maxChars();
            }
        }

        /** Builds the whole trace of one turn: pure, so replay, tests and the hook all see the same thing. */
        static TraceModel.TraceRecord buildTrace(Turns.Turn turn, int turnNumber, TraceContext ctx) {
            JsonNode userJson = turn.userRow().json();
            String sessionId = Helpers.firstNonBlank(userJson.path("sessionId").asText(""), userJson.path("session_id").asText(""),
                    ctx.fallbackSessionId(), "unknown");
            Draft draft = Draft.start(traceIdFor(sessionId, turn.userRow().uuid()), ctx);
            String rootId = draft.spanId("root");
            Instant turnStart = turn.firstTimestamp();
            Transcript.Truncated userText = Transcript.truncateText(
                    draft.masker().text(Transcript.promptText(userJson, kindOf(turn.kind()))), ctx.maxChars());
            ObjectNode userContent = describeUserContent(Transcript.getContent(userJson));
            userText.describeInto(userContent, "user_text");
            ObjectNode userMeta = pick(userJson, "uuid", "parentUuid", "promptId");
            userMeta.setAll(userContent);
            draft.add(TraceModel.Observation.event(draft.spanId("user"), rootId, "user message").at(turnStart)
                    .input(userText.text()).metadata(wrap(userMeta)).build());
            String finalText = addSteps(new Scope(draft, rootId, Timeline.of(turn, turnStart)), turn);
            for (Turns.AgentRun agent : turn.agents()) {
                if (agent.toolUseId() == null) addAgent(draft, rootId, agent);
            }
            List<TraceModel.Observation> children = draft.observations();
            // The user message opens the turn; everything after it in time order (a stable sort keeps file order on ties).
            children.subList(1, children.size()).sort((a, b) -> a.start().compareTo(b.start()));
            // The turn ends with its own steps: work it started in the background (nested under its calls) may end later.
            Instant turnEnd = turnStart;
            for (TraceModel.Observation child : children) {
                if (rootId.equals(child.parentId()) && child.end().isAfter(turnEnd)) turnEnd = child.end();
            }
            Transcript.Truncated output = Transcript.truncateText(draft.masker().text(finalText), ctx.maxChars());
            ObjectNode traceMeta = turnMetadata(turn, turnNumber, sessionId, draft);
            traceMeta.setAll(userContent);
            output.describeInto(traceMeta, "assistant_text");
            boolean unfinished = turn.lastAssistant() != null && !Turns.isTurnComplete(turn);
            if (unfinished) traceMeta.put("turn_unfinished", true);
            putTurnCost(traceMeta, children);
            String name = "Claude Code - Turn " + turnNumber;
            String release = Helpers.firstNonBlank(userJson.path("version").asText(""),
                    turn.lastAssistant() == null ? null : turn.lastAssistant().json().path("version").asText(""));
            TraceModel.Observation.Builder root = TraceModel.Observation.root(rootId, name).between(turnStart, turnEnd)
                    .input(userText.text()).output(output.text()).metadata(wrap(traceMeta));
            if (turn.interrupted()) root.level(TraceModel.Level.WARNING, "interrupted by user");
            else if (unfinished) root.level(TraceModel.Level.WARNING, "unfinished: Claude Code stopped before the turn's final answer");
            List<TraceModel.Observation> observations = new ArrayList<>();
            observations.add(root.build());
            observations.addAll(children);
            // Every observation says whether it is an error, so "error = true" finds failed tools, API errors and events.
            for (TraceModel.Observation observation : observations) {
                observation.metadata().put("error", String.valueOf(observation.level() == TraceModel.Level.ERROR));
            }
            Config.TraceParent parent = ctx.options().parent();
            // Under a W3C traceparent every turn joins the caller's trace; span ids stay derived from the turn.
            TraceModel.TraceHeader header = TraceModel.TraceHeader.of(parent == null ? draft.turnId() : parent.traceId(), name)
                    .session(sessionId, release)
                    .user(ctx.options().userId(), ctx.options().environment(), tagsOf(ctx.options().tags(), traceMeta.path("origin")))
                    .content(userText.text(), output.text())
                    .metadata(traceMetadata(traceMeta, userJson, release, turn.kind()))
                    .parentSpan(parent == null ? null : parent.spanId())
                    .build();
            return new TraceModel.TraceRecord(header, List.copyOf(observations));
        }

        /**
         * The turn's cost by Claude Code's prices (`cost_usd`), where every generation with usage has one, and where it came
         * from (`cost_source`: claude-code, or none: Langfuse prices the generations from its own table).
         */
        private static void putTurnCost(ObjectNode traceMeta, List<TraceModel.Observation> observations) {
            Progress.CostSent cost = costOf(observations);
            boolean priced = cost.unpriced() == 0 && observations.stream().anyMatch(o -> o.usage() != null);
            traceMeta.put("cost_source", priced ? "claude-code" : "none");
            if (priced) traceMeta.put("cost_usd", cost.usd());
        }

        /** What these observations' generations cost by Claude Code's prices, and how many with usage had no price. */
        static Progress.CostSent costOf(List<TraceModel.Observation> observations) {
            double usd = 0;
            int unpriced = 0;
            for (TraceModel.Observation observation : observations) {
                if (observation.usage() == null) continue;
                if (observation.cost() == null) unpriced++;
                else usd += observation.cost().getOrDefault("total", 0.0);
            }
            return new Progress.CostSent(usd, unpriced);
        }

        /** The configured tags, and `origin:<kind>` for a turn Claude Code started (a task notification, a wake-up, a message). */
        private static List<String> tagsOf(List<String> tags, JsonNode origin) {
            String kind = origin.path("kind").asText("");
            if (kind.isEmpty() || kind.equals("human")) return tags;
            List<String> all = new ArrayList<>(tags);
            all.add("origin:" + kind);
            return List.copyOf(all);
        }

        /** The start of a turn's `claude_code` object: the user row's fields, the session, number, transcript and models used. */
        private static ObjectNode turnMetadata(Turns.Turn turn, int turnNumber, String sessionId, Draft draft) {
            JsonNode userJson = turn.userRow().json();
            ObjectNode traceMeta = pick(userJson, "uuid", "parentUuid", "promptId", "isMeta", "cwd", "gitBranch",
                    "version", "entrypoint", "userType", "isSidechain", "permissionMode", "promptSource", "turnOrigin");
            ObjectNode origin = Transcript.origin(userJson, kindOf(turn.kind()));
            if (origin != null) traceMeta.set("origin", origin);
            traceMeta.put("sessionId", sessionId);
            traceMeta.put("turn_number", turnNumber);
            traceMeta.put("transcript_path", draft.ctx().transcriptPath());
            ArrayNode modelsUsed = traceMeta.putArray("models_used");
            for (String model : draft.models()) modelsUsed.add(model);
            traceMeta.put("source", turnKindName(turn.kind()));
            return traceMeta;
        }

        /** The trace's metadata: the `claude_code` object and, beside it, the trace-wide keys Langfuse v4 filters on. */
        private static ObjectNode traceMetadata(ObjectNode traceMeta, JsonNode userJson, String release, Turns.TurnKind kind) {
            ObjectNode metadata = wrap(traceMeta);
            putFilterKey(metadata, "project_dir", userJson.path("cwd").asText(""));
            putFilterKey(metadata, "git_branch", userJson.path("gitBranch").asText(""));
            putFilterKey(metadata, "claude_code_version", release);
            putFilterKey(metadata, "entrypoint", userJson.path("entrypoint").asText(""));
            putFilterKey(metadata, "permission_mode", userJson.path("permissionMode").asText(""));
            putFilterKey(metadata, "turn_kind", turnKindName(kind));
            putFilterKey(metadata, "origin", traceMeta.path("origin").path("kind").asText(""));
            return metadata;
        }

        private static String turnKindName(Turns.TurnKind kind) {
            return kind.name().toLowerCase(Locale.ROOT);
        }

        /**
         * The observations of a turn's (or an agent's) work under the scope's parent: one generation per assistant row,
         * one tool observation per tool call (with the subagents it ran nested inside), one event per system row and for
         * an interrupt. Returns the last text the model wrote.
         */
        private static String addSteps(Scope scope, Turns.Turn turn) {
            Messages messages = new Messages(turn, new CallInputs(turn, scope.draft()));
            Map<String, List<Turns.ToolCall>> callsByRow = new HashMap<>();
            for (Turns.ToolCall call : Turns.toolCallsFromAssistants(turn.assistantRows())) {
                callsByRow.computeIfAbsent(rowKey(call.decisionRow()), k -> new ArrayList<>()).add(call);
            }
            Map<String, List<Turns.AgentRun>> agentsByCall = new HashMap<>();
            for (Turns.AgentRun agent : turn.agents()) {
                if (agent.toolUseId() != null && agent.slot() == null) agentsByCall.computeIfAbsent(agent.toolUseId(), k -> new ArrayList<>()).add(agent);
            }
            String finalText = "";
            for (int i = 0; i < turn.assistantRows().size(); i++) {
                Transcript.Row row = turn.assistantRows().get(i);
                scope.draft().add(buildGeneration(scope, messages.step(row, i + 1)));
                String text = Transcript.extractText(Transcript.getContent(row.json()));
                if (!text.isEmpty()) finalText = text;
                for (Turns.ToolCall call : callsByRow.getOrDefault(rowKey(row), List.of())) {
                    TraceModel.Observation tool = buildToolObservation(scope, call, turn.toolResultsById().get(call.id()));
                    scope.draft().add(tool);
                    for (Turns.AgentRun agent : agentsByCall.getOrDefault(call.id(), List.of())) addAgent(scope.draft(), tool.id(), agent);
                    for (Turns.RunShown run : turn.launches().runs()) {
                        if (run.run().launch().toolUseId().equals(call.id())) addWorkflowRun(scope.draft(), tool, run, turn.agents());
                    }
                }
            }
            for (Transcript.Row systemRow : turn.systemRows()) {
                scope.draft().add(buildSystemEvent(scope, systemRow));
            }
            if (turn.interrupted()) {
                Transcript.Row interrupt = turn.interruptRow();
                scope.draft().add(TraceModel.Observation.event(scope.spanId("interrupt:" + rowKey(interrupt)), scope.parentId(),
                        "Interrupted by user").at(scope.timeline().at(interrupt)).level(TraceModel.Level.WARNING, "interrupted by user")
                        .metadata(wrap(pick(interrupt.json(), "uuid", "parentUuid"))).build());
            }
            return finalText;
        }

        /**
         * A subagent as an `agent` observation holding its own generations (with their model and usage) and tool
         * calls; its usage is counted there only, so turn totals stay exact.
         */
        private static TraceModel.Observation addAgent(Draft draft, String parentId, Turns.AgentRun agent) {
            Turns.Turn turn = agent.turn();
            Instant start = turn.firstTimestamp();
            String agentSpanId = draft.spanId("agent:" + agent.agentId() + ":" + rowKey(turn.userRow()));
            // Its steps are built first (the agent's span ends with them) and listed after it; the models count for the trace.
            Draft steps = draft.forSteps();
            String finalText = addSteps(new Scope(steps, agentSpanId, Timeline.of(turn, start)), turn);
            Instant end = start;
            for (TraceModel.Observation step : steps.observations()) {
                if (step.end().isAfter(end)) end = step.end();
            }
            JsonNode firstRow = turn.userRow().json();
            String agentType = agent.agentType();
            String label = switch (agent.kind()) {
                case COMPACTION -> "Compaction agent";
                case BACKGROUND -> agentType == null ? "Background agent" : "Background agent: " + agentType;
                case WORKFLOW -> "Agent: " + agent.slot().label();
                case TASK -> agentType == null ? "Agent" : "Agent: " + agentType;
            };
            ObjectNode meta = Json.NODES.objectNode();
            meta.put("agentId", agent.agentId());
            meta.put("agent_kind", agent.kind().label());
            if (agentType != null) meta.put("agentType", agentType);
            putAgentFacts(meta, agent);
            meta.setAll(pick(firstRow, "uuid", "sessionId", "version"));
            ArrayNode modelsUsed = meta.putArray("models_used");
            Set<String> agentModels = new LinkedHashSet<>();
            for (Transcript.Row row : turn.assistantRows()) {
                String model = Transcript.getModel(row.json());
                if (model != null && agentModels.add(model)) modelsUsed.add(model);
            }
            ObjectNode metadata = wrap(meta);
            putFilterKey(metadata, "subagent_type", agentType != null ? agentType : agent.kind().label());
            Masker masker = draft.masker();
            int maxChars = draft.ctx().maxChars();
            TraceModel.Observation observation = TraceModel.Observation.agent(agentSpanId, parentId, label + " (" + agent.agentId() + ")")
                    .between(start, end)
                    .input(Transcript.truncateText(masker.text(Transcript.extractText(Transcript.getContent(firstRow))), maxChars).text())
                    .output(Transcript.truncateText(masker.text(finalText), maxChars).text())
                    .metadata(metadata).build();
            draft.add(observation);
            draft.observations().addAll(steps.observations());
            return observation;
        }

        /**
         * A workflow run under the Workflow call that launched it: one span per phase holding its agents (agents without
         * a phase sit under the run), and the run itself as a chain: its script as input, its result as output, its
         * status. Agents show as they finish; the run's and phases' spans only once it has settled (their times and
         * status are final then), so each goes out once.
         */
        private static void addWorkflowRun(Draft draft, TraceModel.Observation call, Turns.RunShown shown, List<Turns.AgentRun> agents) {
            Workflows.Run run = shown.run();
            String runId = run.launch().runId();
            String runSpanId = draft.spanId("workflow:" + runId);
            Map<String, List<TraceModel.Observation>> byPhase = new LinkedHashMap<>();
            List<TraceModel.Observation> all = new ArrayList<>();
            for (Turns.AgentRun agent : agents) {
                if (agent.slot() == null || !agent.slot().runId().equals(runId)) continue;
                String phase = agent.slot().phase();
                TraceModel.Observation observation = addAgent(draft, phase == null ? runSpanId : phaseSpanId(draft, runId, phase), agent);
                all.add(observation);
                if (phase != null) byPhase.computeIfAbsent(phase, k -> new ArrayList<>()).add(observation);
            }
            if (!shown.settled()) return;
            for (Map.Entry<String, List<TraceModel.Observation>> phase : byPhase.entrySet()) {
                int index = run.phases().indexOf(phase.getKey()) + 1;
                ObjectNode meta = Json.NODES.objectNode().put("workflow_run_id", runId).put("phase", phase.getKey()).put("phase_index", index)
                        .put("agent_count", phase.getValue().size());
                draft.add(TraceModel.Observation.span(phaseSpanId(draft, runId, phase.getKey()), runSpanId, "Phase " + index + ": " + phase.getKey())
                        .between(earliestStart(phase.getValue()), latestEnd(phase.getValue())).metadata(wrap(meta)).build());
            }
            JsonNode record = run.record();
            Instant start = record != null && record.path("startTime").isNumber() ? Instant.ofEpochMilli(record.path("startTime").asLong())
                    : all.isEmpty() ? call.end() : earliestStart(all);
            Instant end = record != null && record.path("durationMs").isNumber() ? start.plusMillis(record.path("durationMs").asLong())
                    : all.isEmpty() ? start : latestEnd(all);
            ObjectNode meta = Json.NODES.objectNode().put("workflow_run_id", runId).put("task_id", run.launch().taskId())
                    .put("workflow_name", run.launch().name()).put("status", run.status()).put("agent_count", run.agents().size());
            if (!run.launch().summary().isEmpty()) meta.put("summary", run.launch().summary());
            if (run.launch().resumedFrom() != null) meta.put("resumed_from_run_id", run.launch().resumedFrom());
            if (record != null && record.path("durationMs").isNumber()) meta.put("duration_ms", record.path("durationMs").asLong());
            ArrayNode phases = meta.putArray("phases");
            run.phases().forEach(phases::add);
            Masker masker = draft.masker();
            int maxChars = draft.ctx().maxChars();
            TraceModel.Observation.Builder span = TraceModel.Observation.chain(runSpanId, call.id(), "Workflow: " + run.launch().name() + " (" + runId + ")")
                    .between(start, end.isBefore(start) ? start : end)
                    .input(Transcript.truncateText(masker.text(run.script()), maxChars).text())
                    .output(record == null || !record.has("result") ? null
                            : Transcript.truncateText(masker.text(Json.toJson(record.get("result"))), maxChars).text())
                    .metadata(wrap(meta));
            String status = run.status();
            if (status.equals("failed") || status.equals("error")) span.level(TraceModel.Level.ERROR, "workflow " + status);
            else if (!status.equals("completed")) span.level(TraceModel.Level.WARNING, "workflow " + status);
            draft.add(span.build());
        }

        private static String phaseSpanId(Draft draft, String runId, String phase) {
            return draft.spanId("workflow:" + runId + ":phase:" + phase);
        }

        private static Instant earliestStart(List<TraceModel.Observation> observations) {
            return observations.stream().map(TraceModel.Observation::start).min(Instant::compareTo).orElse(Instant.EPOCH);
        }

        private static Instant latestEnd(List<TraceModel.Observation> observations) {
            return observations.stream().map(TraceModel.Observation::end).max(Instant::compareTo).orElse(Instant.EPOCH);
        }

        /** What the agent's meta.json and its workflow slot say: description, model, phase, how it ran. */
        private static void putAgentFacts(ObjectNode meta, Turns.AgentRun agent) {
            Turns.AgentMeta facts = agent.meta();
            if (facts != null) {
                if (facts.description() != null) meta.put("description", facts.description());
                if (facts.model() != null) meta.put("model", facts.model());
                if (facts.requestShape() != null) meta.put("request_shape", facts.requestShape());
                if (facts.spawnDepth() > 0) meta.put("spawn_depth", facts.spawnDepth());
            }
            Turns.WorkflowSlot slot = agent.slot();
            if (slot != null) {
                meta.put("workflow_run_id", slot.runId());
                meta.put("label", slot.label());
                if (slot.phase() != null) meta.put("workflow_phase", slot.phase());
            }
        }

        private static Transcript.UserRowKind kindOf(Turns.TurnKind kind) {
            return switch (kind) {
                case PROMPT -> Transcript.UserRowKind.PROMPT;
                case COMMAND -> Transcript.UserRowKind.COMMAND;
                case TASK_NOTIFICATION -> Transcript.UserRowKind.TASK_NOTIFICATION;
            };
        }

        /**
         * The turn's rows in time order. A generation runs from just after the previous row (1 ms later, so touching
         * siblings never look parallel) to its own row's timestamp; a missing timestamp takes the one before it.
         */
        private record Timeline(List<Instant> sortedTimes, Map<Long, Instant> timeByOffset) {
            static Timeline of(Turns.Turn turn, Instant turnStart) {
                List<Transcript.Row> rows = new ArrayList<>();
                rows.add(turn.userRow());
                rows.addAll(turn.assistantRows());
                turn.toolResultsById().values().forEach(result -> rows.add(result.row()));
                rows.addAll(turn.systemRows());
                if (turn.interruptRow() != null) rows.add(turn.interruptRow());
                rows.sort((a, b) -> Long.compare(a.offset(), b.offset()));
                Map<Long, Instant> byOffset = new HashMap<>();
                Instant previous = turnStart;
                for (Transcript.Row row : rows) {
                    Instant time = row.timestamp();
                    if (time == null) time = previous;
                    byOffset.put(row.offset(), time);
                    previous = time;
                }
                List<Instant> sorted = new ArrayList<>(new HashSet<>(byOffset.values()));
                sorted.sort(null);
                return new Timeline(sorted, byOffset);
            }

            Instant at(Transcript.Row row) {
                return timeByOffset.getOrDefault(row.offset(), sortedTimes.isEmpty() ? Instant.EPOCH : sortedTimes.get(0));
            }

            /** 1 ms after the latest distinct time before `end`, never after `end` itself. */
            Instant startBefore(Instant end) {
                Instant previous = null;
                for (Instant time : sortedTimes) {
                    if (!time.isBefore(end)) break;
                    previous = time;
                }
                if (previous == null) return end;
                Instant start = previous.plusMillis(1);
                return start.isAfter(end) ? end : start;
            }
        }

        /**
         * What a turn's Anthropic messages say about each of its assistant rows (Claude Code writes one row per content
         * block, all with the message's id): which row is the message's last (it carries the usage), the real output count
         * (early rows may hold a placeholder), the API request that began the message, and which row is the final answer.
         */
        private static final class Messages {
            private final Map<String, Transcript.Row> lastRowOfMessage = new HashMap<>();
            private final Map<String, Long> maxOutputTokens = new HashMap<>();
            private final Set<String> messagesSeen = new HashSet<>();
            private final Map<String, Transcript.Row> apiRequests;
            private final Transcript.Row finalRow;
            private final CallInputs inputs;

            Messages(Turns.Turn turn, CallInputs inputs) {
                this.inputs = inputs;
                for (Transcript.Row row : turn.assistantRows()) {
                    String id = Transcript.getMessageId(row.json());
                    if (id == null) continue;
                    lastRowOfMessage.put(id, row);
                    // output_tokens can be a placeholder on early rows of a message; the largest value is the real one.
                    JsonNode output = row.json().path("message").path("usage").path("output_tokens");
                    if (output.canConvertToLong()) maxOutputTokens.merge(id, output.asLong(), Math::max);
                }
                apiRequests = turn.modelInput().apiRequests();
                finalRow = Turns.isTurnComplete(turn) ? turn.lastAssistant() : null;
            }

            /** The row as the `index`th step of its turn; rows must be asked in file order (the first of a message takes its request). */
            Step step(Transcript.Row row, int index) {
                String messageId = Transcript.getMessageId(row.json());
                boolean firstInMessage = messageId == null || messagesSeen.add(messageId);
                boolean lastInMessage = messageId == null || lastRowOfMessage.get(messageId) == row;
                Long maxOutput = messageId == null ? null : maxOutputTokens.get(messageId);
                Transcript.Row request = firstInMessage ? apiRequests.get(row.json().path("requestRef").asText("")) : null;
                return new Step(row, index, row == finalRow, lastInMessage, maxOutput, request, inputs.of(row));
            }
        }

        /**
         * One assistant row as a step of its turn: its number, whether it is the turn's final answer, whether it is its
         * message's last row (then it carries the usage, with the message's real output count), the API request that
         * began its message (the first row of a message only; null where the transcript has none), and what the
         * generation shows of its model call.
         */
        private record Step(Transcript.Row row, int index, boolean isFinal, boolean lastInMessage, Long maxOutputTokens,
                            Transcript.Row apiRequest, Shown call) {
        }

        /**
         * Langfuse usage keys for a message: input, output, cache reads, and cache writes split into 5-minute and
         * 1-hour rates when the transcript has the split (never the split and the lump together).
         */
        private static Map<String, Long> usageDetails(JsonNode usage, Long maxOutputTokens) {
            Map<String, Long> details = new LinkedHashMap<>();
            if (usage == null || !usage.isObject()) return details;
            putTokens(details, "input", usage.get("input_tokens"));
            if (maxOutputTokens != null) details.put("output", maxOutputTokens);
            else putTokens(details, "output", usage.get("output_tokens"));
            putTokens(details, "cache_read_input_tokens", usage.get("cache_read_input_tokens"));
            long lump = usage.path("cache_creation_input_tokens").asLong(0);
            JsonNode split = usage.get("cache_creation");
            if (split != null && split.isObject()
                    && (split.has("ephemeral_5m_input_tokens") || split.has("ephemeral_1h_input_tokens"))) {
                long fiveMinutes = split.path("ephemeral_5m_input_tokens").asLong(0);
                long oneHour = split.path("ephemeral_1h_input_tokens").asLong(0);
                // Any part of the lump the split does not explain is priced at the default (5-minute) write rate.
                fiveMinutes += Math.max(0, lump - fiveMinutes - oneHour);
                if (fiveMinutes > 0) details.put("input_cache_creation_5m", fiveMinutes);
                if (oneHour > 0) details.put("input_cache_creation_1h", oneHour);
            } else if (usage.has("cache_creation_input_tokens")) {
                details.put("cache_creation_input_tokens", lump);
            }
            return details;
        }

        /** The generation's cost by Claude Code's own prices, where the rows seen determine it: by usage key and "total". */
        private static Map<String, Double> costDetails(Prices.Rates rates, String model, Map<String, Long> usage) {
            Prices.Cost cost = rates == null || usage == null || usage.isEmpty() ? null : rates.costOf(model, usage);
            if (cost == null) return null;
            Map<String, Double> details = new LinkedHashMap<>(cost.byKind());
            details.put("total", cost.totalUsd());
            return details;
        }

        private static void putTokens(Map<String, Long> details, String key, JsonNode value) {
            if (value != null && value.canConvertToLong() && value.asLong() >= 0) details.put(key, value.asLong());
        }

        private static final String[] GENERATION_ROW_FIELDS = {"uuid", "parentUuid", "requestId", "requestRef", "requestedModel", "effort"};

        private static final String[] GENERATION_MESSAGE_FIELDS = {"id", "stop_reason", "stop_sequence", "stop_details",
                "context_management", "container"};

        private static final String[] GENERATION_USAGE_FIELDS = {"service_tier", "speed", "inference_geo", "iterations",
                "cache_creation", "server_tool_use", "diagnostics"};

        /**
         * One generation per assistant row. It runs from the moment its API request went out (the first row of a message,
         * where the transcript has the api-request row) or from just after the row before, to its own row's timestamp.
         */
        private static TraceModel.Observation buildGeneration(Scope scope, Step step) {
            JsonNode json = step.row().json();
            JsonNode message = json.path("message");
            JsonNode content = Transcript.getContent(json);
            List<JsonNode> toolUses = Transcript.iterToolUses(content);
            List<String> toolNames = new ArrayList<>();
            for (JsonNode use : toolUses) toolNames.add(use.path("name").asText("unknown"));
            Masker masker = scope.masker();
            StepKind kind = StepKind.of(step, content, toolUses);
            String name = (kind == StepKind.DECISION ? kind.label + String.join(", ", toolNames) : kind.label) + " (#" + step.index() + ")";
            String output = switch (kind) {
                case DECISION -> Json.toJson(masker.json(toolUses.size() == 1 ? toolUses.get(0) : Json.NODES.arrayNode().addAll(toolUses)));
                case THINKING -> thinkingText(content);
                case FINAL, TEXT -> Transcript.extractText(content);
            };
            Transcript.Truncated outputText = Transcript.truncateText(masker.text(output), scope.maxChars());
            ObjectNode meta = pick(json, GENERATION_ROW_FIELDS);
            meta.setAll(pick(message, GENERATION_MESSAGE_FIELDS));
            meta.setAll(pick(message.path("usage"), GENERATION_USAGE_FIELDS));
            meta.put("step_index", step.index());
            meta.put("is_last_in_message", step.lastInMessage());
            outputText.describeInto(meta, "assistant_text");
            boolean apiError = json.path("isApiErrorMessage").asBoolean(false);
            if (apiError) meta.set("error", json.get("error"));
            Instant end = scope.timeline().at(step.row());
            Instant start = scope.timeline().startBefore(end);
            Transcript.Row apiRequest = step.apiRequest();
            if (apiRequest != null && apiRequest.timestamp() != null && !apiRequest.timestamp().isAfter(end)) {
                start = apiRequest.timestamp();
                meta.set("request", requestSummary(apiRequest.json()));
            }
            String model = Transcript.getModel(json);
            Map<String, Long> usage = step.lastInMessage() && model != null ? usageDetails(message.get("usage"), step.maxOutputTokens()) : null;
            ObjectNode metadata = wrap(meta);
            putFilterKey(metadata, "stop_reason", message.path("stop_reason").asText(""));
            if (!toolNames.isEmpty()) putFilterKey(metadata, "tool_name", String.join(",", toolNames));
            Shown call = step.call();
            if (call.input() != null) {
                call.input().describeInto(meta, "input");
                if (call.omittedMessages() > 0) meta.put("input_omitted_messages", call.omittedMessages());
                meta.put("input_from", call.from());
                if (!call.attachments().isEmpty()) call.attachments().forEach(meta.putArray("input_attachments")::add);
            }
            TraceModel.Observation.Builder generation = TraceModel.Observation.generation(scope.spanId("row:" + rowKey(step.row())),
                    scope.parentId(), name).between(start, end).output(outputText.text())
                    .input(call.input() == null ? null : call.input().text())
                    .modelCall(new TraceModel.ModelCall(model, usage == null || usage.isEmpty() ? null : usage, call.parameters(),
                            costDetails(scope.draft().ctx().rates(), model, usage)))
                    .metadata(metadata);
            if (apiError) generation.level(TraceModel.Level.ERROR, Helpers.preview(masker.text(Transcript.extractText(content))));
            return generation.build();
        }

        /** What an assistant row is, as its generation's name says: a tool decision, the final answer, thinking, or text. */
        private enum StepKind {
            DECISION("Decision to call tool: "), FINAL("Final response"), THINKING("Thinking"), TEXT("Text response");

            final String label;

            StepKind(String label) {
                this.label = label;
            }

            static StepKind of(Step step, JsonNode content, List<JsonNode> toolUses) {
                if (!toolUses.isEmpty()) return DECISION;
                if (step.isFinal()) return FINAL;
                boolean thinking = !Transcript.blocksOfType(content, "thinking").isEmpty()
                        || !Transcript.blocksOfType(content, "redacted_thinking").isEmpty();
                return thinking && Transcript.blocksOfType(content, "text").isEmpty() ? THINKING : TEXT;
            }
        }

        /** What the API request that began a message asked for: where it came from, max_tokens, thinking, effort. */
        private static ObjectNode requestSummary(JsonNode apiRequest) {
            JsonNode params = apiRequest.path("params");
            ObjectNode request = pick(apiRequest, "querySource");
            request.setAll(pick(params, "max_tokens"));
            if (params.path("thinking").has("type")) request.set("thinking", params.path("thinking").path("type"));
            if (params.path("output_config").has("effort")) request.set("effort", params.path("output_config").path("effort"));
            return request;
        }

        private static String thinkingText(JsonNode content) {
            List<String> parts = new ArrayList<>();
            for (JsonNode block : content) {
                if ("thinking".equals(block.path("type").asText())) parts.add(block.path("thinking").asText(""));
                else if ("redacted_thinking".equals(block.path("type").asText())) parts.add("[redacted thinking]");
            }
            return String.join("\n", parts);
        }

        private static TraceModel.Observation buildToolObservation(Scope scope, Turns.ToolCall call, Turns.ToolResult result) {
            Masker masker = scope.masker();
            Instant decided = scope.timeline().at(call.decisionRow());
            Instant start = decided.plusMillis(1);
            Instant end = result == null ? start : scope.timeline().at(result.row());
            if (end.isBefore(start)) start = end;
            Transcript.Truncated input = Transcript.truncateText(Json.toJson(masker.json(call.toolUse().path("input"))), scope.maxChars());
            ObjectNode meta = Json.NODES.objectNode();
            meta.put("name", call.name());
            meta.put("tool_use_id", call.id());
            input.describeInto(meta, "input");
            String id = scope.spanId("tool:" + (call.id().isEmpty() ? rowKey(call.decisionRow()) : call.id()));
            TraceModel.Observation.Builder tool = TraceModel.Observation.tool(id, scope.parentId(),
                    "Tool call: " + call.name() + " (#" + call.stepIndex() + ")").between(start, end).input(input.text());
            if (result != null) {
                meta.setAll(pick(result.row().json(), "uuid", "parentUuid", "sourceToolAssistantUUID", "permissionDecision"));
                boolean isError = result.block().path("is_error").asBoolean(false);
                if (result.block().has("is_error")) meta.put("is_error", isError);
                String text = masker.text(Transcript.toolResultText(result.block().get("content")));
                Transcript.Truncated output = Transcript.truncateText(text, scope.maxChars());
                output.describeInto(meta, "output");
                tool.output(output.text());
                JsonNode summary = summarizeToolUseResult(call, result.row().json().get("toolUseResult"));
                if (summary != null) meta.set("toolUseResult", masker.json(summary));
                if (isError) tool.level(TraceModel.Level.ERROR, Helpers.preview(text));
            }
            ObjectNode metadata = wrap(meta);
            putFilterKey(metadata, "tool_name", call.name());
            if (Turns.AGENT_TOOLS.contains(call.name())) putFilterKey(metadata, "subagent_type", Turns.agentTypeOf(call, result));
            return tool.metadata(metadata).build();
        }

        /** Counts of text and image blocks and the image media types of a user prompt (sparse: only with images). */
        private static ObjectNode describeUserContent(JsonNode content) {
            ObjectNode meta = Json.NODES.objectNode();
            if (content == null || !content.isArray()) return meta;
            int texts = 0;
            int images = 0;
            Set<String> mediaTypes = new LinkedHashSet<>();
            for (JsonNode block : content) {
                String type = block.path("type").asText();
                if (type.equals("text")) texts++;
                if (type.equals("image")) {
                    images++;
                    mediaTypes.add(block.path("source").path("media_type").asText("unknown"));
                }
            }
            if (images == 0) return meta;
            meta.put("user_content_text_blocks", texts);
            meta.put("user_content_image_blocks", images);
            ArrayNode types = meta.putArray("user_content_image_media_types");
            mediaTypes.forEach(types::add);
            return meta;
        }

        /**
         * A flat summary of a tool's toolUseResult: short scalars verbatim, long or nested values as `<field>_len`,
         * plus the per-tool fields of the metadata reference (Bash command, output lengths, item counts, ...).
         */
        private static JsonNode summarizeToolUseResult(Turns.ToolCall call, JsonNode toolUseResult) {
            if (toolUseResult == null || toolUseResult.isNull()) return null;
            ObjectNode summary = Json.NODES.objectNode();
            if (!toolUseResult.isObject()) {
                summary.put("value", Helpers.preview(toolUseResult.isTextual() ? toolUseResult.asText() : Json.toJson(toolUseResult)));
                return summary;
            }
            toolUseResult.properties().forEach(field -> {
                JsonNode value = field.getValue();
                if (value.isNumber() || value.isBoolean()) summary.set(field.getKey(), value);
                else if (value.isTextual() && value.asText().length() <= Helpers.PREVIEW_CHARS) summary.set(field.getKey(), value);
                else if (value.isTextual()) summary.put(field.getKey() + "_len", value.asText().length());
                else if (value.isArray() || value.isObject()) summary.put(field.getKey() + "_len", value.size());
            });
            switch (call.name()) {
                case "Bash" -> {
                    summary.put("command", Helpers.preview(call.toolUse().path("input").path("command").asText("")));
                    String stdout = toolUseResult.path("stdout").asText("");
                    String stderr = toolUseResult.path("stderr").asText("");
                    summary.remove(List.of("stdout", "stderr", "stdout_len", "stderr_len"));
                    summary.put("stdout_len", stdout.length());
                    summary.put("stderr_len", stderr.length());
                    summary.put("has_stderr", !stderr.isEmpty());
                }
                case "Task", "Agent" -> {
                    JsonNode agentType = call.toolUse().path("input").path("subagent_type");
                    if (agentType.isTextual()) summary.put("agentType", agentType.asText());
                }
                case "Glob", "Grep", "Read" -> {
                    JsonNode items = toolUseResult.has("filenames") ? toolUseResult.get("filenames")
                            : toolUseResult.path("file").path("content");
                    if (toolUseResult.has("numFiles")) summary.put("itemCount", toolUseResult.path("numFiles").asLong());
                    else if (items.isArray()) summary.put("itemCount", items.size());
                    else if (toolUseResult.path("file").has("numLines")) {
                        summary.put("itemCount", toolUseResult.path("file").path("numLines").asLong());
                    }
                }
                default -> {
                }
            }
            return summary;
        }

        private static final Map<String, String> SYSTEM_EVENT_NAMES = Map.of(
                "api_error", "API error",
                "compact_boundary", "Conversation compacted",
                "microcompact_boundary", "Context microcompacted",
                "local_command", "Local command",
                "informational", "Information");

        /** One event per system row, every field verbatim in metadata; API errors and error-level rows are ERROR. */
        private static TraceModel.Observation buildSystemEvent(Scope scope, Transcript.Row row) {
            JsonNode json = row.json();
            Masker masker = scope.masker();
            Instant at = scope.timeline().at(row);
            String id = scope.spanId("event:" + rowKey(row));
            if ("user".equals(Transcript.getRole(json))) {
                return TraceModel.Observation.event(id, scope.parentId(), "Stop hook feedback").at(at)
                        .input(masker.text(Transcript.extractText(Transcript.getContent(json))))
                        .metadata(wrap(pick(json, "uuid", "parentUuid", "promptId", "isMeta"))).build();
            }
            String subtype = json.path("subtype").asText("system");
            String name = SYSTEM_EVENT_NAMES.getOrDefault(subtype, "System: " + subtype);
            if (subtype.equals("api_error") && json.has("retryAttempt")) {
                name += " (retry " + json.path("retryAttempt").asText() + "/" + json.path("maxRetries").asText("?") + ")";
            }
            String rowLevel = json.path("level").asText("");
            TraceModel.Level level = subtype.equals("api_error") || rowLevel.equals("error") ? TraceModel.Level.ERROR
                    : rowLevel.equals("warning") ? TraceModel.Level.WARNING : TraceModel.Level.DEFAULT;
            // A copy of the top level only: the keys below are removed from it, the row stays as it is.
            ObjectNode meta = (ObjectNode) masker.json(Json.NODES.objectNode().setAll((ObjectNode) json));
            meta.remove(List.of("cwd", "sessionId", "session_id", "version", "gitBranch", "userType", "slug", "entrypoint",
                    "timestamp", "type"));
            TraceModel.Observation.Builder event = TraceModel.Observation.event(id, scope.parentId(), name).at(at)
                    .input(json.path("content").isTextual() ? masker.text(json.path("content").asText()) : null).metadata(wrap(meta));
            if (level != TraceModel.Level.DEFAULT) event.level(level, Helpers.preview(masker.text(errorSummary(json))));
            return event.build();
        }

        /** "HTTP 529: Overloaded" from an api_error row's error object (status and its first message, at any depth). */
        private static String errorSummary(JsonNode systemRow) {
            JsonNode error = systemRow.path("error");
            String message = Helpers.firstNonBlank(error.path("formatted").asText(""), firstMessage(error),
                    systemRow.path("content").asText(""));
            String status = error.path("status").canConvertToInt() ? "HTTP " + error.path("status").asText() : null;
            if (status == null) return Helpers.firstNonBlank(message, systemRow.path("subtype").asText("error"));
            return message == null ? status : status + ": " + message;
        }

        private static String firstMessage(JsonNode node) {
            if (node.isTextual() || !node.isContainerNode()) return null;
            if (node.path("message").isTextual()) return node.path("message").asText();
            for (JsonNode child : node) {
                String found = firstMessage(child);
                if (found != null) return found;
            }
            return null;
        }

        /** The named fields of `source` that are present and not null, verbatim (metadata is sparse). */
        private static ObjectNode pick(JsonNode source, String... fields) {
            ObjectNode picked = Json.NODES.objectNode();
            for (String field : fields) {
                JsonNode value = source.get(field);
                if (value != null && !value.isNull() && !value.isMissingNode()) picked.set(field, value);
            }
            return picked;
        }

        /** Namespaces metadata under the single `claude_code` key. */
        private static ObjectNode wrap(ObjectNode claudeCode) {
            ObjectNode metadata = Json.NODES.objectNode();
            metadata.set("claude_code", claudeCode);
            return metadata;
        }

        /** A flat string key beside `claude_code`: Langfuse v4 filters on such keys, not inside a JSON object. */
        private static void putFilterKey(ObjectNode metadata, String key, String value) {
            if (value != null && !value.isEmpty()) metadata.put(key, value);
        }

        /**
         * What a generation shows of its model call: its input (JSON text, or null), where that came from, how many
         * messages a cut left out, the call's parameters, and the attachments the input could not show.
         */
        private record Shown(Transcript.Truncated input, String from, int omittedMessages, ObjectNode parameters, List<String> attachments) {
        }

        /**
         * What each model call of a turn shows, worked out once per call and shared by the call's generations: the call
         * as its transcript records it (Requests: the whole request in full mode, else the messages new to it), or, where
         * it does not, the messages new to it as the turn's rows tell (the prompt for the first call; the tool results,
         * and a Stop hook's feedback, since the previous call for the others).
         */
        private static final class CallInputs {
            private final Turns.Turn turn;
            private final Draft draft;
            private final List<String> calls = new ArrayList<>();
            private final Map<String, List<Transcript.Row>> rowsOfCall = new HashMap<>();
            private final Map<String, Prepared> prepared = new HashMap<>();
            private final Map<String, Shown> shown = new HashMap<>();

            /** A call's input before it is shown: its messages (null in off mode), its tools (full mode), where it came from, its parameters. */
            private record Prepared(ObjectNode input, JsonNode tools, String from, ObjectNode parameters, List<String> attachments) {
            }

            CallInputs(Turns.Turn turn, Draft draft) {
                this.turn = turn;
                this.draft = draft;
                for (Transcript.Row row : turn.assistantRows()) {
                    String key = callKey(row);
                    if (!rowsOfCall.containsKey(key)) calls.add(key);
                    rowsOfCall.computeIfAbsent(key, k -> new ArrayList<>()).add(row);
                }
            }

            /** The rows of one model call share its message id (a row without one is a call of its own). */
            private static String callKey(Transcript.Row row) {
                String id = Transcript.getMessageId(row.json());
                return id != null ? id : "row:" + rowKey(row);
            }

            /** What the row's generation shows: its call's input, with the tools' schemas the first time the trace shows them, names after. */
            Shown of(Transcript.Row row) {
                String key = callKey(row);
                Prepared call = prepared.get(key);
                if (call == null) {
                    String requestId = row.json().path("requestRef").asText("");
                    Requests.Call recorded = turn.modelInput().calls().get(requestId);
                    Transcript.Row request = turn.modelInput().apiRequests().get(requestId);
                    ObjectNode parameters = parameters(request == null ? null : request.json().path("params"), row.json().path("message"));
                    call = prepare(recorded, recorded != null ? null : derivedNewMessages(key), parameters);
                    prepared.put(key, call);
                }
                boolean schemas = call.tools() != null && draft.toolSchemasShown().add(call.tools());
                String variant = schemas ? key + " with schemas" : key;
                Shown known = shown.get(variant);
                if (known == null) {
                    known = render(call, schemas);
                    shown.put(variant, known);
                }
                return known;
            }

            /** The request's settings (whatever the input mode), else the effort the response names; the tier and speed it reports. */
            private static ObjectNode parameters(JsonNode requestParams, JsonNode response) {
                ObjectNode parameters = requestParams != null ? Requests.parameters(requestParams) : Json.NODES.objectNode();
                if (requestParams == null && response.path("effort").isTextual()) parameters.set("effort", response.get("effort"));
                for (String name : List.of("service_tier", "speed")) {
                    if (response.path("usage").path(name).isTextual()) parameters.set(name, response.path("usage").get(name));
                }
                return parameters;
            }

            private Prepared prepare(Requests.Call call, Derived derived, ObjectNode parameters) {
                Config.GenerationInput mode = draft.ctx().options().generationInput();
                if (mode == Config.GenerationInput.OFF) return new Prepared(null, null, null, parameters, List.of());
                ObjectNode input = Json.NODES.objectNode();
                ArrayNode messages = input.putArray("messages");
                if (mode == Config.GenerationInput.FULL && call != null && call.whole()) {
                    List<JsonNode> all = new ArrayList<>();
                    // The system prompt as the conversation's first message: how Langfuse's chat view and playground read it.
                    if (call.system() != null && !call.system().isEmpty()) all.add(Requests.message("system", call.system()));
                    all.addAll(call.messages());
                    messages.addAll(Requests.forDisplay(all));
                    JsonNode tools = call.tools() != null && !call.tools().isEmpty() ? call.tools() : null;
                    return new Prepared(input, tools, "request", parameters, List.of());
                }
                if (call != null) {
                    messages.addAll(Requests.forDisplay(call.newMessages()));
                    return new Prepared(input, null, "request_new", parameters, List.of());
                }
                messages.addAll(Requests.forDisplay(derived.messages()));
                return new Prepared(input, null, "transcript", parameters, derived.attachments());
            }

            private Shown render(Prepared call, boolean schemas) {
                if (call.input() == null) return new Shown(null, null, 0, call.parameters(), List.of());
                ObjectNode input = call.input();
                if (call.tools() != null) {
                    input = input.deepCopy();
                    input.set("tools", schemas ? call.tools() : toolNames(call.tools()));
                }
                Requests.Cut cut = Requests.cut((ObjectNode) draft.masker().json(input), draft.ctx().maxChars());
                return new Shown(cut.text(), call.from(), cut.omittedMessages(), call.parameters(), call.attachments());
            }

            private static ArrayNode toolNames(JsonNode tools) {
                ArrayNode names = Json.NODES.arrayNode();
                for (JsonNode tool : tools) names.add(tool.path("name").asText(""));
                return names;
            }

            /**
             * The messages new to the call as the turn's rows tell them: the prompt (first call) or the results of the
             * previous call's tools, then the rows Claude Code added before the call (a command's expansion, a skill's
             * text, Stop hook feedback), consecutive user messages merged as Claude Code sends them. Attachment rows
             * (2.1.x) hold data the client renders into the request; only their types are named.
             */
            private Derived derivedNewMessages(String key) {
                int index = calls.indexOf(key);
                long before = rowsOfCall.get(key).get(0).offset();
                long after;
                List<JsonNode> fresh = new ArrayList<>();
                if (index == 0) {
                    after = turn.userRow().offset();
                    fresh.add(Requests.message("user", Transcript.getContent(turn.userRow().json())));
                } else {
                    List<Transcript.Row> previous = rowsOfCall.get(calls.get(index - 1));
                    after = previous.get(previous.size() - 1).offset();
                    ArrayNode results = Json.NODES.arrayNode();
                    for (Transcript.Row row : previous) {
                        for (JsonNode use : Transcript.iterToolUses(Transcript.getContent(row.json()))) {
                            Turns.ToolResult result = turn.toolResultsById().get(use.path("id").asText(""));
                            if (result != null) results.add(result.block());
                        }
                    }
                    if (!results.isEmpty()) fresh.add(Requests.message("user", results));
                }
                List<Transcript.Row> added = new ArrayList<>();
                for (List<Transcript.Row> rows : List.of(turn.modelInput().contextRows(), turn.systemRows())) {
                    for (Transcript.Row row : rows) if (row.offset() > after && row.offset() < before) added.add(row);
                }
                added.sort((a, b) -> Long.compare(a.offset(), b.offset()));
                List<String> attachments = new ArrayList<>();
                for (Transcript.Row row : added) {
                    if (row.type().equals("attachment")) {
                        String type = row.json().path("attachment").path("type").asText("attachment");
                        // A prompt snapshot is the system prompt, which no new-message input holds.
                        if (!type.equals("prompt_snapshot") && !attachments.contains(type)) attachments.add(type);
                    } else if ("user".equals(Transcript.getRole(row.json()))) {
                        fresh.add(Requests.message("user", Transcript.getContent(row.json())));
                    }
                }
                return new Derived(Requests.mergeConsecutive(fresh), attachments);
            }

            /** New messages as the rows tell them, and the types of the attachments the client rendered into the call. */
            private record Derived(List<JsonNode> messages, List<String> attachments) {
            }
        }

        /** A one-observation trace that doctor --send-test sends to prove the whole path works. */
        static TraceModel.TraceRecord canaryTrace(Config.TraceOptions options, Instant now) {
            String traceId = traceIdFor("litefuse-hook-doctor", "canary-" + now.toEpochMilli());
            String rootId = spanIdFor(traceId, "root");
            ObjectNode meta = Json.NODES.objectNode();
            meta.put("source", "doctor");
            meta.put("litefuse_hook_version", VERSION);
            String input = "litefuse-hook doctor --send-test";
            String output = "If you can read this in Langfuse, Claude Code turns will arrive here too.";
            String name = "litefuse-hook doctor canary";
            List<TraceModel.Observation> observations = List.of(
                    TraceModel.Observation.root(rootId, name).between(now, now.plusMillis(2)).input(input).output(output)
                            .metadata(wrap(meta)).build(),
                    TraceModel.Observation.event(spanIdFor(traceId, "event"), rootId, "canary").at(now.plusMillis(1))
                            .input(input).metadata(wrap(Json.NODES.objectNode())).build());
            TraceModel.TraceHeader header = TraceModel.TraceHeader.of(traceId, name).session("litefuse-hook-doctor", VERSION)
                    .user(options.userId(), options.environment(), List.of("claude-code", "litefuse-doctor"))
                    .content(input, output).metadata(wrap(meta)).build();
            return new TraceModel.TraceRecord(header, observations);
        }

        /**
         * What is left to send of a trace when part of it was sent before: the spans not sent yet, and no usage for a
         * message whose usage went out already. Null when nothing is left.
         */
        static TraceModel.TraceRecord unsentPart(TraceModel.TraceRecord trace, Progress.SentTurn sentBefore) {
            if (sentBefore == null) return trace;
            Set<String> sentSpans = new HashSet<>(sentBefore.spanIds());
            Set<String> usageSent = new HashSet<>(sentBefore.usageMessageIds());
            List<TraceModel.Observation> rest = new ArrayList<>();
            for (TraceModel.Observation observation : trace.observations()) {
                if (sentSpans.contains(observation.id())) continue;
                boolean usageAgain = observation.usage() != null && usageSent.contains(messageIdOf(observation));
                rest.add(usageAgain ? observation.withoutUsage() : observation);
            }
            if (rest.isEmpty()) return null;
            return new TraceModel.TraceRecord(trace.header(), List.copyOf(rest));
        }

        /** The Anthropic message id a generation belongs to (kept in its metadata as claude_code.id). */
        static String messageIdOf(TraceModel.Observation observation) {
            return observation.metadata().path("claude_code").path("id").asText("");
        }
    }

    /**
     * The one path from a transcript to traces, for hook mode, replay and backfill alike: rows read after the saved
     * offset (or streamed from the start), numbered into turns by Turns.TurnPlanner, built into traces by Traces.traceOf.
     * Nothing here sends or saves anything.
     */
    static final class Pipeline {
        private Pipeline() {
        }

        /** The state a run starts from; read again from the start when the transcript is no longer what the state saw. */
        static Progress.SessionState startingState(Path transcript, Path stateFile, Log log) throws IOException {
            Progress.SessionState state = Progress.loadSessionState(StateFiles.loadState(stateFile, log));
            String change = Progress.transcriptChange(transcript, state);
            if (change == null) return state;
            log.warn("Transcript " + transcript + " " + change + "; reading it again from the start (turns already sent are skipped)");
            return state.restart();
        }

        private static final Duration QUIET_TRANSCRIPT = Duration.ofMinutes(10);

        /** A transcript nobody has written to for a while: its last turn is as complete as it will ever be (send it as it stands). */
        static boolean isQuiet(Path transcript) {
            try {
                return Files.getLastModifiedTime(transcript).toInstant().isBefore(Instant.now().minus(QUIET_TRANSCRIPT));
            } catch (IOException e) {
                return false;
            }
        }

        /**
         * What one run would send for a session: the plan, the traces (or what is left of them), their records, where the
         * read ended, where the last recorded requests are for the next run (full input mode; else null), and the turns
         * that waited for background work and wait no more, with nothing left to send.
         */
        record SessionWork(Turns.EmissionPlan plan, List<TraceModel.TraceRecord> traces, List<Progress.SentPart> parts, long readEnd,
                           JsonNode requestCarry, List<String> settledTurns, List<Prices.Sample> costSamples, Double claudeCodeCost) {
        }

        /**
         * Reads the session's new rows and builds the traces to send, without sending or saving anything; generations are
         * priced by the cost samples known and those the new rows bring (returned, to be kept).
         */
        static SessionWork prepareSession(Payload.HookTarget target, Progress.SessionState state, Config.TraceOptions options,
                                          List<Prices.Sample> knownCosts, boolean forceLast, Log log) throws IOException {
            Path transcript = target.transcriptPath();
            Config.GenerationInput generationInput = options.generationInput();
            Reader.ReadResult read = Reader.readNewJsonl(transcript, state.offset(), Reader.unreadTypes(generationInput), log);
            log.debug("Read " + read.rows().size() + " rows, bytes " + state.offset() + ".." + read.endOffset() + " of " + transcript);
            if (read.badLines() > 0) log.warn("Skipped " + read.badLines() + " broken transcript line(s) (session=" + target.sessionId() + ")");
            if (!read.rows().isEmpty() && read.rows().stream().noneMatch(row -> Transcript.isClaudeCodeRow(row.json()))) {
                log.warn("Transcript " + transcript + " does not look like a Claude Code transcript (no Claude Code rows); nothing to send");
            }
            Requests.Store requests = new Requests.Store(generationInput, log);
            // Requests of this run may extend requests of rows it does not read again (full mode): those, as carried.
            if (state.offset() > 0) requests.seed(state.requestCarry(), transcript);
            Turns.EmissionPlan plan = Turns.planEmission(read.rows(), state,
                    Turns.AgentFiles.forHook(transcript, generationInput, Instant.now(), log), requests, forceLast);
            List<Prices.Sample> found = new ArrayList<>();
            Double claudeCodeCost = null;
            for (Transcript.Row row : read.rows()) {
                if (!row.type().equals("cost-state")) continue;
                found.addAll(Prices.samplesOf(row.json()));
                // The session's own total, cumulative (a --continue carries the earlier total on): the last one counts.
                JsonNode total = row.json().path("totalCostUSD");
                if (total.isNumber() && !row.json().path("hasUnknownModelCost").asBoolean(false)) claudeCodeCost = total.asDouble();
            }
            Traces.TraceContext ctx = Traces.TraceContext.of(options, target.sessionId(), transcript.toString())
                    .withRates(learnedRates(knownCosts, found, log));
            List<TraceModel.TraceRecord> traces = new ArrayList<>();
            List<Progress.SentPart> parts = new ArrayList<>();
            List<String> settled = new ArrayList<>();
            for (Turns.Emission emission : plan.emissions()) {
                TraceModel.TraceRecord trace = Traces.traceOf(emission, ctx);
                if (emission.turn().waitsForAgents()) log.debug("Turn " + emission.turnNumber() + " waits for " + emission.turn().launches().waitingFor());
                if (trace == null) {
                    boolean waited = emission.sentBefore() != null && emission.sentBefore().waitsForAgents();
                    if (waited && !emission.turn().waitsForAgents()) settled.add(emission.turn().userRow().uuid());
                    continue;
                }
                traces.add(trace);
                parts.add(sentPart(trace, emission, Instant.now()));
            }
            log.debug("Turns to send: " + traces.size() + (plan.deferred() ? ", last turn in progress" : ""));
            return new SessionWork(plan, traces, parts, read.endOffset(), requests.carry(plan.deferred() ? plan.deferredOffset() : Long.MAX_VALUE),
                    List.copyOf(settled), List.copyOf(found),
                    claudeCodeCost);
        }

        /** What these traces' generations cost by Claude Code's prices, and how many with usage had no price. */
        static Progress.CostSent costOf(List<TraceModel.TraceRecord> traces) {
            Progress.CostSent sum = Progress.CostSent.NONE;
            for (TraceModel.TraceRecord trace : traces) sum = sum.plus(Traces.costOf(trace.observations()));
            return sum;
        }

        /** The rates the samples determine; a model whose new rows do not fit one price per token kind is named once. */
        private static Prices.Rates learnedRates(List<Prices.Sample> known, List<Prices.Sample> found, Log log) {
            if (known.isEmpty() && found.isEmpty()) return null;
            List<Prices.Sample> all = new ArrayList<>(known);
            all.addAll(found);
            List<String> leftOut = new ArrayList<>();
            Prices.Rates rates = Prices.Rates.learn(all, leftOut);
            leftOut.removeIf(model -> found.stream().noneMatch(sample -> sample.model().equals(model)));
            if (!leftOut.isEmpty()) {
                log.info("Claude Code's cost rows for " + String.join(", ", leftOut) + " do not fit one price per token kind (fast mode, "
                        + "a long-context tier...): those rows are not learned from");
            }
            return rates;
        }

        /**
         * The record of one turn's spans in an export: their ids, the messages whose usage they carry, and a witness to
         * look for in Langfuse (the root, or else the latest span).
         */
        private static Progress.SentPart sentPart(TraceModel.TraceRecord trace, Turns.Emission emission, Instant now) {
            List<String> spanIds = new ArrayList<>();
            List<String> usageIds = new ArrayList<>();
            TraceModel.Observation witness = trace.root();
            for (TraceModel.Observation observation : trace.observations()) {
                spanIds.add(observation.id());
                if (observation.usage() != null && !Traces.messageIdOf(observation).isEmpty()) usageIds.add(Traces.messageIdOf(observation));
                if (trace.root() == null && (witness == null || !observation.start().isBefore(witness.start()))) witness = observation;
            }
            Progress.SentTurn turn = new Progress.SentTurn(emission.turn().userRow().uuid(), emission.turnNumber(),
                    emission.turn().userRow().offset(), trace.traceId(), now, List.copyOf(spanIds), List.copyOf(usageIds),
                    emission.turn().waitsForAgents());
            return new Progress.SentPart(turn, witness.id(), witness.start());
        }

        /** Every turn of a whole transcript as traces, numbered as the hook numbers them. */
        static List<TraceModel.TraceRecord> replayFile(Path file, Traces.TraceContext ctx) throws IOException {
            List<TraceModel.TraceRecord> traces = new ArrayList<>();
            replayTranscript(file, ctx, Log.toStderr(), traces::add);
            return traces;
        }

        /**
         * Streams a transcript's traces to `sink` as each turn completes, as a hook run that read the whole file at the end
         * of the session would send them; returns the count. One thread, one turn in memory at a time: a reader thread
         * ahead of trace building was no faster on two cores (it starves the JIT compiler while the code warms up) and
         * cost a fifth more CPU (bench P3).
         */
        static int replayTranscript(Path file, Traces.TraceContext ctx, Log log, Consumer<TraceModel.TraceRecord> sink) throws IOException {
            int[] count = {0};
            Config.GenerationInput generationInput = ctx.options().generationInput();
            Turns.TurnPlanner planner = new Turns.TurnPlanner(Progress.SessionState.NEW, new Turns.AgentFiles(file, generationInput, log),
                    new Requests.Store(generationInput, log), true, emission -> {
                        count[0]++;
                        sink.accept(Traces.traceOf(emission, ctx));
                    });
            try (InputStream in = Files.newInputStream(file)) {
                Reader.streamJsonl(in, 0, true, new Reader.RowSink(Reader.unreadTypes(generationInput), planner::accept, log));
                planner.finish();
            }
            return count[0];
        }
    }

    /**
     * The transport under the OTLP exporter: every request fits the export's deadline, waits for the export's record to
     * be on disk before its body goes out, and says whether an unanswered request's outcome is unknown.
     */
    static final class Transport {
        private Transport() {
        }

        /**
         * One export's time limit, shared by the exporter and its HTTP sender; what went wrong if it failed; and, for the
         * request in flight, whether its body started out (then, without an answer, its outcome is unknown).
         */
        static final class ExportDeadline {
            private volatile long deadlineNanos = System.nanoTime();
            private volatile String failure;
            private boolean abandoned;
            private boolean bodyStarted;
            private boolean outcomeUnknown;

            /** What must be on disk before the export's first body goes out; null: nothing. */
            private volatile CompletableFuture<Void> recorded;

            /** Starts an export: its deadline, the record its bodies wait for, and no failure yet (one exporter serves a run's exports). */
            void until(long nanos, CompletableFuture<Void> recorded) {
                deadlineNanos = nanos;
                this.recorded = recorded;
                failure = null;
            }

            long remainingNanos() {
                return deadlineNanos - System.nanoTime();
            }

            long remainingMillis() {
                return TimeUnit.NANOSECONDS.toMillis(remainingNanos());
            }

            void fail(String reason) {
                failure = reason;
            }

            /** Why the export failed; null while nothing went wrong. */
            String failure() {
                return failure;
            }

            /** The request's body went out and no answer came: the server may hold it. */
            synchronized void failUnknown(String reason) {
                failure = reason;
                outcomeUnknown = true;
            }

            synchronized void newRequest() {
                abandoned = false;
                bodyStarted = false;
                outcomeUnknown = false;
            }

            /** The server answered (and refused): the attempt's body is settled, whatever comes next. */
            synchronized void answered() {
                bodyStarted = false;
            }

            /**
             * The sender asks before writing a body. It waits, within the deadline, until the export's record is on
             * disk; false if the record failed or never came, or once the exporter gave up on the request.
             */
            boolean startBody() {
                CompletableFuture<Void> record = recorded;
                if (record != null) {
                    try {
                        record.get(Math.max(0, remainingNanos()), TimeUnit.NANOSECONDS);
                    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                        return false;
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return false;
                    }
                }
                synchronized (this) {
                    if (abandoned) return false;
                    bodyStarted = true;
                    return true;
                }
            }

            /** The exporter stops waiting; the request's outcome is unknown if its body had started out. */
            synchronized boolean abandon() {
                abandoned = true;
                outcomeUnknown |= bodyStarted;
                return outcomeUnknown;
            }

            synchronized boolean outcomeUnknown() {
                return outcomeUnknown;
            }
        }

        /**
         * The OTLP exporter's HTTP transport, on the JDK's HttpURLConnection: every attempt fits the export deadline, and
         * a 429 or 503 is retried only when its Retry-After (or a short backoff) still fits. A request whose body went out
         * is never sent again by the sender: without an answer from Langfuse itself (none at all, or a gateway's 502 or
         * 504) its outcome is unknown, and the next run asks Langfuse.
         * The official senders expose none of this, and java.net.http's selector thread delays JVM exit by 300 ms.
         */
        static final class DeadlineHttpSender implements HttpSender {
            private static final Set<Integer> RETRYABLE = Set.of(429, 503);
            /** A gateway answering for a server that did not: that server may have taken the batch. */
            private static final Set<Integer> GATEWAY_FAILURES = Set.of(502, 504);
            private final HttpSenderConfig config;
            private final ExportDeadline deadline;
            private final Network network;
            private final ExecutorService executor = Executors.newSingleThreadExecutor(runnable -> {
                Thread thread = new Thread(runnable, "litefuse-export");
                thread.setDaemon(true);
                return thread;
            });

            DeadlineHttpSender(HttpSenderConfig config, ExportDeadline deadline, Network network) {
                this.config = config;
                this.deadline = deadline;
                this.network = network;
            }

            @Override
            public void send(MessageWriter writer, Consumer<io.opentelemetry.sdk.common.export.HttpResponse> onResponse,
                             Consumer<Throwable> onError) {
                // Compression and the request run on the sender's thread, so the caller can build the next batch.
                executor.execute(() -> {
                    byte[] body;
                    try {
                        body = encode(writer);
                    } catch (IOException e) {
                        onError.accept(e);
                        return;
                    }
                    sendWithin(body, onResponse, onError);
                });
            }

            private byte[] encode(MessageWriter writer) throws IOException {
                ByteArrayOutputStream bytes = new ByteArrayOutputStream(Math.max(1024, writer.getContentLength() / 4));
                Compressor compressor = config.getCompressor();
                try (java.io.OutputStream out = compressor == null ? bytes : compressor.compress(bytes)) {
                    writer.writeMessage(out);
                }
                return bytes.toByteArray();
            }

            /** Thrown once the body went out: whatever fails after that leaves the request's outcome unknown. */
            static final class AfterBodyException extends IOException {
                AfterBodyException(IOException cause) {
                    super(cause);
                }
            }

            /** The exporter gave up on the request before its body went out; it is not sent at all. */
            static final class AbandonedException extends IOException {
            }

            /** One POST; returns the status, the Retry-After header and the body. */
            private SenderResponse post(byte[] body, long timeoutNanos) throws IOException {
                java.net.HttpURLConnection connection = network.open(config.getEndpoint());
                int timeoutMillis = (int) Math.max(1, Math.min(TimeUnit.NANOSECONDS.toMillis(timeoutNanos), config.getTimeout().toMillis()));
                connection.setConnectTimeout((int) Math.max(1, Math.min(timeoutMillis, config.getConnectTimeout().toMillis())));
                connection.setReadTimeout(timeoutMillis);
                connection.setRequestMethod("POST");
                connection.setDoOutput(true);
                // Streaming mode also stops HttpURLConnection from silently sending the POST again after a reset (a
                // second copy would be a duplicate in Langfuse v4): keep it.
                connection.setFixedLengthStreamingMode(body.length);
                connection.setRequestProperty("Content-Type", config.getContentType());
                if (config.getCompressor() != null) connection.setRequestProperty("Content-Encoding", config.getCompressor().getEncoding());
                config.getHeadersSupplier().get().forEach((name, values) -> values.forEach(value -> connection.addRequestProperty(name, value)));
                connection.connect();
                if (!deadline.startBody()) {
                    connection.disconnect();
                    throw new AbandonedException();
                }
                try (java.io.OutputStream out = connection.getOutputStream()) {
                    out.write(body);
                }
                try {
                    int status = connection.getResponseCode();
                    InputStream stream = status >= 400 ? connection.getErrorStream() : connection.getInputStream();
                    byte[] responseBody = stream == null ? new byte[0] : readAndClose(stream);
                    return new SenderResponse(status, responseBody, connection.getHeaderField("Retry-After"));
                } catch (IOException e) {
                    throw new AfterBodyException(e);
                }
            }

            private static byte[] readAndClose(InputStream stream) throws IOException {
                try (stream) {
                    return stream.readNBytes(64 * 1024);
                }
            }

            private void sendWithin(byte[] body, Consumer<io.opentelemetry.sdk.common.export.HttpResponse> onResponse,
                                    Consumer<Throwable> onError) {
                for (int attempt = 0; ; attempt++) {
                    long remaining = deadline.remainingNanos();
                    if (remaining <= 0) {
                        deadline.fail("the export budget was used up before " + config.getEndpoint() + " answered");
                        onError.accept(new java.util.concurrent.TimeoutException("export budget used up"));
                        return;
                    }
                    try {
                        SenderResponse response = post(body, remaining);
                        long waitMillis = retryWait(response, attempt);
                        if (waitMillis >= 0) {
                            Thread.sleep(waitMillis);
                            continue;
                        }
                        onResponse.accept(response);
                        return;
                    } catch (IOException e) {
                        if (retriesAfter(e, attempt)) continue;
                        onError.accept(e);
                        return;
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        deadline.fail("export interrupted");
                        onError.accept(e);
                        return;
                    }
                }
            }

            /**
             * How long to wait before sending again after this answer: a 429 or 503 whose Retry-After (or backoff) fits the
             * deadline. -1 when it is not sent again: the server took the batch, or the failure is recorded.
             */
            private long retryWait(SenderResponse response, int attempt) {
                int status = response.status();
                if (status >= 200 && status < 300) return -1;
                if (GATEWAY_FAILURES.contains(status)) {
                    deadline.failUnknown(config.getEndpoint() + " answered HTTP " + status + " from a gateway: Langfuse itself did not answer");
                    return -1;
                }
                long waitMillis = retryAfterMillis(response.retryAfter(), attempt);
                if (RETRYABLE.contains(status) && waitMillis + 50 < deadline.remainingMillis()) {
                    deadline.answered();
                    return waitMillis;
                }
                deadline.fail(describeStatus(status, response.body(), waitMillis));
                return -1;
            }

            /** Whether to send again after this failure (once, quickly, when the body did not get through); else why it failed. */
            private boolean retriesAfter(IOException e, int attempt) {
                String endpoint = config.getEndpoint().toString();
                if (e instanceof AbandonedException) return false;
                if (e instanceof AfterBodyException) {
                    boolean timedOut = e.getCause() instanceof java.net.SocketTimeoutException;
                    deadline.failUnknown(endpoint + (timedOut ? " did not answer within the export budget"
                            : " dropped the connection before answering (" + e.getCause().getClass().getSimpleName() + ")"));
                    return false;
                }
                if (e instanceof java.net.SocketTimeoutException) {
                    deadline.fail(endpoint + " could not be reached within the export budget");
                    return false;
                }
                // The body did not get through (no connection, or it broke while writing): one quick retry.
                if (attempt == 0 && deadline.remainingMillis() > 500) {
                    Helpers.sleepQuietly(100);
                    return true;
                }
                String explained = Network.explain(e, config.getEndpoint(), network.proxyFor(config.getEndpoint()));
                deadline.fail(explained != null ? explained : "cannot reach " + endpoint + " (" + e.getClass().getSimpleName()
                        + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")");
                return false;
            }

            private String describeStatus(int status, byte[] responseBody, long waitMillis) {
                String body = new String(responseBody, 0, Math.min(responseBody.length, Helpers.PREVIEW_CHARS),
                        StandardCharsets.UTF_8).replaceAll("\\s+", " ").strip();
                String prefix = "HTTP " + status + " from " + config.getEndpoint() + ": ";
                Network.ProxyServer proxy = network.proxyFor(config.getEndpoint());
                if (status == 407 && proxy != null) {
                    return Network.explain(new IOException("HTTP 407"), config.getEndpoint(), proxy);
                }
                if (status == 401 || status == 403) {
                    return prefix + "wrong keys or wrong host (check LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL; "
                            + "`litefuse-hook doctor` checks them)";
                }
                if (RETRYABLE.contains(status)) {
                    return prefix + "server busy; retrying in " + waitMillis + " ms would not fit the export budget";
                }
                return prefix + (body.isEmpty() ? "request rejected" : body);
            }

            /** Retry-After in seconds or as an HTTP date; otherwise 250 ms, 500 ms, 1 s, ... */
            static long retryAfterMillis(String retryAfter, int attempt) {
                if (retryAfter != null) {
                    try {
                        return Math.max(0, Long.parseLong(retryAfter.trim()) * 1000);
                    } catch (NumberFormatException notSeconds) {
                        try {
                            return Math.max(0, Duration.between(Instant.now(),
                                    java.time.ZonedDateTime.parse(retryAfter.trim(), DateTimeFormatter.RFC_1123_DATE_TIME)).toMillis());
                        } catch (DateTimeParseException notADate) {
                            // fall through to the backoff
                        }
                    }
                }
                return 250L << Math.min(attempt, 4);
            }

            @Override
            public CompletableResultCode shutdown() {
                executor.shutdownNow();
                return CompletableResultCode.ofSuccess();
            }
        }

        private record SenderResponse(int status, byte[] body, String retryAfter) implements io.opentelemetry.sdk.common.export.HttpResponse {
            @Override
            public int getStatusCode() {
                return status;
            }

            @Override
            public String getStatusMessage() {
                return "HTTP " + status;
            }

            @Override
            public byte[] getResponseBody() {
                return body;
            }
        }
    }

    /**
     * How Langfuse reads OpenTelemetry spans (docs/langfuse-otel.md): the `langfuse.*` attributes of an observation, the
     * trace-wide context v4 wants on every span, metadata as filterable flat keys beside one JSON object.
     */
    static final class LangfuseAttributes {
        private LangfuseAttributes() {
        }

        private static final AttributeKey<String> OBSERVATION_TYPE = AttributeKey.stringKey("langfuse.observation.type");
        private static final AttributeKey<String> OBSERVATION_INPUT = AttributeKey.stringKey("langfuse.observation.input");
        private static final AttributeKey<String> OBSERVATION_OUTPUT = AttributeKey.stringKey("langfuse.observation.output");
        private static final AttributeKey<String> OBSERVATION_MODEL = AttributeKey.stringKey("langfuse.observation.model.name");
        private static final AttributeKey<String> OBSERVATION_USAGE = AttributeKey.stringKey("langfuse.observation.usage_details");
        private static final AttributeKey<String> OBSERVATION_COST = AttributeKey.stringKey("langfuse.observation.cost_details");
        private static final AttributeKey<String> OBSERVATION_MODEL_PARAMETERS = AttributeKey.stringKey("langfuse.observation.model.parameters");
        private static final AttributeKey<String> OBSERVATION_LEVEL = AttributeKey.stringKey("langfuse.observation.level");
        private static final AttributeKey<String> OBSERVATION_STATUS = AttributeKey.stringKey("langfuse.observation.status_message");
        private static final AttributeKey<String> OBSERVATION_METADATA = AttributeKey.stringKey("langfuse.observation.metadata");
        private static final AttributeKey<String> TRACE_NAME = AttributeKey.stringKey("langfuse.trace.name");
        private static final AttributeKey<String> TRACE_INPUT = AttributeKey.stringKey("langfuse.trace.input");
        private static final AttributeKey<String> TRACE_OUTPUT = AttributeKey.stringKey("langfuse.trace.output");
        private static final AttributeKey<String> TRACE_METADATA = AttributeKey.stringKey("langfuse.trace.metadata");
        private static final AttributeKey<List<String>> TRACE_TAGS = AttributeKey.stringArrayKey("langfuse.trace.tags");
        private static final AttributeKey<String> SESSION_ID = AttributeKey.stringKey("session.id");
        private static final AttributeKey<String> USER_ID = AttributeKey.stringKey("user.id");
        private static final AttributeKey<String> RELEASE = AttributeKey.stringKey("langfuse.release");
        private static final AttributeKey<String> VERSION_ATTRIBUTE = AttributeKey.stringKey("langfuse.version");
        private static final AttributeKey<String> ENVIRONMENT = AttributeKey.stringKey("langfuse.environment");
        private static final AttributeKey<Boolean> AS_ROOT = AttributeKey.booleanKey("langfuse.internal.as_root");

        /** With this scope name Langfuse keeps only the attributes it understands (no `metadata.attributes` clutter). */
        static final String INSTRUMENTATION_SCOPE = "langfuse-sdk";

        /** The attributes of one span, as Langfuse reads them (see docs: trace-wide context goes on every span). */
        static void setObservationAttributes(Span span, TraceModel.TraceRecord trace, TraceModel.Observation observation) {
            span.setAttribute(OBSERVATION_TYPE, observation.type().wireName());
            setIfPresent(span, OBSERVATION_INPUT, observation.input());
            setIfPresent(span, OBSERVATION_OUTPUT, observation.output());
            setIfPresent(span, OBSERVATION_MODEL, observation.model());
            if (observation.usage() != null) span.setAttribute(OBSERVATION_USAGE, Json.toJson(Json.tree(observation.usage())));
            if (observation.cost() != null) span.setAttribute(OBSERVATION_COST, Json.toJson(Json.amounts(observation.cost())));
            ObjectNode parameters = observation.modelCall() == null ? null : observation.modelCall().parameters();
            if (parameters != null && !parameters.isEmpty()) span.setAttribute(OBSERVATION_MODEL_PARAMETERS, Json.toJson(parameters));
            if (observation.level() != TraceModel.Level.DEFAULT) span.setAttribute(OBSERVATION_LEVEL, observation.level().name());
            setIfPresent(span, OBSERVATION_STATUS, observation.statusMessage());
            setMetadata(span, OBSERVATION_METADATA, observation.metadata(), true);
            if (observation.level() == TraceModel.Level.ERROR) span.setStatus(StatusCode.ERROR, String.valueOf(observation.statusMessage()));
            TraceModel.TraceHeader header = trace.header();
            // Under a caller's traceparent the trace is the caller's: its name, input and output stay theirs.
            boolean ownTrace = header.parentSpanId() == null;
            if (ownTrace) span.setAttribute(TRACE_NAME, header.name());
            setIfPresent(span, SESSION_ID, header.sessionId());
            setIfPresent(span, USER_ID, header.userId());
            setIfPresent(span, RELEASE, header.release());
            span.setAttribute(VERSION_ATTRIBUTE, VERSION);
            setIfPresent(span, ENVIRONMENT, header.environment());
            span.setAttribute(TRACE_TAGS, header.tags());
            boolean root = observation == trace.root() && ownTrace;
            setMetadata(span, TRACE_METADATA, header.metadata(), root);
            if (root) {
                span.setAttribute(AS_ROOT, true);
                setIfPresent(span, TRACE_INPUT, header.input());
                setIfPresent(span, TRACE_OUTPUT, header.output());
            }
        }

        /**
         * Metadata as Langfuse v4 wants it: each flat string key as an attribute of its own (`<key>.<name>`, filterable),
         * and, when `withObjects`, the nested keys (`claude_code`) as one JSON attribute, which Langfuse shows as an object.
         */
        private static void setMetadata(Span span, AttributeKey<String> key, ObjectNode metadata, boolean withObjects) {
            ObjectNode nested = Json.NODES.objectNode();
            metadata.properties().forEach(field -> {
                if (field.getValue().isTextual()) span.setAttribute(key.getKey() + "." + field.getKey(), field.getValue().asText());
                else if (withObjects) nested.set(field.getKey(), field.getValue());
            });
            if (withObjects && !nested.isEmpty()) span.setAttribute(key, Json.toJson(nested));
        }

        private static void setIfPresent(Span span, AttributeKey<String> key, String value) {
            if (value != null) span.setAttribute(key, value);
        }
    }

    /** Export: the OpenTelemetry SDK and OTLP exporter, on the Transport, with Langfuse's attributes. */
    static final class Export {
        private Export() {
        }

        /** Hands the SDK the id we derived for the span about to start: the ids the state records and lookups ask for. */
        private static final class StableIdGenerator implements IdGenerator {
            private String nextTraceId;
            private String nextSpanId;

            void prepare(String traceId, String spanId) {
                nextTraceId = traceId;
                nextSpanId = spanId;
            }

            @Override
            public String generateSpanId() {
                return nextSpanId;
            }

            @Override
            public String generateTraceId() {
                return nextTraceId;
            }
        }

        /** Collects ended spans so the caller exports them itself and learns, per batch, whether the server took them. */
        private static final class CollectingProcessor implements SpanProcessor {
            final List<SpanData> ended = new ArrayList<>();

            @Override
            public void onStart(Context parentContext, ReadWriteSpan span) {
            }

            @Override
            public boolean isStartRequired() {
                return false;
            }

            @Override
            public void onEnd(ReadableSpan span) {
                ended.add(span.toSpanData());
            }

            @Override
            public boolean isEndRequired() {
                return true;
            }
        }

        /** What must be on disk before an export's first byte goes out: the hook's record of the export. */
        interface WriteAhead {
            void write() throws IOException;
        }

        /**
         * How an export went: the leading traces the server acknowledged, then those of the request whose outcome is
         * unknown (sent, no answer), and why the rest were not taken.
         */
        record ExportOutcome(int acknowledged, int unknown, String failure) {
        }

        /** The OpenTelemetry SDK, built once per run (only when there is something to send) and shut down explicitly. */
        static final class TraceExporter implements AutoCloseable {
            /** Spans per request: big enough for throughput, small enough for Langfuse's request size limits. */
            static final int BATCH_SPANS = 2048;
            private final StableIdGenerator ids = new StableIdGenerator();
            private final CollectingProcessor collector = new CollectingProcessor();
            private final Transport.ExportDeadline deadline = new Transport.ExportDeadline();
            private final SdkTracerProvider provider;
            private final Tracer tracer;
            private final SpanExporter exporter;
            private final String endpoint;

            private TraceExporter(String endpoint, java.util.function.Function<Transport.ExportDeadline, SpanExporter> exporterFactory) {
                this.endpoint = endpoint;
                this.exporter = exporterFactory.apply(deadline);
                this.provider = SdkTracerProvider.builder()
                        .setIdGenerator(ids)
                        .setResource(Resource.getDefault().merge(Resource.create(Attributes.of(
                                AttributeKey.stringKey("service.name"), "claude-code",
                                AttributeKey.stringKey("telemetry.sdk.name.litefuse"), "litefuse-hook " + VERSION))))
                        .addSpanProcessor(collector)
                        .build();
                this.tracer = provider.get(LangfuseAttributes.INSTRUMENTATION_SCOPE, VERSION);
            }

            /**
             * The exporter to Langfuse. `memoryMode`: IMMUTABLE_DATA for the one or two exports of a hook firing (its
             * simpler marshalling path takes 1 ms less on a cold JVM), REUSABLE_DATA for the thousands of a backfill.
             */
            static TraceExporter forLangfuse(Config config, Log log, MemoryMode memoryMode) {
                routeLibraryLogging(log);
                if (config.tracesEndpoint().startsWith("https:")) config.network().tls().problems().forEach(log::warn);
                Map<String, String> headers = config.exportHeaders();
                return new TraceExporter(config.tracesEndpoint(), deadline -> OtlpHttpSpanExporter.builder()
                        .setEndpoint(config.tracesEndpoint())
                        .setHeaders(() -> headers)
                        .setCompression("gzip")
                        .setTimeout(Duration.ofMillis(config.export().budgetMillis()))
                        .setConnectTimeout(Duration.ofMillis(Math.min(config.export().budgetMillis(), 2_000)))
                        .setRetryPolicy(null)
                        .setMemoryMode(memoryMode)
                        .setComponentLoader(senderLoader(deadline, config.network()))
                        .build());
            }

            /** Makes the exporter use DeadlineHttpSender; every other SPI loads as usual. */
            static ComponentLoader senderLoader(Transport.ExportDeadline deadline, Network network) {
                ComponentLoader standard = ComponentLoader.forClassLoader(litefuse_hook.class.getClassLoader());
                HttpSenderProvider provider = senderConfig -> new Transport.DeadlineHttpSender(senderConfig, deadline, network);
                return new ComponentLoader() {
                    @Override
                    public <T> Iterable<T> load(Class<T> type) {
                        return type == HttpSenderProvider.class ? List.of(type.cast(provider)) : standard.load(type);
                    }
                };
            }

            /**
             * Turns one trace into SDK spans (parents first) and returns their SpanData. A parent that is not in the
             * trace (a span sent by an earlier run, when a turn grew) is referenced by its id.
             */
            List<SpanData> toSpans(TraceModel.TraceRecord trace) {
                collector.ended.clear();
                Map<String, Span> started = new HashMap<>();
                for (TraceModel.Observation observation : trace.observations()) {
                    ids.prepare(trace.traceId(), observation.id());
                    SpanBuilder builder = tracer.spanBuilder(observation.name())
                            .setStartTimestamp(observation.start().toEpochMilli(), TimeUnit.MILLISECONDS);
                    String parentId = observation.parentId() != null ? observation.parentId() : trace.header().parentSpanId();
                    Span parent = parentId == null ? null : started.get(parentId);
                    if (parentId == null) builder.setNoParent();
                    else if (parent != null) builder.setParent(Context.root().with(parent));
                    else builder.setParent(Context.root().with(Span.wrap(SpanContext.createFromRemoteParent(trace.traceId(),
                                parentId, TraceFlags.getSampled(), TraceState.getDefault()))));
                    Span span = builder.startSpan();
                    LangfuseAttributes.setObservationAttributes(span, trace, observation);
                    started.put(observation.id(), span);
                }
                for (TraceModel.Observation observation : trace.observations()) {
                    started.get(observation.id()).end(observation.end().toEpochMilli(), TimeUnit.MILLISECONDS);
                }
                return List.copyOf(collector.ended);
            }

            /**
             * Exports traces in requests of whole traces until `deadlineNanos` (System.nanoTime()); a request is
             * acknowledged whole or not at all, and the next one goes out only once the last was acknowledged.
             */
            ExportOutcome export(List<TraceModel.TraceRecord> traces, long deadlineNanos) {
                return export(traces, deadlineNanos, null);
            }

            /**
             * As above, with `writeAhead` on disk before the first byte goes out: it is written once the first request
             * is handed to the sender, whose body waits for it, so the write overlaps compressing and connecting. When
             * it fails nothing is sent, and an UncheckedIOException says why.
             */
            ExportOutcome export(List<TraceModel.TraceRecord> traces, long deadlineNanos, WriteAhead writeAhead) {
                CompletableFuture<Void> recorded = writeAhead == null ? null : new CompletableFuture<>();
                deadline.until(deadlineNanos, recorded);
                java.io.UncheckedIOException recordFailure = null;
                int acknowledged = 0;
                int built = 0;
                CompletableResultCode inFlight = null;
                int inFlightEnd = 0;
                // One request in flight while the next batch is built: span building and the HTTP send overlap.
                while (acknowledged < traces.size()) {
                    List<SpanData> batch = new ArrayList<>();
                    while (built < traces.size() && (batch.isEmpty() || batch.size() < BATCH_SPANS)) {
                        batch.addAll(toSpans(traces.get(built)));
                        built++;
                    }
                    if (inFlight != null) {
                        if (!awaitAcknowledged(inFlight)) break;
                        acknowledged = inFlightEnd;
                    }
                    if (batch.isEmpty()) break;
                    if (deadline.remainingNanos() <= 0) {
                        deadline.fail("the export budget was used up");
                        break;
                    }
                    deadline.newRequest();
                    inFlight = exporter.export(batch);
                    inFlightEnd = built;
                    if (recorded != null && !recorded.isDone()) recordFailure = write(writeAhead, recorded);
                    if (built == traces.size()) {
                        if (awaitAcknowledged(inFlight)) acknowledged = inFlightEnd;
                        break;
                    }
                }
                if (recordFailure != null) throw recordFailure;
                // Only the last request can be unanswered; every earlier one was acknowledged before the next went out.
                int unknown = deadline.outcomeUnknown() ? inFlightEnd - acknowledged : 0;
                return new ExportOutcome(acknowledged, unknown, acknowledged == traces.size() ? null : deadline.failure());
            }

            /** Writes the record and opens the sender's gate; a failure closes it for good (nothing is sent). */
            private java.io.UncheckedIOException write(WriteAhead writeAhead, CompletableFuture<Void> recorded) {
                try {
                    writeAhead.write();
                    recorded.complete(null);
                    return null;
                } catch (IOException | RuntimeException e) {
                    String reason = "the export could not be recorded before sending, so nothing was sent: " + e;
                    deadline.fail(reason);
                    recorded.completeExceptionally(e);
                    return new java.io.UncheckedIOException(reason, e instanceof IOException io ? io : new IOException(e));
                }
            }

            private boolean awaitAcknowledged(CompletableResultCode request) {
                CompletableResultCode result = request.join(Math.max(1, deadline.remainingNanos()), TimeUnit.NANOSECONDS);
                if (result.isSuccess()) return true;
                if (!result.isDone() && deadline.abandon()) {
                    deadline.failUnknown(endpoint + " did not answer within the export budget");
                } else if (deadline.failure() == null) {
                    deadline.fail(endpoint + " did not answer within the export budget");
                }
                return false;
            }

            @Override
            public void close() {
                provider.shutdown();
                exporter.shutdown();
            }
        }

        /**
         * The SDK reports through java.util.logging: into our log at debug level, never onto Claude Code's terminal
         * (our own line per failure says what went wrong).
         */
        private static void routeLibraryLogging(Log log) {
            LogManager.getLogManager().reset();
            java.util.logging.Logger rootLogger = java.util.logging.Logger.getLogger("");
            rootLogger.setLevel(log.debugEnabled() ? java.util.logging.Level.INFO : java.util.logging.Level.OFF);
            rootLogger.addHandler(new Handler() {
                @Override
                public void publish(LogRecord record) {
                    String cause = record.getThrown() == null ? "" : " (" + record.getThrown() + ")";
                    log.debug("library: " + record.getMessage() + cause);
                }

                @Override
                public void flush() {
                }

                @Override
                public void close() {
                }
            });
        }
    }

    /**
     * Langfuse's public API, read with the keys: the v2 observations API (in Langfuse v4 it reads the real-time events
     * table, so it tells whether a span sent earlier arrived: export each span once, v4 shows a re-sent span twice), and
     * the project the keys belong to (for links, and doctor's check of the keys).
     */
    record LangfuseApi(String baseUrl, Map<String, String> headers, Network network) {
        /** Null without keys (traces routed through a collector that adds its own): nothing can be asked then. */
        static LangfuseApi of(Config config) {
            return config.langfuse().hasKeys() ? new LangfuseApi(config.langfuse().baseUrl(), config.langfuse().headers(), config.network()) : null;
        }

        /** Looks for span `spanId` of trace `traceId` that starts at `start`, answering before `deadlineNanos`. */
        Lookup findSpan(String traceId, String spanId, Instant start, long deadlineNanos) {
            String query = "traceId=" + traceId + "&fields=core&limit=1000"
                    + "&fromStartTime=" + start.minusSeconds(1).truncatedTo(ChronoUnit.MILLIS)
                    + "&toStartTime=" + start.plusSeconds(1).truncatedTo(ChronoUnit.MILLIS);
            long timeoutMillis = TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
            if (timeoutMillis <= 0) return new Lookup(Presence.UNKNOWN, "no time left to ask " + baseUrl);
            try {
                Answer answer = get("/api/public/v2/observations?" + query, Math.min(timeoutMillis, 2_000), timeoutMillis);
                if (answer.status() == 404) return new Lookup(Presence.NO_API, null);
                if (answer.status() != 200) {
                    return new Lookup(Presence.UNKNOWN, "HTTP " + answer.status() + " from " + baseUrl + "/api/public/v2/observations"
                            + (answer.status() == 401 || answer.status() == 403 ? " (wrong keys or wrong host)" : ""));
                }
                JsonNode parsed = Json.parse(answer.body());
                for (JsonNode observation : parsed == null ? Json.NODES.missingNode() : parsed.path("data")) {
                    if (spanId.equals(observation.path("id").asText())) return new Lookup(Presence.PRESENT, null);
                }
                return new Lookup(Presence.ABSENT, null);
            } catch (IOException | IllegalArgumentException e) {
                return new Lookup(Presence.UNKNOWN, "cannot ask " + baseUrl + " (" + e.getClass().getSimpleName() + ")");
            }
        }

        /**
         * The keys' project id from GET /api/public/projects; "" when the server answers without one (a server with no
         * such API: links then go through /trace/), null when there was no answer (ask again next time).
         */
        String projectId(long timeoutMillis) {
            try {
                Answer answer = projects(timeoutMillis, timeoutMillis);
                if (answer.status() == 401 || answer.status() == 403 || answer.status() >= 500) return null;
                if (answer.status() != 200) return "";
                JsonNode parsed = Json.parse(answer.body());
                String id = parsed == null ? null : parsed.path("data").path(0).path("id").textValue();
                return id == null ? "" : id;
            } catch (IOException | IllegalArgumentException e) {
                return null;
            }
        }

        /** GET /api/public/projects: the project the keys belong to. */
        Answer projects(long connectMillis, long readMillis) throws IOException {
            return get("/api/public/projects", connectMillis, readMillis);
        }

        /** A status and the body that came with it. */
        record Answer(int status, byte[] body) {
        }

        /** One GET with the keys, on HttpURLConnection (java.net.http's selector thread delays JVM exit by 300 ms). */
        private Answer get(String pathAndQuery, long connectMillis, long readMillis) throws IOException {
            java.net.HttpURLConnection connection = network.open(java.net.URI.create(baseUrl + pathAndQuery));
            connection.setConnectTimeout((int) Math.max(1, connectMillis));
            connection.setReadTimeout((int) Math.max(1, readMillis));
            headers.forEach(connection::setRequestProperty);
            int status = connection.getResponseCode();
            InputStream stream = status >= 400 ? connection.getErrorStream() : connection.getInputStream();
            if (stream == null) return new Answer(status, new byte[0]);
            try (stream) {
                return new Answer(status, stream.readAllBytes());
            }
        }

        /** Where a trace is in Langfuse's UI: under its project, or through Langfuse's /trace/ redirect. */
        String traceUrl(String projectId, String traceId) {
            return projectId == null || projectId.isEmpty() ? baseUrl + "/trace/" + traceId
                    : baseUrl + "/project/" + projectId + "/traces/" + traceId;
        }

        /** Whether Langfuse holds a span: there, not there, no such API (a server before v4), or no clear answer. */
        enum Presence { PRESENT, ABSENT, NO_API, UNKNOWN }

        record Lookup(Presence presence, String problem) {
        }

        /**
         * The Langfuse project id of these keys: as learned before (by the hook or doctor, kept in projects.json), else
         * asked of Langfuse within `timeoutMillis` (0: not asked) and kept; null when unknown.
         */
        static String projectId(Config config, LangfuseApi api, long timeoutMillis, Log log) {
            String known = StateFiles.loadState(config.layout().projectIds(), log).path(projectKey(config)).textValue();
            if (known != null || timeoutMillis <= 0) return known;
            String asked = api.projectId(timeoutMillis);
            if (asked != null) rememberProjectId(config, asked, log);
            return asked;
        }

        /** Written without a lock (any session may learn it first): writeAtomically gives each writer its own file. */
        static void rememberProjectId(Config config, String projectId, Log log) {
            Path file = config.layout().projectIds();
            try {
                ObjectNode known = StateFiles.loadState(file, log);
                known.put(projectKey(config), projectId);
                StateFiles.saveState(file, known);
            } catch (IOException | RuntimeException e) {
                log.debug("Could not remember the project id: " + e);
            }
        }

        private static String projectKey(Config config) {
            return config.langfuse().baseUrl() + " " + config.langfuse().publicKey();
        }

        /** What a Langfuse API call with the keys said: the project, or why not. */
        record CredentialCheck(boolean ok, String projectId, String projectName, String problem) {
        }

        private static final List<String> LANGFUSE_CLOUD_REGIONS = List.of("https://cloud.langfuse.com", "https://us.cloud.langfuse.com");

        /** GET /api/public/projects with the keys: 200 names the project; 401 means wrong keys (or another region). */
        static CredentialCheck checkCredentials(Config config) {
            String base = config.langfuse().baseUrl();
            Map<String, String> headers = config.langfuse().headers();
            CredentialCheck here = fetchProject(new LangfuseApi(base, headers, config.network()));
            // Only an answer from Langfuse (401 from this region) says to try the other one.
            if (here.ok() || !here.problem().startsWith("HTTP 40") || !LANGFUSE_CLOUD_REGIONS.contains(base)) return here;
            for (String other : LANGFUSE_CLOUD_REGIONS) {
                if (other.equals(base)) continue;
                CredentialCheck there = fetchProject(new LangfuseApi(other, headers, config.network()));
                if (there.ok()) {
                    return new CredentialCheck(false, there.projectId(), there.projectName(), "wrong region: these keys belong to "
                            + other + " (project " + there.projectName() + "); set " + Setting.BASE_URL.variable() + "=" + other);
                }
            }
            return here;
        }

        private static CredentialCheck fetchProject(LangfuseApi api) {
            String base = api.baseUrl();
            try {
                Answer answer = api.projects(5_000, 10_000);
                if (answer.status() == 200) {
                    JsonNode parsed = Json.parse(answer.body());
                    JsonNode project = parsed == null ? Json.NODES.missingNode() : parsed.path("data").path(0);
                    return new CredentialCheck(true, project.path("id").asText(""), project.path("name").asText("(unnamed)"), null);
                }
                java.net.URI uri = java.net.URI.create(base);
                if (answer.status() == 407 && api.network().proxyFor(uri) != null) {
                    return new CredentialCheck(false, null, null, Network.explain(new IOException("HTTP 407"), uri, api.network().proxyFor(uri)));
                }
                if (answer.status() == 401 || answer.status() == 403) {
                    return new CredentialCheck(false, null, null, "HTTP " + answer.status() + " from " + base
                            + ": wrong keys (check LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY, and that they belong to this host)");
                }
                return new CredentialCheck(false, null, null, "HTTP " + answer.status() + " from " + base + "/api/public/projects");
            } catch (IOException e) {
                java.net.URI uri = java.net.URI.create(base);
                String explained = Network.explain(e, uri, api.network().proxyFor(uri));
                if (explained == null) explained = api.network().probeTls(uri);
                return new CredentialCheck(false, null, null, explained != null ? explained : "cannot reach " + base + " ("
                        + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")");
            } catch (IllegalArgumentException e) {
                return new CredentialCheck(false, null, null, "cannot reach " + base + " (" + e.getClass().getSimpleName() + ")");
            }
        }
    }

    /**
     * What the hook's firings did, for doctor and last (the log is for people; nothing parses its text): a small JSON
     * record of the newest firing, of the newest that sent turns, and of the newest that logged an error. Each is one
     * file written whole by one firing, so firings at the same moment never mix their records.
     */
    record RunRecord(long atMillis, String sessionId, String event, int sent, boolean deferred, String error, long durationMillis) {

        /** The three records: every firing writes RUN, one that sent turns SENT, one that logged an error ERROR. */
        enum Kind {
            RUN, SENT, ERROR;

            Path file(StateLayout layout) {
                return layout.runRecord(name().toLowerCase(Locale.ROOT));
            }
        }

        /** Writes the firing's record, and its sent and error records when it sent turns or logged an error. */
        void save(StateLayout layout) throws IOException {
            byte[] bytes = Json.toBytes(toJson(), null);
            PrivateFiles.ensurePrivateDir(layout.sessions());
            PrivateFiles.replace(Kind.RUN.file(layout), bytes);
            if (sent > 0) PrivateFiles.replace(Kind.SENT.file(layout), bytes);
            if (error != null) PrivateFiles.replace(Kind.ERROR.file(layout), bytes);
        }

        /** The newest record of that kind; null when there is none (or it cannot be read). */
        static RunRecord read(StateLayout layout, Kind kind) {
            try {
                JsonNode json = Json.parse(Files.readAllBytes(kind.file(layout)));
                if (json == null || !json.path("at_millis").canConvertToLong()) return null;
                return new RunRecord(json.path("at_millis").asLong(), json.path("session_id").asText("?"), json.path("event").textValue(),
                        json.path("sent").asInt(0), json.path("deferred").asBoolean(false), json.path("error").textValue(),
                        json.path("duration_millis").asLong(0));
            } catch (IOException e) {
                return null;
            }
        }

        private ObjectNode toJson() {
            ObjectNode json = Json.NODES.objectNode();
            // Epoch milliseconds, not Instant.toString(): its formatter's set-up would cost every firing a few ms.
            json.put("at_millis", atMillis);
            json.put("session_id", sessionId);
            json.put("event", event);
            json.put("sent", sent);
            json.put("deferred", deferred);
            json.put("error", error);
            json.put("duration_millis", durationMillis);
            return json;
        }

        /** "2026-01-31 12:00:00Z: 2 turn(s) sent, 1 in progress, in 0.08s (session 8f1…, Stop)"; "nothing sent" after an error. */
        String describe() {
            String what = (sent > 0 ? sent + " turn(s) sent" : error != null ? "nothing sent" : "nothing to send")
                    + (deferred ? ", 1 in progress," : "");
            return Log.timestamp(atMillis) + ": " + what + " in " + Log.seconds(TimeUnit.MILLISECONDS.toNanos(durationMillis))
                    + " (session " + sessionId + (event == null ? "" : ", " + event) + ")";
        }
    }

    /**
     * The spool: one marker per session whose turns wait (the server did not take them, or a turn is in progress), so
     * that any later firing, of any session, sends them, even when that session never fires again. The transcript is
     * the spool's content: nothing is copied.
     */
    static final class Spool {
        private static final long MAX_AGE_DAYS = 7;
        private static final int SWEEP_LIMIT = 20;
        private static final int MAX_SESSIONS = 1000;
        private final StateLayout layout;
        private final Log log;

        Spool(StateLayout layout, Log log) {
            this.layout = layout;
            this.log = log;
        }

        /** Marks the session waiting, or not waiting any more. */
        void mark(String key, Payload.HookTarget target, boolean waiting) {
            Path marker = layout.pendingMarker(key);
            try {
                if (!waiting) {
                    Files.deleteIfExists(marker);
                    return;
                }
                if (Files.exists(marker)) return;
                ObjectNode entry = Json.NODES.objectNode();
                entry.put("session_id", target.sessionId());
                entry.put("transcript_path", target.transcriptPath().toString());
                entry.put("since", Instant.now().toString());
                StateFiles.saveState(marker, entry);
            } catch (IOException e) {
                log.warn("Could not update the pending marker of session " + target.sessionId() + ": " + e);
            }
        }

        /** No session waits; a filter, not a glob: a glob compiles a regex, the only one a firing with nothing new would need. */
        boolean isEmpty() throws IOException {
            if (!Files.isDirectory(layout.pending())) return true;
            try (java.nio.file.DirectoryStream<Path> waiting = Files.newDirectoryStream(layout.pending(),
                    file -> file.getFileName().toString().endsWith(".json"))) {
                return !waiting.iterator().hasNext();
            }
        }

        /** How many sessions wait. */
        long count() throws IOException {
            if (!Files.isDirectory(layout.pending())) return 0;
            try (java.util.stream.Stream<Path> files = Files.list(layout.pending())) {
                return files.filter(path -> path.toString().endsWith(".json")).count();
            }
        }

        /**
         * The markers of other sessions to retry, oldest first, at most SWEEP_LIMIT. The spool is bounded: past
         * MAX_SESSIONS markers the oldest are dropped, each with a line.
         */
        List<Path> due(String currentKey) {
            List<Path> all;
            try (java.util.stream.Stream<Path> files = Files.isDirectory(layout.pending()) ? Files.list(layout.pending())
                    : java.util.stream.Stream.empty()) {
                all = files.filter(path -> path.toString().endsWith(".json"))
                        .filter(path -> !path.getFileName().toString().equals(currentKey + ".json"))
                        .sorted(java.util.Comparator.comparing(path -> path.toFile().lastModified())).toList();
            } catch (IOException e) {
                log.warn("Could not list pending sessions: " + e);
                return List.of();
            }
            for (Path marker : all.subList(0, Math.max(0, all.size() - MAX_SESSIONS))) {
                log.warn("Too many sessions waiting; stopped retrying session " + StateFiles.loadState(marker, log).path("session_id").asText("?")
                        + " (its turns are still sent if that session fires again)");
                deleteQuietly(marker);
            }
            return all.subList(Math.max(0, all.size() - MAX_SESSIONS), all.size()).stream().limit(SWEEP_LIMIT).toList();
        }

        /**
         * The session a marker names, to be sent again; null (the marker dropped, with a line) when it is unreadable, its
         * transcript is gone, or it waited longer than MAX_AGE_DAYS.
         */
        Payload.HookTarget retry(Path marker, Path home) {
            ObjectNode entry = StateFiles.loadState(marker, log);
            Payload.HookTarget target = Payload.extractSessionAndTranscript(entry, home, log);
            if (target.sessionId() == null || target.transcriptPath() == null) {
                log.warn("Dropped an unreadable pending marker " + marker.getFileName());
            } else if (!Files.isReadable(target.transcriptPath())) {
                log.warn("Transcript of session " + target.sessionId() + " is gone; its unsent turns are lost");
            } else if (isOlderThanDays(entry.path("since").asText(""), MAX_AGE_DAYS)) {
                log.warn("Stopped retrying the unsent turns of session " + target.sessionId() + " after " + MAX_AGE_DAYS
                        + " days; they are still sent if that session fires again");
            } else {
                return target;
            }
            deleteQuietly(marker);
            return null;
        }

        private static boolean isOlderThanDays(String isoInstant, long days) {
            try {
                return Instant.parse(isoInstant).isBefore(Instant.now().minus(Duration.ofDays(days)));
            } catch (DateTimeParseException e) {
                return false;
            }
        }

        private void deleteQuietly(Path path) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                log.warn("Could not delete " + path + ": " + e);
            }
        }
    }

    /**
     * Pruning: Claude Code deletes transcripts untouched for `cleanupPeriodDays`; the hook deletes what it kept for
     * them (a session's state, lock and stamp) once they are gone or that old. At most one pass a day, a few
     * milliseconds per firing, after the firing's own work: a pass that needs more goes on at the next firing from
     * where it stopped. Never a session waiting in the spool, with an export in flight or turns waiting, or locked.
     */
    static final class StatePruning {
        private StatePruning() {
        }

        static final int DEFAULT_CLEANUP_DAYS = 30;
        private static final long PASS_EVERY_MILLIS = TimeUnit.DAYS.toMillis(1);
        private static final long SLICE_NANOS = TimeUnit.MILLISECONDS.toNanos(15);

        /** What a slice did: sessions removed, those it could not remove and why (the first reason), where it stopped (null: done). */
        record Outcome(int removed, int failed, String firstFailure, String stoppedAfter) {
        }

        /**
         * Claude Code's cleanupPeriodDays, as its settings give it: managed settings win over the user's; 30 when unset;
         * at least 1 (0 would take the state of sessions running now).
         */
        static int cleanupPeriodDays(Path home) {
            int days = DEFAULT_CLEANUP_DAYS;
            for (Path settings : List.of(home.resolve(".claude/settings.json"), managedSettings())) {
                try {
                    JsonNode value = Files.isRegularFile(settings) ? Json.parse(Files.readAllBytes(settings)).path("cleanupPeriodDays") : null;
                    if (value != null && value.canConvertToInt()) days = Math.max(1, value.asInt());
                } catch (IOException | RuntimeException e) {
                    // A settings file Claude Code cannot read either: the default stands.
                }
            }
            return days;
        }

        private static Path managedSettings() {
            return System.getProperty("os.name", "").startsWith("Mac")
                    ? Paths.get("/Library/Application Support/ClaudeCode/managed-settings.json")
                    : Paths.get("/etc/claude-code/managed-settings.json");
        }

        /** Runs a slice of the pass when one is due; one log line when it removed or failed to remove something. */
        static void pruneIfDue(StateLayout layout, Path home, long nowMillis, Log log) {
            JsonNode marker = readMarker(layout.pruned());
            String resumeAfter = marker.path("stopped_after").asText("");
            if (resumeAfter.isEmpty() && nowMillis - marker.path("finished_at").asLong(0) < PASS_EVERY_MILLIS) return;
            int days = cleanupPeriodDays(home);
            Outcome outcome = prune(layout, resumeAfter, nowMillis - TimeUnit.DAYS.toMillis(days), SLICE_NANOS);
            ObjectNode next = Json.NODES.objectNode();
            if (outcome.stoppedAfter() == null) next.put("finished_at", nowMillis);
            else next.put("finished_at", marker.path("finished_at").asLong(0)).put("stopped_after", outcome.stoppedAfter());
            try {
                PrivateFiles.writeAtomically(layout.pruned(), Json.toBytes(next, null), PrivateFiles.OWNER_ONLY);
            } catch (IOException e) {
                log.debug("Could not record the pruning pass: " + e);
            }
            if (outcome.removed() > 0) {
                log.info("Removed the state of " + outcome.removed() + " session(s) whose transcript is gone or untouched for over " + days
                        + " days (cleanupPeriodDays)" + (outcome.stoppedAfter() == null ? "" : "; the rest at the next firing"));
            }
            if (outcome.failed() > 0) {
                log.warn("Could not remove the state of " + outcome.failed() + " finished session(s) in " + layout.sessions() + ": "
                        + outcome.firstFailure());
            }
        }

        private static JsonNode readMarker(Path marker) {
            try {
                JsonNode parsed = Files.exists(marker) ? Json.parse(Files.readAllBytes(marker)) : null;
                return parsed == null ? Json.NODES.objectNode() : parsed;
            } catch (IOException | RuntimeException e) {
                return Json.NODES.objectNode();
            }
        }

        /**
         * One slice of a pass over the state folder in name order, after `resumeAfter`: removes the files of sessions
         * whose transcript is gone or was last written before `cutoffMillis`, and stamps and locks left without their
         * state that are that old. It ends after `sliceNanos` of that work (listing the folder aside), one entry at least.
         */
        static Outcome prune(StateLayout layout, String resumeAfter, long cutoffMillis, long sliceNanos) {
            String[] names = layout.sessions().toFile().list();
            if (names == null) return new Outcome(0, 0, null, null);
            Arrays.sort(names);
            int next = Arrays.binarySearch(names, resumeAfter);
            next = next >= 0 ? next + 1 : -next - 1;
            long deadline = System.nanoTime() + sliceNanos;
            int removed = 0;
            int failed = 0;
            String firstFailure = null;
            for (int i = next; i < names.length; i++) {
                if (i > next && System.nanoTime() > deadline) return new Outcome(removed, failed, firstFailure, names[i - 1]);
                String name = names[i];
                try {
                    if (StateLayout.isState(layout.sessions().resolve(name))) {
                        if (removeIfFinished(layout, name.substring(0, name.length() - ".json".length()), cutoffMillis)) removed++;
                    } else if (isLeftOver(name, names) && olderThan(layout.sessions().resolve(name), cutoffMillis)) {
                        removeUnlocked(layout.sessions().resolve(name));
                    }
                } catch (java.nio.file.NoSuchFileException e) {
                    // Removed with its session a moment ago, or by another firing.
                } catch (IOException | RuntimeException e) {
                    failed++;
                    if (firstFailure == null) firstFailure = name + ": " + e;
                }
            }
            return new Outcome(removed, failed, firstFailure, null);
        }

        /** A stamp (seen-*.txt) or a lock whose state is not among the (sorted) names. */
        private static boolean isLeftOver(String name, String[] sortedNames) {
            if (name.startsWith("seen-") && name.endsWith(".txt")) return true;
            return name.endsWith(".lock") && Arrays.binarySearch(sortedNames, name.substring(0, name.length() - ".lock".length()) + ".json") < 0;
        }

        private static boolean olderThan(Path file, long cutoffMillis) throws IOException {
            return Files.getLastModifiedTime(file).toMillis() < cutoffMillis;
        }

        /** Deletes a file unless another firing holds it locked (a lock file is only ever held, never written). */
        private static void removeUnlocked(Path file) throws IOException {
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                java.nio.channels.FileLock held = channel.tryLock();
                if (held == null) return;
                Files.deleteIfExists(file);
            } catch (java.nio.channels.OverlappingFileLockException | java.nio.file.NoSuchFileException e) {
                // Held by this JVM's own firing, or gone already.
            }
        }

        /**
         * Removes one session's files when it is finished and its transcript gone or old: looked at once, then, under its
         * lock, taken only if no firing wrote its state or put it in the spool since.
         */
        private static boolean removeIfFinished(StateLayout layout, String key, long cutoffMillis) throws IOException {
            Path stateFile = layout.state(key);
            java.nio.file.attribute.FileTime written = Files.getLastModifiedTime(stateFile);
            ObjectNode state = finishedState(layout, key, cutoffMillis);
            if (state == null) return false;
            Path lockFile = layout.lock(key);
            try (FileChannel channel = Files.exists(lockFile) ? FileChannel.open(lockFile, StandardOpenOption.WRITE) : null) {
                if (channel != null && channel.tryLock() == null) return false;
                if (Files.exists(layout.pendingMarker(key)) || !Files.getLastModifiedTime(stateFile).equals(written)) return false;
                Files.delete(stateFile);
                Files.deleteIfExists(layout.seen(state.path("session_id").asText(""), Paths.get(state.path("transcript_path").asText(""))));
                Files.deleteIfExists(lockFile);
                return true;
            } catch (java.nio.channels.OverlappingFileLockException e) {
                return false; // held by a firing of this JVM
            }
        }

        /**
         * The session's state when nothing of it waits (spool, export in flight, turns to resend) and its transcript is
         * gone, or it and the state were both last written before the cutoff; null otherwise.
         */
        private static ObjectNode finishedState(StateLayout layout, String key, long cutoffMillis) throws IOException {
            if (Files.exists(layout.pendingMarker(key))) return null;
            if (!(Json.parse(Files.readAllBytes(layout.state(key))) instanceof ObjectNode state)) return null;
            Progress.SessionState progress = Progress.loadSessionState(state);
            if (progress.inFlight() != null || !progress.waitingTurns().isEmpty()) return null;
            // An old transcript counts only once the hook, too, has left its state alone that long: backfill of an old
            // transcript writes its state, and must find it to send nothing twice.
            Path transcript = Paths.get(state.path("transcript_path").asText(""));
            if (!Files.exists(transcript)) return state;
            return olderThan(transcript, cutoffMillis) && olderThan(layout.state(key), cutoffMillis) ? state : null;
        }
    }

    /** Hook mode: one Stop or SessionEnd firing, exactly once per span, and the spool of waiting sessions. */
    static final class Hook implements AutoCloseable {
        private final Config config;
        private final Log log;
        private final Spool spool;
        private java.util.concurrent.Future<Export.TraceExporter> exporter;
        /** What this firing did, for its RunRecord: the session it fired for, turns sent (its own and others'), a turn waiting. */
        private Payload.HookTarget firing;
        private int sentThisFiring;
        private boolean deferredThisFiring;

        Hook(Config config, Log log) {
            this.config = config;
            this.log = log;
            this.spool = new Spool(config.layout(), log);
        }

        /**
         * Builds the OpenTelemetry SDK and exporter, and compiles the masking patterns, on a second thread (a fifth of a
         * run's time) while this one reads the session; a run waits for it only when it has something to send.
         */
        private void prepareExporter() {
            if (exporter != null) return;
            java.util.concurrent.FutureTask<Export.TraceExporter> task = new java.util.concurrent.FutureTask<>(() -> {
                // The masking patterns too: the turn's text is masked on this thread a moment later.
                config.trace().masker().text("");
                return Export.TraceExporter.forLangfuse(config, log, MemoryMode.IMMUTABLE_DATA);
            });
            Thread thread = new Thread(task, "litefuse-sdk");
            thread.setDaemon(true);
            thread.start();
            exporter = task;
        }

        private Export.TraceExporter exporter() throws IOException {
            prepareExporter();
            try {
                return exporter.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while the exporter was built");
            } catch (java.util.concurrent.ExecutionException e) {
                throw new IOException("could not build the exporter", e.getCause());
            }
        }

        /** Shuts the SDK down if it was built; one still being built has sent nothing and dies with the JVM. */
        @Override
        public void close() {
            if (exporter == null || !exporter.isDone()) return;
            try {
                exporter.get().close();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (java.util.concurrent.ExecutionException e) {
                log.debug("The exporter was never built: " + e.getCause());
            }
        }

        /**
         * One hook firing: send this session's finished turns (at SessionEnd its last turn too, finished or not), then,
         * if time is left, the turns other sessions could not send before. Everything happens before `deadline`
         * (start-up plus the export budget). Then the firing's record, for doctor and last.
         */
        static void runHook(Map<String, String> env, InputStream stdin) {
            long started = System.nanoTime();
            Config config = Config.loadConfig(env);
            if (!config.enabled()) return;
            Log log = Log.toFile(config);
            Hook hook = new Hook(config, log);
            try {
                hook.fire(stdin, started);
            } catch (Throwable t) {
                log.error("Unexpected failure: " + t);
            } finally {
                hook.close();
            }
            hook.recordRun(started);
            hook.pruneState();
        }

        /** After the firing's own work, and never its failure: a slice of the daily pass over finished sessions' files. */
        private void pruneState() {
            try {
                StatePruning.pruneIfDue(config.layout(), config.home(), System.currentTimeMillis(), log);
            } catch (RuntimeException e) {
                log.warn("Pruning the hook's state failed: " + e);
            }
        }

        private void fire(InputStream stdin, long started) {
            if (log.debugEnabled()) log.debug("Hook started (" + config + ")");
            for (String problem : config.problems()) log.warn(problem);
            if (!config.canExport()) {
                log.warn("Missing LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (or their CC_LANGFUSE_ forms); nothing sent");
                return;
            }
            Payload.HookTarget target = Payload.extractSessionAndTranscript(Payload.readHookPayload(stdin, log), config.home(), log);
            if (target.sessionId() == null || target.transcriptPath() == null) {
                log.warn("Missing session_id or transcript_path from hook payload; exiting.");
                return;
            }
            firing = target;
            if (!Files.isRegularFile(target.transcriptPath()) || !Files.isReadable(target.transcriptPath())) {
                log.warn("Transcript is missing, unreadable or not a file: " + target.transcriptPath());
                return;
            }
            if (nothingNew(target)) {
                log.info("Processed 0 turns in " + Log.seconds(System.nanoTime() - started) + " (session=" + target.sessionId()
                        + ", nothing new)");
                return;
            }
            prepareExporter();
            long deadline = started + TimeUnit.MILLISECONDS.toNanos(config.export().budgetMillis());
            if (target.sessionEnded()) log.debug("Session " + target.sessionId() + " ended: its last turn is sent as it stands");
            SessionOutcome outcome = processWithLock(target, started, deadline, true, target.sessionEnded());
            if (outcome == null) return;
            sentThisFiring += outcome.sent();
            deferredThisFiring = outcome.deferred();
            if (outcome.failure() == null) sendPendingSessions(target, started, deadline);
        }

        /** Writes what this firing did (RunRecord), once it knew its session; a failure to write it costs only doctor's view. */
        private void recordRun(long started) {
            if (firing == null) return;
            try {
                new RunRecord(System.currentTimeMillis(), firing.sessionId(), firing.event(), sentThisFiring, deferredThisFiring, log.lastError(),
                        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)).save(config.layout());
            } catch (IOException | RuntimeException e) {
                log.debug("Could not record the run: " + e);
            }
        }

        /**
         * Nothing to do: the transcript is exactly as the last clean run of this session left it (same file, size and
         * modification time), and no session waits in the spool. Decided without the lock, state or transcript.
         */
        private boolean nothingNew(Payload.HookTarget target) {
            Path seen = config.layout().seen(target.sessionId(), target.transcriptPath());
            try {
                // A missing file throws NoSuchFileException: not seen.
                if (!Files.readString(seen).equals(seenText(target, transcriptStamp(target.transcriptPath())))) return false;
                return spool.isEmpty();
            } catch (IOException | RuntimeException e) {
                return false;
            }
        }

        /** The transcript as the file system sees it: identity, size and modification time. */
        private static String transcriptStamp(Path transcript) throws IOException {
            java.nio.file.attribute.BasicFileAttributes attributes = Files.readAttributes(transcript, java.nio.file.attribute.BasicFileAttributes.class);
            return attributes.fileKey() + " " + attributes.size() + " " + attributes.lastModifiedTime().to(TimeUnit.NANOSECONDS);
        }

        private static String seenText(Payload.HookTarget target, String stamp) {
            return target.sessionId() + "\n" + target.transcriptPath() + "\n" + stamp + "\n";
        }

        private void writeSeen(Payload.HookTarget target, String stamp) {
            Path seen = config.layout().seen(target.sessionId(), target.transcriptPath());
            try {
                PrivateFiles.ensurePrivateFile(seen);
                Files.writeString(seen, seenText(target, stamp));
            } catch (IOException e) {
                log.debug("Could not record the transcript's stamp: " + e);
            }
        }

        /** What one session's run did: turns sent, whether its last turn waits in progress, why the rest wait (null: they don't). */
        record SessionOutcome(int sent, boolean deferred, String failure) {
        }

        /**
         * Processes one session under its lock. Null when the lock could not be had (waiting, the session is then marked
         * pending) or the session failed (logged); the caller counts neither as sent.
         */
        SessionOutcome processWithLock(Payload.HookTarget target, long started, long deadline, boolean wait, boolean forceLast) {
            String key = StateFiles.stateKey(target.sessionId(), target.transcriptPath().toString());
            long waitMillis = wait ? Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())) : 0;
            try (StateFiles.FileLock lock = StateFiles.FileLock.acquire(config.layout().lock(key), waitMillis)) {
                if (lock == null) {
                    if (wait) {
                        log.warn("Another hook run held the lock of session " + target.sessionId()
                                + " for the whole export budget; its new turns wait for the next run");
                        spool.mark(key, target, true);
                    }
                    return null;
                }
                return processSession(new SessionRun(target, key, transcriptStamp(target.transcriptPath()), started, deadline), forceLast);
            } catch (IOException | RuntimeException e) {
                log.error("Session " + target.sessionId() + " failed: " + e);
                return null;
            }
        }

        /** One session's run, under its lock: the session, its state key, its transcript's stamp as the run began, its times. */
        private record SessionRun(Payload.HookTarget target, String key, String stamp, long started, long deadline) {
            Path transcript() {
                return target.transcriptPath();
            }
        }

        private static final long STOP_RACE_WAIT_MS = 1_500;

        private SessionOutcome processSession(SessionRun run, boolean forceLast) throws IOException {
            Payload.HookTarget target = run.target();
            Path stateFile = config.layout().state(run.key());
            Progress.SessionState state = Pipeline.startingState(run.transcript(), stateFile, log);
            if (state.inFlight() != null) {
                InFlightCheck check = checkInFlight(target, state.inFlight(), run.deadline());
                state = state.recordSent(check.arrived()).withInFlight(check.waiting());
                if (check.waiting() != null) {
                    StateFiles.saveState(stateFile, Progress.writeSessionState(state, target.sessionId(), run.transcript()));
                    spool.mark(run.key(), target, true);
                    return new SessionOutcome(check.arrived().size(), false, check.reason());
                }
            }
            List<Prices.Sample> knownCosts = Prices.load(config.layout().prices(), log);
            Pipeline.SessionWork work = Pipeline.prepareSession(target, state, config.trace(), knownCosts, forceLast, log);
            // The Stop race: Claude Code says the turn is over (last_assistant_message) but its final row is not on
            // disk yet. Wait for it a little, within the budget; a later run sends it otherwise (the session stays pending).
            long waitUntil = Math.min(run.started() + TimeUnit.MILLISECONDS.toNanos(STOP_RACE_WAIT_MS),
                    run.deadline() - TimeUnit.MILLISECONDS.toNanos(500));
            while (work.plan().deferred() && target.lastAssistantMessage() != null && System.nanoTime() < waitUntil) {
                Helpers.sleepQuietly(100);
                work = Pipeline.prepareSession(target, state, config.trace(), knownCosts, forceLast, log);
            }
            for (TraceModel.TraceRecord trace : work.traces()) {
                log.debug("Sending " + trace.name() + " trace=" + trace.traceId() + " (" + trace.observations().size() + " observations"
                        + (trace.root() == null ? ", the rest of a turn sent before" : "") + ")");
            }
            Export.ExportOutcome outcome = new Export.ExportOutcome(0, 0, null);
            if (!work.traces().isEmpty()) {
                // Recorded before the first byte goes out: a run killed mid-export leaves "outcome unknown", not a silent re-send.
                Instant exportStart = Instant.now();
                Progress.SessionState inFlight = state.withInFlight(new Progress.InFlight(exportStart, work.parts()));
                outcome = exporter().export(work.traces(), run.deadline(),
                        () -> StateFiles.saveState(stateFile, Progress.writeSessionState(inFlight, target.sessionId(), run.transcript())));
                List<Progress.SentPart> unknown = work.parts().subList(outcome.acknowledged(), outcome.acknowledged() + outcome.unknown());
                state = state.recordSent(work.parts().subList(0, outcome.acknowledged()))
                        .withInFlight(unknown.isEmpty() ? null : new Progress.InFlight(exportStart, List.copyOf(unknown)))
                        // An export whose outcome is unknown leaves the session's cost uncertain: it is not checked then.
                        .withCostSent(Pipeline.costOf(work.traces().subList(0, outcome.acknowledged()))
                                .plus(new Progress.CostSent(0, outcome.unknown())));
            }
            if (!work.costSamples().isEmpty()) Prices.save(config.layout().prices(), knownCosts, work.costSamples(), log);
            checkCost(target, state, work, outcome);
            return finishSession(run, state, work, outcome);
        }

        /**
         * Claude Code's total for the session, when a new cost-state row brought one, against what the generations sent
         * carry: one line when they differ by more than 1e-6 USD. Checked only when everything was sent and priced.
         */
        private void checkCost(Payload.HookTarget target, Progress.SessionState state, Pipeline.SessionWork work, Export.ExportOutcome outcome)
                throws IOException {
            Double claudeCode = work.claudeCodeCost();
            if (claudeCode == null) return;
            Progress.CostSent sent = state.costSent();
            boolean complete = sent.unpriced() == 0 && outcome.acknowledged() == work.traces().size() && !work.plan().deferred();
            if (!complete) {
                log.debug("Cost not checked for session " + target.sessionId() + ": " + sent.unpriced() + " generation(s) sent without a price");
                return;
            }
            String line = String.format(Locale.ROOT, "Cost check, session %s: Claude Code counts $%.6f, the generations sent carry $%.6f",
                    target.sessionId(), claudeCode, sent.usd());
            Prices.Check check = new Prices.Check(target.sessionId(), claudeCode, sent.usd(), Instant.now().toString());
            Prices.recordCheck(config.layout().costChecks(), check, log);
            if (check.agrees()) log.debug(line);
            else log.warn(line);
        }

        /** After the export: where to read next time, the state saved, the spool and the stamp updated, one line each. */
        private SessionOutcome finishSession(SessionRun run, Progress.SessionState sent, Pipeline.SessionWork work,
                                             Export.ExportOutcome outcome) throws IOException {
            Payload.HookTarget target = run.target();
            int acknowledged = outcome.acknowledged();
            int unsent = work.traces().size() - acknowledged;
            if (acknowledged > 0) logSent(work.traces().subList(0, acknowledged), run.deadline());
            // Read again next time from the open turn (it may grow), a turn waiting for background work, the first turn
            // not acknowledged, or the one in progress.
            Progress.SessionState exported = sent.settled(work.settledTurns());
            long nextOffset = work.readEnd();
            Progress.SentTurn open = exported.openTurn();
            if (open != null && exported.offset() <= open.offset()) nextOffset = Math.min(nextOffset, open.offset());
            for (Progress.SentTurn waiting : exported.waitingTurns()) nextOffset = Math.min(nextOffset, waiting.offset());
            if (unsent > 0) nextOffset = Math.min(nextOffset, work.parts().get(acknowledged).turn().offset());
            if (work.plan().deferred()) nextOffset = Math.min(nextOffset, work.plan().deferredOffset());
            Progress.SessionState state = exported.withOffset(nextOffset, Progress.transcriptIdentity(run.transcript(), nextOffset, exported))
                    .withRequestCarry(work.requestCarry());
            StateFiles.saveState(config.layout().state(run.key()), Progress.writeSessionState(state, target.sessionId(), run.transcript()));
            // Unsent turns, a turn still in progress and background work not finished keep the session pending: any later
            // run picks it up.
            boolean waits = !state.waitingTurns().isEmpty() || (state.openTurn() != null && state.openTurn().waitsForAgents());
            boolean clean = unsent == 0 && !work.plan().deferred() && state.inFlight() == null && !waits;
            if (waits && target.sessionEnded()) {
                log.info("Session " + target.sessionId() + " ended with background work still running (workflow runs or agents its turns"
                        + " started); what they do is sent as it finishes, on a later run");
            }
            spool.mark(run.key(), target, !clean);
            // A clean run leaves the transcript's stamp: until it changes, a firing has nothing to do (see fire()).
            if (clean) writeSeen(target, run.stamp());
            if (outcome.unknown() > 0) {
                log.error("Export outcome unknown: " + outcome.failure() + "; " + outcome.unknown() + " turn(s) will be looked up in "
                        + "Langfuse before they are sent again" + (unsent > outcome.unknown() ? ", " + (unsent - outcome.unknown())
                        + " more kept for a later run" : "") + " (session=" + target.sessionId() + ")");
            } else if (unsent > 0) {
                log.error("Export failed: " + outcome.failure() + "; " + unsent + " turn(s) kept and sent again on a later run (session="
                        + target.sessionId() + ")");
            }
            String deferred = work.plan().deferred() ? ", deferred 1 (in-progress)" : "";
            log.info("Processed " + acknowledged + " turns" + deferred + " in " + Log.seconds(System.nanoTime() - run.started())
                    + " (session=" + target.sessionId() + ")");
            return new SessionOutcome(acknowledged, work.plan().deferred(), unsent > 0 ? outcome.failure() : null);
        }

        /** One line per trace sent, with its link in Langfuse (the project id is learned once and kept). */
        private void logSent(List<TraceModel.TraceRecord> sent, long deadline) {
            LangfuseApi api = LangfuseApi.of(config);
            long leftMillis = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            String projectId = api == null ? null : LangfuseApi.projectId(config, api, leftMillis > 300 ? Math.min(1_000, leftMillis - 200) : 0, log);
            for (TraceModel.TraceRecord trace : sent) {
                String where = api == null ? "trace " + trace.traceId() : api.traceUrl(projectId, trace.traceId());
                String what = trace.root() == null ? trace.name() + " (" + trace.observations().size() + " more observations)" : trace.name();
                log.info("Sent " + what + ": " + where);
            }
        }

        /** What the look-ups found: parts Langfuse has, and the parts still to wait for (null: send the rest again). */
        private record InFlightCheck(List<Progress.SentPart> arrived, Progress.InFlight waiting, String reason) {
        }

        /**
         * Settles an export whose outcome is unknown before anything is sent again: parts Langfuse has count as sent;
         * the rest is sent again when Langfuse says it is not there (and the export is older than the settle time, since
         * ingestion takes a moment) or has no v2 API (a server before v4); otherwise it waits for a later run.
         */
        private InFlightCheck checkInFlight(Payload.HookTarget target, Progress.InFlight inFlight, long deadline) {
            LangfuseApi api = LangfuseApi.of(config);
            java.util.function.Function<Progress.SentPart, LangfuseApi.Lookup> lookup = api == null
                    ? part -> new LangfuseApi.Lookup(LangfuseApi.Presence.NO_API, null)
                    : part -> api.findSpan(part.turn().traceId(), part.witnessId(), part.witnessStart(), deadline);
            InFlightCheck check = settleInFlight(inFlight, lookup, Instant.now(), config.export().unknownSettleMillis());
            int total = inFlight.parts().size();
            String session = " (session=" + target.sessionId() + ")";
            if (!check.arrived().isEmpty()) {
                log.info("Langfuse has " + check.arrived().size() + " of " + total + " turn(s) of an export whose outcome was unknown; "
                        + "recorded as sent, not sent again" + session);
            }
            if (check.waiting() != null) log.warn(check.reason() + session);
            else if (check.arrived().size() < total) {
                log.info((total - check.arrived().size()) + " turn(s) of an export whose outcome was unknown are not in Langfuse"
                        + (check.reason() == null ? "" : " (" + check.reason() + ")") + "; sending them again" + session);
            }
            return check;
        }

        /** The decision of checkInFlight, on look-up answers alone (pure but for `lookup`). */
        private static InFlightCheck settleInFlight(Progress.InFlight inFlight, java.util.function.Function<Progress.SentPart, LangfuseApi.Lookup> lookup, Instant now,
                                            long settleMillis) {
            List<Progress.SentPart> parts = inFlight.parts();
            // Requests go out one at a time, each after the last was acknowledged: what arrived is a leading run of parts.
            LangfuseApi.Lookup last = lookup.apply(parts.get(parts.size() - 1));
            if (last.presence() == LangfuseApi.Presence.PRESENT) return new InFlightCheck(parts, null, null);
            if (last.presence() == LangfuseApi.Presence.NO_API) {
                return new InFlightCheck(List.of(), null, "the server has no v2 observations API (Langfuse before v4)");
            }
            if (last.presence() == LangfuseApi.Presence.UNKNOWN) {
                return new InFlightCheck(List.of(), inFlight, "Could not ask Langfuse about " + parts.size()
                        + " turn(s) of an export whose outcome is unknown (" + last.problem() + "); they wait for a later run");
            }
            int arrived = 0;
            while (arrived < parts.size() - 1) {
                LangfuseApi.Lookup found = lookup.apply(parts.get(arrived));
                if (found.presence() == LangfuseApi.Presence.UNKNOWN) {
                    return new InFlightCheck(parts.subList(0, arrived), new Progress.InFlight(inFlight.since(), parts.subList(arrived, parts.size())),
                            "Could not ask Langfuse about turns of an export whose outcome is unknown (" + found.problem()
                                    + "); they wait for a later run");
                }
                if (found.presence() != LangfuseApi.Presence.PRESENT) break;
                arrived++;
            }
            List<Progress.SentPart> rest = parts.subList(arrived, parts.size());
            long ageMillis = Duration.between(inFlight.since(), now).toMillis();
            if (ageMillis < settleMillis) {
                return new InFlightCheck(parts.subList(0, arrived), new Progress.InFlight(inFlight.since(), rest), rest.size()
                        + " turn(s) of an export " + ageMillis / 1000 + " s ago are not in Langfuse yet; looking again on a later run "
                        + "before sending them again (ingestion can take a moment)");
            }
            return new InFlightCheck(parts.subList(0, arrived), null, null);
        }

        /** Sends other sessions' unsent turns, oldest first, while the budget lasts; stops at the first failure. */
        private void sendPendingSessions(Payload.HookTarget current, long started, long deadline) {
            if (!Files.isDirectory(config.layout().pending())) return;
            for (Path marker : spool.due(StateFiles.stateKey(current.sessionId(), current.transcriptPath().toString()))) {
                if (deadline - System.nanoTime() < TimeUnit.MILLISECONDS.toNanos(300)) return;
                Payload.HookTarget target = spool.retry(marker, config.home());
                if (target == null) continue;
                SessionOutcome outcome = processWithLock(target, started, deadline, false, Pipeline.isQuiet(target.transcriptPath()));
                if (outcome != null) sentThisFiring += outcome.sent();
                if (outcome != null && outcome.failure() != null) return;
            }
        }
    }

    /** History: backfilling the transcripts under ~/.claude/projects, and sending replayed traces as they stream in. */
    static final class History {
        private History() {
        }

        /** Exports traces as they stream in, a request per few thousand spans; stops at the first failure. */
        static final class StreamingSender implements AutoCloseable {
            private final Export.TraceExporter exporter;
            private final long deadline;
            private final List<TraceModel.TraceRecord> pending = new ArrayList<>();
            /** "name (trace id)" of each trace Langfuse had already: names only, so a long replay holds no trees. */
            private final List<String> skipped = new ArrayList<>();
            private LangfuseApi api;
            private int pendingSpans;
            private int acknowledged;
            private String failure;

            /** With `api`, each trace is looked up first and skipped when Langfuse has it (null: send everything). */
            StreamingSender(Config config, LangfuseApi api, Log log) {
                this.exporter = Export.TraceExporter.forLangfuse(config, log, MemoryMode.REUSABLE_DATA);
                this.deadline = System.nanoTime() + TimeUnit.HOURS.toNanos(1);
                this.api = api;
            }

            void add(TraceModel.TraceRecord trace) {
                if (failure != null) return;
                if (api != null) {
                    TraceModel.Observation root = trace.root();
                    LangfuseApi.Presence presence = api.findSpan(trace.traceId(), root.id(), root.start(),
                            System.nanoTime() + TimeUnit.SECONDS.toNanos(10)).presence();
                    if (presence == LangfuseApi.Presence.NO_API) api = null;
                    if (presence == LangfuseApi.Presence.PRESENT) {
                        skipped.add(trace.name() + " (trace " + trace.traceId() + ")");
                        return;
                    }
                }
                pending.add(trace);
                pendingSpans += trace.observations().size();
                if (pendingSpans >= Export.TraceExporter.BATCH_SPANS) flush();
            }

            private void flush() {
                if (pending.isEmpty() || failure != null) return;
                Export.ExportOutcome outcome = exporter.export(pending, deadline);
                acknowledged += outcome.acknowledged();
                failure = outcome.failure();
                pending.clear();
                pendingSpans = 0;
            }

            Export.ExportOutcome finish() {
                flush();
                return new Export.ExportOutcome(acknowledged, 0, failure);
            }

            List<String> skipped() {
                return skipped;
            }

            @Override
            public void close() {
                exporter.close();
            }
        }

        /** Main-session transcripts under the projects folder (subagent files are read through their parents), oldest first. */
        static List<Path> backfillTranscripts(Path root, String project, String session, Instant since) throws IOException {
            if (!Files.isDirectory(root)) return List.of();
            List<Path> found = new ArrayList<>();
            try (java.util.stream.Stream<Path> projects = Files.list(root)) {
                for (Path projectDir : projects.filter(Files::isDirectory).sorted().toList()) {
                    if (project != null && !projectDir.getFileName().toString().contains(project)) continue;
                    try (java.util.stream.Stream<Path> files = Files.list(projectDir)) {
                        files.filter(file -> file.getFileName().toString().endsWith(".jsonl"))
                                .filter(file -> !file.getFileName().toString().startsWith("agent-"))
                                .filter(file -> session == null || file.getFileName().toString().startsWith(session))
                                .filter(file -> since == null || !Helpers.lastModified(file).isBefore(since))
                                .forEach(found::add);
                    }
                }
            }
            found.sort(java.util.Comparator.comparing(Helpers::lastModified));
            return found;
        }

        /** A progress bar on stderr: redrawn in place on a terminal, one line per step otherwise. */
        static final class ProgressBar {
            private final java.io.PrintWriter err;
            private final int total;
            private final boolean terminal = System.console() != null;
            private int done;

            ProgressBar(java.io.PrintWriter err, int total) {
                this.err = err;
                this.total = total;
            }

            void step(long turns) {
                done++;
                int width = 30;
                int filled = total == 0 ? width : (int) ((long) done * width / total);
                String bar = "[" + "#".repeat(filled) + "-".repeat(width - filled) + "] " + done + "/" + total + " sessions, "
                        + turns + " turns";
                if (terminal) err.print("\r" + bar);
                else err.println(bar);
                err.flush();
            }

            void done() {
                if (terminal) err.println();
                err.flush();
            }
        }
    }

    /** Rendering: traces as trees and as JSON (replay). */
    static final class Render {
        private Render() {
        }

        /** The trace as stable JSON; long texts as their length, preview and hash unless `wholeTexts`. */
        static ObjectNode traceToJson(TraceModel.TraceRecord trace, boolean wholeTexts) {
            int limit = wholeTexts ? Integer.MAX_VALUE : Helpers.PREVIEW_CHARS;
            TraceModel.TraceHeader header = trace.header();
            ObjectNode node = Json.NODES.objectNode();
            node.put("trace_id", header.traceId());
            node.put("name", header.name());
            node.put("session_id", header.sessionId());
            node.put("user_id", header.userId());
            node.put("release", header.release());
            node.put("version", VERSION);
            if (header.environment() != null) node.put("environment", header.environment());
            node.set("tags", Json.tree(header.tags()));
            putPreview(node, "input", header.input(), limit);
            putPreview(node, "output", header.output(), limit);
            node.set("metadata", header.metadata());
            ArrayNode observations = node.putArray("observations");
            for (TraceModel.Observation observation : trace.observations()) {
                ObjectNode obs = observations.addObject();
                obs.put("id", observation.id());
                obs.put("parent_id", observation.parentId());
                obs.put("name", observation.name());
                obs.put("type", observation.type().wireName());
                obs.put("start", observation.start().toString());
                obs.put("end", observation.end().toString());
                if (observation.model() != null) obs.put("model", observation.model());
                if (observation.usage() != null) obs.set("usage", Json.tree(observation.usage()));
                if (observation.cost() != null) obs.set("cost", Json.amounts(observation.cost()));
                ObjectNode parameters = observation.modelCall() == null ? null : observation.modelCall().parameters();
                if (parameters != null && !parameters.isEmpty()) obs.set("model_parameters", parameters);
                if (observation.level() != TraceModel.Level.DEFAULT) obs.put("level", observation.level().name());
                if (observation.statusMessage() != null) obs.put("status_message", observation.statusMessage());
                putPreview(obs, "input", observation.input(), limit);
                putPreview(obs, "output", observation.output(), limit);
                obs.set("metadata", observation.metadata());
            }
            return node;
        }

        /** Long texts appear in --json as their length, a preview of the head and a hash of the tail (String.hashCode is specified, so stable). */
        private static void putPreview(ObjectNode node, String field, String text, int limit) {
            if (text == null) return;
            if (text.length() <= limit) {
                node.put(field, text);
                return;
            }
            ObjectNode summary = node.putObject(field);
            summary.put("length", text.length());
            summary.put("hash", Integer.toHexString(text.substring(text.length() - Helpers.PREVIEW_CHARS).hashCode()));
            summary.put("preview", text.substring(0, Helpers.PREVIEW_CHARS));
        }

        static String renderTree(TraceModel.TraceRecord trace) {
            StringBuilder out = new StringBuilder();
            TraceModel.Observation root = trace.root();
            Map<String, Long> totals = new LinkedHashMap<>();
            trace.observations().stream().filter(o -> o.usage() != null)
                    .forEach(o -> o.usage().forEach((k, v) -> totals.merge(k, v, Long::sum)));
            out.append(root.name()).append(" (span, ").append(formatDuration(root)).append(")")
                    .append("  session=").append(trace.header().sessionId())
                    .append("  release=").append(trace.header().release())
                    .append("  trace=").append(trace.traceId());
            if (!totals.isEmpty()) out.append("  tokens ").append(formatUsage(totals));
            JsonNode cost = root.metadata().path("claude_code").path("cost_usd");
            if (cost.isNumber()) out.append(String.format(Locale.ROOT, "  cost $%.6f", cost.asDouble()));
            appendLevel(out, root);
            out.append('\n');
            Map<String, List<TraceModel.Observation>> childrenOf = new HashMap<>();
            trace.observations().stream().skip(1)
                    .forEach(o -> childrenOf.computeIfAbsent(o.parentId(), k -> new ArrayList<>()).add(o));
            renderChildren(out, root.id(), "", childrenOf);
            return out.append('\n').toString();
        }

        private static void renderChildren(StringBuilder out, String parentId, String indent, Map<String, List<TraceModel.Observation>> childrenOf) {
            List<TraceModel.Observation> children = childrenOf.getOrDefault(parentId, List.of());
            for (int i = 0; i < children.size(); i++) {
                TraceModel.Observation child = children.get(i);
                boolean last = i == children.size() - 1;
                out.append(indent).append(last ? "└── " : "├── ").append(child.name()).append(" (").append(child.type().wireName());
                if (child.type() != TraceModel.ObservationType.EVENT) out.append(", ").append(formatDuration(child));
                out.append(")");
                if (child.model() != null) out.append("  ").append(child.model());
                if (child.type() == TraceModel.ObservationType.GENERATION && child.input() != null) {
                    out.append("  input ").append(child.input().length()).append(" chars");
                }
                if (child.usage() != null) out.append("  tokens ").append(formatUsage(child.usage()));
                if (child.cost() != null) out.append(String.format(Locale.ROOT, "  cost $%.6f", child.cost().get("total")));
                appendLevel(out, child);
                out.append('\n');
                renderChildren(out, child.id(), indent + (last ? "    " : "│   "), childrenOf);
            }
        }

        /** "  [WARNING: interrupted by user]" for an observation with a level. */
        private static void appendLevel(StringBuilder out, TraceModel.Observation observation) {
            if (observation.level() == TraceModel.Level.DEFAULT) return;
            out.append("  [").append(observation.level()).append(": ").append(oneLine(observation.statusMessage())).append("]");
        }

        private static String oneLine(String text) {
            return text == null ? null : text.replaceAll("\\s+", " ");
        }

        private static String formatDuration(TraceModel.Observation observation) {
            long millis = ChronoUnit.MILLIS.between(observation.start(), observation.end());
            return String.format(Locale.ROOT, "%.2fs", millis / 1000.0);
        }

        static String formatUsage(Map<String, Long> usage) {
            List<String> parts = new ArrayList<>();
            usage.forEach((key, value) -> parts.add(key + "=" + value));
            return String.join(" ", parts);
        }
    }

    /**
     * Claude Code's settings files (user, project, local): read, our hooks and env block merged in with a backup and
     * taken out again, the plugin's options as its hooks get them, and the env Claude Code gives a hook in a project.
     */
    static final class ClaudeSettings {
        private ClaudeSettings() {
        }

        private static final int HOOK_TIMEOUT_SECONDS = 30;

        /** Where Claude Code reads settings: the user's file, the project's shared file, the project's local file. */
        enum Scope {
            user, project, local;

            Path settingsFile(Path home, Path projectDir) {
                return switch (this) {
                    case user -> home.resolve(".claude").resolve("settings.json");
                    case project -> projectDir.resolve(".claude").resolve("settings.json");
                    case local -> projectDir.resolve(".claude").resolve("settings.local.json");
                };
            }
        }

        /** A settings file that is not valid JSON (or not an object): left untouched, reported, non-zero exit. */
        static final class InvalidSettingsException extends IOException {
            InvalidSettingsException(Path file, String reason) {
                super(file + " is not valid JSON (" + reason + "); left it untouched. Fix it, then run the command again.");
            }
        }

        /** Reads a settings file; a missing or empty file is an empty object. */
        static ObjectNode readSettings(Path file) throws IOException {
            if (!Files.exists(file)) return Json.NODES.objectNode();
            byte[] bytes = Files.readAllBytes(file);
            if (new String(bytes, StandardCharsets.UTF_8).isBlank()) return Json.NODES.objectNode();
            try {
                JsonNode parsed = Json.parse(bytes);
                if (parsed instanceof ObjectNode object) return object;
                throw new InvalidSettingsException(file, "the top level is not an object");
            } catch (JsonProcessingException e) {
                throw new InvalidSettingsException(file, e.getOriginalMessage());
            }
        }

        private static final com.fasterxml.jackson.core.util.DefaultPrettyPrinter SETTINGS_PRINTER =
                new com.fasterxml.jackson.core.util.DefaultPrettyPrinter()
                        .withObjectIndenter(new com.fasterxml.jackson.core.util.DefaultIndenter("  ", "\n"))
                        .withArrayIndenter(new com.fasterxml.jackson.core.util.DefaultIndenter("  ", "\n"))
                        .withSeparators(com.fasterxml.jackson.core.util.Separators.createDefaultInstance()
                                .withObjectFieldValueSpacing(com.fasterxml.jackson.core.util.Separators.Spacing.AFTER));

        private static String settingsText(ObjectNode settings) throws JsonProcessingException {
            return new String(Json.toBytes(settings, SETTINGS_PRINTER), StandardCharsets.UTF_8) + "\n";
        }

        /** Whether the env block holds a secret (Setting.isSecret): then the file is its owner's only (0600). */
        static boolean holdsSecret(JsonNode settings) {
            for (Setting setting : Setting.values()) {
                for (String name : setting.names()) {
                    if (setting.isSecret(settings.path("env").path(name).textValue())) return true;
                }
            }
            return false;
        }

        /**
         * Writes `settings` if it differs from the file: the old file is copied to `<name>.bak-<time>` first (owner-only:
         * it may hold a key), the new one written atomically, owner-only when it holds a secret or is new, else with the
         * old file's permissions. Returns the backup's path, "" when there was no old file, null when nothing changed.
         */
        static String writeSettingsIfChanged(Path file, ObjectNode settings) throws IOException {
            String text = settingsText(settings);
            boolean existed = Files.exists(file);
            if (existed) {
                String current = Files.readString(file);
                boolean same = current.equals(text) || settings.equals(Json.parse(current.isBlank() ? "{}" : current));
                if (same && !(holdsSecret(settings) && readableByOthers(file))) return null;
            }
            String backup = "";
            Set<PosixFilePermission> mode = PrivateFiles.OWNER_ONLY;
            if (existed) {
                Path copy = file.resolveSibling(file.getFileName() + ".bak-"
                        + DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss-SSS").format(LocalDateTime.now()));
                // Created owner-only and then filled: Files.copy would give the copy the old file's mode.
                Files.createFile(copy, PosixFilePermissions.asFileAttribute(PrivateFiles.OWNER_ONLY));
                try (OutputStream out = Files.newOutputStream(copy)) {
                    Files.copy(file, out);
                }
                backup = copy.toString();
                if (!holdsSecret(settings)) mode = Files.getPosixFilePermissions(file);
            }
            Files.createDirectories(file.getParent());
            PrivateFiles.writeAtomically(file, text.getBytes(StandardCharsets.UTF_8), mode);
            return backup;
        }

        /** Group or others may read the file. */
        static boolean readableByOthers(Path file) throws IOException {
            java.util.Set<java.nio.file.attribute.PosixFilePermission> mode = Files.getPosixFilePermissions(file);
            return mode.contains(java.nio.file.attribute.PosixFilePermission.GROUP_READ)
                    || mode.contains(java.nio.file.attribute.PosixFilePermission.OTHERS_READ);
        }

        /** The events install registers the hook for: every Stop, and the end of a session (its last turn, as it stands). */
        static final List<String> HOOK_EVENTS = List.of("Stop", "SessionEnd");

        /**
         * Adds our hook for `event` (one group of its own) unless a hook with our command is already there; true if the
         * settings changed. Only Stop runs `async`: at SessionEnd Claude Code is exiting.
         */
        static boolean addHook(ObjectNode settings, String event, String command, boolean async) {
            ObjectNode hooks = settings.has("hooks") && settings.get("hooks").isObject()
                    ? (ObjectNode) settings.get("hooks") : settings.putObject("hooks");
            ArrayNode groups = hooks.has(event) && hooks.get(event).isArray() ? (ArrayNode) hooks.get(event) : hooks.putArray(event);
            boolean background = async && event.equals("Stop");
            for (JsonNode group : groups) {
                for (JsonNode hook : group.path("hooks")) {
                    if (command.equals(hook.path("command").asText())) {
                        if (hook instanceof ObjectNode object && background != object.path("async").asBoolean(false)) {
                            if (background) object.put("async", true);
                            else object.remove("async");
                            return true;
                        }
                        return false;
                    }
                }
            }
            ObjectNode hook = groups.addObject().putArray("hooks").addObject();
            hook.put("type", "command");
            hook.put("command", command);
            hook.put("timeout", HOOK_TIMEOUT_SECONDS);
            if (background) hook.put("async", true);
            return true;
        }

        /** Removes every `event` hook whose command is `command`, and the groups and containers that leaves empty. */
        static boolean removeHook(ObjectNode settings, String event, String command) {
            JsonNode groups = settings.path("hooks").path(event);
            if (!groups.isArray()) return false;
            boolean removed = false;
            for (int g = groups.size() - 1; g >= 0; g--) {
                JsonNode groupHooks = groups.get(g).path("hooks");
                if (!groupHooks.isArray()) continue;
                for (int h = groupHooks.size() - 1; h >= 0; h--) {
                    if (command.equals(groupHooks.get(h).path("command").asText())) {
                        ((ArrayNode) groupHooks).remove(h);
                        removed = true;
                    }
                }
                if (removed && groupHooks.isEmpty()) ((ArrayNode) groups).remove(g);
            }
            ObjectNode hooks = (ObjectNode) settings.get("hooks");
            if (removed && groups.isEmpty()) hooks.remove(event);
            if (removed && hooks.isEmpty()) settings.remove("hooks");
            return removed;
        }

        /**
         * The env entries install writes: tracing on, the keys and the host, then each setting it copies that is set in
         * `env` (so `LITEFUSE_USER_ID=me litefuse-hook install` makes `me` the traces' user), in the table's order.
         */
        static Map<String, String> envBlock(String publicKey, String secretKey, String baseUrl, Map<String, String> env) {
            Map<String, String> block = new LinkedHashMap<>();
            block.put(Setting.TRACE_TO_LANGFUSE.variable(), "true");
            block.put(Setting.PUBLIC_KEY.variable(), publicKey);
            block.put(Setting.SECRET_KEY.variable(), secretKey);
            block.put(Setting.BASE_URL.variable(), baseUrl);
            for (Setting setting : Setting.values()) {
                // read(): a proxy's lower-case form, which wins, is written under the variable's name.
                String value = setting.read(env);
                boolean copied = setting.install() == Setting.InstallCopy.WHEN_SET && value != null && !value.isBlank();
                if (copied) block.put(setting.installName(), value.strip());
            }
            return block;
        }

        /** Notes in install.json what install added (a file it created, a hook, an env key that was not there before). */
        static void recordInstall(ObjectNode manifest, Path file, String kind, String what) {
            ObjectNode entry = manifest.has(file.toString()) ? (ObjectNode) manifest.get(file.toString()) : manifest.putObject(file.toString());
            ArrayNode list = entry.has(kind) ? (ArrayNode) entry.get(kind) : entry.putArray(kind);
            for (JsonNode existing : list) {
                if (existing.asText().equals(what)) return;
            }
            list.add(what);
        }

        /** The env Claude Code gives the hook here: the process env, then user, project and local settings (later wins). */
        static Map<String, String> effectiveEnv(Map<String, String> processEnv, Path home, Path projectDir,
                                                Map<String, String> sources) throws IOException {
            Map<String, String> env = new HashMap<>(processEnv);
            processEnv.keySet().forEach(key -> sources.put(key, "the environment"));
            String plugin = enabledPlugin(home, projectDir);
            Map<String, String> optionSources = new HashMap<>();
            pluginOptions(home, projectDir, plugin, processEnv, optionSources).forEach((name, value) -> {
                env.putIfAbsent(name, value);
                sources.putIfAbsent(name, optionSources.get(name));
            });
            for (Scope scope : Scope.values()) {
                Path file = scope.settingsFile(home, projectDir);
                readSettings(file).path("env").properties().forEach(entry -> {
                    env.put(entry.getKey(), entry.getValue().asText());
                    sources.put(entry.getKey(), file.toString());
                });
            }
            return env;
        }

        /** The litefuse-hook plugin enabled in these settings ("litefuse-hook@<marketplace>"), or null. */
        static String enabledPlugin(Path home, Path projectDir) throws IOException {
            String enabled = null;
            for (Scope scope : Scope.values()) {
                for (Map.Entry<String, JsonNode> entry : readSettings(scope.settingsFile(home, projectDir)).path("enabledPlugins").properties()) {
                    if (entry.getKey().startsWith("litefuse-hook@")) enabled = entry.getValue().asBoolean(false) ? entry.getKey() : null;
                }
            }
            return enabled;
        }

        /**
         * The plugin's options as its hooks get them (CLAUDE_PLUGIN_OPTION_<NAME>), each with where it came from: from
         * `pluginConfigs` in the settings; the secret from where Claude Code keeps it, ~/.claude/.credentials.json (0600) on
         * Linux, the login keychain's "Claude Code-credentials" item on macOS.
         */
        private static Map<String, String> pluginOptions(Path home, Path projectDir, String plugin, Map<String, String> processEnv,
                                                         Map<String, String> sources) throws IOException {
            Map<String, String> options = new HashMap<>();
            if (plugin == null) return options;
            for (Scope scope : Scope.values()) {
                Path file = scope.settingsFile(home, projectDir);
                readSettings(file).path("pluginConfigs").path(plugin).path("options").properties().forEach(entry -> {
                    options.put(Setting.pluginVariable(entry.getKey()), entry.getValue().asText());
                    sources.put(Setting.pluginVariable(entry.getKey()), "the plugin " + plugin + ", configured in " + file);
                });
            }
            Path credentials = home.resolve(".claude").resolve(".credentials.json");
            JsonNode secrets = Files.isReadable(credentials) ? readSettings(credentials).path("pluginSecrets").path(plugin) : Json.NODES.missingNode();
            String secretsFrom = credentials + ", where Claude Code keeps the plugin's secret";
            if (secrets.isMissingNode()) {
                secrets = Keychain.credentials(processEnv).path("pluginSecrets").path(plugin);
                secretsFrom = "the login keychain's \"" + Keychain.SERVICE + "\" item, where Claude Code keeps the plugin's secret";
            }
            for (Map.Entry<String, JsonNode> entry : secrets.properties()) {
                options.put(Setting.pluginVariable(entry.getKey()), entry.getValue().asText());
                sources.put(Setting.pluginVariable(entry.getKey()), secretsFrom);
            }
            return options;
        }

        /** Claude Code's credentials in the macOS keychain, read as Claude Code itself does, with `security`; empty elsewhere. */
        static final class Keychain {
            private Keychain() {
            }

            static final String SERVICE = "Claude Code-credentials";

            static JsonNode credentials(Map<String, String> env) {
                Path security = Helpers.onPath(env, "security");
                String user = Helpers.firstNonBlank(env.get("USER"), System.getProperty("user.name"));
                if (security == null || user == null) return Json.NODES.missingNode();
                try {
                    Process process = new ProcessBuilder(security.toString(), "find-generic-password", "-a", user, "-s", SERVICE, "-w")
                            .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                    process.getOutputStream().close();
                    // A keychain that asks the user first must not hold doctor up.
                    if (!process.waitFor(5, TimeUnit.SECONDS)) {
                        process.destroyForcibly();
                        return Json.NODES.missingNode();
                    }
                    byte[] out = process.getInputStream().readAllBytes();
                    JsonNode parsed = process.exitValue() == 0 ? Json.parse(out) : null;
                    return parsed == null ? Json.NODES.missingNode() : parsed;
                } catch (IOException e) {
                    return Json.NODES.missingNode();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return Json.NODES.missingNode();
                }
            }
        }

        /** Where Claude Code installed a plugin (its own copy, which its hooks run) and which version. */
        record InstalledPlugin(String version, Path path) {
        }

        /** The plugin's entry in ~/.claude/plugins/installed_plugins.json, or null. */
        static InstalledPlugin installedPlugin(Path home, String plugin) throws IOException {
            JsonNode entry = readSettings(home.resolve(".claude/plugins/installed_plugins.json")).path("plugins").path(plugin).path(0);
            String path = entry.path("installPath").asText("");
            return path.isEmpty() ? null : new InstalledPlugin(entry.path("version").asText("?"), Paths.get(path));
        }

        /** Claude Code keeps a project's transcripts in ~/.claude/projects/<the directory, every other character a '-'>. */
        static String claudeProjectFolder(Path dir) {
            return dir.toString().replaceAll("[^A-Za-z0-9]", "-");
        }
    }

    /**
     * The fast-path launcher install writes: a shell script that starts the built hook directly on the newest JDK here,
     * from the bundled jar and a start-up archive beside it, and falls back to JBang when anything moved.
     */
    static final class Launcher {
        private Launcher() {
        }

        static final String HOOK_COMMAND = "\"$HOME\"/.claude/hooks/litefuse-hook";

        /** Where install writes the launcher, ~/.claude/hooks/litefuse-hook: the hook command HOOK_COMMAND runs. */
        static Path launcherPath(Path home) {
            return home.resolve(".claude").resolve("hooks").resolve("litefuse-hook");
        }

        /** The class path bundled into one jar, beside the launcher. */
        static Path bundlePath(Path launcher) {
            return besideLauncher(launcher, ".jar");
        }

        /** The start-up archive `runtime` keeps, beside the launcher. */
        static Path archivePath(Path launcher, JavaRuntime runtime) {
            return besideLauncher(launcher, runtime.archiveSuffix());
        }

        /** Everything install writes beside a launcher: the bundle and a start-up archive of either kind. */
        static List<Path> launcherCompanions(Path launcher) {
            return List.of(bundlePath(launcher), besideLauncher(launcher, JavaRuntime.AOT_CACHE), besideLauncher(launcher, JavaRuntime.CDS_ARCHIVE));
        }

        private static Path besideLauncher(Path launcher, String suffix) {
            return launcher.resolveSibling(launcher.getFileName() + suffix);
        }

        /** A JDK the launcher can run: its java, its feature version, and the start-up archive it supports. */
        record JavaRuntime(Path java, int feature) {
            static final String AOT_CACHE = ".aot";
            static final String CDS_ARCHIVE = ".jsa";

            /**
             * Native reflection in every hook JVM: the exporter calls two methods reflectively, and the method-handle
             * accessors of JDK 18+ generate classes for them at run time (1 ms of a firing). Older JDKs ignore it.
             */
            static final String NATIVE_REFLECTION = "-Djdk.reflect.useNativeAccessorOnly=true";

            /**
             * BigInteger compiled after a tenth of the usual calls: JDK 24+ computes 5^(2^16) in BigDecimal's static
             * initialiser, which every Jackson parser triggers, and interpreted that squaring takes 10 ms of a firing.
             * Quoted for the shell (the star); `quiet` keeps the JVM from announcing the command on stdout.
             */
            private static final String BIG_INTEGER_EARLY = "-XX:CompileCommand=quiet '-XX:CompileCommand=CompileThresholdScaling,java.math.BigInteger::*,0.1'";

            /** The launcher's options: the quick compiler only, the smallest collector, no perf file. */
            static final String RUN_FLAGS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData " + NATIVE_REFLECTION + " " + BIG_INTEGER_EARLY;

            /** JDK 25+ keeps an AOT cache (classes loaded and linked ahead of time); 13+ a dynamic AppCDS archive. */
            String archiveSuffix() {
                return feature >= 25 ? AOT_CACHE : CDS_ARCHIVE;
            }

            List<String> recordArchiveFlags(Path archive) {
                return feature >= 25 ? List.of("-XX:AOTCacheOutput=" + archive) : List.of("-XX:ArchiveClassesAtExit=" + archive);
            }

            /**
             * On JDK 25+ without the training replay: its thread queues the training run's hot methods for compiling
             * at once, and on two cores that work outruns the hook's own (5 ms of a firing). The options are ignored
             * by a JDK that no longer knows them, so the hook still starts.
             */
            String useArchiveFlags() {
                return feature >= 25
                        ? "-XX:AOTCache=\"$archive\" -XX:+UnlockDiagnosticVMOptions -XX:+IgnoreUnrecognizedVMOptions -XX:-AOTReplayTraining"
                        : "-XX:SharedArchiveFile=\"$archive\" -Xshare:auto";
            }
        }

        /** The feature version from a JDK's `release` file (JAVA_VERSION="25.0.1"), or -1. */
        static int javaFeature(Path javaHome) {
            try {
                for (String line : Files.readAllLines(javaHome.resolve("release"))) {
                    if (line.startsWith("JAVA_VERSION=")) {
                        String version = line.substring(13).replace("\"", "");
                        return Integer.parseInt(version.split("[.+-]")[0]);
                    }
                }
            } catch (IOException | RuntimeException e) {
                // Not a JDK we can read; skip it.
            }
            return -1;
        }

        /**
         * The fastest JDK here for the hook: the newest one (17 or later) among this one, JAVA_HOME, and the usual install
         * folders (/usr/lib/jvm, macOS, SDKMAN, JBang's own JDKs). Newer JDKs start faster from their AOT cache.
         */
        static JavaRuntime fastestJava(Map<String, String> env, Path home) {
            List<Path> homes = new ArrayList<>();
            homes.add(Paths.get(System.getProperty("java.home")));
            if (Helpers.firstNonBlank(env.get("JAVA_HOME")) != null) homes.add(Paths.get(env.get("JAVA_HOME")));
            for (Path folder : List.of(Paths.get("/usr/lib/jvm"), Paths.get("/Library/Java/JavaVirtualMachines"),
                    home.resolve(".sdkman/candidates/java"), home.resolve(".jbang/cache/jdks"))) {
                try (java.util.stream.Stream<Path> children = Files.isDirectory(folder) ? Files.list(folder) : java.util.stream.Stream.empty()) {
                    children.forEach(child -> homes.add(Files.isDirectory(child.resolve("Contents/Home")) ? child.resolve("Contents/Home") : child));
                } catch (IOException e) {
                    // An unreadable folder holds no JDK for us.
                }
            }
            JavaRuntime best = new JavaRuntime(Paths.get(System.getProperty("java.home"), "bin", "java"), Runtime.version().feature());
            for (Path javaHome : homes) {
                int feature = javaFeature(javaHome);
                Path java = javaHome.resolve("bin").resolve("java");
                if (feature > best.feature() && Files.isExecutable(java)) best = new JavaRuntime(java.toAbsolutePath().normalize(), feature);
            }
            return best;
        }

        /**
         * The hook launcher: runs this very build (a chosen JDK, this class path) in one JVM start, with a start-up
         * archive and fast start-up flags, and does nothing at all where TRACE_TO_LANGFUSE is not "true" (unset, it runs
         * when the plugin gave a public key). As a hook it hands the payload to that JVM detached and returns at once.
         * When a jar or the JDK is gone it falls back to JBang; when the script's source changed it refreshes itself in
         * the background.
         */
        static String launcherScript(JavaRuntime runtime, String classPath, Path archive, String fallback, String source) {
            return String.join("\n",
                    "#!/bin/sh",
                    "# litefuse-hook launcher, written by `litefuse-hook install` (run it again to refresh this file).",
                    "# Starts the built hook directly: one JVM, no JBang launcher, a start-up archive. Falls back to JBang if anything moved.",
                    "java=" + shellQuote(runtime.java().toString()),
                    "cp=" + shellQuote(classPath),
                    "archive=" + shellQuote(archive.toString()),
                    "source=" + shellQuote(source == null ? "" : source),
                    "# As a hook (no arguments) it prints nothing and exits 0 whatever happens (exit code 2 would block Claude Code),",
                    "# and at once: the firing runs in a JVM of its own, detached (its own session where setsid exists) and off Claude",
                    "# Code's pipes, so Claude Code waits for none of it; the hook's lock, state and spool keep every turn once.",
                    "detach=\"\"",
                    "if [ $# -eq 0 ]; then",
                    "  case \"$" + Setting.TRACE_TO_LANGFUSE.variable() + "\" in [Tt][Rr][Uu][Ee]) ;; '') [ -n \"$"
                            + Setting.PUBLIC_KEY.pluginVariable() + "\" ] || exit 0 ;; *) exit 0 ;; esac",
                    "  payload=$(cat)",
                    "  detach=nohup; command -v setsid >/dev/null 2>&1 && detach=setsid",
                    "fi",
                    "fallback() {",
                    fallback == null
                            ? "  [ $# -eq 0 ] && exit 0; echo 'litefuse-hook: the installed build is gone; run `litefuse-hook install` again' >&2; exit 1"
                            : "  [ $# -eq 0 ] || exec " + fallback + " \"$@\"\n  { printf '%s' \"$payload\" | $detach " + fallback
                              + "; } >/dev/null 2>&1 &\n  exit 0",
                    "}",
                    "[ -x \"$java\" ] || fallback \"$@\"",
                    "old_ifs=$IFS; IFS=:",
                    "for jar in $cp; do [ -f \"$jar\" ] || { IFS=$old_ifs; fallback \"$@\"; }; done",
                    "IFS=$old_ifs",
                    fallback == null ? "" : "if [ -n \"$source\" ] && [ \"$source\" -nt \"$0\" ]; then touch \"$0\"; ("
                            + fallback + " install --print-hook-command --launcher \"$0\" --source \"$source\" >/dev/null 2>&1 </dev/null &); fi",
                    "run() {",
                    "  if [ -f \"$archive\" ]; then",
                    "    $detach \"$java\" " + JavaRuntime.RUN_FLAGS + " " + runtime.useArchiveFlags() + " -Xlog:disable -cp \"$cp\" litefuse_hook \"$@\"",
                    "  else",
                    "    $detach \"$java\" " + JavaRuntime.RUN_FLAGS + " -Xshare:auto -Xlog:disable -cp \"$cp\" litefuse_hook \"$@\"",
                    "  fi",
                    "}",
                    "if [ $# -eq 0 ]; then { printf '%s' \"$payload\" | run; } >/dev/null 2>&1 & exit 0; fi",
                    "run \"$@\"",
                    "");
        }

        private static String shellQuote(String value) {
            return "'" + value.replace("'", "'\\''") + "'";
        }

        /** How to run this script through JBang again: the installed app, or the launcher JBang used plus the source. */
        static String fallbackCommand(Map<String, String> env, Path home, String source) {
            Path app = home.resolve(".jbang").resolve("bin").resolve("litefuse-hook");
            if (Files.isExecutable(app)) return shellQuote(app.toString());
            String jbang = Helpers.firstNonBlank(env.get("JBANG_LAUNCH_CMD"));
            if (jbang == null || source == null) return null;
            String absolute = jbang.contains("/") ? Paths.get(jbang).toAbsolutePath().normalize().toString() : jbang;
            return shellQuote(absolute) + " " + shellQuote(source);
        }


        static String findJBang(Map<String, String> env, Path home) {
            String launched = Helpers.firstNonBlank(env.get("JBANG_LAUNCH_CMD"));
            if (launched != null) return launched;
            Path onPath = Helpers.onPath(env, "jbang");
            if (onPath != null) return onPath.toString();
            Path installed = home.resolve(".jbang").resolve("bin").resolve("jbang");
            return Files.isExecutable(installed) ? installed.toString() : null;
        }

        /** The class path a launcher runs, so doctor can check every jar is still there. */
        static List<Path> launcherClassPath(Path launcher) throws IOException {
            for (String line : Files.readAllLines(launcher)) {
                if (line.startsWith("cp='")) {
                    return java.util.Arrays.stream(line.substring(4, line.length() - 1).split(":")).map(Paths::get).toList();
                }
            }
            return List.of();
        }
    }

    /** The bundle: the hook's class path as one jar beside the launcher. */
    static final class Bundle {
        private Bundle() {
        }

        /**
         * The class path as one jar beside the launcher: the JVM opens one file instead of twenty, which saves some
         * 5 ms of every hook run, and the hook keeps running when JBang's cache is cleaned. Entries keep the class path's
         * order (the first copy of a name wins, as the class loader would pick it), service files are joined, and the
         * jars' own manifests, indexes and signatures stay out, as do the jars no hook loads from. Returns the class path
         * the launcher runs: the bundle, or the class path unchanged when it holds anything but jars, a jar names others
         * in its manifest, or the bundle cannot be written.
         */
        static String bundleClassPath(String classPath, Path bundle) {
            List<Path> jars = new ArrayList<>();
            for (String entry : classPath.split(java.io.File.pathSeparator)) {
                if (entry.isEmpty()) continue;
                if (!entry.endsWith(".jar") || !Files.isRegularFile(Paths.get(entry))) return classPath;
                if (!neverLoaded(Paths.get(entry))) jars.add(Paths.get(entry).toAbsolutePath());
            }
            if (jars.isEmpty()) return classPath;
            try {
                java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream(1 << 23);
                Set<String> written = new HashSet<>();
                Map<String, java.io.ByteArrayOutputStream> services = new LinkedHashMap<>();
                boolean multiRelease = false;
                try (java.util.zip.ZipOutputStream out = new java.util.zip.ZipOutputStream(bytes)) {
                    out.setLevel(java.util.zip.Deflater.BEST_SPEED);
                    for (Path jar : jars) {
                        try (java.util.jar.JarFile file = new java.util.jar.JarFile(jar.toFile(), false)) {
                            java.util.jar.Manifest manifest = file.getManifest();
                            // A jar that names more jars (Class-Path) is left to the JVM, which follows the names.
                            if (manifest != null && manifest.getMainAttributes().getValue("Class-Path") != null) return classPath;
                            boolean versioned = manifest != null && "true".equalsIgnoreCase(manifest.getMainAttributes().getValue("Multi-Release"));
                            multiRelease |= versioned;
                            for (java.util.jar.JarEntry entry : java.util.Collections.list(file.entries())) {
                                String name = entry.getName();
                                if (!bundles(name, versioned)) continue;
                                if (name.startsWith("META-INF/services/") && !entry.isDirectory()) {
                                    java.io.ByteArrayOutputStream service = services.computeIfAbsent(name, n -> new java.io.ByteArrayOutputStream());
                                    try (InputStream in = file.getInputStream(entry)) {
                                        in.transferTo(service);
                                    }
                                    service.write('\n');
                                } else if (written.add(name)) {
                                    out.putNextEntry(new java.util.zip.ZipEntry(name));
                                    try (InputStream in = file.getInputStream(entry)) {
                                        in.transferTo(out);
                                    }
                                    out.closeEntry();
                                }
                            }
                        }
                    }
                    for (Map.Entry<String, java.io.ByteArrayOutputStream> service : services.entrySet()) {
                        out.putNextEntry(new java.util.zip.ZipEntry(service.getKey()));
                        service.getValue().writeTo(out);
                        out.closeEntry();
                    }
                    out.putNextEntry(new java.util.zip.ZipEntry("META-INF/MANIFEST.MF"));
                    out.write(("Manifest-Version: 1.0\r\nCreated-By: litefuse-hook " + VERSION + "\r\n"
                            + (multiRelease ? "Multi-Release: true\r\n" : "") + "\r\n").getBytes(StandardCharsets.UTF_8));
                    out.closeEntry();
                }
                PrivateFiles.writeAtomically(bundle, bytes.toByteArray(), PrivateFiles.OWNER_ONLY);
                return bundle.toString();
            } catch (IOException | RuntimeException e) {
                return classPath;
            }
        }

        /**
         * The jars no hook JVM loads a class from, by their folder in the Maven repository: the OTLP exporter's OkHttp
         * sender (the hook brings its own, DeadlineHttpSender) and the libraries only that sender needs. They are 1,600 of
         * the bundle's 4,300 entries, and every firing that sends reads the bundle's whole directory once: the exporter's
         * java.util.logging looks up a service, which scans the class path.
         */
        private static final List<String> SENDER_ONLY_ARTIFACTS = List.of("/io/opentelemetry/opentelemetry-exporter-sender-okhttp/",
                "/com/squareup/okhttp3/", "/com/squareup/okio/", "/org/jetbrains/kotlin/", "/org/jetbrains/annotations/");

        private static boolean neverLoaded(Path jar) {
            String path = jar.toAbsolutePath().toString().replace(java.io.File.separatorChar, '/');
            return SENDER_ONLY_ARTIFACTS.stream().anyMatch(path::contains);
        }

        /** Whether a jar's entry goes into the bundle: not what describes that jar alone, nor another Java's classes. */
        private static boolean bundles(String name, boolean multiRelease) {
            if (name.equals("META-INF/MANIFEST.MF") || name.equals("META-INF/INDEX.LIST") || name.endsWith("module-info.class")) return false;
            if (name.startsWith("META-INF/versions/") && !multiRelease) return false;
            boolean topOfMetaInf = name.startsWith("META-INF/") && name.indexOf('/', 9) < 0;
            return !(topOfMetaInf && (name.endsWith(".SF") || name.endsWith(".RSA") || name.endsWith(".DSA") || name.endsWith(".EC")));
        }

    }

    /** Training: the start-up archive, recorded by running the hook once against a loopback server. */
    static final class Training {
        private Training() {
        }

        /**
         * Records the start-up archive: runs the hook once, in a temporary HOME, on a small transcript, against a
         * loopback server, so every class the hook needs is in the archive; kept only if the hook's export reached the
         * server. With `tls` the server speaks HTTPS, so the TLS client is archived too: an https endpoint's firing
         * takes 70 ms less. Nothing reaches the caller's terminal.
         */
        static boolean trainArchive(Launcher.JavaRuntime runtime, String classPath, Path archive, boolean tls) {
            Path scratch = null;
            com.sun.net.httpserver.HttpServer server = null;
            try {
                scratch = Files.createTempDirectory("litefuse-train-");
                Path keyStore = scratch.resolve("training.p12");
                server = tls ? trainingHttpsServer(runtime, keyStore) : com.sun.net.httpserver.HttpServer.create(
                        new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
                java.util.concurrent.atomic.AtomicInteger exports = new java.util.concurrent.atomic.AtomicInteger();
                server.createContext("/", exchange -> {
                    exchange.getRequestBody().readAllBytes();
                    exports.incrementAndGet();
                    exchange.sendResponseHeaders(200, 2);
                    exchange.getResponseBody().write("{}".getBytes(StandardCharsets.UTF_8));
                    exchange.close();
                });
                server.start();
                Path transcript = scratch.resolve("training.jsonl");
                Files.writeString(transcript, trainingTranscript());
                // Recorded beside the archive and renamed over it: a hook starting meanwhile never maps a half-written file.
                Path recording = archive.resolveSibling(archive.getFileName() + ".recording-" + ProcessHandle.current().pid());
                List<String> command = new ArrayList<>(List.of(runtime.java().toString()));
                command.addAll(runtime.recordArchiveFlags(recording));
                command.add(Launcher.JavaRuntime.NATIVE_REFLECTION);
                if (tls) command.addAll(List.of("-Djavax.net.ssl.trustStore=" + keyStore, "-Djavax.net.ssl.trustStorePassword=" + TRAINING_PASSWORD));
                command.addAll(List.of("-Xlog:disable", "-cp", classPath, "litefuse_hook"));
                ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                        .redirectOutput(scratch.resolve("training.log").toFile());
                builder.environment().putAll(Map.of("HOME", scratch.toString(), "TRACE_TO_LANGFUSE", "true",
                        "LANGFUSE_PUBLIC_KEY", "pk-lf-training", "LANGFUSE_SECRET_KEY", "sk-lf-training",
                        "LANGFUSE_BASE_URL", (tls ? "https" : "http") + "://127.0.0.1:" + server.getAddress().getPort()));
                builder.environment().remove("OTEL_EXPORTER_OTLP_ENDPOINT");
                builder.environment().remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
                Process process = builder.start();
                try (java.io.OutputStream stdin = process.getOutputStream()) {
                    stdin.write(("{\"session_id\":\"training\",\"transcript_path\":\"" + transcript + "\"}").getBytes(StandardCharsets.UTF_8));
                }
                if (!process.waitFor(180, TimeUnit.SECONDS) || process.exitValue() != 0 || !Files.isRegularFile(recording) || exports.get() == 0) {
                    Files.deleteIfExists(recording);
                    return false;
                }
                try {
                    Files.setPosixFilePermissions(recording, PrivateFiles.OWNER_ONLY);
                } catch (UnsupportedOperationException e) {
                    // No POSIX modes here (Windows): the folder's access rules apply.
                }
                Files.move(recording, archive, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                return true;
            } catch (IOException | InterruptedException | java.security.GeneralSecurityException e) {
                return false;
            } finally {
                if (server != null) server.stop(0);
                if (scratch != null) Helpers.deleteTree(scratch);
            }
        }

        private static final String TRAINING_PASSWORD = "litefuse-training";

        /**
         * A loopback HTTPS server for the training run, on a throwaway EC key that the runtime's keytool makes in
         * `keyStore`; the training hook trusts that same store.
         */
        private static com.sun.net.httpserver.HttpsServer trainingHttpsServer(Launcher.JavaRuntime runtime, Path keyStore)
                throws IOException, InterruptedException, java.security.GeneralSecurityException {
            Path keytool = runtime.java().resolveSibling(runtime.java().getFileName().toString().replace("java", "keytool"));
            Process process = new ProcessBuilder(keytool.toString(), "-genkeypair", "-alias", "training", "-keyalg", "EC",
                    "-groupname", "secp256r1", "-dname", "CN=localhost", "-ext", "SAN=ip:127.0.0.1", "-validity", "2",
                    "-storetype", "PKCS12", "-keystore", keyStore.toString(), "-storepass", TRAINING_PASSWORD, "-keypass", TRAINING_PASSWORD)
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) throw new IOException("keytool failed");
            java.security.KeyStore store = java.security.KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(keyStore)) {
                store.load(in, TRAINING_PASSWORD.toCharArray());
            }
            javax.net.ssl.KeyManagerFactory keys = javax.net.ssl.KeyManagerFactory.getInstance(javax.net.ssl.KeyManagerFactory.getDefaultAlgorithm());
            keys.init(store, TRAINING_PASSWORD.toCharArray());
            javax.net.ssl.SSLContext context = javax.net.ssl.SSLContext.getInstance("TLS");
            context.init(keys.getKeyManagers(), null, null);
            com.sun.net.httpserver.HttpsServer server = com.sun.net.httpserver.HttpsServer.create(
                    new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
            server.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(context));
            return server;
        }

        /** A small finished turn with thinking, a tool call and its result, and a final answer. */
        private static String trainingTranscript() {
            String common = "\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/tmp\",\"sessionId\":\"training\",\"version\":\"2.1.0\"";
            String usage = "\"usage\":{\"input_tokens\":3,\"output_tokens\":9,\"cache_read_input_tokens\":10,\"cache_creation_input_tokens\":5,"
                    + "\"cache_creation\":{\"ephemeral_5m_input_tokens\":5,\"ephemeral_1h_input_tokens\":0}}";
            return String.join("\n",
                    "{\"type\":\"user\",\"uuid\":\"t1\",\"parentUuid\":null," + common + ",\"timestamp\":\"2026-01-01T00:00:00.000Z\","
                            + "\"message\":{\"role\":\"user\",\"content\":\"List the files\"}}",
                    "{\"type\":\"assistant\",\"uuid\":\"t2\",\"parentUuid\":\"t1\"," + common + ",\"timestamp\":\"2026-01-01T00:00:01.000Z\","
                            + "\"requestId\":\"r1\",\"message\":{\"id\":\"m1\",\"model\":\"claude-training\",\"role\":\"assistant\",\"stop_reason\":\"tool_use\","
                            + "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Use ls.\"}]," + usage + "}}",
                    "{\"type\":\"assistant\",\"uuid\":\"t3\",\"parentUuid\":\"t2\"," + common + ",\"timestamp\":\"2026-01-01T00:00:02.000Z\","
                            + "\"requestId\":\"r1\",\"message\":{\"id\":\"m1\",\"model\":\"claude-training\",\"role\":\"assistant\",\"stop_reason\":\"tool_use\","
                            + "\"content\":[{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"Bash\",\"input\":{\"command\":\"ls\"}}]," + usage + "}}",
                    "{\"type\":\"user\",\"uuid\":\"t4\",\"parentUuid\":\"t3\"," + common + ",\"timestamp\":\"2026-01-01T00:00:03.000Z\","
                            + "\"toolUseResult\":{\"stdout\":\"a\",\"stderr\":\"\",\"interrupted\":false},"
                            + "\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"tu1\",\"content\":\"a\"}]}}",
                    "{\"type\":\"system\",\"subtype\":\"api_error\",\"uuid\":\"t5\",\"parentUuid\":\"t4\"," + common
                            + ",\"timestamp\":\"2026-01-01T00:00:03.500Z\",\"level\":\"error\",\"error\":{\"status\":529},\"retryAttempt\":1,\"maxRetries\":10}",
                    "{\"type\":\"assistant\",\"uuid\":\"t6\",\"parentUuid\":\"t5\"," + common + ",\"timestamp\":\"2026-01-01T00:00:04.000Z\","
                            + "\"requestId\":\"r2\",\"message\":{\"id\":\"m2\",\"model\":\"claude-training\",\"role\":\"assistant\",\"stop_reason\":\"end_turn\","
                            + "\"content\":[{\"type\":\"text\",\"text\":\"One file: a\"}]," + usage + "}}",
                    "");
        }

    }

    // ----------------- Commands -----------------

    /** What every subcommand shares: the top command's environment and picocli's streams (tests swap both). */
    abstract static class Subcommand implements Callable<Integer> {
        @ParentCommand
        litefuse_hook parent;

        @Spec
        CommandSpec spec;

        java.io.PrintWriter out() {
            return spec.commandLine().getOut();
        }

        java.io.PrintWriter err() {
            return spec.commandLine().getErr();
        }

        /** The configuration from the top command's environment. */
        Config config() {
            return Config.loadConfig(parent.environment);
        }
    }

    /** `--dir`: the project a command looks at (install, doctor, last). */
    static final class ProjectDir {
        @Option(names = "--dir", paramLabel = "DIR", description = "The project directory (default: the current directory).")
        Path dir;

        Path resolve() {
            return (dir == null ? Paths.get("") : dir).toAbsolutePath().normalize();
        }
    }

    @Command(name = "replay", mixinStandardHelpOptions = true,
            description = "Print the traces a transcript produces (as a tree, or --json), or --send them.")
    static final class Replay extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "FILE.jsonl", description = "Claude Code transcript(s).")
        List<Path> files;

        @Option(names = "--json", description = "Print the traces as stable JSON, one trace per line, instead of a tree.")
        boolean json;

        @Option(names = "--whole-texts",
                description = "With --json: every input and output whole (default: a long one as its length, a preview and a hash).")
        boolean wholeTexts;

        @Option(names = "--send", description = "Export the traces to Langfuse (keys from the environment) with the hook's ids.")
        boolean send;

        @Option(names = "--session-id", description = "Session id for rows that lack one (default: the file name).")
        String sessionId;

        @Option(names = "--quiet", description = "With --send: do not print the trees.")
        boolean quiet;

        @Option(names = "--force", description = "With --send: send traces Langfuse already holds too (they then show twice in Langfuse v4).")
        boolean force;

        @Override
        public Integer call() throws IOException {
            Config config = config();
            if (send && !config.canExport()) {
                System.err.println("replay --send needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY in the environment");
                return 2;
            }
            Log log = Log.toStderr();
            for (String problem : config.problems()) log.warn(problem);
            PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
            // Traces stream out as they are built: a transcript of any size replays in bounded memory.
            com.fasterxml.jackson.core.JsonGenerator jsonOut = null;
            if (json) {
                // JSON Lines: one compact trace per line, for jq and for transcripts of any size.
                jsonOut = Json.FACTORY.createGenerator(out)
                        .setPrettyPrinter(new com.fasterxml.jackson.core.util.MinimalPrettyPrinter("\n"));
            }
            int failures = 0;
            for (Path file : files) {
                if (!Files.isReadable(file)) {
                    System.err.println("Cannot read " + file);
                    failures++;
                } else if (!replay(file, config, log, out, jsonOut)) {
                    failures++;
                }
            }
            if (jsonOut != null) {
                jsonOut.flush();
                if (jsonOut.getOutputContext().getEntryCount() > 0) out.println();
            }
            out.flush();
            return failures == 0 ? 0 : 1;
        }

        /** Prints (and with --send sends) one transcript's traces; false when some were not sent. */
        private boolean replay(Path file, Config config, Log log, PrintStream out, com.fasterxml.jackson.core.JsonGenerator jsonOut)
                throws IOException {
            String fallbackSession = sessionId != null ? sessionId : file.getFileName().toString().replaceFirst("\\.jsonl$", "");
            // Priced as the hook prices: by the rates Claude Code's cost rows taught it on this machine.
            Traces.TraceContext ctx = Traces.TraceContext.of(config.trace(), fallbackSession, file.toAbsolutePath().normalize().toString())
                    .withRates(Prices.Rates.learn(Prices.load(config.layout().prices(), log), new ArrayList<>()));
            try (History.StreamingSender sender = send ? new History.StreamingSender(config, force ? null : LangfuseApi.of(config), log) : null) {
                int count = Pipeline.replayTranscript(file, ctx, log, trace -> {
                    if (jsonOut != null) writeJson(jsonOut, Render.traceToJson(trace, wholeTexts));
                    else if (!send || !quiet) out.print(Render.renderTree(trace));
                    if (sender != null) sender.add(trace);
                });
                if (sender == null) return true;
                Export.ExportOutcome outcome = sender.finish();
                for (String trace : sender.skipped()) {
                    System.err.println("Skipped " + trace + ": Langfuse has it already (--force sends it anyway)");
                }
                System.err.println("Sent " + outcome.acknowledged() + " of " + count + " traces from " + file
                        + " to " + config.tracesEndpoint() + (sender.skipped().isEmpty() ? "" : ", " + sender.skipped().size()
                        + " already there") + (outcome.failure() == null ? "" : ": " + outcome.failure()));
                return outcome.acknowledged() + sender.skipped().size() >= count;
            }
        }

        private static void writeJson(com.fasterxml.jackson.core.JsonGenerator generator, JsonNode node) {
            try {
                Json.write(generator, node);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    }

    @Command(name = "backfill", mixinStandardHelpOptions = true,
            description = {"Send the history under ~/.claude/projects: every turn the hook has not sent yet, with the hook's ids.",
                    "Resumable: it keeps the hook's state, so a second run (or the hook) skips what was sent."})
    static final class Backfill extends Subcommand {
        @Option(names = "--projects-dir", paramLabel = "DIR", description = "Default: ~/.claude/projects.")
        Path projectsDir;

        @Option(names = "--project", paramLabel = "TEXT", description = "Only project folders whose name contains TEXT.")
        String project;

        @Option(names = "--session", paramLabel = "ID", description = "Only sessions whose id starts with ID.")
        String session;

        @Option(names = "--since", paramLabel = "DATE", description = "Only sessions active since DATE (2026-01-31 or an ISO instant).")
        String since;

        @Option(names = "--dry-run", description = "Print what would be sent (sessions, turns, tokens) and send nothing.")
        boolean dryRun;

        @Override
        public Integer call() throws IOException {
            Config config = config();
            if (!dryRun && !config.canExport()) {
                err().println("backfill needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (or --dry-run)");
                return 2;
            }
            Instant sinceInstant;
            try {
                sinceInstant = since == null ? null : since.length() == 10
                        ? java.time.LocalDate.parse(since).atStartOfDay(java.time.ZoneOffset.UTC).toInstant() : Instant.parse(since);
            } catch (DateTimeParseException e) {
                err().println("--since takes a date (2026-01-31) or an instant (2026-01-31T12:00:00Z)");
                return 2;
            }
            Path root = projectsDir != null ? projectsDir : config.home().resolve(".claude").resolve("projects");
            List<Path> transcripts = History.backfillTranscripts(root, project, session, sinceInstant);
            Log log = Log.toFile(config);
            // Claude Code's prices from all of the history first, so the first sessions sent are priced too.
            List<Prices.Sample> history = new ArrayList<>();
            for (Path transcript : History.backfillTranscripts(root, null, null, null)) history.addAll(Prices.samplesIn(transcript, log));
            List<Prices.Sample> known = Prices.load(config.layout().prices(), log);
            if (dryRun) {
                known.addAll(history);
                return dryRun(config, transcripts, known, log);
            }
            if (!history.isEmpty()) Prices.save(config.layout().prices(), known, history, log);
            try (Hook hook = new Hook(config, log)) {
                return backfill(hook, config, transcripts);
            }
        }

        private static Payload.HookTarget targetOf(Path transcript) {
            return new Payload.HookTarget(transcript.getFileName().toString().replaceFirst("\\.jsonl$", ""), transcript, null, null);
        }

        /** What backfill would send, through the hook's own pipeline (same state, same turns, same numbers), sending nothing. */
        private int dryRun(Config config, List<Path> transcripts, List<Prices.Sample> knownCosts, Log log) throws IOException {
            History.ProgressBar progress = new History.ProgressBar(err(), transcripts.size());
            long turns = 0;
            long skipped = 0;
            Map<String, Long> tokens = new LinkedHashMap<>();
            Progress.CostSent cost = Progress.CostSent.NONE;
            long generations = 0;
            for (Path transcript : transcripts) {
                Payload.HookTarget target = targetOf(transcript);
                Path stateFile = config.layout().state(StateFiles.stateKey(target.sessionId(), transcript.toString()));
                Progress.SessionState state = Pipeline.startingState(transcript, stateFile, log);
                Pipeline.SessionWork work = Pipeline.prepareSession(target, state, config.trace(), knownCosts, Pipeline.isQuiet(transcript), log);
                turns += work.traces().size();
                skipped += state.emittedUserUuids().size();
                for (TraceModel.TraceRecord trace : work.traces()) {
                    for (TraceModel.Observation o : trace.observations()) {
                        if (o.usage() == null) continue;
                        o.usage().forEach((k, v) -> tokens.merge(k, v, Long::sum));
                        generations++;
                    }
                }
                cost = cost.plus(Pipeline.costOf(work.traces()));
                if (!work.traces().isEmpty()) {
                    out().println("would send " + work.traces().size() + " turn(s) of session " + target.sessionId() + " (" + transcript + ")");
                }
                progress.step(turns);
            }
            progress.done();
            out().println("Dry run: " + transcripts.size() + " session(s), " + turns + " turn(s) to send, " + skipped
                    + " already sent; tokens " + (tokens.isEmpty() ? "none" : Render.formatUsage(tokens))
                    + String.format(Locale.ROOT, "; cost by Claude Code's prices $%.6f, for %d of %d generation(s)", cost.usd(),
                    generations - cost.unpriced(), generations));
            return 0;
        }

        private int backfill(Hook hook, Config config, List<Path> transcripts) {
            History.ProgressBar progress = new History.ProgressBar(err(), transcripts.size());
            long turns = 0;
            long failed = 0;
            for (Path transcript : transcripts) {
                Payload.HookTarget target = targetOf(transcript);
                long started = System.nanoTime();
                Hook.SessionOutcome outcome = hook.processWithLock(target, started,
                        started + TimeUnit.MINUTES.toNanos(10), true, Pipeline.isQuiet(transcript));
                if (outcome == null || outcome.failure() != null) {
                    failed++;
                    err().println();
                    err().println("session " + target.sessionId() + ": " + (outcome == null ? "see the log" : outcome.failure()));
                } else {
                    turns += outcome.sent();
                }
                progress.step(turns);
            }
            progress.done();
            out().println("Sent " + turns + " turn(s) from " + transcripts.size() + " session(s) to " + config.tracesEndpoint()
                    + (failed == 0 ? "" : "; " + failed + " session(s) failed, run backfill again to resume"));
            return failed == 0 ? 0 : 1;
        }
    }

    @Command(name = "install", mixinStandardHelpOptions = true,
            description = {"Add the Stop and SessionEnd hooks and the env block to Claude Code's settings (merging, with a backup).",
                    "Keys come from the options or from LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY / LANGFUSE_BASE_URL."})
    static final class Install extends Subcommand {
        @Option(names = "--project", description = "Install for this project only: hook and env in .claude/settings.local.json.")
        boolean project;

        @Option(names = "--hook-scope", paramLabel = "user|project|local",
                description = "Settings file for the hook (default: user, or local with --project). `project` is the shared, committed file.")
        ClaudeSettings.Scope hookScope;

        @Option(names = "--env-scope", paramLabel = "user|local",
                description = "Settings file for the env block (default: user, or local with --project). Keys never go into the committed file.")
        ClaudeSettings.Scope envScope;

        @Mixin
        ProjectDir projectDir;

        @Option(names = "--public-key", paramLabel = "pk-lf-...", description = "Langfuse public key.")
        String publicKey;

        @Option(names = "--secret-key", paramLabel = "sk-lf-...", description = "Langfuse secret key; `-` reads it from stdin. Prefer LANGFUSE_SECRET_KEY.")
        String secretKey;

        @Option(names = "--base-url", paramLabel = "URL", description = "Langfuse host (default: LANGFUSE_BASE_URL, else https://cloud.langfuse.com).")
        String baseUrl;

        @Option(names = "--user-id", description = "Trace user id to write as LITEFUSE_USER_ID (default: the OS user at run time).")
        String userId;

        @Option(names = "--async", description = "Run the Stop hook in the background (Claude Code's \"async\": true); SessionEnd stays in the foreground.")
        boolean async;

        @Option(names = "--no-env", description = "Write the hook only; the env block is managed elsewhere.")
        boolean noEnv;

        @Option(names = "--print-hook-command", description = "Only write the launcher (and its start-up archive) and print the hook command.")
        boolean printHookCommand;

        @Option(names = "--launcher", paramLabel = "FILE", description = "Where to write the launcher (default: ~/.claude/hooks/litefuse-hook; the plugin keeps its own in its data folder).")
        Path launcherFile;

        @Option(names = "--java", paramLabel = "PATH", description = "The java the hook runs on (default: the newest JDK 17+ found here).")
        Path javaPath;

        @Option(names = "--source", paramLabel = "FILE", description = "This script's source file, for the launcher to notice updates (default: found next to the current directory's script).")
        Path source;

        @Override
        public Integer call() throws IOException {
            Config config = config();
            Path dir = projectDir.resolve();
            ClaudeSettings.Scope hookIn = hookScope != null ? hookScope : project ? ClaudeSettings.Scope.local : ClaudeSettings.Scope.user;
            ClaudeSettings.Scope envIn = envScope != null ? envScope : project ? ClaudeSettings.Scope.local : ClaudeSettings.Scope.user;
            if (envIn == ClaudeSettings.Scope.project) {
                err().println("Refusing to write keys into " + ClaudeSettings.Scope.project.settingsFile(config.home(), dir)
                        + ": it is committed. Use --env-scope local (or user).");
                return 2;
            }
            String pk = Helpers.firstNonBlank(publicKey, config.langfuse().publicKey());
            String sk = "-".equals(secretKey) ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8).strip()
                    : Helpers.firstNonBlank(secretKey, config.langfuse().secretKey());
            String url = Helpers.firstNonBlank(baseUrl, config.langfuse().baseUrl());
            if (!noEnv && !printHookCommand && (pk == null || sk == null)) {
                err().println("No keys: pass --public-key and --secret-key (or set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY).");
                return 2;
            }
            LauncherWritten launcher = writeLauncher(config);
            if (printHookCommand) {
                out().println(launcher.path());
                return 0;
            }
            Path hookFile = hookIn.settingsFile(config.home(), dir);
            Path envFile = envIn.settingsFile(config.home(), dir);
            Map<Path, ObjectNode> files = new LinkedHashMap<>();
            try {
                files.put(hookFile, ClaudeSettings.readSettings(hookFile));
                if (!noEnv) files.putIfAbsent(envFile, ClaudeSettings.readSettings(envFile));
            } catch (ClaudeSettings.InvalidSettingsException e) {
                err().println(e.getMessage());
                return 1;
            }
            ObjectNode manifest = StateFiles.loadState(config.layout().installManifest(), Log.toStderr());
            boolean hookChanged = false;
            for (String event : ClaudeSettings.HOOK_EVENTS) {
                hookChanged |= ClaudeSettings.addHook(files.get(hookFile), event, Launcher.HOOK_COMMAND, async);
            }
            ClaudeSettings.recordInstall(manifest, hookFile, "hook", Launcher.HOOK_COMMAND);
            Map<String, String> block = noEnv ? Map.of() : ClaudeSettings.envBlock(pk, sk, url, envToCopy());
            if (!noEnv) mergeEnv(files.get(envFile), block, manifest, envFile);
            writeSettings(files, manifest);
            StateFiles.saveState(config.layout().installManifest(), manifest);
            out().println("Hooks:     Stop" + (async ? " (async)" : "") + " and SessionEnd: " + Launcher.HOOK_COMMAND + " in " + hookFile
                    + (hookChanged ? "" : " (already there)"));
            out().println("Launcher:  " + launcher.path() + " (runs Java " + launcher.javaFeature() + " directly, "
                    + (launcher.trained() ? "with a start-up archive" : "without a start-up archive: recording it failed") + ")");
            if (!noEnv) reportEnv(block, envFile);
            out().println("Next:      litefuse-hook doctor --send-test");
            return 0;
        }

        /** The launcher install wrote: where, the Java it runs, whether its start-up archive was recorded. */
        private record LauncherWritten(Path path, int javaFeature, boolean trained) {
        }

        /** Bundles the class path, records the start-up archive and writes the launcher that runs them. */
        private LauncherWritten writeLauncher(Config config) throws IOException {
            Map<String, String> env = parent.environment;
            String sourceFile = source != null ? source.toAbsolutePath().normalize().toString()
                    : Files.isRegularFile(Paths.get("litefuse_hook.java")) ? Paths.get("litefuse_hook.java").toAbsolutePath().toString() : null;
            Path launcher = launcherFile != null ? launcherFile.toAbsolutePath().normalize() : Launcher.launcherPath(config.home());
            Files.createDirectories(launcher.getParent());
            Launcher.JavaRuntime java = javaPath != null ? new Launcher.JavaRuntime(javaPath.toAbsolutePath(),
                    Launcher.javaFeature(javaPath.toAbsolutePath().getParent().getParent())) : Launcher.fastestJava(env, config.home());
            String classPath = Bundle.bundleClassPath(System.getProperty("java.class.path"), Launcher.bundlePath(launcher));
            Path archive = Launcher.archivePath(launcher, java);
            // Trained on the endpoint's scheme (the TLS client is 8 MB of archive); over plain HTTP when HTTPS fails.
            boolean tls = Helpers.firstNonBlank(baseUrl, config.tracesEndpoint()).startsWith("https:");
            boolean trained = Training.trainArchive(java, classPath, archive, tls) || tls && Training.trainArchive(java, classPath, archive, false);
            // Renamed over the old one: Claude Code may be starting the old launcher right now.
            String script = Launcher.launcherScript(java, classPath, archive, Launcher.fallbackCommand(env, config.home(), sourceFile), sourceFile);
            PrivateFiles.writeAtomically(launcher, script.getBytes(StandardCharsets.UTF_8), PosixFilePermissions.fromString("rwx------"));
            return new LauncherWritten(launcher, java.feature(), trained);
        }

        /** The environment whose settings install copies, with --user-id as LITEFUSE_USER_ID. */
        private Map<String, String> envToCopy() {
            if (userId == null) return parent.environment;
            Map<String, String> env = new HashMap<>(parent.environment);
            env.put(Setting.USER_ID.variable(), userId);
            return env;
        }

        /** Puts the block into the file's env, noting in the manifest each key that was not there before. */
        private static void mergeEnv(ObjectNode settings, Map<String, String> block, ObjectNode manifest, Path envFile) {
            ObjectNode envNode = settings.has("env") && settings.get("env").isObject()
                    ? (ObjectNode) settings.get("env") : settings.putObject("env");
            for (Map.Entry<String, String> entry : block.entrySet()) {
                if (!envNode.has(entry.getKey())) ClaudeSettings.recordInstall(manifest, envFile, "env", entry.getKey());
                envNode.put(entry.getKey(), entry.getValue());
            }
        }

        private void writeSettings(Map<Path, ObjectNode> files, ObjectNode manifest) throws IOException {
            for (Map.Entry<Path, ObjectNode> file : files.entrySet()) {
                boolean existed = Files.exists(file.getKey());
                String backup = ClaudeSettings.writeSettingsIfChanged(file.getKey(), file.getValue());
                if (backup == null) out().println("Unchanged: " + file.getKey());
                else out().println("Updated:   " + file.getKey() + (backup.isEmpty() ? " (new file)" : " (backup: " + backup + ")"));
                if (!existed && backup != null) ClaudeSettings.recordInstall(manifest, file.getKey(), "created", "file");
            }
        }

        /** The env block as written: the keys redacted, and the settings copied from this environment. */
        private void reportEnv(Map<String, String> block, Path envFile) {
            out().println("Env:       " + Setting.TRACE_TO_LANGFUSE.variable() + "=true, " + Setting.PUBLIC_KEY.variable() + "="
                    + Helpers.redactKey(block.get(Setting.PUBLIC_KEY.variable())) + ", " + Setting.SECRET_KEY.variable() + "="
                    + Helpers.describeSecret(block.get(Setting.SECRET_KEY.variable())) + ", " + Setting.BASE_URL.variable() + "="
                    + block.get(Setting.BASE_URL.variable()) + " in " + envFile);
            List<String> copied = new ArrayList<>();
            for (Setting setting : Setting.values()) {
                if (setting.install() == Setting.InstallCopy.WHEN_SET && block.containsKey(setting.installName())) copied.add(setting.installName());
            }
            if (!copied.isEmpty()) out().println("           and " + String.join(", ", copied) + " from this environment");
        }
    }

    @Command(name = "uninstall", mixinStandardHelpOptions = true,
            description = "Remove exactly what install added: its hooks, the env keys it created, the files it created, the launcher.")
    static final class Uninstall extends Subcommand {
        @Option(names = "--purge", description = "Also remove the hook's log and state (~/.claude/state/litefuse_hook.log*, ~/.claude/state/litefuse/). "
                + "A hook installed again then sends the turns of every transcript still there once more.")
        boolean purge;

        @Override
        public Integer call() throws IOException {
            Config config = config();
            Path manifestFile = config.layout().installManifest();
            ObjectNode manifest = StateFiles.loadState(manifestFile, Log.toStderr());
            if (manifest.isEmpty()) {
                out().println("Nothing to uninstall: no record of an install in " + manifestFile);
                return purge ? purgeState(config.layout()) : 0;
            }
            int status = 0;
            for (Map.Entry<String, JsonNode> entry : manifest.properties()) {
                Path file = Paths.get(entry.getKey());
                if (!Files.exists(file)) continue;
                try {
                    undo(file, ClaudeSettings.readSettings(file), entry.getValue());
                } catch (ClaudeSettings.InvalidSettingsException e) {
                    err().println(e.getMessage());
                    status = 1;
                }
            }
            Path launcher = Launcher.launcherPath(config.home());
            Files.deleteIfExists(launcher);
            for (Path companion : Launcher.launcherCompanions(launcher)) Files.deleteIfExists(companion);
            if (status == 0) Files.delete(manifestFile);
            out().println("Removed the launcher " + launcher + "." + (purge ? "" : " The log and state in " + config.layout().stateDir()
                    + " are kept (uninstall --purge removes them too)."));
            return status == 0 && purge ? purgeState(config.layout()) : status;
        }

        /** The log (both files and its lock) and the state folder; without --purge they stay, so that a new install sends nothing twice. */
        private int purgeState(StateLayout layout) throws IOException {
            for (Path file : List.of(layout.log(), layout.previousLog(), layout.logLock())) Files.deleteIfExists(file);
            Helpers.deleteTree(layout.sessions());
            out().println("Removed the log and the state in " + layout.stateDir() + ".");
            return Files.exists(layout.sessions()) ? 1 : 0;
        }

        /** Takes out of one settings file what the manifest says install added to it; deletes it if install created it and it is now empty. */
        private void undo(Path file, ObjectNode settings, JsonNode added) throws IOException {
            for (JsonNode command : added.path("hook")) {
                for (String event : ClaudeSettings.HOOK_EVENTS) ClaudeSettings.removeHook(settings, event, command.asText());
            }
            if (settings.path("env") instanceof ObjectNode envObject) {
                for (JsonNode key : added.path("env")) envObject.remove(key.asText());
                if (envObject.isEmpty()) settings.remove("env");
            }
            boolean createdFile = added.path("created").toString().contains("file");
            if (createdFile && settings.isEmpty()) {
                Files.delete(file);
                out().println("Removed:   " + file + " (install created it)");
            } else {
                String backup = ClaudeSettings.writeSettingsIfChanged(file, settings);
                out().println((backup == null ? "Unchanged: " : "Updated:   ") + file
                        + (backup == null || backup.isEmpty() ? "" : " (backup: " + backup + ")"));
            }
        }
    }

    @Command(name = "doctor", mixinStandardHelpOptions = true,
            description = "Check the install end to end and say what is wrong; exit 0 when it works (WARN lines say what to look at), 1 on any FAIL.")
    static final class Doctor extends Subcommand {
        @Option(names = "--send-test", description = "Also send a canary trace and print where to find it in Langfuse.")
        boolean sendTest;

        @Mixin
        ProjectDir projectDir;

        /** How a check came out: WARN is working, with something to look at; FAIL is not working. */
        enum Level {
            OK("ok"), WARN("WARN"), FAIL("FAIL");

            final String shown;

            Level(String shown) {
                this.shown = shown;
            }
        }

        /** One line of the report. */
        record Check(Level level, String label, String detail) {
            Check(boolean ok, String label, String detail) {
                this(ok ? Level.OK : Level.FAIL, label, detail);
            }

            static Check warn(String label, String detail) {
                return new Check(Level.WARN, label, detail);
            }

            boolean ok() {
                return level != Level.FAIL;
            }

            String render() {
                return String.format(Locale.ROOT, "  %-6s%s: %s", level.shown, label, detail);
            }
        }

        @Override
        public Integer call() throws IOException {
            Map<String, String> processEnv = parent.environment;
            Path home = config().home();
            Path dir = projectDir.resolve();
            List<Check> checks = new ArrayList<>();
            out().println("litefuse-hook " + VERSION + " doctor (project " + dir + ")");
            Runtime.Version javaVersion = Runtime.version();
            checks.add(new Check(javaVersion.feature() >= 17, "Java", javaVersion + " at " + System.getProperty("java.home")));
            Map<String, String> sources = new HashMap<>();
            Map<String, String> env;
            try {
                String plugin = ClaudeSettings.enabledPlugin(home, dir);
                ClaudeSettings.InstalledPlugin installed = plugin == null ? null : ClaudeSettings.installedPlugin(home, plugin);
                checks.add(jbangCheck(processEnv, home, plugin, installed));
                checks.add(hookCheck(home, dir, plugin, installed));
                env = ClaudeSettings.effectiveEnv(processEnv, home, dir, sources);
            } catch (ClaudeSettings.InvalidSettingsException e) {
                checks.add(new Check(false, "Settings", e.getMessage()));
                return report(out(), checks);
            }
            Config config = Config.loadConfig(env);
            for (String problem : config.problems()) checks.add(new Check(false, "Setting", problem));
            checks.addAll(secretFileChecks(home, dir));
            boolean enabled = config.enabled();
            String onBecause = env.containsKey(Setting.TRACE_TO_LANGFUSE.variable())
                    ? "true (from " + sources.get(Setting.TRACE_TO_LANGFUSE.variable()) + ")"
                    : "on: the plugin has keys (TRACE_TO_LANGFUSE=false in a project's env turns it off there)";
            checks.add(new Check(enabled, "TRACE_TO_LANGFUSE", enabled ? onBecause
                    : "not \"true\" here, so the hook does nothing in this project; run litefuse-hook install"));
            checks.add(keysCheck(config, env, sources));
            checks.addAll(networkChecks(config));
            LangfuseApi.CredentialCheck credentials = null;
            if (config.langfuse().hasKeys()) {
                credentials = LangfuseApi.checkCredentials(config);
                if (credentials.ok() && !credentials.projectId().isEmpty()) LangfuseApi.rememberProjectId(config, credentials.projectId(), Log.toStderr());
                checks.add(new Check(credentials.ok(), "Langfuse", credentials.ok()
                        ? "authenticated at " + config.langfuse().baseUrl() + ", project \"" + credentials.projectName() + "\" (" + credentials.projectId() + ")"
                        : credentials.problem()));
            }
            if (config.export().otlpEndpoint() != null) {
                checks.add(new Check(true, "OTLP endpoint", config.tracesEndpoint() + " (from OTEL_EXPORTER_OTLP_*), headers "
                        + config.export().otlpHeaders().keySet()));
            }
            checks.addAll(stateChecks(config));
            if (sendTest) {
                TraceModel.TraceRecord canary = Traces.canaryTrace(config.trace(), Instant.now());
                Check sent = sendCanary(config, credentials, canary);
                checks.add(sent);
                if (sent.ok()) checks.add(canaryVisible(config, canary));
            }
            return report(out(), checks);
        }

        static int report(java.io.PrintWriter out, List<Check> checks) {
            checks.forEach(check -> out.println(check.render()));
            long failed = checks.stream().filter(check -> check.level() == Level.FAIL).count();
            long warned = checks.stream().filter(check -> check.level() == Level.WARN).count();
            out.println(failed > 0 ? failed + " problem(s) found."
                    : warned > 0 ? "Working, with " + warned + " warning(s)." : "All is well.");
            out.flush();
            return failed == 0 ? 0 : 1;
        }

        /**
         * JBang: needed until the hook's fast path is built (and again after an update). Missing where a fast path runs
         * the hook already is a warning; missing before that, the hook cannot run.
         */
        private static Check jbangCheck(Map<String, String> processEnv, Path home, String plugin, ClaudeSettings.InstalledPlugin installed) {
            String jbang = Launcher.findJBang(processEnv, home);
            if (jbang != null) return new Check(true, "JBang", jbang);
            String bootstrap = (installed != null ? installed.path().toString() : "<the repository>") + "/hooks/jbang --bootstrap";
            String missing = "not found on PATH or in ~/.jbang/bin; install it (curl -Ls https://sh.jbang.dev | bash -s - app setup) "
                    + "or take it from Maven Central: " + bootstrap;
            boolean fastPath = plugin != null ? Files.isExecutable(pluginFastPath(home, plugin))
                    : Files.isExecutable(Launcher.launcherPath(home));
            return fastPath ? Check.warn("JBang", missing + " (the hook's fast path runs without it; an update needs it)")
                    : new Check(false, "JBang", missing);
        }

        private static Path pluginFastPath(Path home, String plugin) {
            return home.resolve(".claude/plugins/data/" + plugin.replace('@', '-')).resolve("litefuse-hook");
        }

        /** A settings file that holds a secret key and that other users can read. */
        /** The way to Langfuse when a proxy or TLS setting shapes it: which proxy, what was added to the trust, what could not be read. */
        private static List<Check> networkChecks(Config config) {
            List<Check> checks = new ArrayList<>();
            java.net.URI endpoint = java.net.URI.create(config.tracesEndpoint());
            Network.ProxyServer proxy = config.network().proxyFor(endpoint);
            if (proxy != null) checks.add(new Check(true, "Proxy", "to " + endpoint.getHost() + " through " + proxy.shown() + " (" + proxy.setting() + ")"));
            Network.Tls tls = config.network().tls();
            if (!tls.added().isEmpty()) checks.add(new Check(true, "TLS", "the JDK's trust, and " + String.join(", ", tls.added())));
            for (String problem : tls.problems()) checks.add(new Check(false, "TLS", problem));
            return checks;
        }

        private static List<Check> secretFileChecks(Path home, Path dir) throws IOException {
            List<Check> checks = new ArrayList<>();
            for (ClaudeSettings.Scope scope : ClaudeSettings.Scope.values()) {
                Path file = scope.settingsFile(home, dir);
                if (Files.exists(file) && ClaudeSettings.holdsSecret(ClaudeSettings.readSettings(file)) && ClaudeSettings.readableByOthers(file)) {
                    checks.add(new Check(false, "Secret", file + " holds a secret key and other users can read it ("
                            + PosixFilePermissions.toString(Files.getPosixFilePermissions(file)) + "); run: chmod 600 " + file));
                }
            }
            return checks;
        }

        /** Which keys the hook gets here and where each came from; of the secret only its length. What is missing otherwise. */
        private static Check keysCheck(Config config, Map<String, String> env, Map<String, String> sources) {
            Config.Langfuse langfuse = config.langfuse();
            String publicKey = langfuse.publicKey() == null ? "public key missing"
                    : "public key " + Helpers.redactKey(langfuse.publicKey()) + " (from " + sources.get(Setting.PUBLIC_KEY.sourceIn(env)) + ")";
            String secretKey = langfuse.secretKey() == null ? "secret key missing"
                    : "secret key " + Helpers.describeSecret(langfuse.secretKey()) + " (from " + sources.get(Setting.SECRET_KEY.sourceIn(env)) + ")";
            return new Check(config.canExport(), "Keys", langfuse.hasKeys() ? publicKey + "; " + secretKey
                    : config.canExport() ? "none; traces go to " + config.tracesEndpoint() + " (OTEL_EXPORTER_OTLP_*)"
                    : publicKey + "; " + secretKey);
        }

        /**
         * Where the hook is registered: settings files (from `install` or by hand), the plugin, or both (then every
         * Stop runs it twice: each turn is still sent once, but one of them should go).
         */
        private static Check hookCheck(Path home, Path dir, String plugin, ClaudeSettings.InstalledPlugin installed) throws IOException {
            List<String> found = new ArrayList<>();
            Set<String> events = new LinkedHashSet<>();
            Check launcherProblem = null;
            for (ClaudeSettings.Scope scope : ClaudeSettings.Scope.values()) {
                Path file = scope.settingsFile(home, dir);
                JsonNode hooks = ClaudeSettings.readSettings(file).path("hooks");
                for (String event : ClaudeSettings.HOOK_EVENTS) {
                    for (JsonNode group : hooks.path(event)) {
                        for (JsonNode hook : group.path("hooks")) {
                            String command = hook.path("command").asText("");
                            if (!command.contains("litefuse")) continue;
                            events.add(event);
                            String where = command + " in " + file;
                            if (!found.contains(where)) found.add(where);
                            if (command.equals(Launcher.HOOK_COMMAND)) launcherProblem = launcherCheck(Launcher.launcherPath(home));
                        }
                    }
                }
            }
            if (plugin != null && !found.isEmpty()) {
                return new Check(false, "Hooks", "registered twice: by the plugin " + plugin + " and as " + String.join("; ", found)
                        + ". Each turn is still sent once, but every Stop runs the hook twice: keep one (`litefuse-hook uninstall`, "
                        + "or `claude plugin uninstall " + plugin + "`)");
            }
            if (plugin != null) {
                Path fastPath = pluginFastPath(home, plugin);
                String by = "Stop and SessionEnd by the plugin " + plugin + (installed == null ? "" : " " + installed.version() + " at " + installed.path())
                        + (Files.isExecutable(fastPath) ? ", fast path " + fastPath : "; its first firings run through JBang while the fast path is built");
                if (installed != null && !installed.version().equals(VERSION)) {
                    return Check.warn("Hooks", by + ". This doctor is " + VERSION + ", not the installed copy: run "
                            + installed.path().resolve("hooks/litefuse-hook") + " doctor");
                }
                return new Check(true, "Hooks", by);
            }
            if (found.isEmpty()) {
                return new Check(false, "Hooks", "not registered: install the plugin (`claude plugin install litefuse-hook@litefuse`) "
                        + "or run litefuse-hook install");
            }
            if (launcherProblem != null && !launcherProblem.ok()) return launcherProblem;
            if (!events.contains("SessionEnd")) {
                return new Check(false, "Hooks", "Stop only (" + String.join("; ", found) + "); run litefuse-hook install again "
                        + "to add SessionEnd, which sends a session's last turn when the session ends");
            }
            return new Check(true, "Hooks", String.join(", ", events) + ": " + String.join("; ", found));
        }

        private static Check launcherCheck(Path launcher) throws IOException {
            if (!Files.isExecutable(launcher)) {
                return new Check(false, "Hooks", launcher + " is missing or not executable; run litefuse-hook install again");
            }
            List<Path> missing = Launcher.launcherClassPath(launcher).stream().filter(jar -> !Files.exists(jar)).toList();
            if (!missing.isEmpty()) {
                return new Check(false, "Hooks", "the launcher's build is gone (" + missing.get(0)
                        + "); it falls back to JBang, which is slower: run litefuse-hook install again");
            }
            return new Check(true, "Hooks", launcher.toString());
        }

        /** The hook's last run, its last error (settled once a later run sent turns), the sessions waiting, from RunRecord and the spool. */
        private static List<Check> stateChecks(Config config) throws IOException {
            List<Check> checks = new ArrayList<>();
            StateLayout layout = config.layout();
            RunRecord lastRun = RunRecord.read(layout, RunRecord.Kind.RUN);
            checks.add(new Check(true, "Last run", lastRun == null ? "none yet (send a message in Claude Code)" : lastRun.describe()));
            RunRecord lastError = RunRecord.read(layout, RunRecord.Kind.ERROR);
            if (lastError != null) {
                RunRecord lastSent = RunRecord.read(layout, RunRecord.Kind.SENT);
                boolean settled = lastSent != null && lastSent.atMillis() > lastError.atMillis();
                checks.add(new Check(settled ? Level.OK : Level.WARN, "Last error", Log.timestamp(lastError.atMillis()) + ": " + lastError.error()
                        + (settled ? " (settled: a later run sent turns)" : " (the next firing retries what it could not send)")));
            }
            long waiting = new Spool(layout, Log.toStderr()).count();
            checks.add(new Check(waiting == 0 ? Level.OK : Level.WARN, "Waiting", waiting == 0 ? "no turns waiting to be re-sent"
                    : waiting + " session(s) with turns waiting to be re-sent (the next hook run retries them)"));
            for (Prices.Check cost : Prices.lastChecks(layout.costChecks(), Log.toStderr())) {
                checks.add(new Check(true, "Cost", String.format(Locale.ROOT, "session %s: Claude Code counts $%.6f, its generations"
                        + " carried $%.6f as sent%s", cost.sessionId(), cost.claudeCodeUsd(), cost.sentUsd(), cost.agrees() ? "" : " (they differ)")));
            }
            if (lastRun != null && lastRun.deferred()) {
                checks.add(new Check(true, "Deferred", "the last run held back 1 turn in progress; the next firing re-checks it"));
            }
            return checks;
        }

        private static Check sendCanary(Config config, LangfuseApi.CredentialCheck credentials, TraceModel.TraceRecord canary) {
            if (!config.canExport()) return new Check(false, "Test trace", "not sent: no keys");
            try (Export.TraceExporter exporter = Export.TraceExporter.forLangfuse(config, Log.toStderr(), MemoryMode.IMMUTABLE_DATA)) {
                Export.ExportOutcome outcome = exporter.export(List.of(canary), System.nanoTime() + TimeUnit.SECONDS.toNanos(15));
                if (outcome.acknowledged() != 1) return new Check(false, "Test trace", "not accepted: " + outcome.failure());
            }
            String where = credentials != null && credentials.ok() && !credentials.projectId().isEmpty()
                    ? LangfuseApi.of(config).traceUrl(credentials.projectId(), canary.traceId())
                    : config.tracesEndpoint() + " accepted trace " + canary.traceId();
            return new Check(true, "Test trace", "sent \"" + canary.name() + "\": " + where);
        }

        private static final Duration CANARY_WAIT = Duration.ofSeconds(15);

        /** Polls Langfuse's v2 observations API (real time in v4) until the canary shows up, for a few seconds. */
        private static Check canaryVisible(Config config, TraceModel.TraceRecord canary) {
            LangfuseApi api = LangfuseApi.of(config);
            if (api == null) return new Check(true, "Real time", "not checked: no keys to ask Langfuse with");
            long started = System.nanoTime();
            long deadline = started + CANARY_WAIT.toNanos();
            TraceModel.Observation root = canary.root();
            while (true) {
                LangfuseApi.Lookup lookup = api.findSpan(canary.traceId(), root.id(), root.start(), deadline);
                double seconds = (System.nanoTime() - started) / 1e9;
                switch (lookup.presence()) {
                    case PRESENT:
                        return new Check(true, "Real time", String.format(Locale.ROOT,
                                "visible in Langfuse after %.1f s (Langfuse v4's real-time path)", seconds));
                    case NO_API:
                        return new Check(true, "Real time", "the server predates Langfuse v4 (no v2 observations API): "
                                + "traces show up as they always did");
                    case UNKNOWN:
                        return Check.warn("Real time", "could not ask Langfuse whether the test trace arrived: " + lookup.problem());
                    default:
                        break;
                }
                if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500) >= deadline) {
                    return Check.warn("Real time", "the test trace was accepted but is not in Langfuse's v2 observations API after "
                            + CANARY_WAIT.toSeconds() + " s: the server took it on its legacy path (it shows up within about 10 "
                            + "minutes) or its ingestion is backed up; check that no proxy drops the " + Config.INGESTION_VERSION_HEADER + " header");
                }
                Helpers.sleepQuietly(500);
            }
        }
    }

    @Command(name = "last", mixinStandardHelpOptions = true,
            description = "Print the Langfuse link of the newest trace the hook sent from this project (opens nothing).")
    static final class Last extends Subcommand {
        @Mixin
        ProjectDir projectDir;

        @Override
        public Integer call() throws IOException {
            Path dir = projectDir.resolve();
            Config config = Config.loadConfig(ClaudeSettings.effectiveEnv(parent.environment, config().home(), dir, new HashMap<>()));
            String folder = ClaudeSettings.claudeProjectFolder(dir);
            Progress.SessionState newest = null;
            String newestSession = null;
            Path states = config.layout().sessions();
            if (Files.isDirectory(states)) {
                try (java.util.stream.Stream<Path> files = Files.list(states)) {
                    for (Path file : files.filter(StateLayout::isState).toList()) {
                        ObjectNode saved = StateFiles.loadState(file, Log.toStderr());
                        Path transcript = Paths.get(saved.path("transcript_path").asText("/"));
                        Progress.SessionState state = Progress.loadSessionState(saved);
                        if (state.openTurn() == null || transcript.getParent() == null
                                || !transcript.getParent().getFileName().toString().equals(folder)) continue;
                        if (newest == null || state.openTurn().sentAt().isAfter(newest.openTurn().sentAt())) {
                            newest = state;
                            newestSession = saved.path("session_id").asText("?");
                        }
                    }
                }
            }
            if (newest == null) {
                err().println("No trace sent from " + dir + " yet (the hook keeps what it sent in " + states + ")");
                RunRecord lastRun = RunRecord.read(config.layout(), RunRecord.Kind.RUN);
                if (lastRun != null) {
                    err().println("The hook's last run, in any project: " + lastRun.describe()
                            + (lastRun.error() == null ? "" : "; its error: " + lastRun.error()));
                }
                return 1;
            }
            Progress.SentTurn turn = newest.openTurn();
            LangfuseApi api = LangfuseApi.of(config);
            String projectId = api == null ? null : LangfuseApi.projectId(config, api, 3_000, Log.toStderr());
            out().println(api == null ? turn.traceId() : api.traceUrl(projectId, turn.traceId()));
            err().println("Claude Code - Turn " + turn.turnNumber() + " of session " + newestSession + ", sent " + turn.sentAt());
            return 0;
        }
    }

}
