"""The wire format between the window and the engine: one JSON object per line.

Every message is a JSON object with ``v`` (the protocol version) and ``type``; it is
written as one line of ASCII (``ensure_ascii``: file names that are not valid UTF-8
travel as escaped surrogates and come back unchanged). Only data crosses: no pickles,
no code, nothing the other side evaluates.

Window to engine:
    ``call``     {id, method, params}  start a job
    ``cancel``   {id}                  stop that job within one batch
    ``shutdown`` {}                    cancel everything and exit

Engine to window:
    ``hello``    {pid, backend}        the process is up (Keras not loaded yet)
    ``ready``    {compute}             Keras has loaded; what training runs on
    ``setup_failed`` {error}           Keras could not be loaded
    ``event``    {id, event}           a core event of job ``id``
    ``done``     {id, outcome, value}  ``outcome`` is ``result``, ``error`` or ``cancelled``
"""

from __future__ import annotations

import json
from typing import IO, Any

PROTOCOL_VERSION = 1
# A scan of 100,000 files is about 20 MB of JSON; a longer line is a broken stream.
MAX_LINE_BYTES = 512 * 2**20


class ProtocolError(Exception):
    """A line that is not a message of this protocol version."""


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of bytes (the version is added)."""
    data = {"v": PROTOCOL_VERSION, **message}
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Reads one line written by ``encode``.

    Raises:
        ProtocolError: not JSON, not an object, no type, or another protocol version.
    """
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON line: {line[:80]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(f"not a message: {line[:80]!r}")
    if data.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {data.get('v')!r}, expected {PROTOCOL_VERSION}")
    return data


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message from a binary stream, or None at its end.

    Raises:
        ProtocolError: a line over ``MAX_LINE_BYTES`` or not a message.
    """
    line = stream.readline(MAX_LINE_BYTES + 1)
    if not line:
        return None
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError("message too long")
    return decode(line)
