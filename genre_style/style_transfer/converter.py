"""A method trained to convert (`--method convert`): a content encoder, a style code from reference audio, and a
decoder trained to rebuild one rendering of a piece from another rendering's content and the target style's code.

The rendered corpus (`data=rendered`) gives what no real collection does: the same notes in two styles, clip for
clip. For a training piece, a clip in style A is the input, the same clip in style B the target, and the style code is
the mean embedding, by a trained model of this project (the style encoder, frozen: e.g. `experiment=best` trained on
`data=rendered`), of another piece's clips in style B: what a user gives as a style file. The converter:
content encoder (1-D convolutions over time, the mel bands as channels: what sounds when) -> feature-wise
modulation by the style code (FiLM) -> decoder -> the target's log-mel map, added to the input's (a residual: the
content's timing is kept for free; the network learns the change). Trained by mean squared error on maps
standardised per band; the held-out styles and the val/test pieces are never used, so the benchmark's test pairs
are pieces (and, for held-out targets, instruments) it never heard.

    python -m genre_style.style_transfer.converter --root DATA_ROOT --model STYLE_ENCODER.ckpt --out converter.pt \
        [--rendered KEY=VALUE ...]   # the data.rendered settings the style encoder was trained with, if not the defaults
    python -m genre_style.transfer content.wav style.wav --model STYLE_ENCODER.ckpt --method convert --converter converter.pt

Maps go back to audio as every method's do (`inversion.maps_to_audio`: the content's phase by default).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genre_style.errors import UserError, command
from genre_style.inference import Embedder

log = logging.getLogger(__name__)
FORMAT = 1  # the converter file's layout


def _network(n_mels: int, style_dim: int, channels: int) -> Any:
    import torch
    from torch import nn

    class Converter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.content = nn.Sequential(
                nn.Conv1d(n_mels, channels, 5, padding=2), nn.GELU(), nn.Conv1d(channels, channels, 5, padding=2), nn.GELU()
            )
            self.film = nn.Linear(style_dim, 2 * channels)
            self.decoder = nn.Sequential(
                nn.Conv1d(channels, channels, 5, padding=2), nn.GELU(), nn.Conv1d(channels, n_mels, 5, padding=2)
            )

        def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
            """`x` `[B, n_mels, T]` standardised maps, `code` `[B, style_dim]` -> the target's standardised maps."""
            h = self.content(x)
            scale, shift = self.film(code).unsqueeze(-1).chunk(2, dim=1)
            return x + self.decoder(h * (1 + scale) + shift)

    return Converter()


class ConverterModel:
    """A trained converter with what it needs at inference: its network, the maps' per-band standardisation, and the
    style encoder's embedding size and front-end (checked against the model it is used with)."""

    def __init__(self, network: Any, mean: np.ndarray, std: np.ndarray, settings: dict[str, Any]) -> None:
        self.network, self.mean, self.std, self.settings = network.eval(), mean, std, settings

    def save(self, path: Path) -> Path:
        import torch

        state = {
            "format": FORMAT,
            "state_dict": self.network.state_dict(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "settings": self.settings,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ConverterModel:
        import torch

        if not Path(path).is_file():
            raise UserError(
                f"--converter {path} does not exist", "train one: python -m genre_style.style_transfer.converter --help"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            settings = state["settings"]
        except Exception as exc:  # torch raises several kinds for a file that is not one
            raise UserError(f"--converter {path} is not a converter file ({exc})", "give the .pt that training wrote") from None
        network = _network(settings["n_mels"], settings["style_dim"], settings["channels"])
        network.load_state_dict(state["state_dict"])
        mean, std = (np.asarray(state[k], dtype=np.float32) for k in ("mean", "std"))
        return cls(network, mean, std, settings)

    def check(self, embedder: Embedder) -> None:
        """The style encoder it is used with reads audio as the one it was trained with did."""
        spec = embedder.spec.as_dict()
        trained = self.settings["spec"]
        if {k: spec.get(k) for k in trained} != trained:
            raise UserError(
                "this converter was trained with a style encoder of another front-end than --model's",
                f"use the --model it was trained with ({self.settings.get('style_encoder', '?')})",
            )

    def check_corpus(self, corpus: Any) -> None:
        """Scored on `corpus`, it must have been trained on that corpus (the same rendering, pieces, styles and split)
        and on its training styles of its train pieces only: else a test pair's piece or held-out style leaks in."""
        trained_on = self.settings.get("corpus")
        if trained_on is not None and trained_on != corpus.key:
            raise UserError(
                f"this converter was trained on the rendered corpus {trained_on}, not on {corpus.key}",
                "give the same --rendered settings to the converter's training and the benchmark (those of the models' data.rendered)",
            )
        train = set(corpus.split_pieces("train"))
        leaked = [p for p in self.settings["pieces"] if p not in train]
        leaked += [s for s in self.settings["styles"] if s not in corpus.training_styles]
        if leaked:
            raise UserError(
                f"this converter was trained on {sorted(leaked)}: val/test pieces or held-out styles of {corpus.key}",
                "train it again on this corpus: python -m genre_style.style_transfer.converter --root ... --rendered ...",
            )

    def convert(self, maps: np.ndarray, code: np.ndarray) -> np.ndarray:
        """`[n, n_mels, T]` dB maps and one style code `[D]` -> `[n, n_mels, T]` dB maps in the code's style."""
        import torch

        x = (maps - self.mean) / self.std
        with torch.no_grad():
            y = self.network(
                torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(np.tile(code, (len(maps), 1)), dtype=torch.float32)
            )
        return y.numpy() * self.std + self.mean


def style_code(embedder: Embedder, clips: np.ndarray) -> np.ndarray:
    """The style encoder's mean embedding of `[n, samples]` reference clips."""
    embeddings, _ = embedder.outputs(embedder.preprocessing.features(clips))
    return embeddings.mean(axis=0).astype(np.float32)


def convert_maps(embedder: Embedder, content: np.ndarray, style: Any, converter: str | None = None, **_: Any) -> np.ndarray:
    """`methods.MAP_METHODS["convert"]`: the content clips' maps `[n, n_mels, T]` (dB) converted to `style`'s code."""
    from genre_style.style_transfer import inversion

    if not converter:
        raise UserError(
            "--method convert needs --converter FILE", "train one: python -m genre_style.style_transfer.converter --help"
        )
    model = ConverterModel.load(converter)
    model.check(embedder)
    return model.convert(inversion.clip_maps(content, embedder.spec), style_code(embedder, style.clips))


# --- training ------------------------------------------------------------------------------------------------------


def _corpus_maps(embedder: Embedder, corpus: Any, styles: Sequence[str], pieces: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`maps[style, piece, clip]` `[S, P, n, n_mels, T]` (dB, half-clip hop, aligned across styles: the same notes at
    the same times) and `codes[style, piece]` `[S, P, D]` (the style encoder's mean embedding of each rendering)."""
    from genre_style.data.audio import load_mono
    from genre_style.style_transfer import inversion

    maps, codes = [], []
    for style in styles:
        row_maps, row_codes = [], []
        for piece in pieces:
            signal = load_mono(corpus.path(style, piece), embedder.spec.sample_rate)
            clips = inversion.song_clips(signal, embedder.spec)
            row_maps.append(inversion.clip_maps(clips, embedder.spec))
            row_codes.append(style_code(embedder, clips[::2]))
        maps.append(np.stack(row_maps))
        codes.append(np.stack(row_codes))
    return np.stack(maps).astype(np.float32), np.stack(codes)


def _batches(maps: np.ndarray, codes: np.ndarray, batch: int, rng: np.random.Generator) -> Any:
    """Random (input, code, target) batches: a clip of a piece in style a, the same clip in style b != a, the code of
    style b on another piece."""
    n_styles, n_pieces, n_clips = maps.shape[:3]
    steps = max(1, n_styles * n_pieces * n_clips // batch)
    for _ in range(steps):
        a = rng.integers(n_styles, size=batch)
        b = (a + rng.integers(1, n_styles, size=batch)) % n_styles
        p = rng.integers(n_pieces, size=batch)
        q = (p + rng.integers(1, n_pieces, size=batch)) % n_pieces
        k = rng.integers(n_clips, size=batch)
        yield maps[a, p, k], codes[b, q], maps[b, p, k]


def train_converter(
    embedder: Embedder,
    corpus: Any,
    epochs: int = 20,
    batch: int = 64,
    lr: float = 2e-3,
    channels: int = 128,
    seed: int = 0,
    style_encoder: str = "",
) -> tuple[ConverterModel, list[dict[str, float]]]:
    """A converter trained on the corpus's training styles and train pieces (val pieces for the per-epoch val loss)."""
    import torch

    from genre_style.style_transfer import inversion

    inversion.check_invertible(embedder.spec)
    styles = corpus.training_styles
    train, val = corpus.split_pieces("train"), corpus.split_pieces("val")
    if len(styles) < 2 or len(train) < 2 or len(val) < 2:
        raise UserError("a converter needs two training styles and two train and two val pieces", "render more chorales")
    train_maps, train_codes = _corpus_maps(embedder, corpus, styles, train)
    val_maps, val_codes = _corpus_maps(embedder, corpus, styles, val)
    mean = train_maps.mean(axis=(0, 1, 2, 4))[:, None].astype(np.float32)
    std = (train_maps.std(axis=(0, 1, 2, 4))[:, None] + 1e-3).astype(np.float32)
    standard = [(m - mean) / std for m in (train_maps, val_maps)]
    torch.manual_seed(seed)
    network = _network(train_maps.shape[-2], train_codes.shape[-1], channels)
    optimiser = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    rng, val_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    val_batches = list(_batches(standard[1], val_codes, batch, val_rng))  # fixed: epochs compare on the same pairs
    history = []
    for epoch in range(epochs):
        started, losses = time.time(), []
        network.train()
        for x, code, y in _batches(standard[0], train_codes, batch, rng):
            loss = torch.nn.functional.mse_loss(network(torch.as_tensor(x), torch.as_tensor(code)), torch.as_tensor(y))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.detach().item())
        network.eval()
        with torch.no_grad():
            val_loss = float(
                np.mean(
                    [
                        torch.nn.functional.mse_loss(network(torch.as_tensor(x), torch.as_tensor(c)), torch.as_tensor(y)).item()
                        for x, c, y in val_batches
                    ]
                )
            )
            copy_loss = float(np.mean([np.mean(np.square(x - y)) for x, _, y in val_batches]))
        history.append(
            {"epoch": epoch, "train_mse": float(np.mean(losses)), "val_mse": val_loss, "val_mse_copy_content": copy_loss}
        )
        log.info(
            "epoch %d: train mse %.3f, val mse %.3f (copy content: %.3f), %.0f s",
            epoch,
            np.mean(losses),
            val_loss,
            copy_loss,
            time.time() - started,
        )
    known = ("sample_rate", "segment_samples", "features", "n_fft", "frame_hop", "n_mels")
    settings = {
        "n_mels": int(train_maps.shape[-2]), "style_dim": int(train_codes.shape[-1]), "channels": channels,
        "spec": {k: embedder.spec.as_dict()[k] for k in known}, "style_encoder": style_encoder,
        "styles": list(styles), "pieces": list(train), "epochs": epochs, "corpus": corpus.key,
    }  # fmt: skip
    return ConverterModel(network, mean, std, settings), history


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.style_transfer.converter", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="data.source.root of a data=rendered corpus")
    parser.add_argument("--model", required=True, help="the style encoder: a model trained with data=rendered (log-mel)")
    parser.add_argument("--out", type=Path, required=True, help="the converter file to write (.pt)")
    parser.add_argument(
        "--rendered",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a data.rendered setting the style encoder was trained with, if not the default (repeatable)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.epochs < 1:
        raise UserError("--epochs must be >= 1", "e.g. --epochs 20")
    import json

    from genre_style.data.rendered import RenderSpec, render_corpus
    from genre_style.loading import load_model

    spec = RenderSpec.from_overrides(args.rendered)  # before the model loads: a typo costs nothing
    embedder = load_model(args.model)
    corpus = render_corpus(args.root, spec)
    model, history = train_converter(
        embedder, corpus, args.epochs, channels=args.channels, seed=args.seed, style_encoder=str(args.model)
    )
    model.save(args.out)
    args.out.with_suffix(".json").write_text(json.dumps({"settings": model.settings, "history": history}, indent=2))
    print(f"-> {args.out} (val mse {history[-1]['val_mse']:.3f}; copying the content: {history[-1]['val_mse_copy_content']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
