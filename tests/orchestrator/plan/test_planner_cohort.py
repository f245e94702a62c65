"""A mutual-learning cohort in the plan (Zhang et al., CVPR 2018): one trial trains it, every member
is a trial of its own (key, name, tags) riding on the first's, and a cohort that cannot be planned
is refused in one line."""

from __future__ import annotations

import pytest

from orchestrator.plan.estimate import trial_seconds
from orchestrator.spec.space import SpecError
from tests.orchestrator.plan.test_planner import _plan, _spec

COHORT = {"methods": ["mutual"], "students": ["minilm@2"]}


@pytest.mark.parametrize("peers", [[["minilm@2"]], [["minilm@2", "minilm@2"]], [["minilm@4"], ["minilm@2"]]])
@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_each_member_is_a_trial_and_the_first_trains_its_cohort(peers, seeds):
    plan = _plan(_spec([{**COHORT, "peers": peers}], seeds=seeds))
    assert list(plan.stages) == [1]  # no teacher: a cohort starts at once
    trials = plan.trials
    assert len(trials) == len(seeds) * sum(1 + len(p) for p in peers)
    assert len({t.key for t in trials}) == len({t.name for t in trials}) == len(trials)
    by_key = {t.key: t for t in trials}
    for trial in trials:
        cfg = trial.config
        assert cfg.cohort[cfg.member] == cfg.student and trial.cohort[cfg.member] == trial.student
        assert trial.tags["member"] == str(cfg.member + 1) and trial.tags["cohort"] == "+".join(trial.cohort)
        assert trial.name.startswith(f"{'+'.join(trial.cohort)}_m{cfg.member + 1}__mutual__")
        if cfg.member == 0:
            assert trial.lead == "" and trial_seconds(cfg) > 0
        else:  # trained by the first member's trial, with its settings: nothing of its own to run
            lead = by_key[trial.lead]
            assert lead.config.member == 0 and lead.config.cohort == cfg.cohort
            assert lead.config.seed == cfg.seed and lead.config.lr == cfg.lr
            assert trial_seconds(cfg) == 0.0


def test_a_bigger_cohort_costs_more_than_its_first_member_alone():
    two = _plan(_spec([{**COHORT, "peers": [["minilm@2"]]}])).trials[0]
    three = _plan(_spec([{**COHORT, "peers": [["minilm@2", "minilm@2"]]}])).trials[0]
    finetune = _plan(_spec([{"methods": ["finetune"], "students": ["minilm@2"]}])).trials[0]
    assert trial_seconds(finetune.config) < trial_seconds(two.config) < trial_seconds(three.config)


def test_a_cohort_keeps_the_keys_of_every_other_trial():
    """``cohort`` and ``member`` are keyed only when set: a fine-tune beside a cohort has the key
    it has in a space without one (its stored trial is reused)."""
    alone = _plan(_spec([{"methods": ["finetune"], "students": ["minilm@2"]}]))
    beside = _plan(_spec([{"methods": ["finetune"], "students": ["minilm@2"]},
                          {**COHORT, "peers": [["minilm@2"]]}]))
    assert alone.trials[0].key in {t.key for t in beside.trials}
    assert "cohort" not in alone.trials[0].tags


@pytest.mark.parametrize(("block", "message"), [
    ({"peers": [[]]}, "peers \\[\\] with method 'mutual': a cohort of one"),
    ({"peers": [["minilm@2"], []]}, "a cohort of one"),
    ({}, "a cohort of one"),
    ({"peers": [["minilm@2"]], "noise_p": [0.1]}, "noise_p and warmup_epochs vary a distillation"),
    ({"peers": [["minilm@2"]], "warmup_epochs": [1]}, "noise_p and warmup_epochs vary a distillation"),
    ({"peers": [["minilm@2"]], "teachers": [["minilm"]]}, "without teachers or assistants"),
    ({"peers": [["minilm@2"]], "methods": ["mutual", "kd"], "teachers": [["minilm"]]},
     "methods 'mutual' and 'kd' in one block"),
    ({"peers": [["minilm@2"], ["minilm@2"]]}, "a peers list is given twice"),
    ({"methods": ["kd"], "teachers": [["minilm"]], "peers": [["minilm@2"]]},
     "peers \\['minilm@2'\\] apply to a method that trains a cohort \\(mutual\\)"),
])
def test_a_cohort_that_cannot_be_planned_is_refused_in_one_line(block, message):
    with pytest.raises(SpecError, match=message) as error:
        _spec([{**COHORT, **block}], train={"epochs": 2})
    assert "\n" not in str(error.value) and str(error.value).startswith("test.yaml: grid.0")


def test_a_config_outside_a_cohort_method_takes_no_cohort():
    from trainers.config import ConfigError

    plan = _plan(_spec([{"methods": ["finetune"], "students": ["minilm@2"]}]))
    import dataclasses

    with pytest.raises(ConfigError, match="peers are for a cohort method"):
        dataclasses.replace(plan.trials[0].config, cohort=("x", "y"))
    with pytest.raises(ConfigError, match="a cohort of one"):
        dataclasses.replace(plan.trials[0].config, method="mutual", cohort=(plan.trials[0].config.student,))
