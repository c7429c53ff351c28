"""Between audio and a log-mel front-end's maps, both ways, with the front-end's own parameters.

A song is cut into clips that overlap by half (`song_clips`), each clip's map is computed exactly as in training
(`clip_maps`), maps come back to samples either as a time-varying filter of the content's own STFT with its phase
(`maps_to_clips_with_phase`) or from the map alone (`maps_to_clips`: the filter bank's pseudo-inverse, then
Griffin-Lim), and the clips are overlap-added under Hann windows (`overlap_add`), so no seam clicks where two
independently inverted clips meet.
"""

from __future__ import annotations

import numpy as np

from genre_style.data import front_ends
from genre_style.data.audio import ClipSpec
from genre_style.errors import UserError

GRIFFIN_LIM_ITERATIONS = 32


def check_invertible(spec: ClipSpec) -> None:
    """Only a log-mel map can be turned back into audio here: say which front-end the model reads otherwise."""
    if spec.features not in front_ends.INVERTIBLE:
        raise UserError(
            f"style transfer inverts {' or '.join(front_ends.INVERTIBLE)} maps; this model reads features={spec.features}",
            f"use a model trained on features={front_ends.INVERTIBLE[0]}, e.g. one of experiment=best",
        )


def hop_of(spec: ClipSpec) -> int:
    """Clips of a song for transfer overlap by half, whatever the training hop."""
    return spec.segment_samples // 2


def song_clips(signal: np.ndarray, spec: ClipSpec, name: str = "the content") -> np.ndarray:
    """`[samples] -> [n, segment_samples]`: clips every half clip, the last one padded to cover the end."""
    length = spec.segment_samples
    if len(signal) < length:
        seconds = length / spec.sample_rate
        raise UserError(
            f"{name} is {len(signal) / spec.sample_rate:.2f} s long, shorter than one of the model's clips ({seconds:.2f} s)",
            f"give at least {seconds:.1f} s of audio",
        )
    hop = hop_of(spec)
    n = 1 + int(np.ceil((len(signal) - length) / hop))
    padded = np.pad(np.asarray(signal, dtype=np.float32), (0, (n - 1) * hop + length - len(signal)))
    return np.lib.stride_tricks.sliding_window_view(padded, length)[::hop].copy()


def overlap_add(clips: np.ndarray, hop: int, length: int) -> np.ndarray:
    """`[n, L] -> [length]`: clips placed every `hop` samples under a Hann window, divided by the windows' sum
    (so a signal cut by `song_clips` and put back unchanged comes back as it was, edges included)."""
    n, size = clips.shape
    window = np.hanning(size + 2)[1:-1].astype(np.float32)
    total = (n - 1) * hop + size
    out, weight = np.zeros(total, dtype=np.float64), np.zeros(total, dtype=np.float64)
    for i, clip in enumerate(clips):
        out[i * hop : i * hop + size] += window * clip
        weight[i * hop : i * hop + size] += window
    return (out / np.maximum(weight, 1e-8))[:length].astype(np.float32)


def maps_to_clips(db_maps: np.ndarray, spec: ClipSpec, n_iter: int = GRIFFIN_LIM_ITERATIONS, seed: int = 0) -> np.ndarray:
    """`[n, n_mels, frames]` mel power in dB (as the front-end computes it) -> `[n, segment_samples]` float32.
    The mel power goes back to a linear spectrogram through the pseudo-inverse of the front-end's own filter bank
    (`spectral.mel_filterbank`), clipped at zero: as close as librosa's non-negative least squares (`mel_to_stft`,
    the same mel error after Griffin-Lim, measured) and 100x faster. Then librosa's Griffin-Lim with the front-end's
    FFT size and hop, centred Hann frames, from a fixed random phase, so it repeats."""
    import librosa

    from genre_style.data.spectral import mel_filterbank

    power = librosa.db_to_power(np.asarray(db_maps, dtype=np.float32))
    inverse = np.linalg.pinv(mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels))  # [bins, n_mels]
    magnitude = np.sqrt(np.maximum(np.einsum("fm,nmt->nft", inverse, power), 0.0))
    audio = librosa.griffinlim(
        magnitude,
        n_iter=n_iter,
        hop_length=spec.frame_hop,
        n_fft=spec.n_fft,
        center=True,
        length=spec.segment_samples,
        random_state=np.random.RandomState(seed),
    )
    return np.nan_to_num(np.asarray(audio, dtype=np.float32))


def clip_maps(clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """`[n, segment_samples] -> [n, n_mels, frames]`: the clips' maps in dB, as training computes them (unstandardised)."""
    from genre_style.data.audio import clip_features

    return clip_features(clips, spec).reshape(len(clips), *spec.feature_shape)


def band_gains_to_bins(gain_db: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """`[..., n_mels, frames]` -> `[..., bins, frames]`: each FFT bin's gain the weighted mean of the mel bands it
    feeds (the filter bank's columns, normalised); a bin no band covers takes its nearest band's."""
    from genre_style.data.spectral import mel_filterbank

    weights = mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels).astype(np.float64)  # [n_mels, bins]
    uncovered = weights.sum(axis=0) == 0
    covered = np.flatnonzero(~uncovered)
    for b in np.flatnonzero(uncovered):
        weights[:, b] = weights[:, covered[np.abs(covered - b).argmin()]]
    weights = weights / weights.sum(axis=0, keepdims=True)
    return np.einsum("mf,...mt->...ft", weights, gain_db)


def maps_to_clips_with_phase(db_maps: np.ndarray, content_clips: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """`[n, n_mels, frames]` target dB maps -> `[n, segment_samples]`: the content clips' own STFT (the front-end's FFT
    size and hop, centred: the maps' frames) scaled by the target's change from the content's map, band by band and
    frame by frame, and inverted with the content's phase. A time-varying filter of the content: no Griffin-Lim
    artefacts, the content's harmonics and timing kept, and a target equal to the content gives the content back."""
    import librosa

    content_maps = clip_maps(content_clips, spec)
    gain = 10.0 ** (band_gains_to_bins(np.asarray(db_maps, dtype=np.float64) - content_maps, spec) / 20.0)
    stft = librosa.stft(content_clips, n_fft=spec.n_fft, hop_length=spec.frame_hop, center=True)
    audio = librosa.istft(stft * gain, hop_length=spec.frame_hop, n_fft=spec.n_fft, center=True, length=spec.segment_samples)
    return np.nan_to_num(np.asarray(audio, dtype=np.float32))


RESYNTHESES = ("content-phase", "griffin-lim")


def maps_to_audio(
    db_maps: np.ndarray,
    spec: ClipSpec,
    length: int,
    content_clips: np.ndarray | None = None,
    resynthesis: str = RESYNTHESES[0],
    n_iter: int = GRIFFIN_LIM_ITERATIONS,
) -> np.ndarray:
    """The clips' maps of one song (`song_clips`' order) -> the song's `length` samples, by `resynthesis`:
    `content-phase` (`maps_to_clips_with_phase`, needs the content's clips) or `griffin-lim` (`maps_to_clips`)."""
    if resynthesis == "content-phase" and content_clips is not None:
        clips = maps_to_clips_with_phase(db_maps, content_clips, spec)
    elif resynthesis == "griffin-lim":
        clips = maps_to_clips(db_maps, spec, n_iter)
    else:
        raise UserError(f"unknown resynthesis {resynthesis!r}", f"choose one of {', '.join(RESYNTHESES)}")
    return overlap_add(clips, hop_of(spec), length)


def limited(signal: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scaled down only if a sample would clip in a WAV file. Never scaled up: the models read level (their maps are
    in dB, standardised with fixed statistics), so a louder copy of a song is, to them, a different song."""
    top = float(np.abs(signal).max())
    return signal if top <= peak else (signal * (peak / top)).astype(np.float32)
