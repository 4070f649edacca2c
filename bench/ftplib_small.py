"""Small-file scenario with Python's ftplib: one session stores every file of a directory, then retrieves them all.

Usage: python3 ftplib_small.py PORT REMOTE_DIR SOURCE_DIR OUT_DIR SERVER_PID  (FTP_USER, FTP_PASSWORD in the
environment, so credentials stay out of the process list). Between the halves it runs bench/tree-cpu.sh on the
server's pid and prints its "T<ns> C<seconds>" lines: the driver turns them into files/s and server CPU per file.
The client is the subclass from docs/partner-guide.md: data connections resume the control session's TLS session.
"""
import ftplib
import os
import ssl
import subprocess
import sys


class ReusedSessionFTP_TLS(ftplib.FTP_TLS):
    """Data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def mark(tree_cpu, pid):
    print(subprocess.run(["sh", tree_cpu, pid], check=True, capture_output=True, text=True).stdout.strip(), flush=True)


def main():
    port, remote, source, out, pid = sys.argv[1:6]
    tree_cpu = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tree-cpu.sh")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = ReusedSessionFTP_TLS(context=ctx, timeout=30)
    ftp.connect("127.0.0.1", int(port))
    ftp.auth()
    ftp.login(os.environ["FTP_USER"], os.environ["FTP_PASSWORD"])
    ftp.prot_p()
    ftp.mkd(remote)
    names = sorted(os.listdir(source))
    mark(tree_cpu, pid)
    for name in names:
        with open(os.path.join(source, name), "rb") as f:
            ftp.storbinary(f"STOR {remote}/{name}", f)
    mark(tree_cpu, pid)
    for name in names:
        with open(os.path.join(out, name), "wb") as f:
            ftp.retrbinary(f"RETR {remote}/{name}", f.write)
    mark(tree_cpu, pid)
    ftp.quit()


main()
