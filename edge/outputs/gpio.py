"""``type: gpio``: a buzzer and an LED on the Pi's header, through gpiozero.

Why: the driver should notice an alert without looking at a screen. The LED is on while any alert is active
(tracked per rule from raise/escalate/clear events) and blinks while a fault is active (see
:func:`edgefer.edge.outputs.fault_subject`); an alert wins over a fault. The buzzer sounds for alert levels in
``buzz_levels``, with the pattern ``beeps`` gives that level (or the nearest lower level that has one): by
default a few short beeps at level 1, fast beeps at level 2, a continuous tone from level 3.

gpiozero is imported when the output is created, never at discovery. ``pin_factory: mock`` uses gpiozero's
MockFactory, for tests and a bench without a Pi. The pigpio pin factory talks to its daemon over TCP, which the
network guard (:mod:`edgefer.edge.privacy`) refuses: use lgpio or RPi.GPIO (what Raspberry Pi OS ships).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgefer.edge.events import Event
from edgefer.edge.outputs import Output, OutputConfig, fault_subject
from edgefer.edge.plugins import Unavailable

INSTALL_HINT = ("on Raspberry Pi OS: sudo apt install python3-gpiozero python3-lgpio (venv made with "
                "--system-site-packages), or pip install gpiozero lgpio")


class Beep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_s: float = Field(ge=0.02, le=5.0, description="seconds the buzzer sounds per beep")
    off_s: float = Field(ge=0.0, le=5.0, description="seconds of quiet between beeps; 0: one continuous tone")
    count: int = Field(0, ge=0, le=100, description="beeps, then quiet while the LED stays on; 0: until cleared")


DEFAULT_BEEPS = {1: Beep(on_s=0.1, off_s=0.4, count=3), 2: Beep(on_s=0.15, off_s=0.15), 3: Beep(on_s=1.0, off_s=0.0)}


class GpioConfig(OutputConfig):
    type: Literal["gpio"] = "gpio"
    buzzer_pin: int | None = Field(17, ge=0, le=27, description="BCM number of the buzzer's pin; null: no buzzer")
    led_pin: int | None = Field(27, ge=0, le=27, description="BCM number of the LED's pin; null: no LED")
    active_high: bool = Field(True, description="false when the buzzer and LED are wired to sound/light on low")
    buzz_levels: list[int] = Field(list(range(1, 10)), description="alert levels that sound the buzzer "
                                   "(default all, 1..9; []: never)")
    beeps: dict[int, Beep] = Field(default_factory=lambda: dict(DEFAULT_BEEPS), min_length=1,
                                   description="alert level -> beep pattern; higher levels use the nearest lower")
    fault_blink_s: float = Field(0.5, ge=0.05, le=5.0, description="LED on and off time while a fault is active")
    pin_factory: Literal["default", "mock"] = Field("default", description="mock: gpiozero's MockFactory (no Pi)")

    @field_validator("buzz_levels")
    @classmethod
    def _levels(cls, levels: list[int]) -> list[int]:
        if any(not 1 <= level <= 9 for level in levels):
            raise ValueError(f"buzz_levels {levels}: alert levels are 1..9")
        return levels

    @field_validator("beeps")
    @classmethod
    def _beep_levels(cls, beeps: dict[int, Beep]) -> dict[int, Beep]:
        if any(not 1 <= level <= 9 for level in beeps):
            raise ValueError(f"beeps {sorted(beeps)}: alert levels are 1..9")
        return beeps

    @model_validator(mode="after")
    def _pins(self) -> GpioConfig:
        if self.buzzer_pin is not None and self.buzzer_pin == self.led_pin:
            raise ValueError(f"buzzer_pin and led_pin are both {self.led_pin}")
        return self

    def pattern(self, level: int) -> Beep:
        lower = [k for k in self.beeps if k <= level]
        return self.beeps[max(lower) if lower else min(self.beeps)]


class GpioOutput(Output):
    type_key = "gpio"
    config_class = GpioConfig
    config: GpioConfig

    def __init__(self, config: GpioConfig) -> None:
        super().__init__(config)
        try:
            import gpiozero
            from gpiozero.exc import GPIOZeroError, PinFactoryFallback
        except ImportError as exc:
            raise Unavailable(f"gpio output: gpiozero is not installed ({exc}); {INSTALL_HINT}") from None
        factory: Any = None
        if config.pin_factory == "mock":
            from gpiozero.pins.mock import MockFactory

            factory = MockFactory()
        self.buzzer: Any = None
        self.led: Any = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PinFactoryFallback)
                if config.buzzer_pin is not None:
                    self.buzzer = gpiozero.Buzzer(config.buzzer_pin, active_high=config.active_high,
                                                  pin_factory=factory)
                if config.led_pin is not None:
                    self.led = gpiozero.LED(config.led_pin, active_high=config.active_high, pin_factory=factory)
        except GPIOZeroError as exc:
            self.close()
            raise Unavailable(f"gpio output: no usable GPIO here ({exc}); {INSTALL_HINT}; "
                              "without a Pi set pin_factory: mock") from None
        self.alerts: dict[str, int] = {}  # rule -> active level
        self.faults: set[str] = set()
        self.buzzing: Beep | None = None  # the pattern sounding now
        self.led_mode: Literal["off", "on", "blink"] = "off"

    def describe(self) -> str:
        return f"gpio:{self.config.buzzer_pin}/{self.config.led_pin}"

    def emit(self, event: Event) -> None:
        if event.kind == "alert":
            if event.level > 0 and event.action != "clear":
                self.alerts[event.name] = event.level
                self._sound(restart=True)
            else:
                self.alerts.pop(event.name, None)
                self._sound(restart=False)
        elif event.kind == "fault":
            if event.level > 0:
                self.faults.add(fault_subject(event))
            else:
                self.faults.discard(fault_subject(event))
        self._light()

    def close(self) -> None:
        for device in (self.buzzer, self.led):
            if device is not None:
                try:
                    device.off()
                finally:
                    device.close()

    # -- internals -------------------------------------------------------------------------------------

    def _sound(self, restart: bool) -> None:
        levels = [lvl for lvl in self.alerts.values() if lvl in self.config.buzz_levels]
        pattern = self.config.pattern(max(levels)) if levels else None
        if pattern is not None and not restart and pattern.count:
            pattern = None  # a clear leaves a lower alert: only a pattern that lasts until cleared goes on
        if pattern == self.buzzing and not restart:
            return
        self.buzzing = pattern
        if self.buzzer is None:
            return
        if pattern is None:
            self.buzzer.off()
        elif pattern.off_s == 0:
            self.buzzer.on()
        else:
            self.buzzer.beep(on_time=pattern.on_s, off_time=pattern.off_s, n=pattern.count or None)

    def _light(self) -> None:
        mode: Literal["off", "on", "blink"] = "on" if self.alerts else "blink" if self.faults else "off"
        if mode == self.led_mode:
            return
        self.led_mode = mode
        if self.led is None:
            return
        if mode == "on":
            self.led.on()
        elif mode == "blink":
            self.led.blink(on_time=self.config.fault_blink_s, off_time=self.config.fault_blink_s)
        else:
            self.led.off()
