"""What every genre model shares: the train/val/test steps, metrics, optimiser and the embed/logits API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import lightning.pytorch as pl
import torch
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision, MulticlassRecall
from torchmetrics.wrappers import ClasswiseWrapper

from genre_style.metric_names import ACC, MACRO, PER_CLASS
from genre_style.metric_names import key as metric_key
from genre_style.metric_names import per_class as per_class_name
from genre_style.models.augment import Augment, Mixed
from genre_style.models.encoders import Encoder
from genre_style.models.losses import reconstruction_errors, song_contrastive_loss
from genre_style.models.plain_steps import plain_step, plain_steps_suffice

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x [B, *input_shape] float32, y [B] int64, track index [B] int64)


def minibatches(batch: Batch | Iterable[Batch]) -> Iterable[Batch]:
    """A training batch's minibatches: a plain batch is one (x, y, track) sequence; a group
    (`data.loader.minibatches_per_step`) iterates over several."""
    return (batch,) if isinstance(batch, (tuple, list)) else batch  # type: ignore[return-value]


def plain(node: Any) -> Any:
    """An OmegaConf node (what Hydra hands over with `_recursive_: false`) as plain dicts and lists."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def build(node: dict[str, Any], **kwargs: Any) -> Any:
    """Instantiate a `_target_` node, adding the arguments only the model knows (shapes, parameters). A UserError the
    target raises comes out as itself, not wrapped in Hydra's InstantiationException (twice, when the model itself is
    instantiated), so entry points say it in one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from genre_style.errors import UserError

    try:
        return instantiate(plain(node), **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, UserError):
            raise exc.__cause__ from None
        raise


@dataclass
class ModelOutputs:
    """One forward pass: the embedding always; logits and reconstruction where the model has them."""

    embedding: torch.Tensor
    logits: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    latent_sample: torch.Tensor | None = None  # variational models: the reparameterised sample (training) or the mean
    logvar: torch.Tensor | None = None  # variational models: log-variance of q(z|x)


class GenreModel(pl.LightningModule):
    """Base LightningModule. Subclasses build layers, `forward -> ModelOutputs` and `compute_losses`."""

    has_classifier: bool = True
    has_decoder: bool = False
    reads_configured_encoder: bool = True  # False: the model builds its own encoder and ignores `model.encoder`
    encoder_outputs_per_latent: int = 1  # variational models: 2 (mean and log-variance)

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        class_names: Sequence[str],
        encoder: dict[str, Any] | None = None,
        embedding_dim: int = 64,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        augment: dict[str, Any] | None = None,
        gradient_clip_val: float | None = None,
        input_kind: str | None = None,
        contrastive_weight: float = 0.0,
        contrastive_temperature: float = 0.1,
    ) -> None:
        """`encoder`, `optimizer`, `scheduler` and `augment` are Hydra node dicts (`_target_` + arguments):
        plain data, so checkpoints hold them and `embed` rebuilds the model from its hyperparameters alone.
        `input_kind` is the front-end's kind (`datamodule.input_kind`: map, waveform or vector), what augmentation
        may do to a clip; None: a map for 2-D clips, a waveform otherwise. `contrastive_weight` adds that much of
        `losses.song_contrastive_loss` (no labels: two augmented views, a song's clips as positives) to the loss."""
        super().__init__()
        # Manual optimisation: training_step steps the optimiser itself, once per minibatch it was given.
        self.automatic_optimization = False
        self.input_shape = tuple(int(d) for d in (input_shape if isinstance(input_shape, Sequence) else (input_shape,)))
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.optimizer_config = plain(optimizer) or {"_target_": "torch.optim.Adam", "lr": 1e-3}
        self.scheduler_config = plain(scheduler)
        self.gradient_clip_val = gradient_clip_val  # by norm; Trainer(gradient_clip_val) is for automatic optimisation
        self._plain_steps = False  # decided when training starts (see plain_steps.py)
        self.contrastive_weight, self.contrastive_temperature = float(contrastive_weight), float(contrastive_temperature)
        self.embedding_dim = embedding_dim
        self.encoder: Encoder = build(
            encoder or {"_target_": "genre_style.models.encoders.MLPEncoder"},
            input_shape=self.input_shape,
            output_dim=embedding_dim * self.encoder_outputs_per_latent,
        )
        self.input_kind = input_kind or ("map" if len(self.input_shape) == 2 else "waveform")
        augment_settings = dict(plain(augment) or {})
        augment_settings.pop("features", None)  # older configs named the front-end here; the kind now comes from the data
        self.augment = Augment(kind=self.input_kind, **augment_settings)  # identity unless switched on; training only
        # Epoch metrics are torchmetrics, fed once per epoch: a step only stashes its detached losses and
        # predicted classes (a few microseconds), where a torchmetrics update or a self.log per step costs
        # 0.1-1 ms in Lightning 2.6, as much as a step of this model. compute() syncs across processes, so
        # the values are right under DDP too.
        self._pending: dict[str, list[tuple[Any, ...]]] = {"train": [], "val": [], "test": []}
        self.loss_means = torch.nn.ModuleDict(
            {
                stage: torch.nn.ModuleDict({name: MeanMetric(nan_strategy="disable") for name in self.logged_losses})
                for stage in ("train_", "val_", "test_")
            }  # "train" alone would clash with nn.Module.train
        )
        if self.has_classifier:
            # "acc" is the plain share of correct clips (micro), the paper's accuracy; not the per-class mean.
            self.accuracy = torch.nn.ModuleDict(
                {stage: MulticlassAccuracy(num_classes, average="micro", validate_args=False) for stage in ("train_", "val_")}
            )
            self.test_metrics = self._test_metrics(num_classes, self.class_names)

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The entries of `compute_losses`, logged as `<stage>/<name>`."""
        return ("loss",)

    @property
    def logged_losses(self) -> tuple[str, ...]:
        """`loss_names`, plus the label-free term where it is on."""
        return self.loss_names + (("contrastive",) if self.contrastive_weight else ())

    @staticmethod
    def _test_metrics(num_classes: int, names: list[str]) -> MetricCollection:
        kinds = dict(zip(PER_CLASS, (MulticlassPrecision, MulticlassRecall, MulticlassF1Score)))  # metric_names.py
        per_class = {
            kind: ClasswiseWrapper(cls(num_classes, average=None), labels=names, prefix=per_class_name(kind, ""))
            for kind, cls in kinds.items()
        }
        macro = {per_class_name(kind, MACRO): cls(num_classes, average="macro") for kind, cls in kinds.items()}
        return MetricCollection({ACC: MulticlassAccuracy(num_classes, average="micro"), **macro, **per_class})

    # --- the API other parts rely on ---------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> ModelOutputs:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_losses(
        self, out: ModelOutputs, x: torch.Tensor, y: torch.Tensor, mixed: Mixed | None = None
    ) -> dict[str, torch.Tensor]:
        """Return at least `loss` (what is minimised); extra entries are logged as components. `mixed` is set
        when mixup blended the batch with a permutation of itself: the classification target is blended too."""
        raise NotImplementedError  # pragma: no cover - abstract

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding: the bottleneck of autoencoders, the hidden layer of the two-layer net."""
        return self(x).embedding

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self(x)
        if out.logits is None:
            raise TypeError(f"{type(self).__name__} has no classifier, so no logits")
        return out.logits

    # --- Lightning hooks ---------------------------------------------------------------------------

    def _step(self, batch: Batch, stage: str) -> torch.Tensor:
        x, y, songs = batch
        clean, mixed = x, None
        if stage == "train" and self.augment.active:
            x, mixed = self.augment(x, y)
        out = self(x)
        losses = self.compute_losses(out, x, y, mixed)
        if self.contrastive_weight:
            losses = self._add_contrastive(losses, out, clean, y, songs, stage)
        values = torch.stack([losses[name].detach() for name in self.logged_losses])
        weight = torch.full((1,), len(x), dtype=values.dtype, device=values.device)
        preds = out.logits.detach().argmax(dim=1) if self.has_classifier else None
        self._pending[stage].append((values, weight, preds, y))
        return losses["loss"]

    def _add_contrastive(
        self,
        losses: dict[str, torch.Tensor],
        out: ModelOutputs,
        clean: torch.Tensor,
        y: torch.Tensor,
        songs: torch.Tensor,
        stage: str,
    ) -> dict[str, torch.Tensor]:
        """The song contrastive term on the embedding of this view and of a second, independently augmented one
        (in training; val/test score the clips as they are, so the term measures the same-song agreement)."""
        second = self.augment(clean, y)[0] if stage == "train" and self.augment.active else clean
        term = song_contrastive_loss(out.embedding, self.embed(second), songs, self.contrastive_temperature)
        return {**losses, "loss": losses["loss"] + self.contrastive_weight * term, "contrastive": term}

    def _log_epoch(self, stage: str) -> None:
        pending, self._pending[stage] = self._pending[stage], []
        if not pending:
            return
        values = torch.stack([p[0] for p in pending])  # [steps, losses]
        weights = torch.cat([p[1] for p in pending])
        means: Any = self.loss_means[stage + "_"]
        for i, name in enumerate(self.logged_losses):
            means[name].update(values[:, i], weight=weights)
        logged = {f"{stage}/{name}": metric.compute() for name, metric in means.items()}
        for metric in means.values():
            metric.reset()
        if stage == "train" and not torch.isfinite(logged["train/loss"]):
            from genre_style.errors import UserError

            raise UserError(
                f"the training loss became {float(logged['train/loss'])} in epoch {self.current_epoch}: training diverged",
                "lower lr (e.g. lr=1e-4), check the inputs for extreme values, or use data.loader.standardize=true",
            )
        if self.has_classifier:
            preds, targets = torch.cat([p[2] for p in pending]), torch.cat([p[3] for p in pending])
            labelled = targets >= 0  # `data.source.unlabelled`'s clips have no genre to be right about
            preds, targets = preds[labelled], targets[labelled]
            if stage == "test":
                test_metrics: Any = self.test_metrics
                test_metrics.update(preds, targets)
                logged.update({f"test/{k}": v for k, v in test_metrics.compute().items()})
                test_metrics.reset()
            else:
                accuracy: Any = self.accuracy[stage + "_"]
                accuracy.update(preds, targets)
                logged[metric_key(stage, ACC)] = accuracy.compute()
                accuracy.reset()
        # The values are already global (torchmetrics syncs in compute()); sync_dist averages equal numbers
        # under DDP, which keeps Lightning from warning, and costs nothing in a single process.
        self.log_dict(logged, prog_bar=stage != "test", sync_dist=True)
        # Lightning's documented x-axis override: every epoch metric at step = epoch (one axis for train, val and
        # test, and no extra `epoch` metric), not at its count of batches.
        self.log("step", float(self.current_epoch), sync_dist=True)

    def training_step(self, batch: Batch | Iterable[Batch], batch_idx: int) -> None:
        """One optimiser step per minibatch; a batch may hold several (`data.loader.minibatches_per_step`), so
        Lightning's per-batch machinery runs once for all of them. Same steps, same order, same results."""
        optimizer: Any = self.optimizers()  # one optimiser: a LightningOptimizer
        for minibatch in minibatches(batch):
            loss = self._step(minibatch, "train")
            if self._plain_steps:
                plain_step(optimizer, loss, self.gradient_clip_val)
                continue
            optimizer.zero_grad()
            self.manual_backward(loss)
            if self.gradient_clip_val:
                self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
            optimizer.step()

    def on_fit_start(self) -> None:
        """A monitored metric this model never logs would stop the run at the first validation with Lightning's
        traceback: say it at once, with the names it does log."""
        from genre_style.errors import UserError

        logged = {f"val/{name}" for name in self.logged_losses} | ({metric_key("val", ACC)} if self.has_classifier else set())
        for callback in (self.trainer.early_stopping_callback, self.trainer.checkpoint_callback):
            monitor = getattr(callback, "monitor", None)
            if monitor and monitor not in logged:
                raise UserError(
                    f"monitor.metric={monitor} is not logged by {type(self).__name__}",
                    f"choose one it logs: {', '.join(f'monitor.metric={m}' for m in sorted(logged))}",
                )

    def on_train_start(self) -> None:
        self._plain_steps = plain_steps_suffice(self.trainer, self)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        scheduler = self.lr_schedulers()
        if scheduler is not None:  # stepped once an epoch: manual optimisation leaves it to the module
            scheduler.step()  # type: ignore[union-attr]

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, track = batch
        out = self(x)
        result = {"embedding": out.embedding, "y": y, "track": track}
        if out.logits is not None:
            result["logits"] = out.logits
        if out.reconstruction is not None:
            # per clip, reduced as in training (the model's recon_reduction), so final */recon match the curves
            result["reconstruction_error"] = reconstruction_errors(x, out.reconstruction, getattr(self, "recon_reduction", "sum"))
        return result

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record what rebuilding this model needs, so `python -m genre_style.embed` can load any checkpoint."""
        checkpoint["genre_style"] = {
            "model_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "class_names": self.class_names,
        }
        # Hydra hands `_recursive_: false` nodes over as OmegaConf objects: store plain data, so checkpoints load
        # with torch.load(weights_only=True).
        checkpoint["hyper_parameters"] = {k: plain(v) for k, v in checkpoint.get("hyper_parameters", {}).items()}
        hparams = checkpoint["hyper_parameters"]
        settings = getattr(self.encoder, "checkpoint_settings", None)  # the baseline's Standardize is no Encoder
        if isinstance(hparams.get("encoder"), dict) and settings is not None:
            hparams["encoder"] = {**hparams["encoder"], **settings()}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """What the optimiser updates: the trainable weights (a frozen backbone's are left out), the encoder's
        `backbone_parameters` in a group of their own with `lr_scale` (`configure_optimizers` scales its rate)."""
        # the baseline's Standardize is no Encoder: no backbone
        pretrained: list[torch.nn.Parameter] = getattr(self.encoder, "backbone_parameters", list)()
        backbone = {id(p) for p in pretrained}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in backbone]
        groups: list[dict[str, Any]] = [{"params": rest}]
        if pretrained:
            groups.append({"params": pretrained, "lr_scale": self.encoder.backbone_lr_scale})
        return groups

    def configure_optimizers(self) -> Any:
        # partial, then called: Hydra would turn the groups' dicts (tensors inside) into DictConfigs
        optimizer = build({**self.optimizer_config, "_partial_": True})(self.parameter_groups())
        for group in optimizer.param_groups:
            group["lr"] *= group.get("lr_scale", 1.0)
        if not self.scheduler_config:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": build(self.scheduler_config, optimizer=optimizer), "interval": "epoch"},
        }
