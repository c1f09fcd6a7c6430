"""Queued writers, so a thread that receives from the network does not block on a slow sink."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Callable, Optional

logger = logging.getLogger("ssmex.datachannel.pump")

_CLOSE = object()


class QueuedWriter:
    """Write chunks to a sink from a thread of its own, in the order they were queued.

    The queue has no size limit. The protocol has no flow control of its own
    (smux v1 has no windows), so memory grows while a sink is slower than the
    peer sends.
    """

    def __init__(self, write: Callable[[bytes], None], *, name: str,
                 on_finish: Optional[Callable[[Optional[BaseException]], None]] = None):
        self._write = write
        self._on_finish = on_finish
        self._queue: "queue.SimpleQueue[object]" = queue.SimpleQueue()
        self.failed: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        if data:
            self._queue.put(data)

    def close(self) -> None:
        """Finish after the chunks queued so far are written."""
        self._queue.put(_CLOSE)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        error: Optional[BaseException] = None
        while True:
            item = self._queue.get()
            if item is _CLOSE:
                break
            if error is not None:
                continue
            try:
                self._write(item)  # type: ignore[arg-type]
            except OSError as failure:
                # Keep draining so close() still finishes, but write nothing more.
                error = failure
                self.failed = failure
                logger.debug("%s: write failed: %s", self._thread.name, failure)
        if self._on_finish is not None:
            self._on_finish(error)


def shutdown_quietly(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


def close_quietly(sock: Optional[socket.socket]) -> None:
    """Shut a socket down and close it, ignoring errors.

    The shutdown wakes a thread blocked in recv() or accept() on the socket and
    sends FIN at once. close() alone does neither while another thread uses it.
    """
    if sock is None:
        return
    shutdown_quietly(sock, socket.SHUT_RDWR)
    try:
        sock.close()
    except OSError:
        pass
