"""The report's content: per protocol, the paper's tables beside ours, the seed groups and their paired differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from genre_style.data.front_ends import DEFAULT as DEFAULT_FRONT_END
from genre_style.evaluation.brackets import EMBEDDINGS
from genre_style.evaluation.probes import metric_key
from genre_style.metric_names import (
    ACC,
    ACTIVE_DIMS,
    KNN_ACC,
    MACRO,
    MIG,
    PER_CLASS,
    PROBE_ACC,
    SILHOUETTE,
    SPACES,
    TRACK_ACC,
    per_class,
)
from genre_style.metric_names import key as metric_name
from genre_style.reporting.runs import MODEL_NAMES, configuration_key, scored_clips
from genre_style.tracking.run_record import data_name

PAPER_TABLE_1 = {"TwoLayerNet": (52.0, 38.1, 36.4), "DeepSoftmaxAutoencoder": (94.9, 64.1, 65.3)}
PAPER_TABLE_2 = {  # DSAE, test set: precision, recall, F1
    "classical": (0.783, 0.775, 0.779),
    "jazz": (0.606, 0.627, 0.616),
    "metal": (0.515, 0.554, 0.5337),
    "pop": (0.670, 0.608, 0.638),
}
SPLIT_NAMES = {
    "fault_filtered": "artist-filtered split (no artist in two splits: GTZAN's fault-filtered benchmark)",
    "artist": "artist-grouped split (no artist in two splits: grouped by the manifest's artist column)",
    "manifest": "the manifest's own split (as the collection publishes it, e.g. FMA's)",
    "track": "track split (no song in two splits, but an artist's songs may be: overstates new-artist accuracy)",
    "segment": "random clip split (the paper's protocol: a song's clips in every split)",
}
# The report leads with the protocol that measures what a user gets on new artists' songs.
PROTOCOL_ORDER = {split: rank for rank, split in enumerate(SPLIT_NAMES)}
PLOTS = (
    "confusion_matrix.png",
    "confusion_matrix_tracks.png",
    "pca_raw.png",
    "pca_bottleneck.png",
    "pca_logits.png",
    "learning_curves.png",
    "interpolation.png",
)


@dataclass
class Section:
    """One protocol: a heading, tables (header + rows) and images."""

    title: str
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


REPEATED_METRICS = (  # names from metric_names.py: a renamed metric is renamed here too
    metric_name("test", ACC),
    metric_name("test", TRACK_ACC),
    metric_name("test", PROBE_ACC, "bottleneck"),
    metric_name("test", KNN_ACC, "bottleneck"),
    metric_name("test", PROBE_ACC, "hidden"),
    metric_name("test", KNN_ACC, "hidden"),
    metric_name("test", SILHOUETTE, "bottleneck"),
    metric_name("test", MIG),
    metric_name("test", ACTIVE_DIMS),
    metric_name("val", ACC),
)


def short_label(params: dict[str, str]) -> str:
    model = MODEL_NAMES.get(params.get("model", "?"), params.get("model", "?"))
    encoder = params.get("encoder", "")
    label = f"{model} · {params.get('data.clips.features', DEFAULT_FRONT_END)}"
    if encoder and encoder != "MLPEncoder" and "LogisticRegression" not in params.get("model", ""):
        label += f" · {encoder}"
    if params.get("model.classifier") == "True":
        label += " + classifier"
    if scored_clips(params) != params.get("data.clips.clips_per_track"):
        label += f" · trained on {params.get('data.clips.clips_per_track')} clips a song"
    if params.get("tags.experiment"):
        label += f" (experiment={params['tags.experiment']})"
    return label


def format_summary(metric: str, summary: Any) -> str:
    """Accuracies and shares in percent; scores on their own scale (silhouette in [-1, 1], MIG in [0, 1])."""
    if "silhouette" in metric or "mig" in metric:
        return summary.format(scale=1.0, digits=3)
    return summary.format()


def repeated_runs_sections(runs: Sequence[Any]) -> list[Section]:
    """Seed sweeps, one section per protocol (split and data), the artist-filtered split first: results of
    different protocols never share a table."""
    by_protocol: dict[tuple[str, str], list[Any]] = {}
    for run in runs:
        p = run.data.params
        by_protocol.setdefault((p.get("data.split.mode", "?"), p.get("data.source.root", "?")), []).append(run)
    sections = []
    for split, root in sorted(by_protocol, key=lambda k: (PROTOCOL_ORDER.get(k[0], 9), k)):
        section = repeated_runs_section(by_protocol[split, root], f"{SPLIT_NAMES.get(split, split)}, data `{data_name(root)}`")
        if section is not None:
            sections.append(section)
    return sections


def repeated_runs_section(runs: Sequence[Any], protocol_name: str = "") -> Section | None:
    """Seed sweeps of one protocol: per configuration, mean ± sd [95 % interval] (n) of each metric; then
    paired differences."""
    from genre_style.evaluation.stats import paired_difference, summarize

    configs: dict[tuple, dict[str, Any]] = {}
    for run in runs:  # newest first: a seed run twice counts once, the newest
        p = run.data.params
        seed = p.get("seed", "?")
        config = configs.setdefault(configuration_key(p), {"params": p, "by_seed": {}})
        config["by_seed"].setdefault(seed, run)
    section = Section(
        f"Repeated runs{': ' + protocol_name if protocol_name else ''}: configurations over seeds (mean ± sd [95 % interval] (n))"
    )
    metrics = [m for m in REPEATED_METRICS if any(m in r.data.metrics for c in configs.values() for r in c["by_seed"].values())]
    rows = []
    protocol = {}
    for key, config in configs.items():
        p = config["params"]
        protocol[key] = (p.get("data.split.mode"), p.get("data.source.root"), p.get("data.source.genres"), scored_clips(p))
        cells = []
        for metric in metrics:
            values = [r.data.metrics[metric] for r in config["by_seed"].values() if metric in r.data.metrics]
            cells.append(format_summary(metric, summarize(values)) if values else "")
        rows.append(
            [
                short_label(p),
                f"{p.get('data.split.mode', '?')} · {data_name(p.get('data.source.root', '?'))}",
                ",".join(sorted(config["by_seed"], key=str)),
                *cells,
            ]
        )
    if not any(len(c["by_seed"]) > 1 for c in configs.values()):
        return None
    section.tables.append(
        (
            "Each configuration over its seeds (accuracies and active dimensions in %; silhouette and MIG as they are)",
            ["configuration", "split · data", "seeds", *metrics],
            rows,
        )
    )
    pairs = []
    keys = list(configs)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if protocol[a] != protocol[b]:
                continue
            for metric in (metric_name("test", ACC), metric_name("test", TRACK_ACC)):
                ma = {s: r.data.metrics[metric] for s, r in configs[a]["by_seed"].items() if metric in r.data.metrics}
                mb = {s: r.data.metrics[metric] for s, r in configs[b]["by_seed"].items() if metric in r.data.metrics}
                diff = paired_difference(ma, mb)
                if diff is not None and diff.n > 1:
                    pairs.append(
                        [
                            short_label(configs[a]["params"]),
                            short_label(configs[b]["params"]),
                            metric,
                            diff.format(),
                            "yes" if diff.low > 0 or diff.high < 0 else "no",
                        ]
                    )
    if pairs:
        section.tables.append(
            (
                "Paired comparisons on shared seeds (same splits): A - B in percentage points",
                ["A", "B", "metric", "A - B", "interval excludes 0"],
                pairs,
            )
        )
    return section


def build_sections(client: Any, groups: dict, out_dir: Path) -> list[Section]:
    sections = []
    for (split, features, data), models in sorted(groups.items(), key=lambda kv: (PROTOCOL_ORDER.get(kv[0][0], 9), kv[0])):
        section = Section(f"{SPLIT_NAMES.get(split, split)}: data `{data}`, features `{features}`")
        rows = []
        for model, run in sorted(models.items()):
            m = run.data.metrics
            paper = PAPER_TABLE_1.get(model)
            if metric_name("test", ACC) not in m:  # the autoencoder is unsupervised: it has no accuracy
                rows.append([MODEL_NAMES.get(model, model), "n/a", "n/a", "n/a", "n/a", "", run.info.run_id[:8]])
                continue
            rows.append(
                [
                    MODEL_NAMES.get(model, model),
                    _pct(m.get(metric_name("train", ACC))),
                    _pct(m.get(metric_name("val", ACC))),
                    _pct(m.get(metric_name("test", ACC))),
                    _pct(m.get(metric_name("test", TRACK_ACC))),
                    " / ".join(f"{v:.1f}" for v in paper) if paper else "",
                    run.info.run_id[:8],
                ]
            )
        section.tables.append(
            (
                "Table 1: accuracy (%) on clips, train / dev / test, and on whole songs",
                ["model", "train", "dev", "test", "test (songs)", "paper train / dev / test", "run"],
                rows,
            )
        )
        dsae = models.get("DeepSoftmaxAutoencoder")
        if dsae is not None:
            f1 = PER_CLASS[-1]
            prefix, macro = metric_name("test", per_class(f1, "")), metric_name("test", per_class(f1, MACRO))
            genres = sorted({k.removeprefix(prefix) for k in dsae.data.metrics if k.startswith(prefix) and k != macro})
            rows = []
            for genre in genres:
                m = dsae.data.metrics
                ours = [m.get(metric_name("test", per_class(kind, genre))) for kind in PER_CLASS]
                paper = PAPER_TABLE_2.get(genre)
                rows.append([genre, *map(_num, ours), " / ".join(f"{v:.3f}" for v in paper) if paper else ""])
            section.tables.append(
                (
                    "Table 2: DSAE per-genre precision, recall, F1 on the test clips",
                    ["genre", "precision", "recall", "F1", "paper P / R / F1"],
                    rows,
                )
            )
        spaces = SPACES
        rows = []
        for model, run in sorted(models.items()):
            m = run.data.metrics
            for space in spaces:
                if metric_name("test", KNN_ACC, space) in m:
                    rows.append(
                        [
                            MODEL_NAMES.get(model, model),
                            space,
                            _num(m.get(metric_name("test", SILHOUETTE, space))),
                            _pct(m.get(metric_name("test", KNN_ACC, space))),
                            _pct(m.get(metric_name("test", PROBE_ACC, space))),
                        ]
                    )
        if rows:
            section.tables.append(
                (
                    "Embeddings in numbers (test): silhouette, k-NN accuracy (%), linear-probe accuracy (%)",
                    ["model", "space", "silhouette", "k-NN acc", "probe acc"],
                    rows,
                )
            )
        for model, run in sorted(models.items()):
            for name in PLOTS:
                local = _fetch_plot(client, run.info.run_id, name, out_dir / "plots" / run.info.run_id[:8])
                if local:
                    section.images.append(
                        (f"{MODEL_NAMES.get(model, model)}: {name[:-4].replace('_', ' ')}", str(local.relative_to(out_dir)))
                    )
        sections.append(section)
    return sections


def _fetch_plot(client: Any, run_id: str, name: str, dest: Path) -> Path | None:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run_id, f"plots/{name}", str(dest)))
    except Exception:  # that run has no such plot (e.g. no logits for the autoencoder)
        return None


DOWNSTREAM_COLUMNS = (("probe_clip_acc", "probe, clips"), ("probe_song_acc", "probe, songs"), ("proto_5shot_acc", "5-shot"))


def downstream_section(runs: Sequence[Any]) -> Section | None:
    """Frozen embeddings on other folders (`evaluation.downstream`, `python -m genre_style.downstream`): per run and
    set, the model beside its brackets (random weights, `features=stats`, the pretrained ones), in %."""
    rows = []
    for run in runs:
        m = run.data.metrics
        names = sorted({k.split("/")[1] for k in m if k.startswith("downstream/") and k.count("/") == 3})
        for name in names:
            keys = [metric_key(e) for e in EMBEDDINGS]
            pretrained = sorted({k.split("/")[2] for k in m if k.startswith(f"downstream/{name}/")} - set(keys))
            cells = [
                " / ".join(_pct(m.get(f"downstream/{name}/{key}/{metric}")) or "-" for key in keys + pretrained)
                for metric, _ in DOWNSTREAM_COLUMNS
            ]
            rows.append(
                [
                    short_label(run.data.params),
                    run.data.params.get("seed", "?"),
                    name,
                    *cells,
                    ", ".join(pretrained) or "-",
                    run.info.run_id[:8],
                ]
            )
    if not rows:
        return None
    section = Section("Frozen embeddings on other folders (genres the model may never have seen)")
    section.tables.append(
        (
            f"Accuracy (%): the model / the same architecture with random weights / {EMBEDDINGS[2]} / each pretrained "
            "bracket (in the order of its column: evaluation.pretrained_brackets), on the same clips and song splits "
            "(mean over the splits; the run's downstream/*.md has the intervals and paired differences)",
            ["configuration", "seed", "set", *(title for _, title in DOWNSTREAM_COLUMNS), "pretrained brackets", "run"],
            rows,
        )
    )
    return section
