"""Style transfer scored against the truth: rendered pairs (data=rendered), every method and baseline on the same pairs.

    python benchmarks/bench_transfer_rendered.py --root DATA_ROOT --model RUN0/artifacts/checkpoints/best.ckpt \
        --judge RUN1/artifacts/checkpoints/best.ckpt [--converter converter.pt] [--rendered KEY=VALUE ...] \
        --split test --pairs 32 --out /tmp/tr [--reuse] [--tracking-uri URI]

DATA_ROOT is the `data.source.root` both models were trained with under `data=rendered`, and `--rendered` repeats any
`data.rendered.KEY=VALUE` they were trained with (the corpus is found, not rendered again). A `--converter` must have
been trained on that same corpus (its training styles of its train pieces: checked before any work). The judge must
be another model (it measures the style distance). Prints the table (mean [95 % t-interval] over pairs; LSD in dB,
the style distance as a cosine distance, the rest in %), the paired differences against copy content, the equaliser
and Ulyanov & Lebedev's `features` (and, with a converter, against `convert`), then the same on the pairs whose target
style no model was trained on; writes them, every output WAV and a listening page (`index.html`: every pair's
content, style, true target and outputs as players, with the scores) under --out, and one JSON line of all values.
`--reuse` scores outputs already under --out instead of making them again (refused where --out's `made_by.json` names
another corpus, model or converter); `--tracking-uri` logs the page, the WAVs and the means to MLflow (experiment
genre-style-transfer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genre_style.errors import UserError, command  # noqa: E402


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="data.source.root of the data=rendered runs")
    parser.add_argument("--model", required=True, help="the transfer model (a checkpoint, run id or logged model)")
    parser.add_argument("--judge", required=True, help="another model: its embeddings give the style distance")
    parser.add_argument("--converter", help="a converter trained on the corpus (--method convert): adds its entries")
    parser.add_argument(
        "--rendered", action="append", default=[], metavar="KEY=VALUE", help="a data.rendered setting of the models' training"
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="run only the entries whose name contains this (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_transfer_rendered")
    parser.add_argument("--reuse", action="store_true", help="score outputs already under --out instead of making them")
    parser.add_argument("--tracking-uri", help="log the page, the WAVs and the means to this MLflow store")
    args = parser.parse_args(argv)

    from genre_style.data.rendered import RenderSpec, find_corpus
    from genre_style.loading import load_model
    from genre_style.style_transfer import listening, notes
    from genre_style.style_transfer import rendered_pairs as rp
    from genre_style.style_transfer.converter import ConverterModel

    corpus = find_corpus(args.root, RenderSpec.from_overrides(args.rendered))  # never renders: the models' corpus
    pairs = rp.rendered_pairs(corpus, args.split, args.pairs, args.seed)
    entries = list(rp.ENTRIES)
    against = list(rp.BRACKETS)
    if args.converter:
        ConverterModel.load(args.converter).check_corpus(corpus)  # no test piece or held-out style in its training
        entries += [
            ("convert", "convert", {"converter": args.converter}),
            ("convert (griffin-lim)", "convert", {"converter": args.converter, "resynthesis": "griffin-lim"}),
        ]
        against.append("convert")
    entries = [e for e in entries if not args.only or any(part in e[0] for part in args.only)]
    if not entries:
        raise UserError(
            f"--only {args.only} matches no entry", f"use parts of {[e[0] for e in rp.ENTRIES]} (convert: with --converter)"
        )
    made_by = {"corpus": corpus.key, "model": str(args.model), "converter": args.converter, "seed": args.seed}
    record = args.out / "made_by.json"
    if args.reuse and record.is_file() and json.loads(record.read_text()) != made_by:
        raise UserError(
            f"--reuse: the outputs under {args.out} were made with {record.read_text().strip()}, not {json.dumps(made_by)}",
            "give another --out, or drop --reuse to make them again",
        )
    args.out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(made_by))
    table = rp.run_rendered_pairs(
        load_model(args.model), load_model(args.judge), pairs, args.out, entries, note_content=notes.available(), reuse=args.reuse
    )
    held = sum(p.held_out for p in pairs)
    text = (
        f"{len(pairs)} pairs from the {args.split} split of {corpus.key} ({len(corpus.split_pieces(args.split))} pieces, "
        f"target styles {', '.join(corpus.styles)}; {held} pairs target a held-out style: {', '.join(corpus.held_out)})\n\n"
        + table.markdown(against)
    )
    if held:
        held_table = table.subset(True).markdown(against)
        text += f"\n\nOnly the {held} pairs whose target style no model was trained on:\n\n" + held_table
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "values.json").write_text(table.to_json())
    page = listening.write_page(table, args.out, f"Rendered pairs: {len(pairs)} from the {args.split} split", text.split("\n")[0])
    print(text)
    print(f"listening page: {page}")
    if args.tracking_uri:
        settings = {k: getattr(args, k) for k in ("root", "model", "judge", "converter", "rendered", "split", "pairs", "seed")}
        run = listening.log_run(args.out, args.tracking_uri, {**settings, "corpus": corpus.key}, table)
        print(f"logged to run {run} (experiment genre-style-transfer) in {args.tracking_uri}")
    print(table.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
