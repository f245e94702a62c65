"""What the driver hands each trial: the typed contract between ``orchestrator/`` and a worker.

The sweep builds one :class:`TrialPayload` per trial to run; Tune's trainable reads its resources
to size a ``TorchTrainer``, and every Ray Train worker reads its config, its MLflow run and the
storage layout. It crosses the process boundary pickled, as one frozen object: a field renamed on
one side is an error at the other, not a key quietly missing from a dict.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainers.config import TrainConfig
from trainers.record.layout import StorageLayout


@dataclass(frozen=True)
class TrialResources:
    """One trial's share of the cluster (the space's ``resources:``)."""

    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_failures: int = 2
    kernels: str = "native"  # trainers/runtime/kernels.py: set in each worker's environment before it starts

    @property
    def threads(self) -> int:
        """torch threads per worker: its whole CPUs, at least one."""
        return max(1, int(self.cpus_per_worker))


@dataclass(frozen=True)
class PeerTrial:
    """A cohort's other member, trained by its first member's trial (``trainers/methods/mutual.py``): the
    config, content key, run name and MLflow run of its own trial, whose folder that trial writes."""

    config: TrainConfig
    key: str
    name: str
    run_id: str


@dataclass(frozen=True)
class TrialPayload:
    """One trial to train: ``key`` is its content key (its folder and Ray Train run name),
    ``name`` its run name, ``run_id`` the MLflow run the driver opened for it."""

    config: TrainConfig
    key: str
    name: str
    run_id: str
    tracking_uri: str
    resources: TrialResources
    layout: StorageLayout
    peers: tuple[PeerTrial, ...] = ()  # a cohort's other members, in the order of config.peers
