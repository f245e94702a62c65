"""Every user mistake at the sweep's front door: one line naming the file, key or value and the fix,
exit code 2, nothing started, nothing written."""

from __future__ import annotations

import shutil

import pytest
import yaml

from orchestrator import sweep
from tests.conftest import MRPC, SST2
from tests.servers import free_ports

GOOD = {
    "name": "bad-input",
    "seeds": [0],
    "data": {"train_size": 200, "quiz_size": 20, "test_size": 50},
    "train": {"epochs": 2},
    "grid": [{"methods": ["finetune"], "students": ["distilbert"]},
             {"methods": ["kd", "metadistil"], "teachers": [["bert"]], "students": ["distilbert"],
              "warmup_epochs": [0, 1], "noise_p": [0.0, 0.1]}],
}


def _with(path: str, value):
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, leaf = path.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[leaf]
    else:
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return raw


_DELETE = object()
RANDOM = {"algorithm": "random", "num_samples": 2}
ASHA = {**RANDOM, "scheduler": "asha"}
OPTUNA = {"algorithm": "optuna", "num_samples": 3}
PINNED = {"teacher_train": {"lr": 1.0e-4}}  # the teachers' lr, which optuna must not search
LOG_LR = {"loguniform": [1.0e-5, 1.0e-3]}

CASES = [
    ("unknown top-level key", _with("seed", [0]), "unknown key 'seed'; did you mean 'seeds'?"),
    ("unknown recipe", _with("recipe", "offical"), "unknown recipe 'offical'; use one of default, official"),
    ("recipe list at the top", _with("recipe", ["official"]), "name one recipe (default, official)"),
    ("unknown block recipe", _with("grid.1.recipe", ["default", "paper"]),
     "grid.1.recipe = ['default', 'paper']: unknown recipe 'paper'; use one of default, official"),
    ("block recipe against the sweep's data", _with("grid.1.recipe", ["official"]),
     "grid[1].recipe 'official' sets data.max_length = 128 but the sweep's data.max_length is 64; "
     "set data.max_length: 128"),
    ("noise_teachers not a boolean", _with("grid.1.noise_teachers", ["maybe"]), "grid.1.noise_teachers.0"),
    ("renamed meta_interval", _with("train.meta_interval", 4),
     "unknown key 'train.meta_interval'; did you mean 'meta_every'?"),
    ("PKD between two hidden sizes", {**_with("train.pkd_weight", 100.0), "grid": [
        {"methods": ["kd"], "teachers": [["bert"]], "students": ["tinybert"]}]},
     "trial tinybert_from_bert__kd__seed0 (tinybert from bert, pkd_weight 100): PKD compares hidden "
     "states unit by unit, but the student's are 64 wide and the teacher's 128; pick models of one "
     "hidden size or set pkd_weight: 0 for this pair (per_model: {tinybert: {pkd_weight: 0}})"),
    ("distribution under the grid", _with("train.lr", {"loguniform": [1.0e-5, 1.0e-3]}),
     "train.lr is a distribution, which the grid cannot run: set search: {algorithm: random"),
    ("unknown distribution", {**_with("train.lr", {"normal": [0, 1]}), "search": RANDOM},
     "train.lr = {'normal': [0, 1]}: not a distribution; write one of choice, uniform, loguniform, randint"),
    ("loguniform from zero", {**_with("train.lr", {"loguniform": [0.0, 1.0e-3]}), "search": RANDOM},
     "train.lr = {'loguniform': [0.0, 0.001]}: lr 0.0 is refused (must be > 0)"),
    ("bounds reversed", {**_with("train.alpha", {"uniform": [0.9, 0.1]}), "search": RANDOM},
     "train.alpha = {'uniform': [0.9, 0.1]}: low 0.9 must be below high 0.1"),
    ("choice outside the key's values", {**_with("train.soft_loss", {"choice": ["kl", "l2"]}),
                                         "search": RANDOM}, "soft_loss 'l2' is refused"),
    ("randint on a real-valued key", {**GOOD, "per_model": {"bert": {"lr": {"randint": [1, 3]}}},
                                      "search": RANDOM},
     "per_model.bert.lr = {'randint': [1, 3]}: randint draws integers but lr takes real numbers"),
    ("distribution on free text", {**_with("teacher_train", {"noise_token": {"choice": ["x", "y"]}}),
                                   "search": RANDOM}, "noise_token is free text"),
    ("random search with nothing to draw", {**GOOD, "search": RANDOM},
     "search.algorithm random has nothing to draw"),
    ("num_samples under the grid", {**GOOD, "search": {"num_samples": 4}},
     "num_samples 4 draws samples, which the grid does not: set algorithm: random"),
    ("asha on the grid", {**GOOD, "search": {"scheduler": "asha"}},
     "search = {'scheduler': 'asha'}: scheduler asha stops the samples that trail the others of their "
     "configuration, so it needs some: set algorithm: random and num_samples >= 2"),
    ("unknown scheduler", {**_with("train.lr", LOG_LR), "search": {**RANDOM, "scheduler": "median"}},
     "search.scheduler = 'median': Input should be 'none' or 'asha'"),
    ("misspelt scheduler key", {**_with("train.lr", LOG_LR), "search": {**RANDOM, "schedular": "asha"}},
     "unknown key 'search.schedular'; did you mean 'scheduler'?"),
    ("grace period without asha", {**_with("train.lr", LOG_LR), "search": {**RANDOM, "grace_period": 2}},
     "grace_period is ASHA's setting, which scheduler none does not use: set scheduler: asha"),
    ("reduction factor below 2", {**_with("train.lr", LOG_LR), "search": {**ASHA, "reduction_factor": 1}},
     "search.reduction_factor = 1: Input should be greater than or equal to 2"),
    ("grace period from the last epoch", {**_with("train.lr", LOG_LR), "search": {**ASHA, "grace_period": 2}},
     "search.grace_period 2 >= train.epochs 2: ASHA could stop no trial before its end; lower grace_period"),
    ("max_concurrent zero", {**_with("train.lr", LOG_LR), "search": {**ASHA, "max_concurrent": 0}},
     "search.max_concurrent = 0: Input should be greater than or equal to 1"),
    ("optuna with nothing to draw", {**GOOD, "search": OPTUNA},
     "search.algorithm optuna has nothing to draw"),
    ("optuna over two seeds", {**_with("train.lr", LOG_LR), **PINNED, "seeds": [0, 1], "search": OPTUNA},
     "seeds [0, 1]: algorithm optuna tunes on one seed; list one, then re-run the best configuration "
     "over more"),
    ("optuna drawing the teachers' lr", {**_with("train.lr", LOG_LR), "search": OPTUNA},
     "lr is a distribution that reaches the teacher 'bert'; algorithm optuna tunes against fixed "
     "teachers: give teacher_train a plain lr"),
    ("optuna with asha", {**_with("train.lr", LOG_LR), **PINNED, "search": {**OPTUNA, "scheduler": "asha"}},
     "scheduler asha judges the samples of algorithm random; with optuna set scheduler: none"),
    ("unknown algorithm", {**_with("train.lr", LOG_LR), "search": {"algorithm": "bayes"}},
     "search.algorithm = 'bayes': Input should be 'grid', 'random' or 'optuna'"),
    ("warm start >= lowest epochs draw", {**_with("train.epochs", {"randint": [1, 3]}), "search": RANDOM},
     "grid.1.warmup_epochs = 1: must be in [0, epochs) with epochs=1; raise epochs or lower warmup_epochs "
     "(epochs=1: the lowest draw of train.epochs)"),
    ("unknown nested key", _with("data.trian_size", 10),
     "unknown key 'data.trian_size'; did you mean 'train_size'?"),
    ("unknown grid key", _with("grid.1.noise", [0.1]), "unknown key 'grid.1.noise'; did you mean 'noise_p'?"),
    ("unknown train key", _with("train.learning_rate", 0.1), "unknown key 'train.learning_rate'"),
    ("unknown teacher_train key", _with("teacher_train", {"epoch": 2}),
     "teacher_train = {'epoch': 2}: unknown key 'epoch'; did you mean 'epochs'?"),
    ("wrong type", _with("train.epochs", "three"), "train.epochs = 'three'"),
    ("seeds not integers", _with("seeds", [0.5]), "seeds.0 = 0.5"),
    ("seeds repeated", _with("seeds", [1, 1]), "seeds repeat"),
    ("seeds empty", _with("seeds", []), "seeds"),
    ("seeds missing", _with("seeds", _DELETE), "missing key 'seeds'"),
    ("students empty", _with("grid.0.students", []), "grid.0.students"),
    ("methods empty", _with("grid.0.methods", []), "grid.0.methods"),
    ("grid empty", _with("grid", []), "grid"),
    ("unknown method", _with("grid.0.methods", ["distil"]), "grid.0.methods.0 = 'distil'"),
    ("noise above 1", _with("grid.1.noise_p", [1.5]),
     "grid.1.noise_p = 1.5: must be a probability in [0, 1]"),
    ("noise below 0", _with("grid.1.noise_p", [-0.1]),
     "grid.1.noise_p = -0.1: must be a probability in [0, 1]"),
    ("warm start >= epochs", _with("grid.1.warmup_epochs", [2]),
     "grid.1.warmup_epochs = 2: must be in [0, epochs) with epochs=2; raise epochs or lower warmup_epochs"),
    ("negative warm start", _with("grid.1.warmup_epochs", [-1]),
     "grid.1.warmup_epochs = -1: must be in [0, epochs)"),
    ("empty teacher set", _with("grid.1.teachers", [[]]),
     "grid.1.teachers = []: method 'kd' needs at least one teacher; add a teacher set, e.g. teachers: "
     "[[bert]]"),
    ("kd without teachers", _with("grid.1.teachers", _DELETE),
     "grid.1.teachers = []: method 'kd' needs at least one teacher"),
    ("unknown student", _with("grid.0.students", ["gpt9"]), "model 'gpt9': not a registry name"),
    ("unknown teacher", _with("grid.1.teachers", [["bret"]]), "model 'bret': not a registry name"),
    ("missing model folder", _with("grid.0.students", ["./models/mine"]), "(there is no folder"),
    ("bad layer suffix", _with("grid.0.students", ["minilm@two"]),
     "model 'minilm@two': after '@' write a layer count"),
    ("too many layers", _with("grid.0.students", ["minilm@7"]),
     "model 'minilm@7': keeps 7 layers but the model has 6"),
    ("hub id offline",
     {**GOOD, "models": {"size": "real"},
      "grid": [{"methods": ["finetune"], "students": ["google/bert_uncased_L-2_H-128_A-2"]}]},
     "hub model 'google/bert_uncased_L-2_H-128_A-2' cannot be fetched"),
    ("unknown per_model model", {**GOOD, "per_model": {"robertaa": {"lr": 1e-3}}},
     "per_model names 'robertaa', which no grid block trains"),
    ("unknown per_model key", {**GOOD, "per_model": {"bert": {"lr_rate": 1e-3}}}, "per_model = "),
    ("temperature zero", _with("train.temperature", 0), "train.temperature = 0"),
    ("alpha above one", _with("train.alpha", 1.5), "train.alpha = 1.5"),
    ("bad soft loss", _with("train.soft_loss", "l2"), "train.soft_loss = 'l2'"),
    ("batch size zero", _with("train.batch_size", 0), "train.batch_size = 0"),
    ("bad test split", _with("data.test_split", "dev"), "data.test_split = 'dev'"),
    ("max length too small", _with("data.max_length", 2), "data.max_length = 2"),
    ("bad size", {**GOOD, "models": {"size": "huge"}}, "models.size = 'huge'"),
    ("bad sweep name", {**GOOD, "name": "my sweep!"}, "name = 'my sweep!'"),
    ("negative gpus", {**GOOD, "resources": {"gpus_per_worker": -1}}, "resources.gpus_per_worker = -1"),
    ("teacher weights mismatch", _with("grid.1.teacher_weights", [1.0, 2.0]),
     "grid.1.teacher_weights = [1.0, 2.0]: one non-negative weight per teacher (1), not all zero"),
    ("k-step pilot across workers",
     {**_with("train.num_meta_batches", 2), "resources": {"workers_per_trial": 2}},
     "resources.workers_per_trial 2 with num_meta_batches 2 (metadistil student 'distilbert'): the k-step "
     "pilot runs on one worker per trial; set workers_per_trial: 1 or num_meta_batches: 1"),
    ("train size larger than data", _with("data.train_size", 70_000),
     "exceeds the 66978 distinct GLUE train sentences"),
    ("quiz + test larger than data", _with("data.test_size", 66_900), "exceeds the 66978"),
    ("data folder missing", _with("data", {"source": "/nonexistent/sst2"}),
     "data folder /nonexistent/sst2 not found"),
    ("top level is a list", [1, 2], "expected a mapping of keys"),
    ("train a list", _with("train", ["lr"]), "train = ['lr']: expected a mapping of keys; write them "
     "as key: value lines under it, or remove train"),
    ("data with nothing under it", _with("data", None), "data = None: expected a mapping of keys"),
    ("teacher_train a value", _with("teacher_train", "lr"), "teacher_train = 'lr': expected a mapping"),
    ("per_model's model a list", {**GOOD, "per_model": {"bert": ["lr"]}},
     "per_model.bert = ['lr']: expected a mapping of keys"),
    ("resources a number", {**GOOD, "resources": 4}, "resources = 4: expected a mapping of keys"),
    ("search a name", {**GOOD, "search": "optuna"}, "search = 'optuna': expected a mapping of keys"),
    ("grid block a list", _with("grid.0", ["finetune"]), "grid.0 = ['finetune']: expected a mapping"),
    ("unknown task", _with("data.task", "imdb"),
     "data.task = 'imdb': unknown task; use one of sst2, mrpc, cola, qqp, qnli, rte, wnli, mnli"),
    ("regression task", _with("data.task", "stsb"),
     "data.task = 'stsb': stsb is a regression task (Pearson/Spearman of a score); only classification"),
    ("folder of another task", _with("data", {**GOOD["data"], "task": "mrpc", "source": str(SST2)}),
     "train.tsv:1: header ['sentence', 'label'] does not hold task mrpc's columns (sentence1<TAB>"
     "sentence2<TAB>label or #1 String<TAB>#2 String<TAB>Quality); set data.task to this folder's task"),
    ("SST-2's test split on another task", _with("data", {"task": "mrpc", "test_split": "sst2-test"}),
     "data.test_split = 'sst2-test': is SST-2's; use test_split: labeled for mrpc's labeled test"),
    ("kept fraction above one", _with("grid.0.students", ["bert%150"]),
     "model 'bert%150': keeps 150 % (a kept fraction of 1.5); the kept fraction must be in (0, 1]"),
    ("kept fraction zero", _with("grid.1.teachers", [["bert%0"]]), "(a kept fraction of 0)"),
    ("pruning more heads than a layer has", _with("grid.0.students", ["bert%10"]),
     "model 'bert%10': 10 % of 2 heads keeps none: it would prune all 2 heads a layer has"),
    ("pruning a model that is not a BERT", _with("grid.0.students", ["distilbert%50"]),
     "pruning removes heads and neurons of BERT models"),
]


def _run(tmp_path, raw, *extra, text=None, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(text if text is not None else yaml.safe_dump(raw))
    code = sweep.main(["--space", str(space), "--storage", str(tmp_path / "store"),
                       "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                       "--report-dir", str(tmp_path / "report"), *extra])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("label, raw, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_space_is_refused_in_one_line(tmp_path, capsys, label, raw, expected):
    code, err = _run(tmp_path, raw, capsys=capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(tmp_path / "space.yaml") in err or "model" in err or "data" in err
    assert expected in err, err
    assert not (tmp_path / "store").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("remove, said", [("model.safetensors", "lacks model.safetensors"),
                                          ("vocab.txt", "lacks a tokenizer")])
def test_incomplete_model_folder_is_refused_in_one_line(tmp_path, capsys, remove, said):
    from trainers.models.refs import packaged_dir

    folder = tmp_path / "models" / "mine"
    folder.mkdir(parents=True)
    for file in packaged_dir("minilm").iterdir():
        if file.is_file() and file.name not in (remove, "tokenizer.json"):
            (folder / file.name).symlink_to(file)
    code, err = _run(tmp_path, _with("grid.0.students", ["models/mine"]), capsys=capsys)
    assert code == 2 and len(err.splitlines()) == 1 and said in err and str(folder) in err, err
    assert not (tmp_path / "store").exists()


def test_an_offline_folder_that_is_not_there_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("METADISTIL_DATA", str(tmp_path / "nowhere"))
    code, err = _run(tmp_path, GOOD, capsys=capsys)
    assert code == 2 and err == (f"error: METADISTIL_DATA={tmp_path / 'nowhere'}: no such folder; point it "
                                 "at a folder with one subfolder per task (sst2/ among them), or unset it "
                                 "to load GLUE from the Hugging Face hub")
    assert not (tmp_path / "store").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_task_the_offline_folder_lacks_comes_from_the_hub(tmp_path, capsys, monkeypatch):
    """Offline here (HF_HUB_OFFLINE): the hub's refusal, in one line, names the fix."""
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("METADISTIL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    code, err = _run(tmp_path, GOOD, "--dry-run", capsys=capsys)
    assert code == 2 and err == ("error: cannot load nyu-mll/glue/sst2 from the Hugging Face hub "
                                 "(ConnectionError); set METADISTIL_DATA to an offline data folder with "
                                 "sst2/ in it, or data.source to a folder with train.tsv, validation.tsv, "
                                 "test.tsv")


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    code, err = _run(tmp_path, None, text="name: x\nseeds: [0\ngrid: []\n", capsys=capsys)
    assert code == 2 and "space.yaml:3: YAML syntax error" in err


def test_missing_space_file_lists_the_shipped_ones(tmp_path, capsys):
    code = sweep.main(["--space", str(tmp_path / "nope.yaml"), "--dry-run"])
    err = capsys.readouterr().err
    shipped = ("compress.yaml, cpu.yaml, future.yaml, mrpc.yaml, paper.yaml, recipes_compare.yaml, "
               "search.yaml, smoke.yaml")
    assert code == 2 and f"search space not found (shipped: {shipped})" in err


def test_malformed_tsv_names_file_and_line(tmp_path, capsys):
    folder = tmp_path / "sst2"
    shutil.copytree(SST2, folder, ignore=shutil.ignore_patterns("raw"))
    (folder / "validation.tsv").chmod(0o644)
    with (folder / "validation.tsv").open("a") as handle:
        handle.write("a broken row\t7\n")
    code, err = _run(tmp_path, _with("data.source", str(folder)), capsys=capsys)
    assert code == 2 and "validation.tsv:874: label '7' is not 0 or 1" in err


def test_label_outside_the_tasks_range_names_file_and_line(tmp_path, capsys):
    folder = tmp_path / "mrpc"
    shutil.copytree(MRPC, folder, ignore=shutil.ignore_patterns("raw"))
    (folder / "dev.tsv").chmod(0o644)
    with (folder / "dev.tsv").open("a") as handle:
        handle.write("2\t1\t2\tOne sentence .\tAnother sentence .\n")
    data = {"source": str(folder), "task": "mrpc", "test_split": "labeled", "train_size": 200,
            "quiz_size": 20}
    code, err = _run(tmp_path, _with("data", data), capsys=capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "dev.tsv:410: label '2' is not 0 or 1 (task mrpc has 2 labels)" in err, err
    assert not (tmp_path / "store").exists()


def test_unreachable_tracking_server_is_found_before_ray_starts(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(GOOD))
    code = sweep.main(["--space", str(space), "--storage", str(tmp_path / "store"),
                       "--tracking-uri", f"http://user:s3cret@127.0.0.1:{free_ports(1)[0]}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is unreachable" in err and "s3cret" not in err and "user:***@" in err


def test_unreachable_ray_address(tmp_path, capsys):
    code, err = _run(tmp_path, GOOD, "--address", f"127.0.0.1:{free_ports(1)[0]}", capsys=capsys)
    assert code == 2 and "Ray cluster unreachable" in err


def test_storage_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(GOOD))
    code = sweep.main(["--space", str(space), "--storage", str(blocker / "store"),
                       "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"storage path {blocker / 'store'} is not writable" in err


def test_yaml_is_loaded_safely(tmp_path, capsys):
    """A YAML tag that would run code under yaml.load is refused in one line, and runs nothing."""
    marker = tmp_path / "pwned"
    text = f"name: x\nseeds: [0]\ngrid: !!python/object/apply:os.system ['touch {marker}']\n"
    code, err = _run(tmp_path, None, text=text, capsys=capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "YAML" in err
    assert not marker.exists()


def test_trial_larger_than_this_machine_is_refused_before_ray_starts(tmp_path, capsys):
    code, err = _run(tmp_path, {**GOOD, "resources": {"cpus_per_worker": 512}}, capsys=capsys)
    assert code == 2 and "a trial needs 512 CPUs" in err and "this machine has" in err
    assert not (tmp_path / "store" / "ray").exists()


def test_resume_of_a_sweep_that_does_not_exist(tmp_path, capsys):
    code, err = _run(tmp_path, {**GOOD, "name": "smok"}, "--resume", capsys=capsys)
    assert code == 2 and "--resume: no sweep 'smok'" in err and "drop --resume" in err
    assert len(err.splitlines()) == 1
