"""Where a run came from, as MLflow records it: its context tags, for runs the driver creates.

``mlflow.start_run`` adds the context tags (``mlflow.user``, ``mlflow.source.name`` and
``.type``, the git commit, branch and repository of the program) by itself; ``MlflowClient.create_run``,
which the sweep uses so that runs exist before their workers start, adds none. They are resolved
here once per process by MLflow's own providers, and the git ones are taken from the project's
checkout rather than from the program's file: the program may be an installed command
(``metadistil-sweep``) or pytest, outside any checkout. Outside a checkout there is no commit tag.
"""

from __future__ import annotations

from functools import cache

from orchestrator.paths import PROJECT_ROOT


@cache
def context_tags() -> dict[str, str]:
    """MLflow's context tags for a run created by this process (user, source, git commit)."""
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.git_utils import get_git_branch, get_git_commit, get_git_repo_url
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_GIT_REPO_URL

    tags = resolve_tags()
    git = {MLFLOW_GIT_COMMIT: get_git_commit(str(PROJECT_ROOT)),
           MLFLOW_GIT_BRANCH: get_git_branch(str(PROJECT_ROOT)),
           MLFLOW_GIT_REPO_URL: get_git_repo_url(str(PROJECT_ROOT))}
    if git[MLFLOW_GIT_COMMIT]:
        tags.update({key: value for key, value in git.items() if value})
    return {key: str(value) for key, value in tags.items()}
