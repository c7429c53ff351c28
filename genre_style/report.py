"""`python -m genre_style.report`: the paper's tables beside ours, from runs in MLflow, as Markdown and HTML.

Runs are grouped by protocol (the split, the front-end): the paper's random clip split, the honest track
split and GTZAN's fault-filtered split side by side show what clip leakage does to the scores. For each
group and model the newest finished run is reported. Runs that differ only in their seed (a seed sweep:
`python -m genre_style.train -m ... seed=0,1,2,3,4`) are summarised as n, mean, sd and a 95 % interval, and
configurations that share seeds on the same data are compared pairwise (the difference and its interval).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from genre_style.errors import UserError, command
from genre_style.reporting.render import to_html, to_markdown
from genre_style.reporting.runs import group_runs, select_runs
from genre_style.reporting.sections import build_sections, downstream_section, repeated_runs_sections

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line of output, not a bar per file


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.report", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="genre-style", help="MLflow experiment to read (default: genre-style)")
    parser.add_argument("--run-ids", nargs="*", help="report exactly these runs")
    parser.add_argument("--filter", default="", help="an MLflow filter, e.g. \"tags.experiment = 'paper'\"")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else outputs/mlflow.db")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/report)")
    args = parser.parse_args(argv)
    outputs = Path(os.environ.get("GENRE_STYLE_OUTPUTS") or "outputs")
    from genre_style.tracking.mlflow_store import default_tracking_uri, open_client

    uri = args.tracking_uri or default_tracking_uri()
    out_dir = (args.out or outputs / "report").resolve()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UserError(f"no MLflow store at {uri}", "train first (python -m genre_style.train ...) or pass --tracking-uri")
    client = open_client(uri)
    runs = select_runs(client, args.experiment, args.run_ids, args.filter)
    if not runs:
        raise UserError(f"no finished training runs match in experiment {args.experiment!r}", "train first, or loosen --filter")
    sections = build_sections(client, group_runs(runs), out_dir)
    downstream = downstream_section(runs)
    sections = repeated_runs_sections(runs) + ([downstream] if downstream else []) + sections
    title = "genre-style report: the Deep Softmax Autoencoder paper, reproduced"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(to_markdown(sections, title))
    (out_dir / "report.html").write_text(to_html(sections, title))
    print(f"{len(runs)} run(s) in {len(sections)} protocol group(s) -> {out_dir / 'report.md'}, {out_dir / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
