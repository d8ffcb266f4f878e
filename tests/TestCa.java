import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;

/** A throwaway certificate authority for the TLS tests: it issues server and client certificates, written as PEM. */
final class TestCa {
    private static final AtomicLong SERIAL = new AtomicLong(System.nanoTime());
    final KeyPair keys;
    final X509Certificate certificate;

    /** A key and the certificate issued for it. */
    record Issued(KeyPair keys, X509Certificate certificate, X509Certificate issuer) {
        /** An SSLContext that presents this certificate, and trusts `trusted` (null: the JDK's CAs). */
        SSLContext context(X509Certificate trusted) throws Exception {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("me", keys.getPrivate(), new char[0], new java.security.cert.Certificate[]{certificate, issuer});
            KeyManagerFactory keyManagers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keyManagers.init(store, new char[0]);
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            if (trusted == null) {
                trust.init((KeyStore) null);
            } else {
                KeyStore trustStore = KeyStore.getInstance("PKCS12");
                trustStore.load(null, null);
                trustStore.setCertificateEntry("ca", trusted);
                trust.init(trustStore);
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(keyManagers.getKeyManagers(), trust.getTrustManagers(), null);
            return context;
        }

        /** The certificate (PEM) and its PKCS#8 key (PEM) in `dir`, as `<name>.crt` and `<name>.key`. */
        Path[] write(Path dir, String name) throws Exception {
            Path crt = dir.resolve(name + ".crt");
            Path key = dir.resolve(name + ".key");
            Files.writeString(crt, pem("CERTIFICATE", certificate.getEncoded()));
            Files.writeString(key, pem("PRIVATE KEY", keys.getPrivate().getEncoded()));
            return new Path[]{crt, key};
        }
    }

    TestCa(String name) throws Exception {
        keys = ecKeys();
        X500Name subject = new X500Name("CN=" + name);
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, BigInteger.valueOf(SERIAL.incrementAndGet()),
                Date.from(Instant.now().minus(Duration.ofDays(1))), Date.from(Instant.now().plus(Duration.ofDays(2))), subject, keys.getPublic());
        builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        certificate = sign(builder, keys);
    }

    /** A certificate for `dnsName` (and 127.0.0.1 for localhost), valid from `notBefore` to `notAfter`. */
    Issued issue(String dnsName, Instant notBefore, Instant notAfter) throws Exception {
        KeyPair subjectKeys = ecKeys();
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(new X500Name(certificate.getSubjectX500Principal().getName()),
                BigInteger.valueOf(SERIAL.incrementAndGet()), Date.from(notBefore), Date.from(notAfter), new X500Name("CN=" + dnsName),
                subjectKeys.getPublic());
        // "localhost" also names the loopback address the test servers listen on; any other name does not.
        builder.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(dnsName.equals("localhost")
                ? new GeneralName[]{new GeneralName(GeneralName.dNSName, dnsName), new GeneralName(GeneralName.iPAddress, "127.0.0.1")}
                : new GeneralName[]{new GeneralName(GeneralName.dNSName, dnsName)}));
        return new Issued(subjectKeys, sign(builder, keys), certificate);
    }

    /** A certificate for `dnsName`, valid now. */
    Issued issue(String dnsName) throws Exception {
        return issue(dnsName, Instant.now().minus(Duration.ofHours(1)), Instant.now().plus(Duration.ofDays(1)));
    }

    /** The CA's certificate as a PEM file. */
    Path writeCertificate(Path file) throws IOException {
        try {
            Files.writeString(file, pem("CERTIFICATE", certificate.getEncoded()));
        } catch (java.security.cert.CertificateEncodingException e) {
            throw new IOException(e);
        }
        return file;
    }

    private static KeyPair ecKeys() throws Exception {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        return generator.generateKeyPair();
    }

    private static X509Certificate sign(X509v3CertificateBuilder builder, KeyPair signer) throws Exception {
        return new JcaX509CertificateConverter().getCertificate(builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())));
    }

    static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(der) + "\n-----END " + type + "-----\n";
    }
}
