///usr/bin/env jbang "$0" "$@" ; exit $?
//JAVA 17+
//SOURCES ../litefuse_hook.java
//SOURCES OtlpReceiver.java
//SOURCES TestSupport.java
//SOURCES ReceiverFixture.java
//SOURCES ReplayTest.java
//SOURCES HookTest.java
//SOURCES WireTest.java
//SOURCES FaultTest.java
//SOURCES ConcurrencyTest.java
//SOURCES BadInputTest.java
//SOURCES TranscriptChangeTest.java
//SOURCES SecretsTest.java
//SOURCES InstallTest.java
//SOURCES DocsTest.java
//SOURCES StructureTest.java
//SOURCES SubagentTest.java
//SOURCES BackfillTest.java
//SOURCES MockAnthropic.java
//SOURCES RealClient.java
//SOURCES RealClientScenario.java
//SOURCES RealClientProbeTest.java
//SOURCES RealClientTest.java
//SOURCES RealClientInputTest.java
//SOURCES GenerationInputTest.java
//SOURCES RealClientAgentsTest.java
//SOURCES BackgroundWorkTest.java
//SOURCES NetworkTest.java
//SOURCES TestCa.java
//SOURCES ConnectProxy.java
//SOURCES DeliveryTest.java
//SOURCES PricesTest.java
//SOURCES SkillTest.java
//SOURCES HousekeepingTest.java
//DEPS org.junit.jupiter:junit-jupiter-engine:5.13.4
//DEPS org.bouncycastle:bcpkix-jdk18on:1.87
//DEPS org.junit.platform:junit-platform-launcher:1.13.4
//DEPS io.opentelemetry.proto:opentelemetry-proto:1.11.0-alpha
//MAIN TestAll

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

import java.io.PrintWriter;
import java.util.List;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder.request;

/** Runs the offline suite through the JUnit Platform Launcher; the last line is "N passed, N failed, N skipped". */
public class TestAll {
    static final List<Class<?>> SUITE = List.of(ReplayTest.class, HookTest.class, WireTest.class, FaultTest.class,
            ConcurrencyTest.class, BadInputTest.class, TranscriptChangeTest.class, SecretsTest.class, InstallTest.class,
            DocsTest.class, StructureTest.class, SubagentTest.class, GenerationInputTest.class, BackfillTest.class, RealClientProbeTest.class, RealClientTest.class,
            RealClientInputTest.class, RealClientAgentsTest.class, BackgroundWorkTest.class, NetworkTest.class, DeliveryTest.class, PricesTest.class,
            SkillTest.class, HousekeepingTest.class);

    public static void main(String[] args) {
        // Arguments pick test classes (or methods, Class#method) by name; none runs the whole suite.
        List<org.junit.platform.engine.DiscoverySelector> selectors = args.length == 0
                ? SUITE.stream().map(c -> (org.junit.platform.engine.DiscoverySelector) selectClass(c)).toList()
                : java.util.Arrays.stream(args).map(name -> name.contains("#")
                        ? (org.junit.platform.engine.DiscoverySelector) org.junit.platform.engine.discovery.DiscoverySelectors.selectMethod(name)
                        : selectClass(name)).toList();
        LauncherDiscoveryRequest discovery = request().selectors(selectors).build();
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        TestExecutionListener progress = new TestExecutionListener() {
            @Override
            public void executionFinished(TestIdentifier test, TestExecutionResult result) {
                // A failed assumption (ABORTED) is a skip with a reason: the real-client tests skip that way where no
                // network namespace can be made or a tool is missing. A class aborted in @BeforeAll is shown too.
                if (result.getStatus() == TestExecutionResult.Status.ABORTED && (test.isTest() || isClass(test))) {
                    System.out.println("SKIP  " + name(test) + ": " + result.getThrowable().map(TestAll::reason).orElse("aborted"));
                    return;
                }
                if (!test.isTest()) return;
                String outcome = result.getStatus() == TestExecutionResult.Status.SUCCESSFUL ? "PASS" : "FAIL";
                System.out.println(outcome + "  " + name(test));
                result.getThrowable().ifPresent(t -> System.out.println("      " + t));
            }

            @Override
            public void executionSkipped(TestIdentifier test, String reason) {
                System.out.println("SKIP  " + name(test) + ": " + reason);
            }
        };
        Launcher launcher = LauncherFactory.create();
        launcher.execute(discovery, summary, progress);
        TestExecutionSummary result = summary.getSummary();
        if (result.getTotalFailureCount() > 0) result.printFailuresTo(new PrintWriter(System.out), 30);
        long failed = result.getTestsFailedCount() + result.getContainersFailedCount();
        // Aborted (failed assumption) counts as skipped, not failed; a class aborted as a whole counts once.
        long skipped = result.getTestsSkippedCount() + result.getTestsAbortedCount() + result.getContainersAbortedCount();
        System.out.println(result.getTestsSucceededCount() + " passed, " + failed + " failed, " + skipped + " skipped");
        System.exit(failed == 0 ? 0 : 1);
    }

    /** "displayName  [Class]" for a test, the class name for a class. */
    static String name(TestIdentifier test) {
        var segments = test.getUniqueIdObject().getSegments();
        if (isClass(test)) return segments.get(1).getValue();
        return test.getDisplayName() + (segments.size() > 1 ? "  [" + segments.get(1).getValue() + "]" : "");
    }

    static boolean isClass(TestIdentifier test) {
        var segments = test.getUniqueIdObject().getSegments();
        return test.isContainer() && segments.size() == 2 && segments.get(1).getType().equals("class");
    }

    /** The assumption's own words, without JUnit's "Assumption failed: " prefix. */
    static String reason(Throwable t) {
        String message = String.valueOf(t.getMessage());
        return message.startsWith("Assumption failed: ") ? message.substring("Assumption failed: ".length()) : message;
    }
}
