import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPReply;
import org.apache.commons.net.ftp.FTPSClient;
import org.apache.commons.net.util.TrustManagerUtils;

/**
 * A partner's batch job written with stock Apache Commons Net: one explicit FTPS session (AUTH TLS, PBSZ 0, PROT P,
 * passive mode) that uploads every file of a directory, lists them, and downloads each one back. Nothing is added to
 * FTPSClient: in particular its data connections do not resume the control connection's TLS session.
 *
 * Usage: java FtpsBatch PORT USER TLS_VERSION DIR (password in FTPS_PASSWORD). Prints one JSON object per line, one
 * per command: {"op","file","ok","code","reply","ms"} plus "sha256" for downloads and "names" for the listing. Stops
 * at the first refused command (after reading its reply) and exits 0; exits 1 when the session itself fails.
 */
public final class FtpsBatch {
  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    String user = args[1];
    String tlsVersion = args[2];
    Path dir = Path.of(args[3]);
    String password = System.getenv("FTPS_PASSWORD");

    List<Path> files = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      s.filter(Files::isRegularFile).sorted().forEach(files::add);
    }

    FTPSClient ftp = new FTPSClient("TLS", false);
    ftp.setTrustManager(TrustManagerUtils.getAcceptAllTrustManager());
    ftp.setEnabledProtocols(new String[] {tlsVersion});
    ftp.setDefaultTimeout(10_000);
    ftp.setConnectTimeout(10_000);
    ftp.setDataTimeout(java.time.Duration.ofSeconds(10));
    ftp.connect("127.0.0.1", port);
    try {
      require(ftp, FTPReply.isPositiveCompletion(ftp.getReplyCode()), "connect");
      require(ftp, ftp.login(user, password), "login");
      ftp.execPBSZ(0);
      ftp.execPROT("P");
      require(ftp, FTPReply.isPositiveCompletion(ftp.getReplyCode()), "PROT P");
      ftp.enterLocalPassiveMode();
      require(ftp, ftp.setFileType(FTP.BINARY_FILE_TYPE), "TYPE I");

      for (Path f : files) {
        String name = f.getFileName().toString();
        long t0 = System.nanoTime();
        boolean ok;
        try (InputStream in = Files.newInputStream(f)) {
          ok = ftp.storeFile(name, in);
        } catch (IOException e) {
          ok = false;
          pendingReply(ftp);
        }
        if (!report(ftp, "STOR", name, ok, t0, null)) return;
      }

      long t0 = System.nanoTime();
      String[] names = null;
      try {
        names = ftp.listNames();
      } catch (IOException e) {
        pendingReply(ftp);
      }
      String listed = names == null ? null : "[" + String.join(",", Arrays.stream(names).sorted().map(FtpsBatch::quote).toList()) + "]";
      if (!report(ftp, "NLST", "", names != null, t0, listed == null ? null : "\"names\":" + listed)) return;

      for (Path f : files) {
        String name = f.getFileName().toString();
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        t0 = System.nanoTime();
        boolean ok;
        try (OutputStream out = new DigestSink(sha)) {
          ok = ftp.retrieveFile(name, out);
        } catch (IOException e) {
          ok = false;
          pendingReply(ftp);
        }
        String hash = "\"sha256\":" + quote(HexFormat.of().formatHex(sha.digest()));
        if (!report(ftp, "RETR", name, ok, t0, hash)) return;
      }
      ftp.logout();
    } finally {
      if (ftp.isConnected()) ftp.disconnect();
    }
  }

  /** After a data connection failed mid-command, the verdict is still on its way over the control connection. */
  private static void pendingReply(FTPSClient ftp) {
    try {
      ftp.getReply();
    } catch (IOException ignored) {
      // The control connection went away too; the last reply code stays what it was.
    }
  }

  private static boolean report(FTPSClient ftp, String op, String file, boolean ok, long t0, String extra) {
    long ms = (System.nanoTime() - t0) / 1_000_000;
    StringBuilder line = new StringBuilder();
    line.append("{\"op\":").append(quote(op)).append(",\"file\":").append(quote(file)).append(",\"ok\":").append(ok);
    line.append(",\"code\":").append(ftp.getReplyCode()).append(",\"reply\":").append(quote(ftp.getReplyString().strip()));
    line.append(",\"ms\":").append(ms);
    if (ok && extra != null) line.append(',').append(extra);
    System.out.println(line.append('}'));
    return ok;
  }

  private static void require(FTPSClient ftp, boolean ok, String what) {
    if (!ok) {
      System.err.println(what + " failed: " + ftp.getReplyString());
      System.exit(1);
    }
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }

  /** Hashes what is downloaded instead of keeping it. */
  private static final class DigestSink extends OutputStream {
    private final MessageDigest sha;

    DigestSink(MessageDigest sha) {
      this.sha = sha;
    }

    @Override
    public void write(int b) {
      sha.update((byte) b);
    }

    @Override
    public void write(byte[] b, int off, int len) {
      sha.update(b, off, len);
    }
  }
}
