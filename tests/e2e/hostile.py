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
