"""`python -m genre_style.transfer CONTENT STYLE --model MODEL --out out.wav`: a song moved toward a style.

CONTENT is an audio file (the whole song, or its first --seconds); STYLE an audio file or a genre name (that genre's
songs under --style-root, by default the folder the model was trained on). MODEL is a checkpoint, an MLflow run id or
a logged model, as everywhere. Methods (genre_style/style_transfer/methods.py): `latent` takes half the equaliser's
move (`--equalise 0.5`), then moves the clips' codes toward the style's and applies the decoder's change; `features` optimises the map so the encoder's Gram matrices move to the
style's; `convert` runs a converter trained on rendered pairs (--converter FILE; MODEL is its style encoder).
The brackets `inversion` and `equalise` can be asked for by name too, to listen to what they do.
--judge MODEL (repeatable) scores the output read back from the WAV file with other models; the chroma and onset
correlations with the content, and the notes kept (note F1, pitch Jaccard distance; where basic-pitch is installed),
say how much of it is left. Inputs, output, settings and scores go to an MLflow run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from genre_style.errors import UserError, command
from genre_style.style_transfer import EXPERIMENT, transfer_experiment

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger("genre_style.transfer")


def _parser() -> argparse.ArgumentParser:
    from genre_style.style_transfer.inversion import RESYNTHESES
    from genre_style.style_transfer.methods import BRACKETS, METHODS

    parser = argparse.ArgumentParser(prog="python -m genre_style.transfer", description=__doc__.splitlines()[0])
    parser.add_argument("content", help="the song to transfer: an audio file")
    parser.add_argument("style", help="an audio file, or a genre name (its songs under --style-root)")
    parser.add_argument("--model", required=True, help="a checkpoint (.ckpt), an MLflow run id, or models:/<name>/<version>")
    parser.add_argument("--out", type=Path, help="the output WAV (default outputs/transfer/<content>-to-<style>.wav)")
    parser.add_argument("--method", default="latent", choices=[*METHODS, *BRACKETS[:2]], help="default latent")
    parser.add_argument(
        "--strength",
        default="auto",
        help="latent: how far codes move toward the style, or auto: the least that convinces the model",
    )
    parser.add_argument(
        "--equalise",
        type=float,
        help="first move the content's mean spectrum this fraction (0-1, in dB) toward the style's "
        "(default: 0.5 for latent, 0 for features)",
    )
    parser.add_argument("--steps", type=int, default=150, help="features: optimisation steps (150)")
    parser.add_argument("--style-weight", type=float, default=1.0, help="features: weight of the Gram term (1.0)")
    parser.add_argument("--content-weight", type=float, default=1.0, help="features: weight of the content term (1.0)")
    parser.add_argument("--genre-weight", type=float, default=0.0, help="features: weight of the target-genre term (0)")
    parser.add_argument("--converter", help="convert: the converter file (python -m genre_style.style_transfer.converter)")
    parser.add_argument("--resynthesis", default=RESYNTHESES[0], choices=RESYNTHESES, help="maps to audio (content-phase)")
    parser.add_argument("--seconds", type=float, help="use only the content's first SECONDS")
    parser.add_argument("--style-root", help="a GTZAN-layout folder for a genre-name STYLE (default: the model's data)")
    parser.add_argument("--style-clips", type=int, default=40, help="at most this many style clips (40)")
    parser.add_argument("--judge", action="append", default=[], help="a model that scores the output (repeatable)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--no-log", action="store_true", help="log nothing to MLflow")
    return parser


def spectrogram_figure(content: Any, output: Any, spec: Any, path: Path, title: str) -> Path:
    """Before/after log-mel spectrograms of the whole song, with the model's front-end settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genre_style.data.spectral import log_mel

    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, constrained_layout=True)
    seconds = len(content) / spec.sample_rate
    images = [log_mel(s[None, :], spec.sample_rate, spec.n_fft, spec.frame_hop, spec.n_mels)[0] for s in (content, output)]
    top = max(float(image.max()) for image in images)  # one colour scale: a level change shows
    for ax, image, name in zip(axes, images, ("content", "output")):
        extent = (0.0, seconds, 0.0, float(spec.n_mels))
        shown = ax.imshow(image, origin="lower", aspect="auto", extent=extent, vmin=top - 80, vmax=top)
        ax.set_ylabel(f"{name}\nmel band")
        fig.colorbar(shown, ax=ax, label="dB")
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _log_run(args: argparse.Namespace, files: dict[str, Path], settings: dict[str, Any], metrics: dict[str, float]) -> None:
    from genre_style.tracking.mlflow_store import check_tracking_server, default_tracking_uri, open_client

    uri = args.tracking_uri or default_tracking_uri()
    if uri.startswith("http"):
        check_tracking_server(uri)
    client = open_client(uri)
    experiment_id = transfer_experiment(client, uri)
    run = client.create_run(experiment_id, tags={"mlflow.runName": files["output"].stem, "task": "transfer"})
    from mlflow.entities import Metric, Param

    params = [Param(k, str(v)[:500]) for k, v in settings.items()]
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()], params=params)
    for path in files.values():
        client.log_artifact(run.info.run_id, str(path), "transfer")
    client.set_terminated(run.info.run_id)
    print(f"logged to run {run.info.run_id} (experiment {EXPERIMENT}) in {uri}")


def _strength(value: str) -> float | None:
    """`auto` (None: guided by the transfer model's own classifier, methods.latent_maps) or a number >= 0."""
    if value == "auto":
        return None
    try:
        strength = float(value)
    except ValueError:
        strength = -1.0
    if strength < 0:
        raise UserError(f"--strength {value} is neither auto nor a number >= 0", "e.g. --strength auto or --strength 2")
    return strength


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    strength = _strength(args.strength)
    if args.steps < 1 or args.style_clips < 1:
        raise UserError("--steps and --style-clips must be >= 1", "e.g. --steps 150 --style-clips 40")
    import soundfile as sf

    from genre_style.loading import load_model
    from genre_style.style_transfer import methods, notes, scores, sources

    embedder = load_model(args.model, args.tracking_uri)
    judges = [scores.Judge(f"judge{i}", load_model(judge, args.tracking_uri)) for i, judge in enumerate(args.judge, 1)]
    spec = embedder.spec
    content = sources.load_audio(args.content, spec, args.seconds)
    style = sources.load_style(args.style, spec, args.style_root or sources.training_root(args.model), args.style_clips)
    for judge in judges:
        if style.genre is not None:
            judge.check_genre(style.genre)  # before the work, not after
    outputs = Path(os.environ.get("GENRE_STYLE_OUTPUTS") or "outputs")
    out = args.out or outputs / "transfer" / f"{Path(args.content).stem}-to-{Path(args.style).stem}-{args.method}.wav"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "method": args.method,
        "resynthesis": args.resynthesis,
        "strength": strength,
        "equalise": methods.DEFAULT_EQUALISE.get(args.method, 0.0) if args.equalise is None else args.equalise,
        "steps": args.steps,
        "style_weight": args.style_weight,
        "content_weight": args.content_weight,
        "genre_weight": args.genre_weight,
        "converter": args.converter,
    }
    log.info("transfer: %s -> %s by %s", args.content, style.name, args.method)
    result = methods.transfer(embedder, content, style, progress=sys.stderr.isatty(), **settings)
    sf.write(out, result, spec.sample_rate)
    figure = spectrogram_figure(content, result, spec, out.with_suffix(".png"), f"{Path(args.content).stem} -> {style.name}")
    print(f"-> {out} ({len(result) / spec.sample_rate:.1f} s at {spec.sample_rate} Hz), {figure}")
    content_notes = None
    if notes.available():  # the notes kept: optional (the [transfer] extra)
        content_notes = notes.transcribe(content, spec.sample_rate)
    else:
        log.info("note-level content scores skipped (basic-pitch not installed: %s)", notes.INSTALL)
    metrics = scores.content_kept(content, result, spec.sample_rate, content_notes)
    for judge in judges:
        if style.genre is None:
            log.info("the style's genre is unknown (a file): judges give their verdicts only")
            verdict = judge.embedder.embed_file(out)
            print(f"judge {judge.name}: {verdict.genre}")
            continue
        metrics.update({f"{judge.name}/{k}": v for k, v in judge.score(out, style.genre).items()})
    print("  ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    if not args.no_log:
        files = {"output": out, "figure": figure}
        if Path(args.content).is_file():
            files["content"] = Path(args.content)
        if Path(args.style).is_file():
            files["style"] = Path(args.style)
        inputs = {"content": args.content, "style": args.style, "model": args.model}
        inputs.update({judge.name: path for judge, path in zip(judges, args.judge)})
        _log_run(args, files, {**inputs, **settings, "strength": args.strength}, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
