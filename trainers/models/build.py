"""Building models: tiny presets, pretrained checkpoints, students cut from them, tokenizers.

What a model reference means is in ``refs.py``; here it is built. ``size="real"`` loads the
registry's pretrained weights from the hub (any hub id or local directory loads the same way);
``size="tiny"`` builds the paper's four names as small, randomly initialised models of the same
architecture, trained from scratch, for machines without hub access. Presets keep the real
ordering of sizes: RoBERTa > BERT > DistilBERT > TinyBERT. BERT-family presets use the real BERT
uncased WordPiece vocabulary; the RoBERTa preset uses a byte-level BPE trained on the training
split, so teachers and students really tokenize differently, as BERT and RoBERTa do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertTokenizerFast,
    DistilBertConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaConfig,
    RobertaTokenizerFast,
)

from trainers.data.glue import Examples
from trainers.data.tokens import Encoded, encode_cached, has_segments
from trainers.models.prune import prune, pruned_config
from trainers.models.pruned_bert import register
from trainers.models.refs import (
    HUB_IDS,
    PACKAGED,
    PRESETS,
    ModelError,
    ModelRef,
    kept_layers,
    packaged_dir,
    resolve_one,
)
from trainers.record.atomic import staged

NUM_LABELS = 2
VOCAB_HUB = ("bert-base-uncased", "vocab.txt")  # the BERT-family presets' WordPiece vocabulary
BPE_VOCAB_SIZE = 32_000
# The RoBERTa preset's embedding has BPE_VOCAB_SIZE rows whatever the BPE trained on the split
# fills (a small split fills fewer), like a real model's fixed vocabulary; with it the preset stays
# the largest model, as RoBERTa is at real size.
ROBERTA_VOCAB_ROWS = BPE_VOCAB_SIZE
BPE_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def keep_layers(model: PreTrainedModel, layers: int | tuple[int, ...], name: str) -> list[int]:
    """Cut ``model`` down to some of its transformer layers, in place; return which were kept.

    The embeddings, the kept layers' weights and (for a classifier loaded from a bare encoder,
    a fresh) head stay as they are. The kept indices go into the config (``kept_layers``), so the
    saved model records where it came from.
    """
    encoder = getattr(model.base_model, "encoder", None) or getattr(model.base_model, "transformer", None)
    blocks = getattr(encoder, "layer", None)
    if not isinstance(blocks, torch.nn.ModuleList):
        raise ModelError(f"model {name!r}: cannot find its transformer layers to keep some of them")
    keep = kept_layers(layers, len(blocks), name)
    encoder.layer = torch.nn.ModuleList(blocks[i] for i in keep)
    model.config.num_hidden_layers = len(keep)  # DistilBERT maps this to n_layers
    model.config.kept_layers = keep
    return keep


def preset_config(name: str, vocab_size: int, num_labels: int = NUM_LABELS) -> PretrainedConfig:
    """Tiny configs of the four architectures (the real ones are in :func:`reference_config`)."""
    if name == "bert":
        return BertConfig(vocab_size=vocab_size, hidden_size=128, num_hidden_layers=4,
                          num_attention_heads=2, intermediate_size=512, num_labels=num_labels)
    if name == "roberta":
        return RobertaConfig(vocab_size=vocab_size, hidden_size=128, num_hidden_layers=4,
                             num_attention_heads=2, intermediate_size=512, max_position_embeddings=514,
                             type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                             num_labels=num_labels)
    if name == "distilbert":
        return DistilBertConfig(vocab_size=vocab_size, dim=128, n_layers=2, n_heads=2, hidden_dim=512,
                                num_labels=num_labels)
    if name == "tinybert":
        return BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=256, num_labels=num_labels)
    raise ModelError(f"model {name!r} has no tiny preset; use one of {', '.join(HUB_IDS)}, "
                     "or size: real with a hub id or a local directory")


def reference_config(name: str) -> PretrainedConfig:
    """The real architecture of a registry model, without downloading it (for parameter counts)."""
    configs = {
        "bert": lambda: BertConfig(num_labels=NUM_LABELS),
        "roberta": lambda: RobertaConfig(vocab_size=50265, max_position_embeddings=514,
                                         type_vocab_size=1, num_labels=NUM_LABELS),
        "distilbert": lambda: DistilBertConfig(num_labels=NUM_LABELS),
        "tinybert": lambda: BertConfig(hidden_size=312, num_hidden_layers=4, num_attention_heads=12,
                                       intermediate_size=1200, num_labels=NUM_LABELS),
    }
    if name not in configs:
        raise ModelError(f"model {name!r} is not in the registry ({', '.join(HUB_IDS)})")
    return configs[name]()


def architecture(source: str, size: str) -> PretrainedConfig | None:
    """The config a resolved model reference builds, layer cut and pruning applied (the counts
    checked), without loading weights:
    a folder's ``config.json``, a tiny preset's, or a registry model's real architecture (also when
    resolved to its hub id); ``None`` for any other hub model (unknown offline until downloaded)."""
    from transformers import AutoConfig

    ref = ModelRef(source) if Path(source).is_dir() else ModelRef.parse(source)
    registry = {hub_id: name for name, hub_id in HUB_IDS.items() if name in PRESETS}
    if Path(ref.base).is_dir():
        register()  # the folder may hold a pruned model
        config = AutoConfig.from_pretrained(ref.base)
    elif ref.base in registry or (ref.base in PRESETS and size == "real"):
        config = reference_config(registry.get(ref.base, ref.base))
    elif ref.base in PRESETS:
        config = preset_config(ref.base, vocab_size=30_522)
    else:
        return None
    if ref.layers is not None:
        config.num_hidden_layers = len(kept_layers(ref.layers, config.num_hidden_layers, source))
    if ref.prune is not None:
        config = pruned_config(config, ref.prune, source)
    return config


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def config_parameters(config: PretrainedConfig) -> int:
    """Exact parameter count of a sequence classifier built from ``config``, allocating nothing."""
    with torch.device("meta"):
        return count_parameters(AutoModelForSequenceClassification.from_config(config))


def default_vocab() -> Path:
    """bert-base-uncased's ``vocab.txt``: the packaged MiniLM's copy, which is that file byte for
    byte (all-MiniLM-L6-v2 kept BERT's uncased WordPiece, id for id), so an installed project needs
    no download; without the package, the hub's file, kept in the Hugging Face cache."""
    folder = packaged_dir("minilm")
    if folder is not None and (folder / "vocab.txt").is_file():
        return folder / "vocab.txt"
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(*VOCAB_HUB))
    except Exception as error:  # offline, a proxy, a full disk: all the same to the user here
        raise ModelError(f"no BERT vocabulary: package {PACKAGED['minilm'].replace('_', '-')} is not "
                         f"installed and the hub's {'/'.join(VOCAB_HUB)} cannot be fetched "
                         f"({type(error).__name__}); install the package or set models.vocab_file "
                         "to a bert-base-uncased vocab.txt") from None


def bert_tokenizer(vocab_file: str | Path) -> PreTrainedTokenizerBase:
    """The BERT uncased WordPiece tokenizer from a ``vocab.txt``.

    ``BertTokenizerFast(vocab=...)``: transformers 5 silently ignores ``vocab_file=`` and would
    give a 5-token vocabulary; the size check below catches any such regression.
    """
    path = Path(vocab_file)
    if not path.is_file():
        raise ModelError(f"BERT vocabulary {path} not found; set vocab_file to a bert-base-uncased "
                         "vocab.txt")
    tokenizer = BertTokenizerFast(vocab=str(path), do_lower_case=True)
    expected = sum(1 for _ in path.open(encoding="utf-8"))
    if tokenizer.vocab_size != expected:
        raise ModelError(f"{path}: tokenizer has {tokenizer.vocab_size} tokens, file has {expected}")
    return tokenizer


def bpe_tokenizer(texts: Sequence[str], cache_dir: Path) -> PreTrainedTokenizerBase:
    """A RoBERTa-style byte-level BPE trained on ``texts``, cached by their content."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing

    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    folder = cache_dir / f"bpe-{BPE_VOCAB_SIZE}-{digest}"
    if (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=BPE_VOCAB_SIZE, min_frequency=2,
                            special_tokens=list(BPE_SPECIALS), show_progress=False)
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")),
                                                      ("<s>", bpe.token_to_id("<s>")))
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>",
                                     eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                     unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    with staged(folder, replace=False) as staging:  # a trial that cached it first: theirs is identical
        tokenizer.save_pretrained(staging)
    return AutoTokenizer.from_pretrained(folder)


@dataclass(frozen=True)
class Built:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    @property
    def segments(self) -> bool:
        """Whether a sentence pair's segment ids go into this model (``tokens.has_segments``)."""
        return has_segments(self.model)

    def encode(self, examples: Examples, max_length: int, cache_dir: Path) -> Encoded:
        """The cached token ids of ``examples`` (sentences or pairs) for this model."""
        return encode_cached(self.tokenizer, examples.sentences, max_length, cache_dir,
                             examples.second, self.segments)


def build_model(name: str, size: str, *, train_texts: Sequence[str], cache_dir: Path,
                vocab_file: str | Path | None = None, seed: int = 0, num_labels: int | None = None,
                prune_on: Examples | None = None, max_length: int = 64) -> Built:
    """Build (tiny) or load (pretrained) a sequence classifier and its tokenizer.

    ``vocab_file``: the BERT-family presets' vocabulary; ``None``, :func:`default_vocab`.

    ``num_labels``: the task's (``trainers.data.tasks``); ``None`` keeps a checkpoint's own head and
    gives a new head (a preset, a bare encoder) ``NUM_LABELS``, SST-2's two.

    ``name`` is a resolved source (``model_refs.resolve``): a local directory (stage-1 checkpoints
    load this way too), a hub id, or a preset name, with an optional ``@layers`` suffix. Weights load
    from safetensors only; ``trust_remote_code`` is never set.
    """
    ref = ModelRef(name) if Path(name).is_dir() else ModelRef.parse(name)  # a folder named x@2
    base = ref.base
    if base in PACKAGED:  # a registry name not resolved by a driver (tests, benchmarks)
        base = resolve_one(base, size, Path.cwd())[0]
    if Path(base).is_dir():
        built = _load_pretrained(base, local_only=True, num_labels=num_labels)
    elif size == "real" or base not in PRESETS:
        built = _load_pretrained(HUB_IDS.get(base, base), local_only=False, num_labels=num_labels)
    else:
        built = _preset(base, train_texts, cache_dir, vocab_file, seed, num_labels or NUM_LABELS)
    if ref.layers is not None:
        keep_layers(built.model, ref.layers, name)
    if ref.prune is not None:
        if prune_on is None:
            raise ModelError(f"model {name!r}: pruning scores heads and neurons on training "
                             "examples; pass prune_on (the training split)")
        encoded = built.encode(prune_on, max_length, cache_dir)
        model = prune(built.model, ref.prune, encoded, np.asarray(prune_on.labels),
                      pad_id=built.tokenizer.pad_token_id, seed=seed, name=name)
        built = Built(model, built.tokenizer)
    return built


def _preset(name: str, train_texts: Sequence[str], cache_dir: Path, vocab_file: str | Path | None,
            seed: int, num_labels: int) -> Built:
    if name == "roberta":
        tokenizer = bpe_tokenizer(train_texts, cache_dir)
        vocab_size = ROBERTA_VOCAB_ROWS
    else:
        tokenizer = bert_tokenizer(vocab_file or default_vocab())
        vocab_size = tokenizer.vocab_size
    config = preset_config(name, vocab_size, num_labels)
    torch.manual_seed(seed)  # the random init is part of the trial's seed
    model = AutoModelForSequenceClassification.from_config(config)
    return Built(model, tokenizer)


def _load_pretrained(name_or_dir: str, *, local_only: bool, num_labels: int | None) -> Built:
    head = {} if num_labels is None else {"num_labels": num_labels}
    register()  # a folder may hold a pruned student (a teacher assistant, predict's models)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_dir, local_files_only=local_only)
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_dir, use_safetensors=True, local_files_only=local_only, **head)
    except (OSError, ValueError) as error:
        where = "directory" if local_only else "hub model"
        raise ModelError(f"cannot load {where} {name_or_dir!r} ({str(error).splitlines()[0][:120]}); "
                         "without network use size: tiny, or point the model name at a local "
                         "directory holding config.json, model.safetensors and the tokenizer") from None
    return Built(model, tokenizer)

