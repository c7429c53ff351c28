"""A Hugging Face `transformers` audio model as an encoder (`encoder=hf`): MERT-v1, AST, wav2vec2, HuBERT and kin.

The model comes from a local folder or a Hub name (`AutoModel.from_pretrained`), with its feature extractor, which
says the sampling rate it reads and how it prepares audio. One hidden layer (`layer: <index>`: 0 is the input of the
first transformer layer, i the output of layer i) or a learned softmax-weighted sum of all of them (`layer: weighted`,
as MERT's and SUPERB's probes weigh layers) is averaged over time into one vector per clip, then projected to the
objective's embedding size. Only the layers up to the chosen one are built: what `freeze: top_k` counts.

The clips are the raw waveform at the model's rate (`features=waveform_hf`); the model's own input preparation runs
first in `forward` (a wav2vec2-style extractor's per-clip zero mean and unit variance in torch; any other extractor,
e.g. AST's filter-bank frames, called on the batch), so augmentation, inference and the cache meet the same input.

A trained model's checkpoint holds every weight, the model's config and its feature extractor's settings
(`checkpoint_settings`): it is rebuilt with `AutoModel.from_config`, without network and without the source folder.
Only model types transformers itself defines are built, never code from the Hub: MERT-v1's configs (model type
`mert_model`, whose Hub code subclasses HuBERT) are read as the HuBERT they are, where they use no MERT-only part.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence, cast

import torch
from torch import nn

from genre_style.data import front_ends
from genre_style.errors import UserError
from genre_style.models.base import plain
from genre_style.models.encoders import Encoder

if TYPE_CHECKING:
    from genre_style.models.pretrained.cache import FrozenBackbone

INSTALL = "pip install -e '.[pretrained]'  (or: pip install transformers)"
FREEZE = ("all", "none", "top_k")
WEIGHTED = "weighted"
# The model's own training-time noise, off: layer drop skips whole layers (the chosen one among them) and SpecAugment
# masks time steps in training mode; augmentation here is the objective's (`model.augment.*`).
TRAINING_NOISE = {"layerdrop": 0.0, "mask_time_prob": 0.0, "mask_feature_prob": 0.0}
# MERT-v1 (m-a-p/MERT-v1-*) ships its own code, a subclass of HuBERT: read as HuBERT unless one of these is on.
MERT_ONLY = ("deepnorm", "feature_extractor_cqt")


def _transformers() -> Any:
    """The transformers package; a UserError naming the install command where it is missing."""
    if importlib.util.find_spec("transformers") is None:
        raise UserError("encoder=hf needs the transformers package, which is not installed", INSTALL)
    import transformers

    return transformers


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """transformers' load reports and progress bars off: a model cut at its chosen layer leaves the layers above it
    unread on purpose, and the report would list each of their weights."""
    logging = _transformers().utils.logging
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*mel filter has all zero values.*")
            yield
    finally:
        logging.set_verbosity(verbosity)
        logging.enable_progress_bar()


def _source_error(source: str, exc: Exception) -> UserError:
    """Why `source` could not be read, in one line: no such folder, no model there, or no Hub to ask."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    folder = Path(source).expanduser()
    if folder.is_dir():
        return UserError(
            f"{source} is no transformers model folder ({first})",
            "point model.encoder.model at a folder written by save_pretrained (config.json, weights, preprocessor_config.json)",
        )
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:
        return UserError(f"model.encoder.model={source}: no such folder", "give a local model folder or a Hub name")
    return UserError(
        f"cannot load {source} from the Hugging Face Hub, and it is no local folder ({first})",
        "offline, the model must be a local folder: download it where there is a network "
        f"(hf download {source} --local-dir DIR) and set model.encoder.model=DIR",
    )


def native_config(config: dict[str, Any], source: str = "the model") -> Any:
    """A config dict (config.json's contents) as the transformers config class of its model type. MERT-v1's
    `mert_model` becomes `hubert`: its Hub code is HuBERT with optional parts (`MERT_ONLY`), refused where used.
    Any other type transformers does not define is refused: building it would run code from the Hub."""
    transformers = _transformers()
    mapping = transformers.models.auto.configuration_auto.CONFIG_MAPPING
    config = {k: v for k, v in config.items() if k != "auto_map"}
    kind = config.get("model_type")
    if kind == "mert_model":
        used = [name for name in MERT_ONLY if config.get(name)]
        if used:
            raise UserError(
                f"{source} uses MERT's {', '.join(used)}, which only its own Hub code implements",
                "use a model whose config has it off (deepnorm: false, feature_extractor_cqt: false), or another model type",
            )
        kind = config["model_type"] = "hubert"
    if kind not in mapping:
        raise UserError(
            f"{source} is a {kind!r} model, which transformers does not define (its code would come from the Hub)",
            "use a model type transformers builds itself: wav2vec2, hubert, wavlm, data2vec-audio, audio-spectrogram-transformer, MERT-v1",
        )
    return mapping[kind].from_dict(config)


def load_config(source: str) -> Any:
    """The transformers config of a local folder or Hub name (config.json only: nothing else is fetched)."""
    transformers = _transformers()
    try:
        with _quiet():
            config, _ = transformers.PretrainedConfig.get_config_dict(source)
    except (OSError, ValueError) as exc:
        raise _source_error(source, exc) from None
    if not config.get("model_type"):
        raise _source_error(source, OSError("no config.json naming a model_type"))
    return native_config(config, source)


def load_feature_extractor(source: str | None, settings: dict[str, Any] | None = None) -> Any:
    """The model's feature extractor: rebuilt from `settings` (a checkpoint's copy) or read from `source`'s
    preprocessor_config.json. Only transformers' own feature extractor classes are built."""
    transformers = _transformers()
    if settings is None:
        try:
            with _quiet():
                settings, _ = transformers.FeatureExtractionMixin.get_feature_extractor_dict(str(source))
        except (OSError, ValueError) as exc:
            if Path(str(source)).expanduser().is_dir():
                raise UserError(
                    f"{source} has no feature extractor (preprocessor_config.json): the input it expects is unknown",
                    "save the model's feature extractor beside it: AutoFeatureExtractor.from_pretrained(NAME).save_pretrained(DIR)",
                ) from None
            raise _source_error(str(source), exc) from None
    name = str(settings.get("feature_extractor_type", ""))
    cls = getattr(transformers, name, None) if name.endswith("FeatureExtractor") else None
    if not (isinstance(cls, type) and issubclass(cls, transformers.FeatureExtractionMixin)):
        raise UserError(
            f"{source}'s feature extractor {name or '(unnamed)'} is not one transformers defines",
            "use a model whose preprocessor_config.json names a transformers feature extractor (e.g. Wav2Vec2FeatureExtractor)",
        )
    with _quiet():
        return cast(Any, cls).from_dict({k: v for k, v in settings.items() if k != "auto_map"})


def _layer_stack(model: nn.Module, layers: int) -> nn.ModuleList:
    """The model's transformer layers: the module list named `layers` (or `layer`) as long as its config's
    `num_hidden_layers` whose modules attend (wav2vec2's `encoder.layers`, AST's `layers`; not the convolutional
    `conv_layers`, nor data2vec-audio's positional `pos_conv_embed.layers`)."""
    stacks = [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.ModuleList)
        and len(m) == layers
        and name.rpartition(".")[2] in ("layers", "layer")
        and any("attention" in part for part, _ in m[0].named_modules())
    ]
    if len(stacks) != 1:
        raise UserError(
            f"cannot tell {type(model).__name__}'s transformer layers apart ({len(stacks)} lists of {layers} modules)",
            "use layer=weighted with freeze=all or freeze=none",
        )
    return stacks[0]


def check_sample_rate(source: str, needed: int, rate: int | None) -> None:
    """The data's rate must be the model's (its feature extractor's `sampling_rate`): a UserError naming the override."""
    if rate is not None and int(rate) != int(needed):
        raise UserError(
            f"{source} reads audio at {needed} Hz, but data.clips.sample_rate={rate}", f"add data.clips.sample_rate={needed}"
        )


class HFEncoder(Encoder):
    """A transformers audio model up to `layer`, its hidden states averaged over time, then a linear projection.

    `model`: a local folder or a Hub name. `layer`: an index into the hidden states (0: the input of the first
    transformer layer; i: layer i's output; negative counts from the top) or `weighted` (a softmax-weighted sum of
    all, the weights learned with the heads). `freeze`: `all` (default: the model is a fixed feature extractor, in
    eval mode even in training), `top_k` (the `top_k` transformer layers nearest `layer` fine-tune), `none`.
    `backbone_lr_scale` scales the learning rate of the model's trainable weights (GenreModel.parameter_groups).
    `sample_rate` (the data's, `${data.clips.sample_rate}`) must be the feature extractor's. `pretrained=false` builds the
    architecture from `config` (the model's config dict) and `feature_extractor` (its settings) with random weights:
    what a checkpoint is rebuilt with before its own weights load."""

    reads = ("waveform",)
    front_end = front_ends.HF_WAVEFORM

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        model: str = "m-a-p/MERT-v1-95M",
        layer: int | str = WEIGHTED,
        freeze: str = "all",
        top_k: int = 1,
        backbone_lr_scale: float = 0.1,
        project: bool = True,
        dropout: float = 0.0,
        pretrained: bool = True,
        sample_rate: int | None = None,
        config: dict[str, Any] | None = None,
        feature_extractor: dict[str, Any] | None = None,
        cache: str | bool = "auto",
    ) -> None:
        super().__init__()
        self.input_shape, self.output_dim = tuple(input_shape), output_dim
        if len(self.input_shape) != 1:
            raise UserError(
                f"encoder=hf reads waveforms, got clips of shape {self.input_shape}", f"use features={front_ends.HF_WAVEFORM}"
            )
        self._check_choices(layer, freeze, top_k)
        transformers = _transformers()
        config, feature_extractor = plain(config), plain(feature_extractor)  # Hydra hands nested nodes over as DictConfigs
        self.source, self.freeze, self.top_k = str(model), freeze, int(top_k)
        self.backbone_lr_scale = float(backbone_lr_scale)
        self.cache = cache  # models/pretrained/cache.py reads it (auto | true | false)
        self.extractor = load_feature_extractor(None if feature_extractor else self.source, feature_extractor)
        self.sampling_rate = int(self.extractor.sampling_rate)
        check_sample_rate(self.source, self.sampling_rate, sample_rate)
        hf_config = native_config(config, self.source) if config is not None else load_config(self.source)
        total = int(hf_config.num_hidden_layers)
        self.layer = self._resolve_layer(layer, total)
        kept = total if self.layer is None else self.layer
        if freeze == "top_k" and not 1 <= self.top_k <= kept:
            raise UserError(
                f"top_k={top_k} is not between 1 and the {kept} transformer layers up to layer={layer}",
                f"e.g. top_k=1, or freeze=none to fine-tune all {kept}",
            )
        # layers above the chosen one are neither built nor loaded (one is kept for layer 0: transformers records the
        # hidden states at the layers, the first one's input among them)
        hf_config.num_hidden_layers = max(kept, 1)
        for name, value in TRAINING_NOISE.items():
            if hasattr(hf_config, name):
                setattr(hf_config, name, value)
        with _quiet():
            if pretrained:
                try:
                    self.model = transformers.AutoModel.from_pretrained(self.source, config=hf_config, dtype=torch.float32)
                except (OSError, ValueError) as exc:
                    raise _source_error(self.source, exc) from None
            else:
                self.model = transformers.AutoModel.from_config(hf_config)
        self.model.float()
        # a plain list: the layers stay registered once, under the model (no second copy in the state dict)
        self.layers: list[nn.Module] = list(_layer_stack(self.model, max(kept, 1)))
        self.hidden_size = int(hf_config.hidden_size)
        self.pooled = kept + 1 if self.layer is None else 1  # hidden states a clip's backbone output holds
        # softmax weights over the hidden states (layer=weighted): equal at the start, learned with the heads
        self.layer_weights = nn.Parameter(torch.zeros(kept + 1)) if self.layer is None else None
        trainable = {"all": [], "none": [self.model], "top_k": self.layers[kept - self.top_k : kept]}[freeze]
        self.trainable: list[nn.Module] = trainable
        self.model.requires_grad_(False)
        for block in trainable:
            block.requires_grad_(True)
        if freeze != "none":  # Lightning warns of modules in eval mode when training starts: these are, on purpose
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")
        if not project and output_dim != self.hidden_size:
            raise UserError(
                f"project=false hands over {self.source}'s {self.hidden_size}-d hidden states, but the model asks for {output_dim}",
                f"set model.embedding_dim={self.hidden_size}, or keep the projection (project=true)",
            )
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(self.hidden_size, output_dim) if project else nn.Identity()
        self.train()

    # --- settings --------------------------------------------------------------------------------------------

    @staticmethod
    def _check_choices(layer: Any, freeze: Any, top_k: Any) -> None:
        if not (layer == WEIGHTED or (isinstance(layer, int) and not isinstance(layer, bool))):
            raise UserError(f"layer={layer!r} is neither a hidden-state index nor {WEIGHTED}", "e.g. layer=6 or layer=weighted")
        if freeze not in FREEZE:
            raise UserError(f"unknown freeze={freeze}", "use all (a fixed backbone), none (fine-tune it all) or top_k")
        if freeze == "top_k" and not (isinstance(top_k, int) and not isinstance(top_k, bool) and top_k >= 1):
            raise UserError(f"top_k={top_k!r} is not a positive number of layers", "e.g. top_k=1")

    @staticmethod
    def _resolve_layer(layer: int | str, total: int) -> int | None:
        """`layer` as an index 0..total (None: the weighted sum of all); a UserError outside the model's range."""
        if layer == WEIGHTED:
            return None
        index = int(layer) + (total + 1 if int(layer) < 0 else 0)
        if not 0 <= index <= total:
            raise UserError(
                f"layer={layer} is outside the model's hidden states 0..{total} (0: the input of the first layer)",
                f"e.g. layer={total} (the top), layer=-1, or layer={WEIGHTED}",
            )
        return index

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """The config check's question, before any audio is read: the choices, transformers installed, the model's
        config readable (a local folder, or the Hub), its layer range and the top_k."""
        layer, freeze, top_k = settings.get("layer", WEIGHTED), settings.get("freeze", "all"), settings.get("top_k", 1)
        cls._check_choices(layer, freeze, top_k)
        from genre_style.models.pretrained.cache import checked_setting

        checked_setting(settings.get("cache", "auto"), freeze)
        if settings.get("config") is not None:
            return  # a checkpoint's copy: nothing to fetch
        source = str(settings.get("model", "m-a-p/MERT-v1-95M"))
        if "${" in source:
            return  # an interpolation, unresolved here: the encoder checks the model when it is built
        total = int(load_config(source).num_hidden_layers)
        index = cls._resolve_layer(layer, total)
        kept = total if index is None else index
        if freeze == "top_k" and top_k > kept:
            raise UserError(
                f"top_k={top_k} is more than the {kept} transformer layers up to layer={layer}",
                f"e.g. top_k=1, or freeze=none to fine-tune all {kept}",
            )

    @classmethod
    def check_data_sample_rate(cls, settings: dict[str, Any], rate: int | None) -> None:
        """The config check's question: data.clips.sample_rate is the model's (its feature extractor's)."""
        source = str(settings.get("model", "m-a-p/MERT-v1-95M"))
        if "${" in source and not settings.get("feature_extractor"):
            return  # an interpolation, unresolved here: the encoder checks the rate when it is built
        extractor = load_feature_extractor(
            None if settings.get("feature_extractor") else source, settings.get("feature_extractor")
        )
        check_sample_rate(source, int(extractor.sampling_rate), rate)

    def checkpoint_settings(self) -> dict[str, Any]:
        """The checkpoint holds every weight, the (cut) model's config and the feature extractor's settings: it is
        rebuilt from them alone (`pretrained: false`), without the source folder or the Hub."""
        config = json.loads(self.model.config.to_json_string(use_diff=False))
        return {
            "pretrained": False,
            "layer": WEIGHTED if self.layer is None else self.layer,
            "config": config,
            "feature_extractor": json.loads(self.extractor.to_json_string()),
        }

    # --- training ---------------------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> HFEncoder:
        """As nn.Module.train, but the frozen part of the model stays in eval mode (dropout off), so a frozen backbone
        is the same function at every step; fine-tuned layers follow `mode`."""
        super().train(mode)
        if self.freeze != "none":
            self.model.eval()
            for block in self.trainable:
                block.train(mode)
        return self

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    # --- the forward pass -------------------------------------------------------------------------------------

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms `[B, samples]` as the model's feature extractor prepares them: a wav2vec2-style extractor's
        per-clip zero mean and unit variance (its `do_normalize`), in torch; any other (AST's filter-bank frames)
        called on the batch."""
        transformers = _transformers()
        if isinstance(self.extractor, transformers.Wav2Vec2FeatureExtractor):
            if not self.extractor.do_normalize:
                return x
            mean = x.mean(dim=1, keepdim=True)
            return (x - mean) / torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + 1e-7)  # as its zero_mean_unit_var_norm
        with _quiet():
            prepared = self.extractor(
                list(x.detach().cpu().float().numpy()), sampling_rate=self.sampling_rate, return_tensors="pt"
            )
        return prepared[self.model.main_input_name].to(x.device, torch.float32)

    def backbone_features(self, x: torch.Tensor) -> torch.Tensor:
        """The model's part: waveforms `[B, samples]` -> the chosen hidden state averaged over time `[B, 1, hidden]`,
        or every hidden state so (`layer: weighted`) `[B, layers + 1, hidden]`. With `freeze: all` a fixed function
        of the clip: what a frozen-backbone cache holds."""
        out = self.model(**{self.model.main_input_name: self.model_input(x)}, output_hidden_states=True)
        states = out.hidden_states
        if states is None or len(states) != len(self.layers) + 1:
            raise RuntimeError(
                f"{type(self.model).__name__} gave {len(states or ())} hidden states for {len(self.layers)} layers"
            )
        chosen = states if self.layer is None else states[self.layer : self.layer + 1]
        return torch.stack([h.mean(dim=1) for h in chosen], dim=1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """`backbone_features`' output `[B, n, hidden]` -> the embedding: the layers' weighted sum, dropout, projection."""
        if self.layer_weights is not None:
            pooled = torch.einsum("l,blh->bh", torch.softmax(self.layer_weights, dim=0), features)
        else:
            pooled = features[:, 0]
        return self.project(self.dropout(pooled))

    def frozen_backbone(self) -> FrozenBackbone | None:
        """With `freeze: all`, the model up to `layer` (models/pretrained/cache.py): its outputs, flattened, are the
        same for a clip at every step, so a cache can hold them; the layer weights and projection stay in the heads."""
        if self.freeze != "all":
            return None
        from genre_style.models.pretrained.cache import FrozenBackbone

        prepared = json.dumps(self.extractor.to_dict(), sort_keys=True, default=str)  # the input, part of the identity
        layer = WEIGHTED if self.layer is None else self.layer
        return FrozenBackbone(
            self.model,
            lambda x: self.backbone_features(x).flatten(1),
            f"hf {self.source} layer={layer} input={hashlib.sha256(prepared.encode()).hexdigest()[:8]}",
            self.pooled * self.hidden_size,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms `[B, samples]`, or (`cached_input`) the frozen backbone's flattened outputs."""
        if getattr(self, "cached_input", False):  # Encoder.cached_input: set while the cache serves the backbone's outputs
            return self.head(x.view(len(x), self.pooled, self.hidden_size))
        return self.head(self.backbone_features(x))
