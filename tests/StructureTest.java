import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The script's shape, as its README promises it: sections (nested types) that each use only the sections above them,
 * none past 15% of the file, no method past 60 lines; and every setting declared once (litefuse_hook.Setting), with
 * plugin.json, the plugin's hook script and the README agreeing with that table.
 */
public class StructureTest {
    /** A section: a type nested directly in the top-level class, from its first line to its closing brace. */
    record Section(String name, int first, int last) {
    }

    static List<String> code;
    static List<Section> sections;

    @BeforeAll
    static void readScript() throws IOException {
        String source = Files.readString(TestSupport.testsDir().getParent().resolve("litefuse_hook.java"));
        code = List.of(withoutCommentsAndStrings(source).split("\n", -1));
        sections = new ArrayList<>();
        Pattern declaration = Pattern.compile("^    (?:public )?(?:abstract )?(?:static )?(?:final )?(?:record|class|enum|interface) (\\w+)");
        for (int i = 0; i < code.size(); i++) {
            Matcher matcher = declaration.matcher(code.get(i));
            if (!matcher.find()) continue;
            int last = i;
            while (!code.get(last).startsWith("    }")) last++;
            sections.add(new Section(matcher.group(1), i, last));
        }
    }

    /** The source with comments blanked (lines kept) and string and char literals emptied: names in them are not uses. */
    static String withoutCommentsAndStrings(String source) {
        String text = Pattern.compile("/\\*.*?\\*/", Pattern.DOTALL).matcher(source)
                .replaceAll(m -> "\n".repeat((int) m.group().chars().filter(c -> c == '\n').count()));
        text = text.replaceAll("//[^\\n]*", "");
        text = text.replaceAll("\"(?:[^\"\\\\\\n]|\\\\.)*\"", "\"\"");
        return text.replaceAll("'(?:[^'\\\\\\n]|\\\\.)'", "''");
    }

    @Test
    void everyTestClassRunsInTheSuite() throws IOException {
        // A test class left out of TestAll.SUITE compiles and never runs: CI would not see it fail.
        Set<String> classes = new java.util.TreeSet<>();
        try (var files = Files.list(TestSupport.testsDir())) {
            files.map(f -> f.getFileName().toString()).filter(n -> n.endsWith("Test.java")).forEach(n -> classes.add(n.substring(0, n.length() - 5)));
        }
        Set<String> suite = new java.util.TreeSet<>();
        TestAll.SUITE.forEach(c -> suite.add(c.getSimpleName()));
        assertEquals(classes, suite);
    }

    @Test
    void eachSectionUsesOnlyTheSectionsAboveIt() {
        assertTrue(sections.size() > 20, "sections found: " + sections);
        List<String> violations = new ArrayList<>();
        for (int s = 0; s < sections.size(); s++) {
            String body = String.join("\n", code.subList(sections.get(s).first(), sections.get(s).last() + 1));
            for (int later = s + 1; later < sections.size(); later++) {
                String name = sections.get(later).name();
                if (Pattern.compile("(?<![\\w.])" + name + "\\b").matcher(body).find()) {
                    violations.add(sections.get(s).name() + " uses " + name + ", which comes after it");
                }
            }
        }
        assertEquals(List.of(), violations);
    }

    @Test
    void noSectionTakesMoreThanFifteenPercentOfTheFile() {
        Map<String, Integer> tooBig = new LinkedHashMap<>();
        for (Section section : sections) {
            int lines = section.last() - section.first() + 1;
            if (lines > code.size() * 0.15) tooBig.put(section.name(), lines);
        }
        assertEquals(Map.of(), tooBig, "of " + code.size() + " lines");
    }

    @Test
    void noMethodIsLongerThanSixtyLines() {
        Pattern method = Pattern.compile("^\\s+(?:(?:public|private|protected|static|final|abstract|synchronized|default)\\s+)*"
                + "(?:<[^>]+>\\s+)?[\\w<>\\[\\],.? ]+\\s+(\\w+)\\s*\\([^;]*$");
        Pattern statement = Pattern.compile("^\\s+(?:if|for|while|switch|return|new|else|catch|try|throw)\\b");
        Map<String, Integer> tooLong = new LinkedHashMap<>();
        for (int i = 0; i < code.size(); i++) {
            Matcher matcher = method.matcher(code.get(i));
            if (!matcher.find() || statement.matcher(code.get(i)).find() || code.get(i).matches(".*\\b(class|record|enum|interface)\\b.*")) continue;
            int depth = 0;
            boolean opened = false;
            int end = i;
            for (; end < code.size(); end++) {
                for (char c : code.get(end).toCharArray()) {
                    if (c == '{') {
                        depth++;
                        opened = true;
                    } else if (c == '}') {
                        depth--;
                    }
                }
                if (opened && depth == 0 || !opened && code.get(end).strip().endsWith(";")) break;
            }
            if (opened && end - i + 1 > 60) tooLong.put(matcher.group(1) + " (line " + (i + 1) + ")", end - i + 1);
        }
        assertEquals(Map.of(), tooLong);
    }

    @Test
    void pluginOptionsAreTheSettingsTablesOptions() throws IOException {
        JsonNode userConfig = TestSupport.JSON.readTree(TestSupport.testsDir().getParent().resolve(".claude-plugin/plugin.json").toFile())
                .path("userConfig");
        Set<String> declared = new HashSet<>();
        userConfig.fieldNames().forEachRemaining(declared::add);
        Set<String> table = new HashSet<>();
        for (litefuse_hook.Setting setting : litefuse_hook.Setting.values()) {
            if (setting.pluginOption() == null) continue;
            table.add(setting.pluginOption());
            assertEquals(setting.secret(), userConfig.path(setting.pluginOption()).path("sensitive").asBoolean(false),
                    setting.pluginOption() + ": sensitive exactly when the setting holds a secret");
        }
        assertEquals(table, declared);
    }

    @Test
    void thePluginsHookScriptGatesOnTheSameVariablesAsTheLauncher() throws IOException {
        String script = Files.readString(TestSupport.testsDir().getParent().resolve("hooks/litefuse-hook"));
        String gate = "case \"$" + litefuse_hook.Setting.TRACE_TO_LANGFUSE.variable() + "\" in [Tt][Rr][Uu][Ee]) ;; '') [ -n \"$"
                + litefuse_hook.Setting.PUBLIC_KEY.pluginVariable() + "\" ] || exit 0 ;; *) exit 0 ;; esac";
        assertTrue(script.contains(gate), "hooks/litefuse-hook: " + gate);
        String launcher = litefuse_hook.Launcher.launcherScript(new litefuse_hook.Launcher.JavaRuntime(java.nio.file.Paths.get("java"), 17),
                "a.jar", java.nio.file.Paths.get("a.jsa"), null, null);
        assertTrue(launcher.contains(gate), "the launcher: " + gate);
    }

    @Test
    void theReadmeDocumentsEverySetting() throws IOException {
        String readme = Files.readString(TestSupport.testsDir().getParent().resolve("README.md"));
        int start = readme.indexOf("### Environment variables");
        assertTrue(start >= 0, "README.md has a table of environment variables");
        String table = readme.substring(start, readme.indexOf("\n## ", start));
        List<String> missing = new ArrayList<>();
        for (litefuse_hook.Setting setting : litefuse_hook.Setting.values()) {
            for (String name : setting.names()) {
                if (!name.equals(setting.pluginVariable()) && !table.contains("`" + name + "`")) missing.add(name);
            }
        }
        assertEquals(List.of(), missing, "README.md's table of environment variables");
    }
}
