"""Ray as the sweep and the demo start it: attached to a cluster, or a local one whose dashboard
listens on 127.0.0.1 only, with Ray's token auth on (``RAY_AUTH_MODE=token`` must be in the
environment before ``ray`` is first imported: both commands call :func:`configure_environment`
first; its Tune and Train settings are the sweep's, and change nothing for the demo's Serve)."""

from __future__ import annotations

import os


def configure_environment() -> None:
    """Settings Ray reads when it is first imported, so set before that: a local cluster inherits
    them from the driver; an attached one keeps its own (hence ``setdefault``)."""
    # Tune's classic reporter shows the columns we choose (the new output engine ignores
    # reporters); token auth is Ray's default, said explicitly so that Ray does not warn about it.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    # Ctrl-C must reach the sweep (Tune's own handler would stop the stage and return as if it
    # ended).
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # Ray Train's controller sees a worker group start and finish only when it polls it (every 2 s
    # by default): each trial waited a second on average at both ends for nothing.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    # Ray Train starts a preemption watcher per trial, a Python process of its own (1.5 s of CPU
    # on this 2-core machine) that asks Ray every 5 s whether a node is being drained, as spot
    # nodes of an autoscaled cluster are. The local Ray the sweep starts is never drained.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")


# Ray 2.60 gives a local node a fixed 30 s to register (``ray/_private/node.py``) and then raises a
# bare ``Exception`` with this text: on an overloaded machine, a start that failed, not a bug.
NODE_TIMEOUT = "The current node timed out during startup"


def start_ray(address: str | None = None):
    """Attach to the cluster at ``address``, or start a local one on loopback with its dashboard.
    A local node that does not come up in Ray's 30 s raises ``RuntimeError`` saying what to do."""
    import ray

    if address:
        return ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    try:
        return ray.init(include_dashboard=True, dashboard_host="127.0.0.1", _node_ip_address="127.0.0.1",
                        log_to_driver=False, logging_level="WARNING")
    except Exception as error:  # noqa: BLE001 - Ray raises this one as a bare Exception
        if not str(error).startswith(NODE_TIMEOUT):
            raise
        ray.shutdown()
        raise RuntimeError("the local Ray node did not start within Ray's 30 s (is the machine "
                           "overloaded?); run again when it is less busy, or start Ray yourself "
                           "(ray start --head) and pass --address auto") from None


def print_ray(context, address: str | None = None) -> None:
    """Where Ray runs, its dashboard, and how to log in to it."""
    url = getattr(context, "dashboard_url", "") or "127.0.0.1:8265"
    where = f"attached to {address}" if address else "local Ray started"
    print(f"Ray: {where} · dashboard http://{url} · log in with the token that "
          "`ray get-auth-token` prints (also in ~/.ray/auth_token)")
