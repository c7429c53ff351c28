"""What the tests of rendered pairs, note scores and the converter share: whether the `[transfer]` extra is here.

`make install` puts it in (with `pip install --no-deps tinysoundfont==0.3.7 basic-pitch==0.4.0`); a venv made before
that skips those tests, unless GENRE_STYLE_REQUIRE_TRANSFER=1 (CI: .ci/run), where they run and fail with the
install command.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from genre_style.data.rendered import INSTALL

MODULES = ("tinysoundfont", "music21", "pretty_midi", "basic_pitch", "mir_eval", "onnxruntime")


def require_transfer_extra() -> None:
    """Skip the calling test module where the extra is missing, or fail under GENRE_STYLE_REQUIRE_TRANSFER=1."""
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed: {INSTALL}"
    if os.environ.get("GENRE_STYLE_REQUIRE_TRANSFER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)
