"""Local-only outputs (console, event log, GPIO, serial, overlay), one module each, found by ``type_key``.

An output's ``emit`` may raise: :class:`Dispatcher` isolates every output from the others, keeps the events a
failed output missed and hands them over again once it works, so an alert is never lost because one output
(an unplugged serial cable, a full SD card) failed.
"""

from __future__ import annotations

from edge.events import Event
from edge.plugins import PluginConfig, Unavailable, discover

__all__ = ["Output", "OutputConfig", "Unavailable", "create", "registry"]


class OutputConfig(PluginConfig):
    pass


class Output:
    type_key: str = ""
    config_class: type[OutputConfig] = OutputConfig

    def __init__(self, config: OutputConfig) -> None:
        self.config = config

    def emit(self, event: Event) -> None:
        """Deliver one event; raise on failure (the dispatcher retries it later)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.type_key


def registry() -> dict[str, type[Output]]:
    return discover(__name__, Output)


def create(config: OutputConfig) -> Output:
    return registry()[config.type](config)
