"""`python -m genre_style.convert_checkpoint OLD NEW`: rewrite a checkpoint you trust as weights and plain data.

genre-style reads checkpoints with `torch.load(weights_only=True)` (genre_style/model_files.py), so a file holding
other Python objects (a pickled OmegaConf config, say, from a fork or an old version) is refused. This loads OLD the
unsafe way, which runs whatever code the file names: use it only on a file you made or whose sender you trust.
NEW then holds the same tensors and values as plain data, and is checked as every model file is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from genre_style.errors import UserError, command


def as_plain(value: Any, where: str = "checkpoint") -> Any:
    """`value` with containers made plain dicts and lists and numpy scalars made Python numbers; tensors and numpy
    arrays stay. Anything else is a UserError naming where it sits."""
    import numpy as np
    import torch
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None or isinstance(value, (bool, int, float, str, bytes, torch.Tensor, np.ndarray, torch.dtype)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: as_plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [as_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise UserError(
        f"{where} holds a {type(value).__module__}.{type(value).__qualname__}, which has no plain-data form",
        "drop that entry from the file, or retrain with this version of genre-style",
    )


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.convert_checkpoint", description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the checkpoint you trust (loading it runs the code it names)")
    parser.add_argument("new", type=Path, help="where to write the plain-data checkpoint")
    args = parser.parse_args(argv)
    import torch

    from genre_style.model_files import check_checkpoint, read_checkpoint

    if not args.old.is_file():
        raise UserError(f"{args.old} is not a file", "pass the checkpoint to convert")
    if args.new.exists():
        raise UserError(f"{args.new} exists already", "name a new file")
    state = as_plain(torch.load(str(args.old), map_location="cpu", weights_only=False))  # the user vouches for it
    check_checkpoint(state, args.old)  # trusted or not, it must still name genre-style's own model and parts
    torch.save(state, str(args.new))
    read_checkpoint(args.new)  # what every command will do with it
    print(f"wrote {args.new}: weights and plain data, readable by every genre-style command")
    return 0


if __name__ == "__main__":
    sys.exit(main())
