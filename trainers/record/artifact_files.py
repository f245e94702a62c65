"""Is a stored artifact there and readable, before anything loads it? What is wrong, in words.

A saved model is a folder of ``config.json``, safetensors weights and a tokenizer; a finished
trial's folder holds one under ``model/`` beside ``config.json``, the test predictions and
``result.json``; an MLflow transformers model (``MLmodel``) keeps the model under its
``model_binary`` folder and the tokenizer under ``components/tokenizer``. Each check returns
``None`` when the files are all there and readable, else a phrase naming the first file that is
not ("lacks config.json", "model.safetensors is truncated", …), for a one-line error or note.

Reading is kept cheap: JSON files are parsed, a safetensors file's header is parsed and its size
checked against it (a truncated copy is caught without reading the weights), other files have
one byte read. ``trainers/`` never imports ``orchestrator/``: the driver's checks of MLflow's
copies (``orchestrator/check/artifacts.py``) use these.
"""

from __future__ import annotations

import json
from pathlib import Path

from trainers.record.artifacts import CONFIG_ARTIFACT, MODEL_ARTIFACT_DIR, PREDICTIONS_ARTIFACT, RESULT_FILE

WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json")
MLMODEL = "MLmodel"
RESULT_KEYS = ("run_id", "final", "history")


def file_problem(path: Path, name: str | None = None) -> str | None:
    """Whether one file is there and readable (a JSON file: parses)."""
    name = name or path.name
    if not path.is_file():
        return f"lacks {name}"
    try:
        with path.open("rb") as handle:
            data = handle.read() if path.suffix == ".json" else handle.read(1)
        if path.suffix == ".json":
            json.loads(data)
    except OSError as error:
        return f"cannot read {name} ({error.strerror or error})"
    except ValueError:
        return f"{name} is not valid JSON"
    return None


def safetensors_problem(path: Path, name: str | None = None) -> str | None:
    """A safetensors file whose header parses and whose size covers every tensor it lists."""
    name = name or path.name
    if not path.is_file():
        return f"lacks {name}"
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length < 0 or 8 + length > size:
                return f"{name} is truncated"
            header = json.loads(handle.read(length))
    except OSError as error:
        return f"cannot read {name} ({error.strerror or error})"
    except ValueError:
        return f"{name} is not a safetensors file"
    end = max((entry["data_offsets"][1] for key, entry in header.items()
               if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry), default=0)
    return f"{name} is truncated" if size < 8 + length + end else None


def weights_problem(folder: Path, prefix: str = "") -> str | None:
    """The folder's safetensors weights: one file, or the shards an index lists."""
    single, index = (folder / name for name in WEIGHTS)
    if single.is_file() or not index.is_file():
        return safetensors_problem(single, prefix + WEIGHTS[0])
    problem = file_problem(index, prefix + WEIGHTS[1])
    if problem:
        return problem
    shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
    return next((p for p in (safetensors_problem(folder / s, prefix + s) for s in shards) if p), None)


def tokenizer_problem(folder: Path, prefix: str = "") -> str | None:
    found = [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]
    if not found:
        return f"lacks a tokenizer ({prefix}tokenizer.json or {prefix}vocab.txt)"
    return file_problem(found[0], prefix + found[0].name)


def model_problem(folder: Path) -> str | None:
    """A saved model's folder (``save_pretrained``: config, weights, tokenizer), or an MLflow
    transformers model's (it holds ``MLmodel``)."""
    if not folder.is_dir():
        return "is missing"
    if (folder / MLMODEL).is_file():
        return mlflow_model_problem(folder)
    return (file_problem(folder / "config.json") or weights_problem(folder)
            or tokenizer_problem(folder))


def mlflow_model_problem(folder: Path) -> str | None:
    """An MLflow transformers model: ``MLmodel``, then the model folder it names (config and
    weights) and the tokenizer (its own component folder, else beside the model)."""
    import yaml

    try:
        flavors = yaml.safe_load((folder / MLMODEL).read_text(encoding="utf-8")).get("flavors", {})
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return f"{MLMODEL} is unreadable"
    flavor = flavors.get("transformers") or {}
    binary = str(flavor.get("model_binary", MODEL_ARTIFACT_DIR))
    model = folder / binary
    if not model.is_dir():
        return f"lacks {binary}/"
    if "tokenizer" in (flavor.get("components") or ()):
        tokenizer, where = folder / "components" / "tokenizer", "components/tokenizer/"
        if not tokenizer.is_dir():
            return f"lacks {where}"
    else:
        tokenizer, where = model, f"{binary}/"
    return (file_problem(model / "config.json", f"{binary}/config.json")
            or weights_problem(model, f"{binary}/") or tokenizer_problem(tokenizer, where))


def trial_problem(folder: Path) -> str | None:
    """A finished trial's folder: ``result.json`` (its run id, metrics and history), the config,
    the test predictions and the model, all there and readable; what later trials (a teacher's
    student), the MLflow run and the report read from it."""
    result = folder / RESULT_FILE
    problem = file_problem(result)
    if problem:
        return problem
    data = json.loads(result.read_text())
    lacking = [key for key in RESULT_KEYS if not isinstance(data, dict) or key not in data]
    if lacking:
        return f"{RESULT_FILE} lacks {', '.join(lacking)}"
    model = model_problem(folder / MODEL_ARTIFACT_DIR)
    return (file_problem(folder / CONFIG_ARTIFACT)
            or file_problem(folder / Path(PREDICTIONS_ARTIFACT).name)
            or (f"{MODEL_ARTIFACT_DIR}/ {model}" if model == "is missing" else
                model and f"{MODEL_ARTIFACT_DIR}/: {model}"))
