"""Style transfer over many content/style pairs of different genres, judged by models that did not make it.

    python benchmarks/bench_transfer.py --model RUN/artifacts/checkpoints/best.ckpt \
        --judge conv=OTHER_RUN/.../best.ckpt --judge stats=LOGREG_RUN/.../best.ckpt \
        --root /path/to/gtzan --songs RUN/artifacts/data/split_tracks.csv --split test --pairs 36 --out /tmp/transfer [--notes] \
        [--converter converter.pt [--converter-model STYLE_ENCODER.ckpt]]

Songs come from one split of a run's `split_tracks.csv` (the transfer model's test split: songs it never trained on);
each becomes content once per other genre, with a random style song of that genre from the same split. Prints the
table (mean [95 % interval] over pairs, in %) and the paired differences against the brackets, writes it with every
output WAV under --out, and one JSON line of all values. `--notes`: also the notes kept against the content (note F1,
pitch Jaccard distance: basic-pitch's transcriptions, docs/style-transfer.md). `--converter`: also `--method convert`
with that converter (trained on rendered pairs), its style code by the style encoder it was trained with
(`--converter-model`; by default the one its file records), not by --model.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genre_style.errors import UserError, command  # noqa: E402


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--judge", action="append", required=True, help="NAME=MODEL (repeatable)")
    parser.add_argument("--root", required=True, help="the GTZAN-layout folder the songs are in")
    parser.add_argument("--songs", required=True, help="a run's artifacts/data/split_tracks.csv")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pairs", type=int, default=36)
    parser.add_argument("--seconds", type=float, default=8.0, help="each content's first SECONDS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="run only the entries whose name contains this (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_transfer")
    parser.add_argument("--notes", action="store_true", help="also the notes kept (note F1, pitch Jaccard; basic-pitch)")
    parser.add_argument("--converter", help="a converter file (python -m genre_style.style_transfer.converter): adds `convert`")
    parser.add_argument("--converter-model", help="the converter's style encoder (default: the one its file records)")
    args = parser.parse_args(argv)

    from genre_style.data.corpus import discover_tracks
    from genre_style.loading import load_model
    from genre_style.style_transfer import benchmark, notes, scores

    if args.notes:
        notes.check_available()  # before any work
    entries = list(benchmark.DEFAULT_ENTRIES)
    models = {}
    if args.converter:
        from genre_style.style_transfer.converter import ConverterModel

        converter = ConverterModel.load(args.converter)
        style_encoder = args.converter_model or converter.settings.get("style_encoder")
        if not style_encoder:
            raise UserError(
                f"--converter {args.converter} records no style encoder", "give it: --converter-model STYLE_ENCODER.ckpt"
            )
        models["convert"] = load_model(style_encoder)
        converter.check(models["convert"])  # its front-end, before any work
        entries.append(("convert", "convert", {"converter": args.converter}))
    entries = [e for e in entries if not args.only or any(part in e[0] for part in args.only)]
    if not entries:
        raise UserError(
            f"--only {args.only} matches no entry",
            f"use parts of {[e[0] for e in benchmark.DEFAULT_ENTRIES]} (convert: with --converter)",
        )

    with open(args.songs) as handle:
        chosen = {row["track_id"]: row["genre"] for row in csv.DictReader(handle) if row["split"] == args.split}
    tracks = discover_tracks(args.root, sorted(set(chosen.values())))
    songs = [(t.path, t.genre) for t in tracks if t.track_id in chosen]
    pairs = benchmark.pairs_from(songs, args.pairs, args.seed)
    embedder = load_model(args.model)
    judges = [scores.Judge(name, load_model(model)) for name, model in (j.split("=", 1) for j in args.judge)]
    results = benchmark.run_pairs(
        embedder, judges, pairs, args.out, args.seconds, entries, note_content=args.notes, models=models
    )
    brackets = [e[0] for e in entries if e[1] in ("inversion", "equalise") and "griffin" not in e[0]]
    default = next((e[0] for e in entries if e[0].endswith("(the default)")), None)
    table = results.markdown(against=brackets, differences=[("convert", default)] if models and default else [])
    heading = f"{len(pairs)} pairs from the {args.split} split of {args.songs}, {args.seconds:g} s of each content\n\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(heading + table + "\n")
    (args.out / "values.json").write_text(results.to_json())
    print(heading + table)
    print(results.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
