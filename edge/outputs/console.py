"""``type: console``: one readable line per event on stdout (or stderr), the output that always works.

It is also the fallback when no configured output can start, so an alert is never silent.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import Field

from edgefer.edge.events import Event, EventKind
from edgefer.edge.outputs import Output, OutputConfig


class ConsoleConfig(OutputConfig):
    type: Literal["console"] = "console"
    kinds: list[EventKind] = Field(["alert", "fault", "status"], min_length=1,
                                   description="which kinds of event to print (alert, fault, status)")
    stream: Literal["stdout", "stderr"] = Field("stdout", description="where the lines go")


class ConsoleOutput(Output):
    type_key = "console"
    config_class = ConsoleConfig
    config: ConsoleConfig

    def emit(self, event: Event) -> None:
        if event.kind in self.config.kinds:
            # looked up on each event, so a replaced sys.stdout (pytest, a redirecting service) is honoured
            print(event.line(), file=getattr(sys, self.config.stream), flush=True)
