"""Ray as the sweep and the demo start it: attached to a cluster, or a local one whose dashboard
listens on 127.0.0.1 only, with Ray's token auth on (``RAY_AUTH_MODE=token`` must be in the
environment before ``ray`` is first imported: both commands set it)."""

from __future__ import annotations


def start_ray(address: str | None = None):
    """Attach to the cluster at ``address``, or start a local one on loopback with its dashboard."""
    import ray

    if address:
        return ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    return ray.init(include_dashboard=True, dashboard_host="127.0.0.1", _node_ip_address="127.0.0.1",
                    log_to_driver=False, logging_level="WARNING")


def print_ray(context, address: str | None = None) -> None:
    """Where Ray runs, its dashboard, and how to log in to it."""
    url = getattr(context, "dashboard_url", "") or "127.0.0.1:8265"
    where = f"attached to {address}" if address else "local Ray started"
    print(f"Ray: {where} · dashboard http://{url} · log in with the token that "
          "`ray get-auth-token` prints (also in ~/.ray/auth_token)")
