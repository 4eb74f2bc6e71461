"""Write board/reference/NAME.json from this board's own runs of `edgefer bench --source demo --json` and
`edgefer bench-models --threads N --runs R --json` (run it on the board itself, performance governor):

    python tools/board_reference.py rpi5 --note "Raspberry Pi 5, 8 GB, active cooler" [--threads 4]

The figures are exactly what the two commands print; nothing is estimated or carried over.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "board" / "reference"


def _edgefer_json(*args: str) -> dict:
    cmd = [sys.executable, "-m", "edgefer", *args, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="file name under board/reference/ (without .json)")
    ap.add_argument("--note", default="", help="what the board is: model, memory, cooling, OS")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--out-dir", type=Path, default=REFERENCE_DIR)
    args = ap.parse_args()
    bench = _edgefer_json("bench", "--source", "demo")
    models = _edgefer_json("bench-models", "--threads", str(args.threads), "--runs", str(args.runs))
    today = datetime.date.today().isoformat()
    note = (f"{args.note + '. ' if args.note else ''}Measured {today} with `edgefer bench --source demo --json` "
            f"and `edgefer bench-models --threads {args.threads} --runs {args.runs} --json` "
            "(tools/board_reference.py); noisy at the 10 us level.")
    record = {"board": args.name, "note": note, "bench": bench, "models": models}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{args.name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}: {bench['fps']} fps on the demo, "
          + ", ".join(f"{m['model']} {m['threads'][0]['median_ms']} ms" for m in models["models"]))


if __name__ == "__main__":
    main()
