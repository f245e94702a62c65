"""A sentence-pair task (GLUE MRPC) through every model and every method, on CPU, without Ray:
each model tokenizes the pair itself, segment ids go where the architecture has them, noise hits
both sentences, the teacher-logit cache and the quiz take pairs, and the trial ends with the
task's metrics (F1 first, then accuracy). One step of each method is fast; whole trials are
``system`` tests (about two minutes on a busy 2-core CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import MRPC, VOCAB
from trainers.config import DataConfig, TrainConfig
from trainers.data.batches import TrainViews
from trainers.data.glue import load_splits
from trainers.engine.loop import Trial, _train_logits, run, steps_of
from trainers.engine.update import StudentUpdate
from trainers.methods.finetune import FineTune
from trainers.methods.kd import KD, CachedTeacherLogits
from trainers.methods.objective import Objective
from trainers.models.build import build_model

DATA = DataConfig(source=str(MRPC), task="mrpc", train_size=96, quiz_size=16, test_size=64,
                  max_length=64)
FAST = {"epochs": 1, "lr": 1e-3, "teacher_lr": 1e-6, "pilot_lr": 1e-3, "batch_size": 16}


@pytest.fixture(scope="module")
def splits():
    return load_splits(DATA)


@pytest.mark.parametrize("name, segments", [("bert", True), ("tinybert", True), ("distilbert", False),
                                            ("roberta", False)])
def test_each_model_tokenizes_the_pair_itself(splits, tmp_path, name, segments):
    built = build_model(name, "tiny", train_texts=splits.train.sentences + splits.train.second,
                        cache_dir=tmp_path, vocab_file=VOCAB)
    assert built.segments is segments
    encoded = built.encode(splits.train, DATA.max_length, tmp_path)
    assert (encoded.types is not None) is segments
    inputs = encoded.padded(np.arange(4), built.tokenizer.pad_token_id, torch.device("cpu"))
    assert ("token_type_ids" in inputs) is segments
    if segments:  # [CLS] a [SEP] are segment 0, b [SEP] segment 1, padding 0
        assert set(inputs["token_type_ids"][0].tolist()) == {0, 1}
    separators = (inputs["input_ids"][0] == built.tokenizer.sep_token_id).sum()
    assert separators == (2 if name != "roberta" else 3)  # RoBERTa: <s> a </s></s> b </s>
    assert built.model(**inputs).logits.shape == (4, 2)
    again = built.encode(splits.train, DATA.max_length, tmp_path)  # from the cache file
    assert np.array_equal(again.flat, encoded.flat) and (again.types is None) is not segments


def test_noisy_pair_views_noise_both_sentences(splits, tmp_path):
    cfg = TrainConfig(method="kd", student="bert", teachers=("roberta",), data=DATA, noise_p=0.5,
                      noise_teachers=True, **FAST)
    texts = splits.train.sentences + splits.train.second
    student, teacher = (build_model(n, "tiny", train_texts=texts, cache_dir=tmp_path, vocab_file=VOCAB)
                        for n in ("bert", "roberta"))
    views = TrainViews(splits.train, student, [teacher], cfg, tmp_path, torch.device("cpu"))
    batch = views.batch(np.arange(8), epoch=1, noisy=True, with_teachers=True)
    noise_id = student.tokenizer.convert_tokens_to_ids("noise")
    ids, types = batch.student["input_ids"], batch.student["token_type_ids"]
    assert ((ids == noise_id) & (types == 0)).any() and ((ids == noise_id) & (types == 1)).any()
    clean = views.batch(np.arange(8), epoch=1, noisy=False, with_teachers=True)
    assert not torch.equal(batch.teachers[0]["input_ids"], clean.teachers[0]["input_ids"])


def test_one_step_of_each_method_on_a_pair_batch(tmp_path):
    """Fine-tune, KD from the cached teacher logits of the training pairs, and a MetaDistil step
    (pilot, quiz on pairs, teacher update, real step) on one noisy pair batch."""
    cpu = torch.device("cpu")
    cfg = TrainConfig(method="metadistil", student="tinybert", teachers=("bert",), data=DATA,
                      noise_p=0.1, **FAST)
    trial = Trial.build(cfg, cache_dir=tmp_path, device=cpu)
    student, teacher = trial.student.model, trial.teachers[0].model
    views = TrainViews(trial.splits.train, trial.student, trial.teachers, cfg, tmp_path, cpu)
    batch = views.batch(np.arange(8), epoch=1, noisy=True, with_teachers=True)
    assert "token_type_ids" in batch.student and "token_type_ids" in batch.teachers[0]
    update = StudentUpdate(student, lr=1e-3, weight_decay=0.0, total_steps=10, warmup_ratio=0.0)
    assert np.isfinite(FineTune(student, update)(batch)["train_loss"])
    logits = _train_logits(trial, 0)
    assert logits.shape == (len(trial.splits.train), 2)
    kd = KD(student, update, CachedTeacherLogits([logits], None), Objective.of(cfg, student, [teacher]))
    assert np.isfinite(kd(batch)["train_loss"])
    teacher.requires_grad_(True)
    before = [p.detach().clone() for p in teacher.parameters()]
    _, meta = steps_of(trial, update, steps_per_epoch=10)
    reported = meta(batch)
    assert np.isfinite(reported["quiz_loss"]) and np.isfinite(reported["train_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, teacher.parameters()))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, cache_dir):
    trial = Trial.build(TrainConfig(method="finetune", student="bert", data=DATA, **FAST),
                        cache_dir=cache_dir, device=torch.device("cpu"))
    result = run(trial, report=lambda *_: None, scratch_dir=tmp_path_factory.mktemp("bert"))
    folder = tmp_path_factory.mktemp("bert-model")
    result.student.model.save_pretrained(folder)
    result.student.tokenizer.save_pretrained(folder)
    return str(folder), result


@pytest.mark.system
def test_finetune_on_pairs_ends_with_the_tasks_metrics(teacher):
    _, result = teacher
    assert list(result.final)[:2] == ["test_f1", "test_accuracy"]
    assert {"val_f1", "val_accuracy"} <= set(result.history[-1])
    predictions, labels = result.test_predictions, result.test.labels
    assert result.final["test_accuracy"] == pytest.approx(float((predictions == labels).mean()))
    assert 0 <= result.final["test_f1"] <= 1


@pytest.mark.parametrize("method, student, extra", [
    ("kd", "distilbert", {}),  # the teacher's logits on train pairs, cached on disk
    ("kd", "roberta", {"noise_p": 0.1, "noise_teachers": True}),  # live teachers on noisy pairs
    ("metadistil", "tinybert", {"noise_p": 0.1}),  # the quiz on pairs, the meta-gradient through them
])
@pytest.mark.system
def test_distillation_on_pairs(teacher, tmp_path, cache_dir, method, student, extra):
    cfg = TrainConfig(method=method, student=student, data=DATA, teachers=("bert",),
                      teacher_dirs=(teacher[0],), **FAST, **extra)
    trial = Trial.build(cfg, cache_dir=cache_dir, device=torch.device("cpu"))
    result = run(trial, report=lambda *_: None, scratch_dir=tmp_path)
    assert np.isfinite(result.history[-1]["train_loss"]) and "test_f1" in result.final
    if method == "metadistil":
        assert np.isfinite(result.history[-1]["quiz_loss"])
