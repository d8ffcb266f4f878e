/** The floor of P1: a bare JVM start that prints one line and exits. */
public class Hello {
    public static void main(String[] args) {
        System.out.println("hello");
    }
}
