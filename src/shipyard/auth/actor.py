"""Who acts: a person (through a token, a browser or the CLI) or a named part of the system.

Every use case that changes something takes an ``Actor``, checks the actor's role in the project,
makes the change and writes the audit record, in one transaction, whoever calls it: a route, a
page, a background service. A background service acts as a *system actor*, named for what
started it (``dispatcher``, ``sweep 3f2a...``, ``pipeline digits-retrain run 7``), either for a
person (a sweep acts with its creator's role, no more) or as the server itself (the dispatcher,
the crash reaper, the alert evaluator, the serving controller: the server's own bookkeeping).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shipyard.auth.scopes import TokenScope

SERVER = ""  # the user id of the server's own system actors (they act for nobody)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a change is made by, and for whom.

    ``system`` names the part of the system acting (None: a person acting directly); ``scope``
    is set for a job's token (``auth.scopes``), which is never an admin.
    """

    user_id: str
    name: str
    is_admin: bool
    address: str | None = None
    scope: TokenScope | None = None
    system: str | None = None

    @property
    def label(self) -> str:
        """How the audit log names this actor: the person, or the system part and its user."""
        if self.system is None:
            return self.name
        if self.user_id == SERVER:
            return self.system
        return f"{self.system} for {self.name}"

    def acting_as(self, system: str) -> Actor:
        """The same user's authority, exercised by a part of the system (a sweep, a pipeline)."""
        return replace(self, system=system, address=None)


def system_actor(system: str) -> Actor:
    """The server itself, acting in the background (``dispatcher``, ``crash reaper``...)."""
    return Actor(SERVER, system, True, None, None, system)


def user_actor(user_id: str, name: str, is_admin: bool, system: str) -> Actor:
    """A part of the system acting for a user (a sweep for its creator), with that user's roles."""
    return Actor(user_id, name, is_admin, None, None, system)
