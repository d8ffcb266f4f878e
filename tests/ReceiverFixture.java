import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/** What most tests start from: a loopback OTLP receiver, a temporary HOME, and the hook's env pointing at both. */
abstract class ReceiverFixture {
    OtlpReceiver receiver;
    Path home;
    Map<String, String> env;

    @BeforeEach
    void startReceiver() throws IOException {
        receiver = new OtlpReceiver();
        home = TestSupport.tempHome();
        env = TestSupport.hookEnv(home, receiver.baseUrl());
    }

    @AfterEach
    void stopReceiver() {
        receiver.close();
        TestSupport.deleteTree(home);
    }
}
