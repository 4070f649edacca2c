"""Client half of bench/tls-floor.ts: N connections, each resuming the TLS session of the first (as an FTPS client
resumes its control connection's session on every data connection), sending SIZE bytes, then close_notify and
waiting for the server's. TCP_NODELAY is set so that Nagle's algorithm adds no waits.

Usage: python3 tls_floor_client.py PORT N SIZE [TLS12]
"""
import os
import socket
import ssl
import sys
import time

port, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if len(sys.argv) > 4 and sys.argv[4] == "TLS12":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
payload = os.urandom(size)
session = None
resumed = 0
start = time.perf_counter()
for _ in range(n):
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    resumed += 1 if conn.session_reused else 0
    conn.sendall(payload)
    # unwrap() would drop the SSL object, and with it the session whose TLS 1.3 ticket arrives only now.
    conn._sslobj.shutdown()
    if session is None:
        session = conn.session
    conn.close()
print(f"{n} connections, {resumed} resumed, {(time.perf_counter() - start) / n * 1000:.2f} ms each")
