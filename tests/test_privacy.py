"""The network guard refuses network use with a clear message; an audit hook cannot be removed, so each check
runs in a fresh interpreter."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EDGE = Path(__file__).resolve().parent.parent / "edge"


def guarded(code: str) -> subprocess.CompletedProcess:
    prelude = "from edgefer.edge.privacy import install_network_guard\nassert install_network_guard()\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, cwd=EDGE.parent)


@pytest.mark.parametrize("attempt", [
    "socket.create_connection(('127.0.0.1', 9), timeout=1)",
    "socket.getaddrinfo('example.com', 80)",
    "socket.gethostbyname('example.com')",
    "socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(('127.0.0.1', 9))",
    "socket.socket(socket.AF_INET6, socket.SOCK_STREAM).connect(('::1', 9))",
    "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('10.0.0.1', 9))",
    "socket.socket(socket.AF_INET, socket.SOCK_STREAM).bind(('0.0.0.0', 0))",
    "urllib.request.urlopen('http://example.com', timeout=1)",
])
def test_network_use_is_refused_with_a_clear_message(attempt):
    proc = guarded(f"""
        import socket, urllib.request
        try:
            {attempt}
        except PermissionError as exc:
            print("refused:", exc)
        except Exception as exc:  # urllib wraps the refusal in URLError
            print("refused:" if isinstance(getattr(exc, "reason", None), PermissionError) else "other:", exc)
        else:
            print("allowed")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:"), proc.stdout
    assert "edgefer: network use is disabled on the device (privacy)" in proc.stdout


def test_local_use_still_works_under_the_guard(tmp_path):
    proc = guarded(f"""
        import socket
        from edgefer.edge.events import Event
        from edgefer.edge.outputs import build_outputs
        from edgefer.edge.outputs.serial_line import parse_line
        from edgefer.edge.privacy import install_network_guard, network_guard_installed

        assert not install_network_guard() and network_guard_installed()  # idempotent
        a, b = socket.socketpair()  # AF_UNIX: local to the machine
        a.sendall(b"ok"); assert b.recv(2) == b"ok"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind({str(tmp_path / "sock")!r})
        dispatcher = build_outputs([{{"type": "serial", "port": "loop://"}},
                                    {{"type": "jsonl", "path": {str(tmp_path / "events.jsonl")!r}}},
                                    {{"type": "console"}}])
        dispatcher.emit(Event("alert", "anger", "raise", level=1, ts=1.0))
        port = dispatcher.outputs[0].serial
        assert parse_line(port.read(port.in_waiting))["name"] == "anger"
        assert all(not s.get("failing") and "unavailable" not in s for s in dispatcher.stats().values())
        dispatcher.close()
        print("local ok")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "local ok" in proc.stdout and "ALERT anger raise" in proc.stdout
    assert (tmp_path / "events.jsonl").read_text().count("\n") == 1


def test_no_device_module_imports_a_network_library():
    pattern = re.compile(r"^\s*(?:import|from)\s+(socket|ssl|urllib|http|requests|httpx|aiohttp|ftplib|smtplib|"
                         r"paho|websocket|grpc)\b", re.MULTILINE)
    offenders = [str(p.relative_to(EDGE.parent)) for p in EDGE.rglob("*.py")
                 if p.name != "privacy.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
