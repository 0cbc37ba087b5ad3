"""The preview worker process: one renderer, requests on stdin, replies on stdout.

Run as ``python -P -m workbench.inspect.preview_worker`` by
:class:`~workbench.inspect.preview.PreviewRenderer`. Each message is an 8-byte big-endian length
and a pickle (parent and worker trust each other: the parent started the worker). A request is
``(spec_data, seed, index, condition)``; a reply is ``("ok", Sample)``, ``("error", one line)``
for a :class:`~workbench.errors.WorkbenchError` or ``("crash", traceback)``.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import sys
import time
import traceback
from typing import Any, BinaryIO

from workbench.errors import WorkbenchError

HEADER = struct.Struct(">Q")


def send(stream: BinaryIO, message: Any) -> None:
    """Writes one length-prefixed pickled message and flushes."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream: BinaryIO, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        if deadline is not None:
            ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("no reply in time")
        chunk = stream.read(size - got)
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def receive(stream: BinaryIO, deadline: float | None = None) -> Any:
    """Reads one message; raises EOFError when the other side has closed the pipe.

    Args:
        stream: the pipe; with a ``deadline`` it must be unbuffered (``Popen(bufsize=0)``).
        deadline: ``time.monotonic()`` by which the whole message must have come, or None.

    Raises:
        EOFError: the pipe closed.
        TimeoutError: the deadline passed first.
    """
    size = HEADER.unpack(_read_exact(stream, HEADER.size, deadline))[0]
    return pickle.loads(_read_exact(stream, size, deadline))


def main() -> int:
    """Serves render requests until stdin closes."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the replies
    requests = sys.stdin.buffer
    from workbench.render import gl

    renderer = None
    backend_error = None
    try:
        gl.choose("auto")
    except WorkbenchError as exc:
        backend_error = str(exc)
    while True:
        try:
            spec_data, seed, index, condition = receive(requests)
        except EOFError:
            break
        try:
            if backend_error:
                raise WorkbenchError(backend_error)
            from workbench.render.sample import render_sample
            from workbench.render.view import Renderer
            from workbench.scene.spec import parse_spec

            spec = parse_spec(spec_data, "preview spec")
            if renderer is None or renderer.size != (spec.resolution, spec.resolution):
                if renderer is not None:
                    renderer.close()
                renderer = Renderer(spec.resolution, spec.resolution)
            send(replies, ("ok", render_sample(renderer, spec, seed, index, condition)))
        except WorkbenchError as exc:
            send(replies, ("error", str(exc)))
        except Exception:  # noqa: BLE001  (reported to the parent, which raises it)
            send(replies, ("crash", traceback.format_exc()))
    if renderer is not None:
        renderer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
