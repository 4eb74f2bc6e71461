"""``type: serial``: one text line per event over a serial port (pyserial), for a dashboard, a head unit, a
microcontroller: no network involved.

The line protocol (ASCII, one event per line, in the manner of NMEA 0183)::

    $EDGEFER,1,<kind>,<name>,<action>,<level>,<ts>,<value>*<CC>\\r\\n

``1`` is the protocol version; ``kind`` is alert, fault or status; ``name`` the rule or fault; ``action``
raise, escalate, clear (alerts) or what happened; ``level`` an integer (0: cleared); ``ts`` the stream time
in seconds with 3 decimals; ``value`` the signal value with 3 decimals, or empty. ``,``, ``*``, ``$`` and
control or non-ASCII characters inside a field become ``_``. ``CC`` is the XOR of every byte between ``$``
and ``*`` (both excluded) as two upper-case hex digits, e.g. ``$EDGEFER,1,alert,anger,raise,1,12.500,0.910*3D``.
:func:`parse_line` checks and splits one.

``port`` is anything ``serial.serial_for_url`` opens: ``/dev/ttyUSB0``, ``/dev/serial0``, or ``loop://`` for
tests. An unplugged port (an error on open or write) is closed and raised, so the dispatcher keeps the event;
the port is reopened on the next attempt.
"""

from __future__ import annotations

import contextlib
import logging
import re
from functools import reduce
from typing import Any, Literal

from pydantic import Field, field_validator

from edgefer.edge.events import Event
from edgefer.edge.outputs import Output, OutputConfig
from edgefer.edge.plugins import Unavailable

log = logging.getLogger("edgefer.outputs")

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
_UNSAFE = re.compile(r"[^\x20-\x7e]|[,*$]")


class SerialConfig(OutputConfig):
    type: Literal["serial"] = "serial"
    port: str = Field(min_length=1, description="device or pyserial URL: /dev/ttyUSB0, /dev/serial0, loop://")
    baudrate: int = Field(115200, description=f"one of {', '.join(map(str, BAUDRATES))}")
    timeout: float = Field(1.0, ge=0.01, le=10.0, description="seconds a write may block before it counts as failed")

    @field_validator("baudrate")
    @classmethod
    def _standard(cls, rate: int) -> int:
        if rate not in BAUDRATES:
            raise ValueError(f"baudrate {rate} is not a standard rate: {', '.join(map(str, BAUDRATES))}")
        return rate


def checksum(body: str) -> str:
    return f"{reduce(lambda acc, byte: acc ^ byte, body.encode('ascii'), 0):02X}"


def format_line(event: Event) -> str:
    """The protocol line for ``event``, ending in CR LF."""
    value = "" if event.value is None or event.value != event.value else f"{event.value:.3f}"
    fields = ["EDGEFER", "1", event.kind, event.name, event.action, str(int(event.level)), f"{event.ts:.3f}", value]
    body = ",".join(_UNSAFE.sub("_", f) for f in fields)
    return f"${body}*{checksum(body)}\r\n"


def parse_line(line: str | bytes) -> dict[str, Any]:
    """Check a protocol line's checksum and return its fields; ValueError (saying why) if it is not one."""
    text = line.decode("ascii", errors="replace") if isinstance(line, bytes) else line
    match = re.fullmatch(r"\$([\x20-\x7e]*)\*([0-9A-F]{2})\r?\n?", text)  # the protocol is printable ASCII
    if not match:
        raise ValueError(f"not an EDGEFER line: {text!r}")
    body, given = match.groups()
    if checksum(body) != given:
        raise ValueError(f"bad checksum {given} (expected {checksum(body)}): {text!r}")
    parts = body.split(",")
    if len(parts) != 8 or parts[0] != "EDGEFER":
        raise ValueError(f"not an EDGEFER v1 line: {text!r}")
    _, version, kind, name, action, level, ts, value = parts
    try:
        return {"version": int(version), "kind": kind, "name": name, "action": action, "level": int(level),
                "ts": float(ts), "value": float(value) if value else None}
    except ValueError:  # a number field that is not one (int("x"), float("1,5")) after a right checksum
        raise ValueError(f"not an EDGEFER v1 line (version, level, ts or value not a number): {text!r}") from None


class SerialOutput(Output):
    type_key = "serial"
    config_class = SerialConfig
    config: SerialConfig

    def __init__(self, config: SerialConfig) -> None:
        super().__init__(config)
        try:
            import serial
        except ImportError:
            raise Unavailable("serial output: pyserial is not installed: pip install pyserial") from None
        self._lib = serial
        self.serial: Any = None  # the open port, or None until the next attempt
        try:
            self._open()
        except OSError as exc:  # unplugged at start: not fatal, events wait for the port (it may appear later)
            # (a malformed URL raises ValueError: a config mistake, so the output is not created)
            log.warning("serial output %s: %s; will retry when there is an event", config.port, exc)

    def describe(self) -> str:
        return f"serial:{self.config.port}"

    def emit(self, event: Event) -> None:
        data = format_line(event).encode("ascii")
        try:
            port = self._open()
            port.write(data)
            port.flush()
        except (OSError, ValueError) as exc:  # pyserial's SerialException is an OSError
            self.close()
            raise OSError(f"serial port {self.config.port} (unplugged?): {exc}") from exc

    def close(self) -> None:
        if self.serial is not None:
            port, self.serial = self.serial, None
            with contextlib.suppress(Exception):  # an unplugged port may fail to close too
                port.close()

    def _open(self) -> Any:
        if self.serial is None:
            self.serial = self._lib.serial_for_url(self.config.port, baudrate=self.config.baudrate,
                                                   timeout=self.config.timeout, write_timeout=self.config.timeout)
        return self.serial
