"""Per-inference latency of TFLite models, measured side by side so machine noise hits every model alike."""

from __future__ import annotations

import time

import numpy as np


class TimedModel:
    """One model ready to run on a fixed random input; ``once()`` times set_tensor + invoke + get_tensor."""

    def __init__(self, path: str, threads: int) -> None:
        from edgefer.edge.backends.litert import load_interpreter_class

        interpreter_class, self.library = load_interpreter_class()
        self.interpreter = interpreter_class(model_path=path, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]
        rng = np.random.default_rng(0)
        dtype = np.dtype(self.inp["dtype"])
        if dtype.kind == "f":
            self.sample = rng.random(self.inp["shape"], dtype=np.float32).astype(dtype)
        else:
            info = np.iinfo(dtype)
            self.sample = rng.integers(info.min, info.max, self.inp["shape"], endpoint=True).astype(dtype)
        self.samples: list[float] = []

    def once(self) -> float:
        t0 = time.perf_counter()
        self.interpreter.set_tensor(self.inp["index"], self.sample)
        self.interpreter.invoke()
        self.interpreter.get_tensor(self.out["index"])
        return time.perf_counter() - t0


def compare_latency(paths: dict[str, str], threads: int = 1, rounds: int = 2000, warmup: int = 200) -> dict:
    """Median / p90 / p99 ms per inference (set_tensor + invoke + get_tensor) for each model, interleaved."""
    models = {name: TimedModel(path, threads) for name, path in paths.items()}
    for _ in range(warmup):
        for m in models.values():
            m.once()
    for _ in range(rounds):
        for m in models.values():
            m.samples.append(m.once())
    result = {}
    for name, m in models.items():
        ms = np.array(m.samples) * 1000
        result[name] = {
            "path": paths[name], "median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "input": f"{np.dtype(m.inp['dtype']).name}{list(m.inp['shape'])}",
            "runs": rounds, "threads": threads, "library": m.library,
        }
    return result
