"""A loopback bridge from the chaos process to a control API on a namespace's own loopback.

A chaos host placed in the target namespace keeps its control API on
127.0.0.1 (loopback only, no token needed, as everywhere else), which is
that namespace's loopback, out of the chaos process's reach. The bridge
listens on 127.0.0.1:<free port> where the chaos process runs and, for each
connection, opens one from INSIDE the namespace (a socket created by a
thread that entered it) to the control port, and copies bytes both ways.

So control traffic never crosses the faulty link: faults on the link hit
only the agent's traffic, and clearing a fault never waits on the fault.
Only control APIs go through here (a few small requests); agent traffic
goes through the link.
"""

from __future__ import annotations

import socket
import threading

from chaosagenkit.kernel.system import in_namespace

__all__ = ["NamespaceBridge"]

CONNECT_TIMEOUT_S = 10.0
_CHUNK = 65536


class NamespaceBridge:
    """Forward 127.0.0.1:``port`` here to 127.0.0.1:``target_port`` inside ``namespace``."""

    def __init__(self, namespace: str, target_port: int) -> None:
        self.namespace = namespace
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name=f"bridge-{namespace}", daemon=True)
        self._thread.start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening and close every bridged connection."""
        with self._lock:
            self._closed = True
            sockets = [self._listener, *self._sockets]
            self._sockets.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._thread.join(5.0)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = in_namespace(
                self.namespace,
                lambda: socket.create_connection(("127.0.0.1", self.target_port), timeout=CONNECT_TIMEOUT_S),
            )
        except OSError:
            client.close()  # the control API is down: the caller sees the connection close
            return
        upstream.settimeout(None)
        with self._lock:
            if self._closed:
                client.close()
                upstream.close()
                return
            self._sockets.update((client, upstream))
        forward = threading.Thread(target=self._copy, args=(client, upstream), daemon=True)
        forward.start()
        self._copy(upstream, client)
        forward.join()
        with self._lock:
            self._sockets.difference_update((client, upstream))
        client.close()
        upstream.close()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        """Copy until end of stream, then pass the end of stream on."""
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
