"""Style transfer scored against the truth: rendered pairs (data=rendered), every method and baseline on the same pairs.

    python benchmarks/bench_transfer_rendered.py --root DATA_ROOT --model RUN0/artifacts/checkpoints/best.ckpt \
        --judge RUN1/artifacts/checkpoints/best.ckpt [--converter converter.pt] --split test --pairs 24 --out /tmp/tr

DATA_ROOT is the `data.root` both models were trained with under `data=rendered` (the corpus is rendered there with
`--chorales`/`--seconds`/the default styles, as the config's defaults do: found, not rendered again). The judge must
be another model (it measures the style distance). Prints the table (mean [95 % t-interval] over pairs; LSD in dB,
the style distance as a cosine distance, the rest in %), the paired differences against copy content, the equaliser
and Ulyanov & Lebedev's `features`, then the same on the pairs whose target style no model was trained on; writes
them with every output WAV under --out, and one JSON line of all values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="data.root of the data=rendered runs")
    parser.add_argument("--model", required=True, help="the transfer model (a checkpoint, run id or logged model)")
    parser.add_argument("--judge", required=True, help="another model: its embeddings give the style distance")
    parser.add_argument("--converter", help="a converter trained on the corpus (--method convert): adds its entries")
    parser.add_argument("--chorales", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--split", default="test")
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="run only the entries whose name contains this (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_transfer_rendered")
    args = parser.parse_args()

    from genre_style.data.rendered import RenderSpec, render_corpus
    from genre_style.loading import load_model
    from genre_style.style_transfer import notes
    from genre_style.style_transfer import rendered_pairs as rp

    corpus = render_corpus(args.root, RenderSpec(chorales=args.chorales, seconds=args.seconds))
    pairs = rp.rendered_pairs(corpus, args.split, args.pairs, args.seed)
    entries = list(rp.ENTRIES)
    if args.converter:
        entries += [
            ("convert (content-phase)", "convert", {"converter": args.converter}),
            ("convert (griffin-lim)", "convert", {"converter": args.converter, "resynthesis": "griffin-lim"}),
        ]
    entries = [e for e in entries if not args.only or any(part in e[0] for part in args.only)]
    table = rp.run_rendered_pairs(
        load_model(args.model), load_model(args.judge), pairs, args.out, entries, note_content=notes.available()
    )
    held = sum(p.held_out for p in pairs)
    text = (
        f"{len(pairs)} pairs from the {args.split} split of {corpus.folder} ({len(corpus.split_pieces(args.split))} pieces, "
        f"target styles {', '.join(corpus.styles)}; {held} pairs target a held-out style: {', '.join(corpus.held_out)})\n\n"
        + table.markdown()
    )
    if held:
        text += f"\n\nOnly the {held} pairs whose target style no model was trained on:\n\n" + table.subset(True).markdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "values.json").write_text(table.to_json())
    print(text)
    print(table.to_json())


if __name__ == "__main__":
    main()
