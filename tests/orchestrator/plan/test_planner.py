"""Planner properties: trial counts per stage, teacher de-duplication, skipped combinations, keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import TEACHER_SEED_STRIDE, build_plan
from orchestrator.spec.space import parse_spec
from tests.conftest import ROOT

STORE = Path("/nonexistent-store")


def _spec(grid, seeds=(0,), **extra):
    return parse_spec({"name": "t", "seeds": list(seeds), "grid": grid, **extra}, "test.yaml")


def _plan(spec, fingerprint="f0"):
    return build_plan(spec, data_fingerprint=fingerprint, storage=STORE,
                      models=resolve_models(spec, ROOT / "test.yaml", strict=False))


@pytest.mark.parametrize("seeds", [(0,), (0, 1), (0, 1, 2)])
@pytest.mark.parametrize("teacher_sets", [
    [["bert"]],
    [["bert"], ["roberta"]],
    [["bert", "roberta"]],
    [["bert", "bert"]],
    [["bert"], ["bert", "roberta"], ["bert", "bert"]],
])
@pytest.mark.parametrize("students", [["distilbert"], ["distilbert", "tinybert"]])
def test_counts_and_teacher_dedup(seeds, teacher_sets, students):
    plan = _plan(_spec([{"methods": ["finetune"], "students": students},
                        {"methods": ["kd", "metadistil"], "teachers": teacher_sets, "students": students,
                         "noise_p": [0.0, 0.1], "warmup_epochs": [0, 1]}], seeds=seeds))
    # distinct teachers: a model's k-th copy inside one set is a separate fine-tune
    copies = {(name, s[:i].count(name)) for s in teacher_sets for i, name in enumerate(s)}
    assert len(plan.stages[1]) == len(seeds) * (len(copies) + len(students))
    assert len(plan.stages[2]) == len(seeds) * 2 * len(teacher_sets) * len(students) * 2 * 2
    assert len({t.key for t in plan.trials}) == len(plan.trials)
    assert len({t.name for t in plan.trials}) == len(plan.trials)
    stage1 = {t.key for t in plan.stages[1]}
    for trial in plan.stages[2]:
        assert set(trial.teacher_keys) <= stage1 and len(trial.teacher_keys) == len(trial.config.teachers)
        assert [Path(d).parent.name for d in trial.config.teacher_dirs] == list(trial.teacher_keys)


def test_two_copies_of_a_teacher_are_two_fine_tunes():
    plan = _plan(_spec([{"methods": ["metadistil"], "teachers": [["bert", "bert"]],
                         "students": ["distilbert"]}], seeds=(3,)))
    seeds = sorted(t.config.seed for t in plan.stages[1])
    assert seeds == [3, 3 + TEACHER_SEED_STRIDE]
    (trial,) = plan.stages[2]
    assert len(set(trial.teacher_keys)) == 2 and trial.name == "distilbert_from_bert+bert__metadistil__seed3"


def test_finetune_with_noise_or_warm_start_is_skipped_by_rule():
    plan = _plan(_spec([{"methods": ["finetune"], "students": ["distilbert"], "noise_p": [0.0, 0.2],
                         "warmup_epochs": [0, 1]}]))
    assert [t.name for t in plan.trials] == ["distilbert__finetune__seed0"]
    assert plan.skipped and "distillation only" in plan.skipped[0]


def test_shared_teacher_and_baseline_are_one_trial():
    """The student baseline and a teacher of the same model with the same settings are one run."""
    spec = _spec([{"methods": ["finetune"], "students": ["bert"]},
                  {"methods": ["kd"], "teachers": [["bert"]], "students": ["tinybert"]}])
    plan = _plan(spec)
    assert [t.name for t in plan.stages[1]] == ["bert__finetune__seed0"]


def test_keys_are_content_keys():
    grid = [{"methods": ["kd"], "teachers": [["bert"]], "students": ["distilbert"]}]
    a, b = _plan(_spec(grid)), _plan(_spec(grid))
    assert [t.key for t in a.trials] == [t.key for t in b.trials]
    other_split = _plan(_spec(grid), fingerprint="f1")
    assert not {t.key for t in a.trials} & {t.key for t in other_split.trials}
    other_teacher = _plan(_spec(grid, teacher_train={"epochs": 5}))
    assert other_teacher.stages[1][0].key != a.stages[1][0].key
    assert other_teacher.stages[2][0].key != a.stages[2][0].key  # a new teacher is a new trial
    renamed = _plan(parse_spec({"name": "other", "seeds": [0], "grid": grid}, "x.yaml"))
    assert [t.key for t in renamed.trials] == [t.key for t in a.trials]  # across sweeps too


GRIDS = [ROOT / "search_spaces" / f"{name}.yaml" for name in ("smoke", "cpu", "paper")]


def test_every_shipped_space_plans():
    shipped = sorted((ROOT / "search_spaces").glob("*.yaml"))
    assert {p.name for p in shipped} == {"smoke.yaml", "cpu.yaml", "paper.yaml", "recipes_compare.yaml",
                                         "search.yaml", "mrpc.yaml", "future.yaml", "compress.yaml"}
    for space in shipped:
        assert _plan(parse_spec(yaml.safe_load(space.read_text()), str(space))).trials


@pytest.mark.parametrize("space", GRIDS, ids=lambda p: p.name)
def test_shipped_spaces_plan(space):
    spec = parse_spec(yaml.safe_load(space.read_text()), str(space))
    plan = _plan(spec)
    assert plan.stages[1] and plan.stages[2]
    methods = {t.config.method for t in plan.trials}
    assert methods == {"finetune", "kd", "metadistil"}
    assert any(t.config.noise_p > 0 for t in plan.trials)
    assert any(t.config.warmup_epochs > 0 for t in plan.trials)
    assert any(len(t.config.teachers) > 1 for t in plan.trials)
    # the default trades seeds for a pretrained teacher within 10 minutes; its intervals are over
    # test examples (Wilson); the reproductions show spread over seeds
    assert len(spec.seeds) >= {"paper": 3, "smoke": 1}.get(space.stem, 2)


def test_the_compress_space_sets_a_cut_and_a_pruned_student_under_every_method():
    """compress.yaml (issue 29, item 4): MiniLM@2 and MiniLM%50, each fine-tuned and distilled from
    MiniLM by KD and MetaDistil, the teacher fine-tuned, over three seeds: 7 trials a seed."""
    space = ROOT / "search_spaces" / "compress.yaml"
    plan = _plan(parse_spec(yaml.safe_load(space.read_text()), str(space)))
    per_seed = {t.name.rsplit("__seed", 1)[0] for t in plan.trials}
    assert per_seed == {"minilm__finetune", "minilm@2__finetune", "minilm%50__finetune",
                        *(f"{student}_from_minilm__{method}" for student in ("minilm@2", "minilm%50")
                          for method in ("kd", "metadistil"))}
    assert len(plan.trials) == 21 and {t.config.seed for t in plan.trials} == {0, 1, 2}


def test_paper_space_is_the_original_grid():
    spec = parse_spec(yaml.safe_load((ROOT / "search_spaces" / "paper.yaml").read_text()), "paper.yaml")
    plan = _plan(spec)
    per_seed = {n.rsplit("__seed", 1)[0] for n in (t.name for t in plan.trials)}
    expected = {"bert__finetune", "roberta__finetune", "distilbert__finetune", "tinybert__finetune",
                "distilbert_from_bert__kd", "tinybert_from_bert__kd", "distilbert_from_roberta__kd",
                "distilbert_from_bert__metadistil", "tinybert_from_bert__metadistil",
                "distilbert_from_roberta__metadistil", "distilbert_from_bert+roberta__metadistil",
                "distilbert_from_bert+bert__metadistil", "distilbert_from_bert__metadistil__warm1",
                *(f"distilbert_from_{pair}__metadistil__noise{p}{shared}"
                  for pair in ("bert+roberta", "bert+bert") for p in ("0.1", "0.2")
                  for shared in ("", "+teachers"))}
    assert per_seed == expected
    assert all(t.config.epochs == 15 for t in plan.stages[2])
    # the official code's values (search_spaces/recipes/official.yaml), the seed's epochs
    distilled = [t.config for t in plan.stages[2]]
    assert {(c.soft_loss, c.temperature, c.alpha, c.batch_size, c.lr, c.pilot_lr, c.teacher_lr,
             c.teacher_schedule, c.teacher_max_grad_norm, c.weight_decay, c.warmup_ratio,
             c.quiz_batch_size, c.num_meta_batches, c.data.max_length) for c in distilled} == {
        ("mse", 5.0, 0.5, 8, 5e-5, 5e-5, 1e-5, "linear", 1.0, 0.0, 0.0, None, 1, 128)}
    assert {(c.student.split("/")[-1], c.pkd_weight, c.pkd_layers) for c in distilled} == {
        ("distilbert-base-uncased", 100.0, "skip"), ("TinyBERT_General_4L_312D", 0.0, "skip")}
    assert {t.recipe for t in plan.trials} == {"official"}
    teachers = [t.config for t in plan.stages[1] if t.student in ("bert", "roberta")]
    assert {(c.epochs, c.lr, c.batch_size) for c in teachers} == {(3, 2e-5, 8)}


def test_a_block_recipe_trains_its_trials_both_ways_from_one_teacher():
    space = ROOT / "search_spaces" / "recipes_compare.yaml"
    spec = parse_spec(yaml.safe_load(space.read_text()), str(space))
    plan = _plan(spec)
    assert len(plan.stages[1]) == 9 and len(plan.stages[2]) == 12  # 3 teachers, 2 × 3 baselines
    for trial in plan.stages[2]:
        official = trial.recipe == "official"
        assert ("__official__seed" in trial.name) == official
        assert trial.tags["recipe"] == trial.recipe
        cfg = trial.config
        expected = (("mse", 5.0, 8, 5e-5, 100.0, 0.0) if official else ("kl", 2.0, 32, 1e-4, 0.0, 0.1))
        assert (cfg.soft_loss, cfg.temperature, cfg.batch_size, cfg.lr, cfg.pkd_weight,
                cfg.warmup_ratio) == expected
    by_seed = {}
    for trial in plan.stages[2]:
        by_seed.setdefault(trial.config.seed, set()).add(trial.teacher_keys)
    assert all(len(keys) == 1 for keys in by_seed.values()), "both recipes distil from one teacher"


def test_noise_teachers_is_an_axis_and_needs_noise():
    plan = _plan(_spec([{"methods": ["kd"], "teachers": [["bert"]], "students": ["distilbert"],
                         "noise_p": [0.0, 0.2], "noise_teachers": [False, True]}]))
    stage2 = {t.name: t for t in plan.stages[2]}
    assert set(stage2) == {"distilbert_from_bert__kd__seed0", "distilbert_from_bert__kd__noise0.2__seed0",
                           "distilbert_from_bert__kd__noise0.2+teachers__seed0"}
    shared = stage2["distilbert_from_bert__kd__noise0.2+teachers__seed0"]
    assert shared.config.noise_teachers and shared.tags["noise_teachers"] == "true"
    assert len({t.key for t in stage2.values()}) == 3
    assert any("noise_teachers true × noise_p 0 skipped" in s for s in plan.skipped)


def test_the_cheaper_variant_is_named_as_such():
    grid = [{"methods": ["kd", "metadistil"], "teachers": [["bert"]], "students": ["distilbert"]}]
    plan = _plan(_spec(grid, train={"meta_every": 4}))
    names = {t.name: t.tags["meta_every"] for t in plan.stages[2]}
    assert names == {"distilbert_from_bert__kd__seed0": "1",
                     "distilbert_from_bert__metadistil__every4__seed0": "4"}


def test_a_task_other_than_sst2_tags_its_trials_and_sst2_adds_no_tag():
    mrpc = ROOT / "search_spaces" / "mrpc.yaml"
    plan = _plan(parse_spec(yaml.safe_load(mrpc.read_text()), str(mrpc)))
    assert {t.tags["task"] for t in plan.trials} == {"mrpc"}
    smoke = ROOT / "search_spaces" / "smoke.yaml"
    sst2 = _plan(parse_spec(yaml.safe_load(smoke.read_text()), str(smoke)))
    assert all("task" not in t.tags for t in sst2.trials)


def test_a_born_again_student_is_its_own_trial_distilled_from_the_fine_tuned_teacher():
    """Furlanello et al. (ICML 2018): the student has the teacher's own architecture. Its trial is
    distinct from the teacher's fine-tune (its own key and name) and learns from that checkpoint;
    a fine-tune of the same model in the same space is the teacher's trial, not a third one."""
    plan = _plan(_spec([{"methods": ["finetune"], "students": ["minilm"]},
                        {"methods": ["kd", "metadistil"], "teachers": [["minilm"]], "students": ["minilm"]}]))
    (teacher,) = plan.stages[1]
    assert teacher.config.method == "finetune" and teacher.name == "minilm__finetune__seed0"
    names = sorted(t.name for t in plan.stages[2])
    assert names == ["minilm_from_minilm__kd__seed0", "minilm_from_minilm__metadistil__seed0"]
    for trial in plan.stages[2]:
        assert trial.teacher_keys == (teacher.key,) and trial.key != teacher.key
        assert trial.config.student == trial.config.teachers[0] == teacher.config.student


def test_a_teacher_assistant_chain_is_a_path_of_trials_one_stage_per_hop():
    """Mirzadeh et al. (AAAI 2020): MiniLM → MiniLM@4 → MiniLM@3 → MiniLM@2, beside MiniLM → MiniLM@2.
    Each hop learns from the previous hop's checkpoint, one stage later; the block's noise is the
    student's hop alone (the assistants are plain distillations, shared with any chain through them)."""
    plan = _plan(_spec([{"methods": ["kd"], "teachers": [["minilm"]], "students": ["minilm@2"],
                         "assistants": [[], ["minilm@4"], ["minilm@4", "minilm@3"]], "noise_p": [0.1]}]))
    by_name = {t.name: t for t in plan.trials}
    assert sorted(plan.stages) == [1, 2, 3, 4]
    assert sorted(by_name) == sorted([
        "minilm__finetune__seed0",
        "minilm@2_from_minilm__kd__noise0.1__seed0",
        "minilm@4_from_minilm__kd__seed0",
        "minilm@2_from_minilm_via_minilm@4__kd__noise0.1__seed0",
        "minilm@3_from_minilm_via_minilm@4__kd__seed0",
        "minilm@2_from_minilm_via_minilm@4>minilm@3__kd__noise0.1__seed0"])
    assistant = by_name["minilm@4_from_minilm__kd__seed0"]
    two_hops = by_name["minilm@2_from_minilm_via_minilm@4__kd__noise0.1__seed0"]
    three_hops = by_name["minilm@2_from_minilm_via_minilm@4>minilm@3__kd__noise0.1__seed0"]
    assert (assistant.stage, two_hops.stage, three_hops.stage) == (2, 3, 4)
    assert assistant.config.noise_p == 0 and two_hops.config.noise_p == 0.1
    assert two_hops.teacher_keys == (assistant.key,)
    assert two_hops.config.teachers == (assistant.config.student,)
    assert [Path(d).parent.name for d in two_hops.config.teacher_dirs] == [assistant.key]
    assert two_hops.teachers == ("minilm",) and two_hops.tags["assistants"] == "minilm@4"
    assert three_hops.tags["assistants"] == "minilm@4>minilm@3" and three_hops.tags["teachers"] == "minilm"
    assert "assistants" not in by_name["minilm@2_from_minilm__kd__noise0.1__seed0"].tags
    assert len({t.key for t in plan.trials}) == len(plan.trials)


@pytest.mark.parametrize(("block", "message"), [
    ({"assistants": [["minilm@2"]]}, "'minilm@2' is a student of this block"),
    ({"assistants": [["minilm@4", "minilm@3", "minilm@4"]]}, "'minilm@4' appears twice, a cycle"),
    ({"assistants": [["minilm@4"], ["minilm@4"]]}, "an assistant chain is listed twice"),
    ({"methods": ["finetune"], "teachers": [], "assistants": [["minilm@4"]]},
     "need a distilling method to run their hops; add one of kd, metadistil"),
])
def test_a_chain_that_cannot_be_planned_is_refused_in_one_line(block, message):
    from orchestrator.spec.space import SpecError

    grid = {"methods": ["kd"], "teachers": [["minilm"]], "students": ["minilm@2"], **block}
    with pytest.raises(SpecError, match=message) as error:
        _spec([grid])
    assert "\n" not in str(error.value) and str(error.value).startswith("test.yaml: grid.0")
