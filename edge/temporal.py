"""Per-frame driver state as pure functions of (state, observation, timestamp).

Expression probabilities are smoothed with an exponential moving average whose weight comes from the time
since the last frame and a half-life, so the result does not depend on the frame rate (a Pi at 12 fps and a
replay at 30 fps agree). Seconds without a face are counted from timestamps, never from frame counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class SmoothingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    half_life_s: float = Field(0.5, gt=0, le=60, description="a reading's weight halves after this many seconds")
    max_gap_s: float = Field(2.0, gt=0, le=600, description="after a longer gap the average restarts")


@dataclass(frozen=True)
class DriverState:
    probs: np.ndarray | None = None  # smoothed expression probabilities
    last_seen: float | None = None  # timestamp of the last frame with a face
    first_frame: float | None = None


def observe(state: DriverState, probs: np.ndarray | None, ts: float, cfg: SmoothingConfig) -> DriverState:
    """One frame: ``probs`` are the driver's expression probabilities, or None when no face was found."""
    first = state.first_frame if state.first_frame is not None else ts
    if probs is None:
        return DriverState(state.probs, state.last_seen, first)
    probs = np.asarray(probs, dtype=np.float64)
    if state.probs is None or state.last_seen is None or ts - state.last_seen > cfg.max_gap_s:
        return DriverState(probs, ts, first)
    keep = 0.5 ** (max(ts - state.last_seen, 0.0) / cfg.half_life_s)
    return DriverState(keep * state.probs + (1 - keep) * probs, ts, first)


def seconds_without_face(state: DriverState, ts: float) -> float:
    """Time since the last face (or since the first frame if none was ever seen)."""
    since = state.last_seen if state.last_seen is not None else state.first_frame
    return 0.0 if since is None else max(ts - since, 0.0)
