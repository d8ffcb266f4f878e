import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every litefuse-hook command that README.md and SKILL.md name parses: its subcommand and options exist. */
public class DocsTest {
    static final Pattern INVOCATION = Pattern.compile(
            "^(?:\\w+='[^']*' |\\w+=\\S+ )*(?:~/\\.jbang/bin/|\\$HOME/\\.jbang/bin/)?(?:litefuse-hook|\"\\$PLUGIN_DIR/hooks/litefuse-hook\"|(?:\\.ci/)?jbang litefuse_hook\\.java|jbang litefuse-hook@\\S+)((?: [^#<]*)?)(?: < \\S+)?$");
    static final Pattern INLINE_CODE = Pattern.compile("`([^`]+)`");

    /** The argument lists of litefuse-hook commands in fenced code blocks and inline code spans. */
    static Set<String> invocations(Path doc) throws IOException {
        List<String> code = new ArrayList<>();
        boolean fenced = false;
        for (String line : Files.readAllLines(doc)) {
            if (line.strip().startsWith("```")) {
                fenced = !fenced;
                continue;
            }
            if (fenced) code.add(line.strip());
            else {
                Matcher inline = INLINE_CODE.matcher(line);
                while (inline.find()) code.add(inline.group(1).strip());
            }
        }
        Set<String> found = new LinkedHashSet<>();
        for (String snippet : code) {
            Matcher matcher = INVOCATION.matcher(snippet.replaceFirst("\\s+#.*$", ""));
            if (matcher.matches()) found.add(matcher.group(1).strip());
        }
        return found;
    }

    static List<String> tokens(String args) {
        List<String> tokens = new ArrayList<>();
        Matcher matcher = Pattern.compile("'([^']*)'|\"([^\"]*)\"|(\\S+)").matcher(args);
        while (matcher.find()) {
            tokens.add(matcher.group(1) != null ? matcher.group(1) : matcher.group(2) != null ? matcher.group(2) : matcher.group(3));
        }
        return tokens;
    }

    @TestFactory
    Stream<DynamicTest> documentedCommandsParse() throws IOException {
        Path root = TestSupport.testsDir().getParent();
        List<DynamicTest> tests = new ArrayList<>();
        for (String doc : List.of("README.md", "SKILL.md")) {
            Set<String> commands = invocations(root.resolve(doc));
            assertFalse(commands.isEmpty(), doc + " names commands");
            for (String args : commands) {
                tests.add(DynamicTest.dynamicTest(doc + ": litefuse-hook " + args, () -> {
                    CommandLine cli = new CommandLine(new litefuse_hook(java.util.Map.of()));
                    CommandLine.ParseResult parsed = cli.parseArgs(tokens(args).toArray(String[]::new));
                    if (!args.isEmpty() && !args.startsWith("-")) {
                        assertTrue(parsed.hasSubcommand(), "a subcommand: " + args);
                    }
                }));
            }
        }
        return tests.stream();
    }

    @Test
    void skillHasAnthropicFrontmatter() throws IOException {
        List<String> lines = Files.readAllLines(TestSupport.testsDir().getParent().resolve("SKILL.md"));
        assertTrue(lines.get(0).equals("---"));
        int end = lines.subList(1, lines.size()).indexOf("---") + 1;
        assertTrue(end > 1, "frontmatter closes");
        List<String> front = lines.subList(1, end);
        assertTrue(front.stream().anyMatch(l -> l.matches("name: [a-z0-9-]+")), "name");
        assertTrue(front.stream().anyMatch(l -> l.startsWith("description: ") && l.length() > 40), "description");
    }
}
