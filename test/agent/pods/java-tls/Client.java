import java.io.FileInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.KeyStore;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * An HTTPS client whose TLS is Java's own (JSSE, java.net.http.HttpClient), trusting the test's
 * keystore. Run as `java Client.java <keystore.p12> <password> <url>`; prints the status and body.
 * The URL's host name is resolved through -Djdk.net.hosts.file so that the ClientHello carries it
 * as SNI (JSSE sends none for an address).
 */
public class Client {
  public static void main(String[] args) throws Exception {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    try (FileInputStream in = new FileInputStream(args[0])) {
      ks.load(in, args[1].toCharArray());
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ks);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(null, tmf.getTrustManagers(), null);
    HttpClient client = HttpClient.newBuilder().sslContext(ctx).version(HttpClient.Version.HTTP_1_1).build();
    HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(args[2])).GET().build(), HttpResponse.BodyHandlers.ofString());
    System.out.println(r.statusCode() + " " + r.body().trim());
  }
}
