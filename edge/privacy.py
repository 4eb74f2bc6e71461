"""Private by construction: the device side never uses the network, and never stores frames unasked.

Network: :func:`install_network_guard` adds a Python audit hook (PEP 578) that refuses, with a
:class:`PermissionError` that says why, every name lookup (``socket.getaddrinfo``, ``gethostbyname``,
``gethostbyaddr``, ``getnameinfo``) and every ``connect``, ``bind``, ``sendto`` and ``sendmsg`` on a socket
of any family but ``AF_UNIX`` and ``AF_NETLINK`` (local to the machine: syslog's /dev/log, D-Bus, udev).
Loopback is refused too: nothing in edgefer needs it, and a daemon on 127.0.0.1 (pigpio, say) is still a
network service. A library that would phone home (telemetry, update checks, model downloads) therefore fails
loudly instead of leaking. The monitor installs it at start, on by default.

What it is not: a sandbox. Audit hooks cover this Python process, not programs it starts (edge/ starts none)
nor native code calling libc directly. For a hard guarantee add the OS's: no network interface, a firewall,
or systemd's ``IPAddressDeny=any`` and ``RestrictAddressFamilies=AF_UNIX AF_NETLINK`` on the service.
An audit hook cannot be removed, so installing is once per process (:func:`install_network_guard` is
idempotent); test it in a subprocess.

Frames: the monitor keeps frames in memory only; none is written to disk (no snapshot, no video, no crop)
unless the user sets ``save_frames`` (or asks for an annotated video), and the event log holds events, not
images.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

MESSAGE = "edgefer: network use is disabled on the device (privacy)"

#: Audit events refused whatever their arguments: name resolution is the first step of any connection.
_LOOKUPS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"})
#: Audit events whose first argument is the socket: refused unless its family is local to the machine.
_SOCKET_USE = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
_LOCAL_FAMILIES = frozenset(getattr(socket, name) for name in ("AF_UNIX", "AF_NETLINK") if hasattr(socket, name))

_installed = False


def _refuse(event: str, detail: Any) -> None:
    raise PermissionError(f"{MESSAGE}; refused {event} {detail!r}. Everything edgefer does is local; "
                          "see edge/privacy.py")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in _LOOKUPS:
        _refuse(event, args[0] if args else "")
    elif event in _SOCKET_USE:
        family = getattr(args[0], "family", None) if args else None
        if family not in _LOCAL_FAMILIES:
            _refuse(event, args[1] if len(args) > 1 else "")


def install_network_guard() -> bool:
    """Refuse network use in this process from now on. True if installed now, False if it already was."""
    global _installed
    if _installed:
        return False
    sys.addaudithook(_hook)
    _installed = True
    return True


def network_guard_installed() -> bool:
    return _installed
