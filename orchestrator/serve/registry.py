"""The sweep's best students in MLflow's model registry: one registered model per configuration,
named ``<sweep>.<configuration>`` (the run name without its seed and search sample, e.g.
``smoke.minilm@2_from_minilm__kd``), whose alias ``best`` points at the version from the
configuration's best run. The best run is the one ``predict`` and the demo show: the highest
value of the task's main validation metric at its last epoch over the configuration's runs (seeds,
samples): SST-2's accuracy, MRPC's F1, the metric its report is headed by
(``orchestrator.report.metrics.main_validation``). After every sweep the alias moves to a better
run if one landed.

Then ``models:/smoke.minilm@2_from_minilm__kd@best`` is what anyone loads with ``mlflow.pyfunc``
or serves with ``mlflow models serve``, and what ``predict`` and the demo load first. A store whose
server has no registry keeps working: they read the runs' models, and say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.report.best import best_runs

ALIAS = "best"
_SEED_AND_SAMPLE = re.compile(r"(__s\d+)?__seed\d+$")


@dataclass(frozen=True)
class Registered:
    """One configuration's registered model and the version its ``best`` alias points at."""

    label: str
    name: str
    version: str
    run_id: str
    moved: bool  # the alias moved (or was set) by this call

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{ALIAS}"


def registered_name(sweep: str, run_name: str) -> str:
    """``smoke`` + ``minilm@2__finetune__seed0`` → ``smoke.minilm@2__finetune`` ('/' and ':' are
    refused in registered names)."""
    configuration = _SEED_AND_SAMPLE.sub("", run_name)
    return re.sub(r"[/:]", "_", f"{sweep}.{configuration}")


def register_best(client: MlflowClient, sweep: str) -> list[Registered]:
    """Point each configuration's ``best`` alias at its best run's model, registering it if it is
    not yet a version; runs logged without a model are left out. Raises ``MlflowException`` where
    the store has no registry."""
    done = []
    for label, run in best_runs(client, sweep):
        outputs = client.get_run(run.run_id).outputs
        if not (outputs and outputs.model_outputs):
            continue
        model_id = outputs.model_outputs[-1].model_id
        name = registered_name(sweep, run.run_name)
        current = _alias_version(client, name)
        if current is not None and current.run_id == run.run_id:
            done.append(Registered(label, name, str(current.version), run.run_id, False))
            continue
        version = _version_of(client, name, run.run_id, model_id)
        client.set_registered_model_alias(name, ALIAS, version)
        done.append(Registered(label, name, version, run.run_id, True))
    return done


def best_version_uri(client: MlflowClient, sweep: str, run_name: str) -> str | None:
    """Where the configuration's ``best`` version's files are, or None when it has none."""
    name = registered_name(sweep, run_name)
    version = _alias_version(client, name)
    return None if version is None else client.get_model_version_download_uri(name, version.version)


def _alias_version(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _version_of(client: MlflowClient, name: str, run_id: str, model_id: str) -> str:
    """The run's version of the registered model: the one registered before, else a new one."""
    try:
        client.create_registered_model(name, description="The best run's student of this "
                                       "configuration: load models:/<name>@best")
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        return str(version.version)
    source = client.get_logged_model(model_id).artifact_location
    return str(client.create_model_version(name, source, run_id=run_id, model_id=model_id).version)
