import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SKILL.md run as an agent runs it: its shell blocks in order, each in bash, with only the values its first block asks
 * for filled in (a clone as the repository, the receiver as the host, the keys), in a temporary HOME with no JBang,
 * every `claude` inside the loopback-only namespace, JBang's own installer unable to download (no network there) and
 * Maven Central played by a loopback mirror. The end state is what a user needs: the plugin installed and configured,
 * JBang where the hook finds it, doctor exit 0, the canary received, and the secret in no block's output.
 */
class SkillTest {
    /** One ```bash block of SKILL.md and the heading it is under. */
    record Block(String section, String script) {
    }

    static List<Block> shellBlocks(String markdown) {
        List<Block> blocks = new ArrayList<>();
        String section = "";
        StringBuilder script = null;
        for (String line : markdown.split("\n", -1)) {
            if (script != null) {
                if (line.equals("```")) {
                    blocks.add(new Block(section, script.toString()));
                    script = null;
                } else {
                    script.append(line).append('\n');
                }
            } else if (line.startsWith("## ")) {
                section = line.substring(3);
            } else if (line.equals("```bash")) {
                script = new StringBuilder();
            }
        }
        return blocks;
    }

    /** The values block with the agent's values in place of its placeholders; fails when a placeholder is gone. */
    static String filledIn(String values, Path repository) {
        String filled = values;
        for (String[] value : new String[][]{{"'<owner>/<repo>'", "'" + repository + "'"}, {"'pk-lf-...'", "'" + TestSupport.PUBLIC_KEY + "'"},
                {"'https://cloud.langfuse.com'", "'${OTLP_URL}'"}}) {
            assertTrue(filled.contains(value[0]), "SKILL.md's values block asks for " + value[0] + ":\n" + values);
            filled = filled.replace(value[0], value[1]);
        }
        return filled;
    }

    @Test
    void anAgentFollowingSkillMdInstallsAWorkingPlugin() throws Exception {
        Path bootstrapped = Path.of(System.getenv().getOrDefault("LITEFUSE_JBANG_HOME", Path.of(System.getenv().getOrDefault("XDG_CACHE_HOME",
                System.getProperty("user.home") + "/.cache"), "litefuse-hook", "jbang-0.132.1").toString()), "lib");
        Assumptions.assumeTrue(Files.isRegularFile(bootstrapped.resolve("jbang-cli-0.132.1.jar")),
                "no JBang jars to mirror Maven Central with (" + bootstrapped + "): .ci/run bootstraps them");
        Path repository = RealClientTest.repositoryAsCloned();
        List<Block> blocks = shellBlocks(Files.readString(RealClientTest.repository().resolve("SKILL.md")));
        assertTrue(blocks.size() >= 6, "SKILL.md's shell blocks: " + blocks.size());
        String m2 = System.getenv().getOrDefault("JBANG_REPO", System.getProperty("user.home") + "/.m2/repository");
        RealClient.Scenario scenario = RealClient.scenario()
                .mavenMirror(bootstrapped)
                .executable("bin/claude", "#!/bin/sh\nexec '${CLAUDE}' \"$@\"\n")
                .env("PATH", "${WORK}/bin:" + Path.of(System.getProperty("java.home"), "bin") + ":/usr/local/bin:/usr/bin:/bin")
                // Where the script's own dependencies come from (nothing can be downloaded in the namespace).
                .env("JBANG_REPO", m2)
                .env("LITEFUSE_JBANG_HOME", "${WORK}/jbang")
                .env("LITEFUSE_MAVEN_REPO", "${MAVEN_URL}")
                .exec("bash", "-c", "! command -v jbang && ! test -e \"$HOME/.jbang\"");
        List<String> sections = new ArrayList<>();
        for (int i = 0; i < blocks.size(); i++) {
            Block block = blocks.get(i);
            String script = i == 0 ? filledIn(block.script(), repository) : block.script();
            scenario.exec("bash", "-c", script);
            sections.add(block.section());
            if (script.contains("umask 077") && script.contains("litefuse-secret")) {
                // The user pastes the secret into the file the agent made (the agent never sees it).
                com.fasterxml.jackson.databind.node.ObjectNode paste = RealClient.JSON.createObjectNode().put("stdin", TestSupport.SECRET_KEY + "\n");
                paste.putArray("exec").add("sh").add("-c").add("cat >> \"$HOME/.claude/litefuse-secret\"");
                scenario.step(paste);
            }
        }
        RealClient.Result result = scenario.waitForSpans(1, 20_000).run();
        RealClientTest.keep(result, "skill");
        StringBuilder transcript = new StringBuilder();
        int step = 1;
        for (int i = 0; i < blocks.size(); i++, step++) {
            transcript.append("## ").append(sections.get(i)).append(" (exit ").append(result.exitCode(step)).append(")\n")
                    .append(result.stdout(step)).append(result.stderr(step));
            if (blocks.get(i).script().contains("umask 077")) step++;
        }
        String shown = transcript.toString();
        System.out.println("SKILL.md as run:\n" + shown);
        for (int i = 0; i < result.json().path("steps").size(); i++) assertEquals(0, result.exitCode(i), "step " + i + ":\n" + shown);
        assertFalse(shown.contains(TestSupport.SECRET_KEY), "the secret in a block's output");
        // Each step's own check, as SKILL.md tells the agent to read it.
        assertTrue(shown.contains("\u276F litefuse-hook@litefuse"), "the plugin listed: " + shown);
        for (String option : List.of("public_key", "secret_key", "base_url")) {
            assertTrue(shown.matches("(?s).*" + option + " \u2014 [^\n]*set\\)\n.*"), option + " set: " + shown);
        }
        assertTrue(shown.contains("(0.132.1), bootstrapped from http://127.0.0.1:"), "JBang from the mirror: " + shown);
        assertTrue(shown.contains("All is well.") || shown.contains("Working, with"), shown);
        assertTrue(shown.contains("bootstrapping JBang 0.132.1 from http://127.0.0.1:"), shown);
        assertTrue(result.json().path("mavenFilesServed").asInt() >= 50, "JBang came from the mirror: " + result.json().path("mavenFilesServed"));
        Path home = result.home();
        assertTrue(Files.isExecutable(home.resolve(".jbang/bin/jbang")), "JBang where the hook looks for it");
        assertFalse(Files.exists(home.resolve(".claude/litefuse-secret")), "the secret file is gone");
        JsonNode settings = RealClient.JSON.readTree(home.resolve(".claude/settings.json").toFile());
        assertTrue(settings.path("enabledPlugins").path("litefuse-hook@litefuse").asBoolean(), settings.toString());
        assertEquals(TestSupport.PUBLIC_KEY, settings.path("pluginConfigs").path("litefuse-hook@litefuse").path("options").path("public_key").asText(),
                settings.toString());
        assertFalse(settings.toString().contains(TestSupport.SECRET_KEY), "the secret is not in settings.json");
        assertTrue(Files.readString(home.resolve(".claude/.credentials.json")).contains(TestSupport.SECRET_KEY), "Claude Code keeps the secret");
        assertEquals(1, result.roots().stream().filter(root -> root.path("name").asText().contains("canary")).count(),
                "doctor's canary reached the receiver");
    }
}
