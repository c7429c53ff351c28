"""`python -m genre_style.report`: the paper's tables beside ours, from runs in MLflow, as Markdown and HTML.

Runs are grouped by protocol (the split, the front-end): the paper's random clip split, the honest track
split and GTZAN's fault-filtered split side by side show what clip leakage does to the scores. For each
group and model the newest finished run is reported. Runs that differ only in their seed (a seed sweep:
`python -m genre_style.train -m ... seed=0,1,2,3,4`) are summarised as n, mean, sd and a 95 % interval, and
configurations that share seeds on the same data are compared pairwise (the difference and its interval).
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from genre_style.errors import UserError
from genre_style.tracking.run_record import data_name

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line of output, not a bar per file

PAPER_TABLE_1 = {"TwoLayerNet": (52.0, 38.1, 36.4), "DeepSoftmaxAutoencoder": (94.9, 64.1, 65.3)}
PAPER_TABLE_2 = {  # DSAE, test set: precision, recall, F1
    "classical": (0.783, 0.775, 0.779),
    "jazz": (0.606, 0.627, 0.616),
    "metal": (0.515, 0.554, 0.5337),
    "pop": (0.670, 0.608, 0.638),
}
MODEL_NAMES = {
    "TwoLayerNet": "Two-layer net",
    "Autoencoder": "Vanilla autoencoder",
    "DeepSoftmaxAutoencoder": "DSAE",
    "LogisticRegressionBaseline": "Logistic regression (scikit-learn)",
    "VariationalAutoencoder": "VAE",
    "BetaTCVAE": "beta-TCVAE",
}
SPLIT_NAMES = {
    "segment": "random clip split (the paper's protocol)",
    "track": "track split (no song in two splits)",
    "fault_filtered": "fault-filtered split (GTZAN's artist-filtered benchmark)",
}
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


def select_runs(client: Any, experiment: str, run_ids: Sequence[str] | None, filter_string: str) -> list[Any]:
    if run_ids:
        return [normalized(client.get_run(r)) for r in run_ids]
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise UserError(
            f"no MLflow experiment {experiment!r} in this store", "train something first, or pass --experiment / --tracking-uri"
        )
    query = "attributes.status = 'FINISHED'" + (f" and {filter_string}" if filter_string else "")
    runs = client.search_runs(
        [found.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=5000
    )
    return [normalized(r) for r in runs if "model" in r.data.params or "model._target_" in r.data.params]


def normalized(run: Any) -> Any:
    """One shape for runs old and new: the best checkpoint's `final/<name>` values stand for `<name>` (runs from
    before logged them as late points of the curves), `model`/`encoder` params are class names (older runs had
    `model._target_` paths), and the `experiment` tag is read as `tags.experiment`."""
    metrics, params = run.data.metrics, run.data.params  # MLflow's own dicts: updated in place
    metrics.update({k.removeprefix("final/"): v for k, v in list(metrics.items()) if k.startswith("final/")})
    for key, old in (("model", "model._target_"), ("encoder", "model.encoder._target_")):
        if key not in params and old in params:
            params[key] = params[old].rsplit(".", 1)[-1]
    if "experiment" in run.data.tags:
        params.setdefault("tags.experiment", run.data.tags["experiment"])
    return run


def group_runs(runs: Sequence[Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(split, features, data folder) -> {model class -> newest run}."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in runs:  # newest first
        p = run.data.params
        key = (p.get("data.split", "?"), p.get("data.features", "raw_pool"), data_name(p.get("data.root", "?")))
        model, encoder = p["model"], p.get("encoder", "")
        if encoder and encoder != "MLPEncoder" and model in MODEL_NAMES:
            model = f"{model} + {encoder}"
        groups.setdefault(key, {}).setdefault(model, run)
    return groups


# Params that do not change what is learned, or are the seed itself: runs differing only in these repeat one configuration.
NOT_CONFIGURATION = (
    "seed",
    "data.seed",
    "run_name",
    "model._target_",
    "model.encoder._target_",
    "resume",
    "tags.",
    "paths.",
    "sweep_context.",
    "logger.",
    "callbacks.progress_bar.",
    "callbacks.model_checkpoint.dirpath",
    "callbacks.last_checkpoint.",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "data.progress",
    "data.workers",
    "data.cache_dir",
    "hydra",
)
REPEATED_METRICS = (
    "test/acc",
    "test/track_acc",
    "test/probe_acc_bottleneck",
    "test/knn_acc_bottleneck",
    "test/probe_acc_hidden",
    "test/knn_acc_hidden",
    "test/silhouette_bottleneck",
    "test/mig_genre",
    "test/active_dims",
    "val/acc",
)


def scored_clips(params: dict[str, str]) -> str | None:
    """Clips per song that val and test score: runs that train on more clips of each song still pair with
    runs that don't, as long as both are tested on the same clips."""
    scored = params.get("data.eval_clips_per_track")
    return scored if scored not in (None, "None") else params.get("data.clips_per_track")


def configuration_key(params: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in params.items() if not k.startswith(NOT_CONFIGURATION)))


def short_label(params: dict[str, str]) -> str:
    model = MODEL_NAMES.get(params.get("model", "?"), params.get("model", "?"))
    encoder = params.get("encoder", "")
    label = f"{model} · {params.get('data.features', 'raw_pool')}"
    if encoder and encoder != "MLPEncoder" and "LogisticRegression" not in params.get("model", ""):
        label += f" · {encoder}"
    if params.get("model.classifier") == "True":
        label += " + classifier"
    if scored_clips(params) != params.get("data.clips_per_track"):
        label += f" · trained on {params.get('data.clips_per_track')} clips a song"
    if params.get("tags.experiment"):
        label += f" (experiment={params['tags.experiment']})"
    return label


def format_summary(metric: str, summary: Any) -> str:
    """Accuracies and shares in percent; scores on their own scale (silhouette in [-1, 1], MIG in [0, 1])."""
    if "silhouette" in metric or "mig" in metric:
        return summary.format(scale=1.0, digits=3)
    return summary.format()


def repeated_runs_section(runs: Sequence[Any]) -> Section | None:
    """Seed sweeps: per configuration, mean ± sd [95 % interval] (n) of each metric; then paired differences."""
    from genre_style.evaluation.stats import paired_difference, summarize

    configs: dict[tuple, dict[str, Any]] = {}
    for run in runs:  # newest first: a seed run twice counts once, the newest
        p = run.data.params
        seed = p.get("seed", "?")
        config = configs.setdefault(configuration_key(p), {"params": p, "by_seed": {}})
        config["by_seed"].setdefault(seed, run)
    section = Section("Repeated runs: configurations over seeds (mean ± sd [95 % interval] (n))")
    metrics = [m for m in REPEATED_METRICS if any(m in r.data.metrics for c in configs.values() for r in c["by_seed"].values())]
    rows = []
    protocol = {}
    for key, config in configs.items():
        p = config["params"]
        protocol[key] = (p.get("data.split"), p.get("data.root"), p.get("data.genres"), scored_clips(p))
        cells = []
        for metric in metrics:
            values = [r.data.metrics[metric] for r in config["by_seed"].values() if metric in r.data.metrics]
            cells.append(format_summary(metric, summarize(values)) if values else "")
        rows.append(
            [
                short_label(p),
                f"{p.get('data.split', '?')} · {data_name(p.get('data.root', '?'))}",
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
            for metric in ("test/acc", "test/track_acc"):
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
    order = {"segment": 0, "track": 1, "fault_filtered": 2}
    for (split, features, data), models in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0])):
        section = Section(f"{SPLIT_NAMES.get(split, split)}: data `{data}`, features `{features}`")
        rows = []
        for model, run in sorted(models.items()):
            m = run.data.metrics
            paper = PAPER_TABLE_1.get(model)
            if "test/acc" not in m:  # the autoencoder is unsupervised: it has no accuracy
                rows.append([MODEL_NAMES.get(model, model), "n/a", "n/a", "n/a", "n/a", "", run.info.run_id[:8]])
                continue
            rows.append(
                [
                    MODEL_NAMES.get(model, model),
                    _pct(m.get("train/acc")),
                    _pct(m.get("val/acc")),
                    _pct(m.get("test/acc")),
                    _pct(m.get("test/track_acc")),
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
            genres = sorted({k.split("_", 1)[1] for k in dsae.data.metrics if k.startswith("test/f1_") and k != "test/f1_macro"})
            rows = []
            for genre in genres:
                m = dsae.data.metrics
                ours = [m.get(f"test/{kind}_{genre}") for kind in ("precision", "recall", "f1")]
                paper = PAPER_TABLE_2.get(genre)
                rows.append([genre, *map(_num, ours), " / ".join(f"{v:.3f}" for v in paper) if paper else ""])
            section.tables.append(
                (
                    "Table 2: DSAE per-genre precision, recall, F1 on the test clips",
                    ["genre", "precision", "recall", "F1", "paper P / R / F1"],
                    rows,
                )
            )
        spaces = ("raw", "hidden", "bottleneck", "logits")
        rows = []
        for model, run in sorted(models.items()):
            m = run.data.metrics
            for space in spaces:
                if f"test/knn_acc_{space}" in m:
                    rows.append(
                        [
                            MODEL_NAMES.get(model, model),
                            space,
                            _num(m.get(f"test/silhouette_{space}")),
                            _pct(m.get(f"test/knn_acc_{space}")),
                            _pct(m.get(f"test/probe_acc_{space}")),
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


def to_markdown(sections: Sequence[Section], title: str) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for caption, header, rows in section.tables:
            lines += [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
        lines += [f"![{caption}]({path})" for caption, path in section.images]
        lines.append("")
    return "\n".join(lines)


def to_html(sections: Sequence[Section], title: str) -> str:
    e = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
        "img{max-width:48%;margin:4px;border:1px solid #eee}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{e(section.title.replace('`', ''))}</h2>")
        for caption, header, rows in section.tables:
            parts.append(f"<p><b>{e(caption)}</b></p><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        parts += [
            f"<figure style='display:inline-block;width:48%'><img style='max-width:100%' src='{e(p)}'><figcaption>{e(c)}</figcaption></figure>"
            for c, p in section.images
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.report", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="genre-style", help="MLflow experiment to read (default: genre-style)")
    parser.add_argument("--run-ids", nargs="*", help="report exactly these runs")
    parser.add_argument("--filter", default="", help="an MLflow filter, e.g. \"tags.experiment = 'paper'\"")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else outputs/mlflow.db")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/report)")
    args = parser.parse_args(argv)
    outputs = Path(os.environ.get("GENRE_STYLE_OUTPUTS") or "outputs")
    from genre_style.tracking.store import default_tracking_uri, open_client

    uri = args.tracking_uri or default_tracking_uri()
    out_dir = (args.out or outputs / "report").resolve()
    try:
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise UserError(f"no MLflow store at {uri}", "train first (python -m genre_style.train ...) or pass --tracking-uri")
        client = open_client(uri)
        runs = select_runs(client, args.experiment, args.run_ids, args.filter)
        if not runs:
            raise UserError(
                f"no finished training runs match in experiment {args.experiment!r}", "train first, or loosen --filter"
            )
        sections = build_sections(client, group_runs(runs), out_dir)
        repeated = repeated_runs_section(runs)
        if repeated is not None:
            sections.insert(0, repeated)
    except UserError as exc:
        print(f"genre-style: error: {exc}", file=sys.stderr)
        return 2
    title = "genre-style report: the Deep Softmax Autoencoder paper, reproduced"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(to_markdown(sections, title))
    (out_dir / "report.html").write_text(to_html(sections, title))
    print(f"{len(runs)} run(s) in {len(sections)} protocol group(s) -> {out_dir / 'report.md'}, {out_dir / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
