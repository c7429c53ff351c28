"""`data=rendered`: the paired corpus (`data/rendered.py`) as a training data module. Its training styles' files,
split by piece as the corpus assigns them (`data.split.mode=manifest`), go through the same manifest reader, clip cache
and split code as any labelled collection; the held-out styles are never read here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from genre_style.data.datamodule import GenreDataModule
from genre_style.data.rendered import RenderedCorpus, RenderSpec, render_corpus
from genre_style.data.settings import DataSettings, SourceSettings


class RenderedDataModule(GenreDataModule):
    """`source.root` is the folder the corpus is rendered under (`data.rendered`: the `RenderSpec` settings); every
    other argument is GenreDataModule's. Rendering happens in `prepare_data` (or `setup`, if it was not called), once."""

    def __init__(self, source: Mapping[str, Any] | SourceSettings, rendered: dict[str, Any] | None = None, **groups: Any) -> None:
        self.render_spec = RenderSpec.from_config(rendered)
        settings = DataSettings.build(source=source).source  # a mapping (the config's) or the settings object
        self.corpus_root = Path(settings.root)
        manifest = self.corpus_root / self.render_spec.settings_key() / f"manifest-{self.render_spec.list_key()}.csv"
        super().__init__(source=replace(settings, root=str(manifest)), **groups)
        self.rendered_corpus: RenderedCorpus | None = None

    def render(self) -> RenderedCorpus:
        if self.rendered_corpus is None:
            self.rendered_corpus = render_corpus(self.corpus_root, self.render_spec, self.progress, self.workers)
        return self.rendered_corpus

    def prepare_data(self) -> None:
        self.render()
        super().prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.render()
        super().setup(stage)


# Lightning files a data module's state in checkpoints under its class's qualified name, and inference, export and
# resuming read it as "GenreDataModule": the rendered corpus's state is the same kind (genres, spec, standardisation).
RenderedDataModule.__qualname__ = "GenreDataModule"
