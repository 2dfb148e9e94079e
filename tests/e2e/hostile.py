# SPDX-License-Identifier: Apache-2.0
"""Hostile clients for the availability tests (issue 12), shared by the app
server's and the configuration server's tests.

Attackers connect from 127.0.0.2 and up, so that a per-address limit does not
also hit the legitimate client, which connects from 127.0.0.1.
"""

import socket
import threading
import time


def attacker(port, n, timeout=30):
    """A TCP connection to 127.0.0.1:port from 127.0.0.(2 + n % 200)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=("127.0.0.%d" % (2 + n % 200), 0))


class Trickler(threading.Thread):
    """Sends head, then fill bytes at rate bytes/s (ten sends a second) until
    total bytes have gone or stop is set."""

    def __init__(self, sock, head, total, rate, fill=b"x"):
        super().__init__(daemon=True)
        self.sock, self.head, self.total, self.rate, self.fill = sock, head, total, rate, fill
        self.stop = threading.Event()

    def run(self):
        try:
            self.sock.sendall(self.head)
            sent = 0
            while not self.stop.is_set() and sent < self.total:
                self.sock.sendall(self.fill * (self.rate // 10))
                sent += self.rate // 10
                time.sleep(0.1)
        except OSError:
            pass


class SlowReader:
    """The reading end of a client that drains its socket slowly: recv() of
    at most step bytes, a pause of pause seconds after every `every` bytes.
    Give the socket a small SO_RCVBUF before connecting so the server's
    writes fill it and must wait (partial writes, EAGAIN)."""

    def __init__(self, sock, step=16384, pause=0.002, every=32768):
        self.sock, self.step, self.pause, self.every = sock, step, pause, every
        self.buf = bytearray()
        self.got = 0
        self.next_pause = every

    def _more(self):
        d = self.sock.recv(self.step)
        if not d:
            raise EOFError("connection closed after %d bytes" % self.got)
        self.got += len(d)
        if self.pause and self.got >= self.next_pause:
            time.sleep(self.pause)
            self.next_pause += self.every
        self.buf += d

    def until(self, marker):
        """Bytes up to and including marker."""
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            self._more()

    def exactly(self, n):
        while len(self.buf) < n:
            self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def response(self):
        """One HTTP/1.1 response: (status, {lower-case name: value}, body)."""
        head = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        fields = {}
        for line in head[1:]:
            if line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        if "content-length" in fields:
            return status, fields, self.exactly(int(fields["content-length"]))
        assert fields.get("transfer-encoding") == "chunked", fields
        body = bytearray()
        while True:
            size = int(self.until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self.until(b"\r\n")  # no trailers
                return status, fields, bytes(body)
            body += self.exactly(size)
            assert self.exactly(2) == b"\r\n"
