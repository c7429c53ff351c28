"""What tests of the pretrained encoders share: whether the musicnn package (its weights) is here.

`make install` puts it in (`pip install --no-deps musicnn==0.1.0`); a venv made before that skips those tests, unless
GENRE_STYLE_REQUIRE_MUSICNN=1 (CI: .ci/run), where they run and fail with the install command.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

MUSICNN_INSTALLED = importlib.util.find_spec("musicnn") is not None
needs_musicnn = pytest.mark.skipif(
    not MUSICNN_INSTALLED and os.environ.get("GENRE_STYLE_REQUIRE_MUSICNN") != "1",
    reason="the musicnn package is not installed: pip install --no-deps musicnn==0.1.0",
)
