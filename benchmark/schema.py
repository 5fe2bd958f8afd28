"""The typed schema of every suite and method file (pydantic): each key is declared here with its type and range.

A typo is an error naming the closest known key ("did you mean `seeds`?"); a wrong type or an out-of-range value
is an error naming the key and the value, before anything is trained or written. Validated sections come back
with their defaults filled in, so a result file records the effective configuration.

Methods declare their own ``model:`` and ``task:`` keys with ``@method_schema(name)`` (one entry per
LightningModule name); coming method kinds (chains, phases, autoencoders) add their sections the same way.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from registry import closest as closest_name

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]  # a probability or share that must leave something over
Probability = Annotated[float, Field(ge=0, le=1)]


def closest(key: str, known: typing.Iterable[str]) -> str:
    """' (did you mean `x`?)' for the known key nearest to a typo, or ''."""
    match = closest_name(key, known)
    return f" (did you mean `{match}`?)" if match else ""


def unknown_keys(data: Any, known: typing.Iterable[str]) -> None:
    """Raise one pydantic error naming every key of ``data`` that is not in ``known``, each with the closest known one."""
    known = list(known)
    if isinstance(data, dict):
        unknown = [str(key) for key in data if key not in known]
        if unknown:
            listed = ", ".join(f"`{key}`{closest(key, known)}" for key in unknown)
            raise PydanticCustomError("unknown_key", "unknown key {listed} (known: {known})", {"listed": listed, "known": ", ".join(known)})


class Section(BaseModel):
    """A mapping whose keys are all declared: unknown keys are errors with a suggestion."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any) -> Any:
        unknown_keys(data, cls.model_fields)
        return data


# ----- data: the DataModule settings (datamodules/datamodule.py CXRDataModule) -----
Augmentation = Literal["none", "hflip", "light", "flip_rotate", "transfer_cxr14", "twice_transfer"]  # datamodules/transforms.py PRESETS


class PairSamplingConfig(Section):
    """Training batches of image pairs (datamodules/sampling.py PairSampling; siamese paper, section 3.1)."""

    pairs_per_epoch: PositiveInt = 12000
    images_per_batch: PositiveInt | None = None


class HeldOutSplit(Section):
    """A split that holds out whole sources (datamodules/source_split.py): ``test`` sources are the test split, the
    rest train, validate (random patients, or a whole ``val_source``) and test in-source (WILDS's ID test)."""

    field: str = "auto"  # the manifest column naming each image's source; auto: `component` of a combined task, else `source`
    test: Annotated[list[str], Field(min_length=1)]
    validation: Literal["random", "source"] = "random"
    val_source: str | None = None


class DataConfig(Section):
    image_size: Annotated[int, Field(ge=8, le=4096)] = 224
    batch_size: PositiveInt = 16
    eval_batch_size: PositiveInt | None = None
    num_workers: NonNegativeInt = 0
    split_seed: int = 0
    val_fraction: Fraction = 0.15
    test_fraction: Fraction = 0.15
    augmentation: Augmentation | None = "none"
    augment_classes: list[str] | None = None
    normalization: Literal["train_stats", "per_image", "imagenet", "unit"] = "train_stats"  # transforms.py NORMALIZATIONS
    channels: Literal[1, 3] = 1  # 3: the gray image repeated for ImageNet-pretrained RGB stems
    balanced_sampling: Literal["undersample", "oversample", "multilabel"] | None = None
    balanced_per_class: Annotated[int, Field(ge=1)] = 200
    pair_sampling: PairSamplingConfig | None = None
    expansion: dict[str, PositiveInt] | None = None  # {class: appearances per epoch}, twice-transfer paper section 5.2
    class_names: list[str] | None = None
    class_map: dict[str, str] | None = None
    lung_crop: bool = False  # crop each image to its lung region before the resize (siamese paper 3.3.1; cache.py)
    held_out: HeldOutSplit | None = None  # a leave-one-source-out split (datamodules/source_split.py); set by the suite's `split:`

    @model_validator(mode="after")
    def _fractions_leave_a_train_split(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction must be below 1 (got {self.val_fraction} + {self.test_fraction})")
        return self

    @model_validator(mode="after")
    def _inputs_and_sampling_agree(self, info: ValidationInfo) -> DataConfig:
        if (info.context or {}).get("partial"):  # one side of a suite/method merge: checked once merged
            return self
        if self.normalization == "imagenet" and self.channels != 3:
            raise ValueError(f"normalization: imagenet has per-channel RGB statistics and needs channels: 3 (got channels: {self.channels})")
        if self.expansion and (self.balanced_sampling or self.pair_sampling):
            raise ValueError("expansion cannot be combined with balanced_sampling or pair_sampling (each decides an epoch's images)")
        return self


# ----- trainer: the pytorch_lightning.Trainer arguments a suite may set -----
class TrainerConfig(Section):
    accelerator: str = "auto"
    devices: PositiveInt | list[NonNegativeInt] | Literal["auto"] = 1
    num_nodes: PositiveInt = 1
    strategy: str = "auto"
    precision: Literal["32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true"] | Literal[32, 16, 64] = "32-true"
    max_epochs: PositiveInt = 1
    max_steps: Annotated[int, Field(ge=-1)] = -1
    deterministic: bool | Literal["warn"] = "warn"
    log_every_n_steps: PositiveInt = 10
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    num_sanity_val_steps: Annotated[int, Field(ge=-1)] = 2
    check_val_every_n_epoch: PositiveInt = 1
    limit_train_batches: PositiveInt | Annotated[float, Field(gt=0, le=1)] | None = None
    limit_val_batches: NonNegativeInt | Probability | None = None
    limit_test_batches: PositiveInt | Annotated[float, Field(gt=0, le=1)] | None = None
    accumulate_grad_batches: PositiveInt = 1
    gradient_clip_val: Annotated[float, Field(ge=0)] | None = None


# ----- optimisers, schedulers, losses (lightning_modules/base.py and losses.py) -----
Betas = tuple[Fraction, Fraction]


class Adam(Section):
    name: Literal["adam", "adamw"]
    lr: PositiveFloat = 1e-4
    betas: Betas = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    amsgrad: bool = False


class SGD(Section):
    name: Literal["sgd"]
    lr: PositiveFloat = 1e-3
    momentum: Annotated[float, Field(ge=0)] = 0.0
    dampening: Annotated[float, Field(ge=0)] = 0.0
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    nesterov: bool = False


class RMSprop(Section):
    name: Literal["rmsprop"]
    lr: PositiveFloat = 1e-2
    alpha: Fraction = 0.99
    eps: PositiveFloat = 1e-8
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    momentum: Annotated[float, Field(ge=0)] = 0.0
    centered: bool = False


Optimizer = Annotated[Union[Adam, SGD, RMSprop], Field(discriminator="name")]


class Plateau(Section):
    name: Literal["plateau"]
    monitor: str = "val/loss"
    mode: Literal["min", "max"] = "min"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: NonNegativeInt = 10
    threshold: Annotated[float, Field(ge=0)] = 1e-4
    cooldown: NonNegativeInt = 0
    min_lr: Annotated[float, Field(ge=0)] = 0.0


class StepLR(Section):
    name: Literal["step"]
    step_size: PositiveInt
    gamma: PositiveFloat = 0.1


class Cosine(Section):
    name: Literal["cosine"]
    t_max: PositiveInt | None = None  # default: the trainer's max_epochs
    eta_min: Annotated[float, Field(ge=0)] = 0.0


class Exponential(Section):
    name: Literal["exponential"]
    gamma: PositiveFloat


Scheduler = Annotated[Union[Plateau, StepLR, Cosine, Exponential], Field(discriminator="name")]


class CrossEntropy(Section):
    name: Literal["cross_entropy"]
    weight: list[PositiveFloat] | None = None
    label_smoothing: Fraction = 0.0


class BCE(Section):
    name: Literal["bce"]
    pos_weight: list[PositiveFloat] | None = None


class WeightedCrossEntropy(Section):
    """Weighted-CE paper, eq. (4): beta scales the positive class's term (a list or mapping: one per class)."""

    name: Literal["weighted_cross_entropy"]
    beta: PositiveFloat | list[PositiveFloat] | dict[str, PositiveFloat] = 1.0
    positive: str | NonNegativeInt | None = None


Loss = Annotated[Union[CrossEntropy, BCE, WeightedCrossEntropy], Field(discriminator="name")]


class Monitor(Section):
    metric: Annotated[str, Field(pattern=r"^val/")] = "val/accuracy"
    mode: Literal["min", "max"] = "max"


class StartWeightsFile(Section):
    """A local weights file; ``strict: false`` loads whatever matches instead of failing on a mismatch."""

    file: str
    strict: bool = True


# ----- chains: stages and their phases (benchmark/chain.py; transfer paper section 4.2, twice-transfer section 6) -----
class EarlyStop(Section):
    """End a phase when ``metric`` has not improved for ``patience`` validation epochs (twice transfer, section 6.2)."""

    metric: Annotated[str, Field(pattern=r"^val/")] = "val/loss"
    mode: Literal["min", "max"] = "min"
    patience: PositiveInt


class UnfreezeStep(Section):
    """A step of a phase's gradual unfreezing (lightning_modules/unfreezing.py): before the phase's epoch ``epoch``
    (0-based: after that many epochs) the modules under ``modules`` (dotted prefixes, or ``all``) start training,
    at ``lr`` (None: the optimiser's current learning rate)."""

    epoch: PositiveInt
    modules: Literal["all"] | Annotated[list[str], Field(min_length=1)]
    lr: PositiveFloat | None = None


class Phase(Section):
    """One phase of a stage's schedule: which parameters train, with which optimiser, for how many epochs.
    ``train``: ``all``, ``head`` (the backbone frozen), or parameter-name prefixes (``[backbone.features.denseblock4, head]``);
    ``unfreeze``: a schedule that unfreezes more of the network within the phase (ULMFiT's gradual unfreezing)."""

    name: str | None = None
    train: Literal["all", "head"] | Annotated[list[str], Field(min_length=1)] = "all"
    epochs: PositiveInt
    optimizer: Optimizer | None = None  # None: the method's
    scheduler: Scheduler | None = None
    early_stopping: EarlyStop | None = None
    unfreeze: list[UnfreezeStep] = []

    @model_validator(mode="after")
    def _schedule(self) -> Phase:
        epochs = [step.epoch for step in self.unfreeze]
        if epochs != sorted(epochs):
            raise ValueError(f"phase {self.name or ''}: unfreeze steps must be in epoch order (got {epochs})")
        if any(epoch >= self.epochs for epoch in epochs):
            raise ValueError(f"phase {self.name or ''}: an unfreeze step at epoch {max(epochs)} never comes in a phase of {self.epochs} epochs")
        if self.unfreeze and self.train == "all":
            raise ValueError(f"phase {self.name or ''}: unfreeze needs a phase that starts with part of the network frozen (train: head or prefixes)")
        return self


START_KINDS = ("random", "imagenet", "file", "stage", "chexnet")


class Start(Section):
    """How a stage's network starts: ``random``; ``imagenet`` (timm's weights: cache or download, or ``file``: an
    offline copy); ``file: PATH`` (a local state dict); ``stage: NAME`` (an earlier stage of the chain); ``chexnet:
    PATH`` (a CheXNet checkpoint of a public release). Written as ``start: imagenet`` or ``start: {stage: cxr14}``."""

    kind: Literal["random", "imagenet", "file", "stage", "chexnet"]
    file: str | None = None
    stage: str | None = None
    strict: bool = True

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data not in ("random", "imagenet"):
                raise PydanticCustomError("start", "start must be random, imagenet or a mapping {file|stage|chexnet|imagenet: ...} (got {value!r})", {"value": data})
            return {"kind": data}
        if isinstance(data, dict) and "kind" not in data:
            kinds = [k for k in data if k in START_KINDS]
            if len(kinds) != 1:
                raise PydanticCustomError("start", "start needs exactly one of {kinds} (got {value!r})", {"kinds": ", ".join(START_KINDS), "value": data})
            kind, value = kinds[0], data[kinds[0]]
            rest = {k: v for k, v in data.items() if k != kind}
            if kind == "stage":
                return {"kind": kind, "stage": value, **rest}
            if kind == "imagenet" and isinstance(value, dict):
                return {"kind": kind, **value, **rest}
            return {"kind": kind, "file": value, **rest}
        return data

    @model_validator(mode="after")
    def _needs(self) -> Start:
        if self.kind in ("file", "chexnet") and not self.file:
            raise ValueError(f"start: {self.kind} needs a file")
        if self.kind == "stage" and not self.stage:
            raise ValueError("start: stage needs the name of an earlier stage")
        return self


class StageDataset(Section):
    name: str
    root: str | None = None
    options: dict[str, Any] = {}


class PretrainingPool(Section):
    """The images of a reconstruction stage (datamodules/pretraining.py): the downstream task's train split plus
    ``extra`` datasets, minus every image in, copying, or of a patient of the downstream val/test split; ``val_fraction``
    of the pool's patients validate (drawn once, with ``seed``)."""

    extra: list[StageDataset | str] = []
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    seed: int = 0


class ReconstructionModel(Section):
    """The convolutional autoencoder of the CAE paper (Tables 1-2); the paper's decoder ends in a ReLU."""

    output_activation: Literal["relu", "sigmoid"] = "relu"


class StageConfig(Section):
    """One stage of a chain: its dataset (none: the suite's, for the last stage only), its head, how it starts and
    its phases. ``keep_outputs`` {this stage's class: the start's class} copies those output neurons' weight rows and
    biases (twice transfer's output-neuron keeping, section 3.2); the other outputs are new.

    ``objective: reconstruction`` makes an unsupervised autoencoder stage (CAE paper, section 3.1): no dataset, no
    classes; its images are the ``pool``, its network the autoencoder (``model``) whose encoder a later stage
    starts from (``start: {stage: NAME}``)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    objective: Literal["classification", "reconstruction"] = "classification"
    pool: PretrainingPool | None = None
    model: ReconstructionModel | None = None
    dataset: StageDataset | str | None = None
    start: Start = Start(kind="random")
    head: Literal["softmax", "sigmoid"] | None = None  # None: softmax, sigmoid for a multi-label dataset
    keep_outputs: dict[str, str] = {}
    loss: Loss | None = None  # None: the method's, else BCE for a sigmoid head, cross-entropy for softmax
    monitor: Monitor | None = None  # None: the method's
    data: dict[str, Any] = {}  # over the method's input settings (image size, channels ...); split keys for its own dataset
    trainer: dict[str, Any] = {}
    phases: Annotated[list[Phase], Field(min_length=1)]

    @model_validator(mode="after")
    def _keep_needs_a_source(self) -> StageConfig:
        if self.keep_outputs and self.start.kind not in ("stage", "chexnet"):
            raise ValueError(f"stage {self.name}: keep_outputs needs start: stage or chexnet (got {self.start.kind})")
        return self

    @model_validator(mode="after")
    def _reconstruction(self) -> StageConfig:
        if self.objective == "classification":
            if self.pool is not None or self.model is not None:
                raise ValueError(f"stage {self.name}: pool and model belong to an objective: reconstruction stage")
            return self
        wrong = [key for key in ("dataset", "head", "loss") if getattr(self, key) is not None] + (["keep_outputs"] if self.keep_outputs else [])
        if wrong:
            raise ValueError(f"stage {self.name}: a reconstruction stage has no {', '.join(wrong)} (its images are its pool)")
        if self.start.kind not in ("random", "file", "stage"):
            raise ValueError(f"stage {self.name}: a reconstruction stage starts random, from a file or from an earlier reconstruction stage")
        if any(phase.train != "all" or phase.unfreeze for phase in self.phases):
            raise ValueError(f"stage {self.name}: a reconstruction stage trains the whole autoencoder (train: all)")
        self.pool = self.pool or PretrainingPool()
        self.model = self.model or ReconstructionModel()
        return self


# ----- per-method sections: `model:` and `task:` -----
class NoOptions(Section):
    pass


METHOD_SCHEMAS: dict[str, tuple[type[Section], type[Section]]] = {}


def method_schema(name: str, *, task: type[Section] = NoOptions):
    """Register the ``model:`` section (the decorated class) and the ``task:`` section of method ``name``."""

    def register(model: type[Section]) -> type[Section]:
        if name in METHOD_SCHEMAS:
            raise ValueError(f"method schema {name!r} is declared twice")
        METHOD_SCHEMAS[name] = (model, task)
        return model

    return register


Dropout = Annotated[float, Field(ge=0, lt=1)]


@method_schema("single_net")
class SingleNetModel(Section):
    """Siamese paper, section 3.2 and eq. (4): the COVID-Net encoder's width and its dense head."""

    nf: PositiveInt = 128
    fc_units: PositiveInt = 1024
    dropout: tuple[Dropout, Dropout, Dropout] = (0.5, 0.2, 0.2)


class SiameseTask(Section):
    pair_embedding: Literal["batch", "two_tower"] = "batch"
    validation_trials: PositiveInt = 129
    validation_seed: int = 0


@method_schema("siamese", task=SiameseTask)
class SiameseModel(Section):
    """Siamese paper, sections 2.1 and 2.3; ``variant: authors`` adds the authors' bias and dropout."""

    variant: Literal["paper", "authors"] = "paper"
    nf: PositiveInt = 128
    fc_units: PositiveInt = 1024
    dropout: tuple[Dropout, Dropout, Dropout] | None = None  # None: the variant's
    distance_bias: bool | None = None  # None: the variant's


class ACNNOptions(Section):
    depth: PositiveInt = 16
    width: PositiveInt = 3
    expansion: PositiveInt = 3
    rates: tuple[PositiveInt, PositiveInt] = (1, 3)
    init_std: PositiveFloat = 0.5


class FCNHeadOptions(Section):
    hidden: list[PositiveInt] = [128, 16]
    dropout: Dropout = 0.2


class LinearHeadOptions(Section):
    dropout: Dropout = 0.0


class SequenceHeadOptions(Section):
    """CAE paper, Table 3 and Table 4: the encoder's map as a sequence -> ``lstm_layers`` LSTMs -> flatten -> Dense
    layers of ``dense`` widths -> the output layer (proposed: 1 LSTM, Dense(64))."""

    lstm_layers: Annotated[int, Field(ge=0)] = 1
    dense: list[PositiveInt] = [64]
    dense_activation: Literal["relu", "tanh", "sigmoid", "linear"] = "relu"


class CAEEncoderOptions(Section):
    pass


HEAD_OPTIONS = {"fcn": FCNHeadOptions, "linear": LinearHeadOptions, "sequence": SequenceHeadOptions}
REGISTERED_BACKBONES = {"acnn": ACNNOptions, "cae_encoder": CAEEncoderOptions}


@method_schema("classifier")
class ClassifierModel(Section):
    """A backbone (``acnn``, ``cae_encoder`` or a timm architecture) and a head (``fcn``: the weighted-CE authors';
    ``linear``; ``sequence``: the CAE paper's LSTM head)."""

    backbone: str = "resnet50"
    backbone_options: dict[str, Any] = {}
    head: Literal["fcn", "linear", "sequence"] = "linear"
    head_options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _options(self) -> ClassifierModel:
        if self.backbone in REGISTERED_BACKBONES:
            self.backbone_options = REGISTERED_BACKBONES[self.backbone].model_validate(self.backbone_options).model_dump()
        else:
            import timm

            if not timm.is_model(self.backbone):
                raise ValueError(f"unknown backbone `{self.backbone}`{closest(self.backbone, [*REGISTERED_BACKBONES, *timm.list_models()])} ({', '.join(REGISTERED_BACKBONES)} or a timm model name)")
        self.head_options = HEAD_OPTIONS[self.head].model_validate(self.head_options).model_dump()
        return self


# ----- fair comparison: search spaces, tuning budgets, source splits (benchmark/tuning.py, datamodules/source_split.py) -----
class Distribution(Section):
    """One hyper-parameter's prior in a search space: ``{log_uniform: [low, high]}``, ``{uniform: [low, high]}``,
    ``{int_uniform: [low, high]}`` (both ends included) or ``{choice: [values]}``."""

    log_uniform: tuple[PositiveFloat, PositiveFloat] | None = None
    uniform: tuple[float, float] | None = None
    int_uniform: tuple[int, int] | None = None
    choice: Annotated[list[Any], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a distribution needs exactly one of log_uniform, uniform, int_uniform, choice (got {', '.join(given) or 'none'})")
        bounds = getattr(self, given[0])
        if given[0] != "choice" and not bounds[0] < bounds[1]:
            raise ValueError(f"{given[0]}: low must be below high (got {list(bounds)})")
        return self


SELECTION_RULES = ("validation", "leave-one-source-out-validation", "oracle")


class TuningOptions(Section):
    """A fair sweep (DomainBed, Gulrajani and Lopez-Paz 2021): every method gets the same ``draws`` random draws from
    its ``search_space`` (draw 0 = its paper defaults), each trained ``trials`` times (seeds 0..trials-1), reproducible
    from ``seed``; ``select`` names the rule that picks each method's draw for the main and claims tables (``oracle``,
    chosen on test data, is only ever shown as a labelled upper bound: ``python -m benchmark collect --select oracle``)."""

    draws: PositiveInt = 1
    trials: PositiveInt = 1
    seed: int = 0
    select: Literal["validation", "leave-one-source-out-validation"] = "validation"


class SourceSplitOptions(Section):
    """``split: {by: source, test: NAME | [NAMES] | each}``: hold out whole sources as the test split (``each``: one
    run per source that holds at least two of the task's classes). A source is a dataset of a combined task, or the
    per-image ``source`` field of one dataset (``field``). ``val_source``: the training source a
    leave-one-source-out-validation sweep validates on (default: the first in sorted order with two classes)."""

    by: Literal["source"] = "source"
    test: str | Annotated[list[str], Field(min_length=1)]
    field: str = "auto"
    val_source: str | None = None


# ----- method and suite files -----
class MethodFile(Section):
    """A method file after its ``extends:`` chain is merged; ``id`` and ``file`` are set by the loader. The
    ``model:`` and ``task:`` sections are the method's own (METHOD_SCHEMAS); ``data:`` and ``trainer:`` are
    checked here key by key and validated whole once merged with the suite's."""

    method: str
    id: str
    file: str
    title: str | None = None
    paper: str | None = None
    # paper: the paper's schedule (GPU profile); quick: a CPU-sized pipeline check, never evidence for a claim
    profile: Literal["paper", "quick"] = "paper"
    model: dict[str, Any] = {}
    task: dict[str, Any] = {}
    loss: Loss | None = None  # None: the method's own (cross-entropy, or BCE for multi-label tasks)
    optimizer: Optimizer = Adam(name="adam")
    scheduler: Scheduler | None = None
    start_weights: str | StartWeightsFile | None = None
    data: dict[str, Any] = {}
    trainer: dict[str, Any] = {}
    monitor: Monitor = Monitor()
    grid_search: dict[str, Any] | None = None  # benchmark/config.py parse_grid parses it; every point is validated
    # {dotted key: distribution}: the method's hyper-parameter space of a fair sweep (benchmark/tuning.py); draw 0 = the
    # values above (the paper's); a chain's phases by name: stages.<stage>.phases.<phase>.optimizer.lr
    search_space: dict[str, Distribution | None] | None = {}  # null: none (drops an inherited space); a key: null drops that key
    stages: list[StageConfig] | None = None  # a chain (benchmark/chain.py); None: one training on the suite's dataset
    deviations: list[str] = []

    @model_validator(mode="after")
    def _chain(self) -> MethodFile:
        if not self.stages:
            return self
        names = [stage.name for stage in self.stages]
        for number, stage in enumerate(self.stages):
            if names.count(stage.name) > 1:
                raise ValueError(f"stage name {stage.name!r} is used twice")
            if stage.start.kind == "stage" and stage.start.stage not in names[:number]:
                raise ValueError(f"stage {stage.name}: start: stage {stage.start.stage!r} is not an earlier stage (earlier: {', '.join(names[:number]) or 'none'})")
            if stage.objective == "reconstruction" and number == len(self.stages) - 1:
                raise ValueError(f"stage {stage.name}: a reconstruction stage pretrains a later one; it cannot be the last")
            if stage.dataset is None and stage.objective == "classification" and number < len(self.stages) - 1:
                raise ValueError(f"stage {stage.name}: only the last stage may leave out `dataset` (it then trains on the suite's)")
        if self.grid_search:
            raise ValueError("a chain (stages:) has no grid search")
        return self

    @model_validator(mode="after")
    def _known_method(self) -> MethodFile:
        if self.method not in METHOD_SCHEMAS:
            raise PydanticCustomError("unknown_method", "unknown method `{name}`{hint} (known: {known})",
                                      {"name": self.method, "hint": closest(self.method, METHOD_SCHEMAS), "known": ", ".join(sorted(METHOD_SCHEMAS))})
        return self


class DatasetEntry(Section):
    name: str
    root: str | None = None
    options: dict[str, Any] = {}  # checked against the DataModule's own arguments (dataset_options)
    split: SourceSplitOptions | None = None  # over the suite's `split:` for this dataset


class ExternalEntry(Section):
    """An external test set every run of the suite is scored on after its own test (benchmark/external/evaluate_set.py): the
    dataset's folder (``root``, else found under --data-root), reader ``options``, a ``label_map`` {its label: run
    class or null} over the default (same names, then the run's class_map), and what to do with images that copy
    the run's train/val images."""

    name: str
    title: str | None = None  # how the leaderboard names the set (default: the dataset and what differs from its defaults)
    root: str | None = None
    options: dict[str, Any] = {}
    label_map: dict[str, str | None] | None = None
    duplicates: Literal["exclude", "keep"] = "exclude"
    # at most this many images per (mapped) class, drawn once with ``sample_seed`` (whole patients are not kept
    # together: the bootstrap still resamples by patient): a CPU quick profile's external score, with wider CIs
    max_per_class: PositiveInt | None = None
    sample_seed: int = 0


class GainOptions(Section):
    """Weighted-CE paper, section VI.C: the Gain table against a reference method."""

    reference: str | None = None  # a method id of the same table
    # a fixed score of a row that is not re-run, e.g. Minaee et al.'s SqueezeNet, Table II's own reference:
    # (bACC + PPCR) / 2 = (0.9762 + 0.9773) / 2 = 0.97675
    reference_score: Annotated[float, Field(gt=0, le=1)] | None = None
    reference_label: str | None = None
    positive: str = "COVID-19"
    ppcr: Literal["as_defined", "as_tabulated"] = "as_defined"


class LeaderboardOptions(Section):
    gain: GainOptions | None = None
    # method ids: under each table, every method paired against the first of these the table holds (paired_table.py)
    paired_reference: list[str] = []


class WandbOptions(Section):
    enabled: bool = True
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "cxr-bench"
    entity: str | None = None


class LoggingOptions(Section):
    wandb: bool | WandbOptions = WandbOptions()
    # each run's ROC, confusion and reliability PNGs (benchmark/plots.py, about 1 s a run on a CPU): a large sweep may
    # leave them out; the metrics and predictions do not change
    plots: bool = True


class StatisticsOptions(Section):
    """Patient-level bootstrap of every test metric (benchmark/statistics.py)."""

    n_resamples: Annotated[int, Field(ge=100)] = 2000
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    seed: int = 0
    method: Literal["percentile", "BCa"] = "percentile"


class LauncherConfig(Section):
    """How a suite's runs are started (benchmark/launchers.py): ``local`` trains them one after another in this
    process (every rank of a DDP run goes through the same loop); ``submitit`` submits each run as a job, on SLURM or
    as local processes (``cluster``; ``auto``: SLURM where ``sbatch`` exists). The other keys are the jobs'
    resources (submitit's names); they change how a run is started, never what it computes (not in its fingerprint)."""

    name: Literal["local", "submitit"] = "local"
    cluster: Literal["auto", "slurm", "local"] = "auto"
    folder: str | None = None  # submitit's job files and logs; None: <out>/submitit
    slurm_partition: str | None = None
    gpus_per_node: NonNegativeInt = 0
    cpus_per_task: PositiveInt | None = None  # None: the cluster's default
    timeout_min: PositiveInt = 240
    max_parallel_jobs: PositiveInt | None = None  # None: no limit but the cluster's
    slurm_additional_parameters: dict[str, Any] = {}  # more #SBATCH lines, e.g. {account: abc, mem: 64G}


class PhantomProfile(Section):
    """How much a suite trains when it runs on the synthetic phantoms (no data root): a pipeline check that ends in
    minutes. Caps every run's and every phase's epochs and the batches per epoch, and may size the ``synthetic``
    phantom set (``patients_per_class``; an entry's own option wins); real data is not affected.
    ``limit_val_batches`` must leave every class in validation (the siamese one-shot trials need two of each)."""

    max_epochs: PositiveInt | None = None
    limit_train_batches: PositiveInt | None = None
    limit_val_batches: PositiveInt | None = None
    patients_per_class: PositiveInt | None = None  # the size of the `synthetic` phantom set (default 100)


class ExplainOptions(Section):
    """Explanations and shortcut probes of every run after its test (``python -m benchmark explain``, benchmark/explain/):
    heatmap grids, t-SNE and SOM of the features, and the lung-mask, text and source probes on a seeded sample of
    the test images (``probe_images`` per class, the same for every method on the shared split)."""

    heatmaps: Annotated[list[Literal["gradcam", "gradcam++", "cam", "lrp"]], Field(min_length=1)] = ["gradcam"]
    images: Annotated[int, Field(ge=1, le=8)] = 2  # grid rows per class and outcome (correct, wrong)
    findings: list[str] | None = None  # multi-label runs: one map per finding named (default: the 3 most frequent in the sample)
    probe_images: PositiveInt = 50  # per class
    probes: bool = True
    latent: bool = True
    word: str = "SEDUTO"  # burnt into correctly classified normal images (twice-transfer paper, section 9.1)
    mask_fill: Literal["mean", "black"] = "mean"  # what replaces the masked part: the training mean intensity, or black
    seed: int = 0
    bootstrap_resamples: Annotated[int, Field(ge=100)] = 500  # patient-level CIs of the probe metrics


class SuiteFile(Section):
    """A suite; its ``data:`` and ``trainer:`` override every method's and are checked key by key."""

    name: str | None = None
    description: str = ""
    datasets: Annotated[list[Union[str, DatasetEntry]], Field(min_length=1)]
    methods: Annotated[list[str], Field(min_length=1)]
    seeds: Annotated[list[int], Field(min_length=1)] = [0]
    synthetic_without_data_root: bool = False
    phantoms: PhantomProfile | None = None  # shorter training where a run's data are phantoms
    data: dict[str, Any] = {}
    trainer: dict[str, Any] = {}
    grid_search: bool | dict[str, Any] = False
    external: list[Union[str, ExternalEntry]] = []
    leaderboard: LeaderboardOptions = LeaderboardOptions()
    logging: LoggingOptions = LoggingOptions()
    statistics: StatisticsOptions = StatisticsOptions()
    launcher: LauncherConfig = LauncherConfig()
    explain: ExplainOptions | None = None  # explanations and shortcut probes after every run (benchmark/explain/)
    split: SourceSplitOptions | None = None  # a leave-one-source-out split for every dataset (an entry's own wins)
    tuning: TuningOptions | None = None  # a fair sweep: equal random-search budgets and a declared selection rule

    @model_validator(mode="after")
    def _selection_needs_sources(self) -> SuiteFile:
        if self.tuning and self.tuning.select == "leave-one-source-out-validation":
            entries = [e for e in self.datasets if not isinstance(e, DatasetEntry) or e.split is None]
            if self.split is None and entries:
                raise ValueError("tuning.select: leave-one-source-out-validation validates on a held-out training source; "
                                 "it needs a `split: {by: source, test: ...}` for every dataset")
        return self


# ----- the claims table (configs/claims/papers.yaml, benchmark/claims.py) -----
class ClaimComparison(Section):
    """The claim is ``a > b`` on ``metric``, tested paired on the same test images."""

    a: str
    b: str
    metric: str


class ClaimThreshold(Section):
    """The claim is ``a``'s ``metric`` >= ``value``."""

    a: str
    metric: str
    value: float


class PaperNumbers(Section):
    a: float | None = None
    b: float | None = None


class Claim(Section):
    paper: str
    claim: str
    source: str = ""
    compare: ClaimComparison | None = None
    threshold: ClaimThreshold | None = None
    paper_numbers: PaperNumbers = PaperNumbers()

    @model_validator(mode="after")
    def _one_test(self) -> Claim:
        if (self.compare is None) == (self.threshold is None):
            raise PydanticCustomError("claim_test", "a claim needs exactly one of `compare` and `threshold`")
        return self


class ClaimsFile(Section):
    claims: list[Claim]


def validate(model: type[BaseModel], data: Any, *, where: str, section: str = "", partial: bool = False) -> dict[str, Any]:
    """``data`` validated as ``model``, defaults filled (``partial``: only the keys given); errors become one
    ConfigError naming ``where`` (the file), each bad key (under ``section``) and its value."""
    from benchmark.config import ConfigError

    try:
        return model.model_validate({} if data is None else data, context={"partial": partial}).model_dump(mode="json", exclude_unset=partial)
    except ValidationError as error:
        raise ConfigError(f"{where}: " + "; ".join(_messages(error, (section,) if section else ()))) from None


def _messages(error: ValidationError, prefix: tuple) -> list[str]:
    """One message per bad key; where a union's branches disagree (a path or a mapping), a type mismatch of one
    branch is dropped when another branch says more."""
    located = [(_location(prefix, item), item) for item in error.errors()]
    said_more = {key for key, item in located if not item["type"].endswith("_type")}
    return list(dict.fromkeys(_message(key, item) for key, item in located if not (item["type"].endswith("_type") and key in said_more)))


# pydantic puts the union member it tried (a tag such as `adam`, or a type name) into an error's location
_TYPE_TAGS = re.compile(r"^(str|int|float|bool|list|dict|tuple|none|literal|constrained-.*|function-.*)$|\[")


def _location(prefix: tuple, item: dict) -> str:
    tags = set(_DISCRIMINATOR_TAGS) | {cls.__name__ for cls in _subclasses(Section)}
    parts = [str(part) for part in (*prefix, *item["loc"])]
    return ".".join(part for part in parts if not _TYPE_TAGS.search(part) and part not in tags)


def _message(key: str, item: dict) -> str:
    kind, message, value = item["type"], item["msg"].removeprefix("Value error, "), item.get("input")
    if kind in ("unknown_key", "unknown_method") or (kind == "value_error" and isinstance(value, dict)):
        return f"{key}: {message}" if key else message
    if kind == "missing":
        return f"{key}: missing required key"
    return f"{key or '(top level)'}: {message} (got {value!r})"


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


_DISCRIMINATOR_TAGS = ("adam", "adamw", "sgd", "rmsprop", "plateau", "step", "cosine", "exponential", "cross_entropy", "bce", "weighted_cross_entropy")


# ----- a DataModule's own options: checked against its constructor's signature -----
INTERNAL_ARGUMENTS = {"self", "reader", "root", "cache_dir", "split_dir", "sampling_seed", "kwargs", "args"}


def dataset_options(cls: Any, options: dict[str, Any], *, where: str) -> dict[str, Any]:
    """Check a suite's ``options:`` for dataset ``cls`` (a ``DATAMODULES`` entry: its reader's and the DataModule's
    constructors, or one class) against the constructor arguments they and their bases take (names, and types
    where annotated); returns them unchanged."""
    from benchmark.config import ConfigError

    parameters: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    classes = cls.signature_classes() if hasattr(cls, "signature_classes") else (cls,)
    for klass in [k for c in reversed(classes) for k in reversed(c.__mro__)]:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if name not in INTERNAL_ARGUMENTS and parameter.kind is not parameter.VAR_KEYWORD:
                parameters[name] = parameter
        try:
            hints.update(typing.get_type_hints(init))
        except Exception:  # an annotation that cannot be resolved is only not type-checked
            pass
    for name, value in (options or {}).items():
        if name not in parameters:
            raise ConfigError(f"{where}: dataset {cls.name!r} has no option `{name}`{closest(name, parameters)} (options: {', '.join(sorted(parameters))})")
        if name in hints:
            try:
                TypeAdapter(hints[name]).validate_python(value)
            except ValidationError as error:
                raise ConfigError(f"{where}: option `{name}` of dataset {cls.name!r}: {error.errors()[0]['msg']} (got {value!r})") from None
    return dict(options or {})
