"""The one base class of every mistake a user can fix: a bad space, model, data folder, tracking
store or report request.

Its message is one line naming the culprit (file, key, value) and the fix. Every command catches
:class:`UserError`, prints ``error: <message>`` and exits 2, so a new kind of bad input needs only
a subclass, never another ``except`` clause. It is a ``ValueError`` so that pydantic, which turns a
validator's ``ValueError`` into a validation error, keeps the message of one raised inside a schema.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input; the message is one line with the culprit and the fix."""
