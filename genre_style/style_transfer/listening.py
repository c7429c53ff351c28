"""A listening page for the rendered-pairs benchmark: one self-contained HTML file beside the WAVs it plays.

Scores say how far an output is from its true target; ears say what the distance sounds like. `write_page` puts, for
every pair, the content, the style reference and the true target (the entries `copy content`, `copy style`, `true
target`) and each method's output in one table, a player and the pair's scores in each row, under the benchmark's
summary (mean and 95 % interval over pairs). Players point at the WAVs by relative paths (`rendered_pairs.output_path`),
so the folder can be moved, zipped or logged as it is; nothing is fetched from the network. `log_run` logs the page,
the WAVs and the table to MLflow (experiment `genre-style-transfer`, as `python -m genre_style.transfer` does).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

from genre_style.evaluation.stats import summarize
from genre_style.style_transfer.rendered_pairs import PLAIN, Table, format_cell, output_path

PAGE = "index.html"
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; font-size: 0.9em; }
th:first-child, td:first-child { text-align: left; }
audio { width: 16em; height: 2em; vertical-align: middle; }
.held { color: #a33; font-size: 0.8em; }
"""


def _value(measure: str, value: float) -> str:
    return f"{value:{PLAIN[measure]}}" if measure in PLAIN else f"{100 * value:.1f}"


def write_page(table: Table, out_dir: Path, title: str, notes: str = "") -> Path:
    """`out_dir/index.html`: the summary, then one table per pair (every entry's player and scores). Every entry's
    output for every pair must already be at `output_path(out_dir, entry, pair)`: a missing file is an error here,
    not a silent player in the browser."""
    entries = list(table.values)
    measures = list(next(iter(table.values.values())))
    pairs = list(next(iter(table.values[entries[0]].values())))
    missing = [str(output_path(out_dir, e, p)) for e in entries for p in pairs if not output_path(out_dir, e, p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} output(s) missing for the listening page, e.g. {missing[0]}")
    head = "".join(f"<th>{html.escape(m)}</th>" for m in measures)
    summary = [f"<tr><th>entry</th>{head}</tr>"]
    for entry in entries:
        cells = "".join(f"<td>{format_cell(m, summarize(list(table.values[entry][m].values())))}</td>" for m in measures)
        summary.append(f"<tr><td>{html.escape(entry)}</td>{cells}</tr>")
    sections = []
    for pair in pairs:
        rows = [f"<tr><th>entry</th><th>listen</th>{head}</tr>"]
        for entry in entries:
            source = quote(output_path(out_dir, entry, pair).relative_to(out_dir).as_posix())
            player = f'<audio controls preload="metadata" src="{source}"></audio>'
            cells = "".join(f"<td>{_value(m, table.values[entry][m][pair])}</td>" for m in measures)
            rows.append(f"<tr><td>{html.escape(entry)}</td><td>{player}</td>{cells}</tr>")
        held = ' <span class="held">(a target style no model was trained on)</span>' if pair in table.held_out else ""
        sections.append(f"<h2>{html.escape(pair)}{held}</h2>\n<table>\n" + "\n".join(rows) + "\n</table>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(notes)}</p>
<p>LSD in dB and style distance (a cosine distance): lower is closer to the true target; the rest in %, against the
content. The content is <em>copy content</em>, the style reference <em>copy style</em>, the true target
<em>true target</em>. Mean [95 % t-interval] over the {len(pairs)} pairs:</p>
<table>
{chr(10).join(summary)}
</table>
{chr(10).join(sections)}
</body></html>
"""
    path = out_dir / PAGE
    path.write_text(page, encoding="utf-8")
    return path


def log_run(out_dir: Path, tracking_uri: str, params: dict[str, Any], table: Table) -> str:
    """An MLflow run (experiment `genre-style-transfer`) with the settings as params, each entry's mean of each
    measure as a metric, and `out_dir` (the page, every WAV, the tables) as artifacts under `rendered_pairs/`; its id."""
    from mlflow.entities import Metric, Param

    from genre_style.style_transfer import transfer_experiment
    from genre_style.tracking.mlflow_store import check_tracking_server, open_client

    if tracking_uri.startswith("http"):
        check_tracking_server(tracking_uri)
    client = open_client(tracking_uri)
    experiment_id = transfer_experiment(client, tracking_uri)
    run = client.create_run(experiment_id, tags={"mlflow.runName": "rendered-pairs", "task": "transfer-benchmark"})
    metrics = [
        Metric(f"{''.join(c if c.isalnum() else '_' for c in entry)}.{measure}", summarize(list(by_pair.values())).mean, 0, 0)
        for entry, by_measure in table.values.items()
        for measure, by_pair in by_measure.items()
    ]
    client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, str(v)[:500]) for k, v in params.items()])
    client.log_artifacts(run.info.run_id, str(out_dir), "rendered_pairs")
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
