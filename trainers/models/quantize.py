"""The int8 variant of a model: dynamic int8 quantization of its Linear layers, saved as safetensors.

What is quantized. Every ``torch.nn.Linear`` (in a BERT-family classifier: Q, K, V, the attention
output, both feed-forward layers, the pooler and the head) becomes a dynamically quantized Linear:

- its weight ``W`` (out × in) is stored as int8 with one scale per output row, symmetric,
  ``s_j = max_i |W_ji| / 127.5`` and ``q_ji = round(W_ji / s_j)`` clamped to [−128, 127], zero
  point 0 (``per_channel_symmetric``). One scale per row rather than per tensor: measured on
  MiniLM and MiniLM@2 (random 2-class head, 96 SST-2 test sentences), it halves MiniLM@2's largest
  logit change (0.011 against 0.021; MiniLM 0.017 against 0.018) for about 5 % more time at batch 1
  (3.93 against 3.71 ms, within this shared machine's noise);
- at every call its input ``x`` is quantized on the fly to uint8 with one scale and zero point per
  tensor from that call's min and max (``s_x = (max − min) / 127``: 7 bits, ``reduce_range``, so
  that the AVX2 kernel's pairwise int16 sums cannot overflow), the product is accumulated in int32
  and rescaled, ``y ≈ s_x · s_j · Σ_i (x̂_i − z_x) q_ji + b_j``, with the bias ``b`` in fp32.

What stays fp32: the embeddings (word, position, segment: the word embedding is most of MiniLM's
bytes, so the file shrinks by about a third, not by four), every LayerNorm, the attention's own
products (QKᵀ, softmax, ·V), GELU and the residual sums. Nothing needs calibration data, and the
result is a pure function of the fp32 weights: quantizing the same weights twice gives the same
bytes.

Which library. The issue asks for torchao unless something better is shown. Measured on this
project's CPU (AMD EPYC, AVX2, no AVX512-VNNI or AMX; torch 2.13.0 CPU build, torchao 0.18.0, one
thread, all-MiniLM-L6-v2 with a 2-class head, the three variants timed alternately on a 2-core
machine shared with other test runs, so loaded about 4× over: the ratios are what counts), batch 1
over 32 SST-2 test sentences, median: fp32 69.7 ms, ``torch.ao``'s ``quantize_dynamic`` 34.4 ms,
torchao's ``quantize_(model, Int8DynamicActivationInt8WeightConfig())`` 992 ms; batch 32: 5.6 s,
2.5 s and 70 s. Largest change of a class probability on those 32 sentences: 0.0067 and 0.0014.
torchao's int8 Linear calls ``torch._int_mm``, which on a CPU without VNNI or AMX takes a path
about 100× slower than an fp32 matmul (16×384 by 384×1536: 141 ms against 1–7 ms); its CPU speed
comes from ``torch.compile`` fusing the graph, and compiling the torchao MiniLM took 345 s on this
machine before its first answer (a cost every serving process would pay at start, and again per
new input shape without ``dynamic=True``). So the int8 variant here is
``torch.ao.quantization.quantize_dynamic`` with the x86 (fbgemm) engine, whose packed int8 GEMM runs
eagerly. It warns that it is deprecated in favour of torchao; the warning is silenced at the one
call that makes it. Revisit when torchao has an eager CPU kernel for this CPU. torchao is not a
dependency: installed, it is imported by transformers at every model load and prints CUDA-library
warnings on a CPU build.

Saving and loading. A quantized module's ``state_dict`` holds packed fbgemm parameters that only
``torch.save`` (a pickle) writes, and this project loads no pickles. :func:`save_int8` therefore
writes ``model.int8.safetensors``: each quantized Linear's int8 weight and its per-row scales, and
every other tensor in fp32; :func:`load_int8` builds the architecture from the folder's
``config.json``, quantizes that skeleton to get the int8 modules, and fills them from the file.
Re-quantizing the fp32 weights on load gives the same model (deterministic), but needs the fp32
file; the int8 file is what a serving image ships, and what ``trainers.models.cost`` measures on disk.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from trainers.errors import UserError
from trainers.models.pruned_bert import register

INT8_WEIGHTS = "model.int8.safetensors"
ENGINE = "x86"  # fbgemm's successor on x86; its packed int8 GEMM is the kernel timed above
_WEIGHT, _SCALE = ".weight.int8", ".weight.scale"


class QuantizeError(UserError):
    """A model cannot be quantized or its int8 file cannot be loaded; the message names it."""


def int8(model: torch.nn.Module, name: str | None = None) -> torch.nn.Module:
    """The int8 variant of ``model`` (a copy, in eval mode; ``model`` is left as it is).

    Refused in one line (``name`` or the model's class in the message): a model with no Linear
    layer (nothing to quantize) and a model off the CPU (the int8 kernels are CPU kernels).
    """
    label = name or type(model).__name__
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    if not linears:
        raise QuantizeError(f"model {label!r} has no torch.nn.Linear layer: dynamic int8 quantizes "
                            "only Linear layers; give it a model with Linear layers")
    devices = {p.device.type for p in model.parameters()}
    if devices != {"cpu"}:
        raise QuantizeError(f"model {label!r} is on {', '.join(sorted(devices))}: the int8 kernels "
                            "run on the CPU; quantize model.to('cpu')")
    torch.backends.quantized.engine = ENGINE
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():  # torch.ao's deprecation notice: the choice is argued above
        warnings.simplefilter("ignore")
        quantized = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                     dtype=torch.qint8, inplace=False)
    model.train(was_training)
    return quantized.eval()


def int8_linears(model: torch.nn.Module) -> dict[str, DynamicLinear]:
    """The dynamically quantized Linear layers of ``model``, by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, DynamicLinear)}


def save_int8(model: torch.nn.Module, folder: Path) -> Path:
    """Write ``model`` (an :func:`int8` variant) to ``folder/model.int8.safetensors``; return it."""
    layers = int8_linears(model)
    if not layers:
        raise QuantizeError(f"{type(model).__name__} has no int8 Linear layer; save int8(model), "
                            "not the fp32 model")
    tensors: dict[str, torch.Tensor] = {}
    for name, layer in layers.items():
        weight, bias = layer._weight_bias()
        # fbgemm hands a symmetric per-channel weight back as per_channel_affine with zero points 0
        per_channel = weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        if not per_channel or bool(weight.q_per_channel_zero_points().any()):
            raise QuantizeError(f"layer {name}: {weight.qscheme()} weights, not symmetric per channel; "
                                "save a model made by int8()")
        tensors[name + _WEIGHT] = weight.int_repr().contiguous()
        tensors[name + _SCALE] = weight.q_per_channel_scales().float().contiguous()
        if bias is not None:
            tensors[name + ".bias"] = bias.detach().contiguous()
    tensors.update({key: value.detach().contiguous() for key, value in _float_tensors(model).items()})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / INT8_WEIGHTS
    save_file(tensors, str(path), metadata={"format": "pt", "quantization": "dynamic-int8-per-channel"})
    return path


def load_int8(folder: Path) -> PreTrainedModel:
    """The int8 model saved in ``folder`` (its ``config.json`` and ``model.int8.safetensors``)."""
    path = Path(folder) / INT8_WEIGHTS
    if not path.is_file() or not (Path(folder) / "config.json").is_file():
        raise QuantizeError(f"{folder}: needs config.json and {INT8_WEIGHTS}; write them with "
                            "model.config.save_pretrained(folder) and save_int8(int8(model), folder)")
    tensors = load_file(str(path))
    register()  # the folder may hold a pruned student's config (trainers/models/pruned_bert.py)
    config = AutoConfig.from_pretrained(folder)
    # Built on the CPU, not on "meta": the non-persistent buffers (position ids) are in no file.
    skeleton = AutoModelForSequenceClassification.from_config(config)
    model = int8(skeleton, name=str(folder))
    for name, layer in int8_linears(model).items():
        if name + _WEIGHT not in tensors:
            raise QuantizeError(f"{path}: no int8 weight for layer {name}; the file is not this "
                                "config's model, save it again with save_int8")
        scales = tensors.pop(name + _SCALE).double()
        weight = torch._make_per_channel_quantized_tensor(
            tensors.pop(name + _WEIGHT), scales, torch.zeros(len(scales), dtype=torch.long), 0)
        layer.set_weight_bias(weight, tensors.pop(name + ".bias", None))
    targets = _float_tensors(model)
    wrong = sorted(set(targets) ^ set(tensors)) + [k for k in tensors
                                                   if k in targets and targets[k].shape != tensors[k].shape]
    if wrong:
        raise QuantizeError(f"{path}: {len(wrong)} tensors missing, unexpected or of another shape "
                            f"(e.g. {wrong[0]}); the file is not this config's model, save it again")
    with torch.no_grad():
        for key, value in tensors.items():
            targets[key].copy_(value)
    return model.eval()


def _float_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The saved tensors of ``model`` that are not an int8 layer's (embeddings, LayerNorms, …), by
    their ``state_dict`` names: the parameters and persistent buffers themselves, not copies."""
    layers = int8_linears(model)
    return {key: value for key, value in model.state_dict(keep_vars=True).items()
            if isinstance(value, torch.Tensor) and not value.is_quantized
            and key.rsplit(".", 1)[0].removesuffix("._packed_params") not in layers}
