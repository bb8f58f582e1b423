"""Who is asking: API keys from the ``Authorization`` or ``X-API-Key`` header, roles per knowledge base.

Open mode: when no key exists and the server listens on loopback only, every request acts as the
machine's own user (admin of everything) — the same trust as running ``jisik ask`` in a terminal.
A server bound to another address never runs open: without keys it answers 401 to everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from jisik.serve.errors import ApiError
from jisik.serve.state import QUERY_KEY_NAMES, ROLES, ApiKey, MalformedAuthorization, Role, key_in_headers

if TYPE_CHECKING:
    from jisik.serve.app import ServerContext
    from jisik.serve.library import Served



@dataclass(frozen=True, slots=True)
class Principal:
    key: ApiKey | None  # None: open mode (no keys, loopback only)

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    def role_for(self, kb: str) -> Role | None:
        """The strongest role this caller has on ``kb``, or None."""
        if self.key is None:
            return "admin"
        return next((role for role in reversed(ROLES) if self.key.allows(kb, role)), None)

    def can(self, kb: str, role: Role) -> bool:
        have = self.role_for(kb)
        return have is not None and ROLES.index(have) >= ROLES.index(role)

    @property
    def admin_of_all(self) -> bool:
        return self.key is None or (self.key.kb == "*" and self.key.role == "admin")


def key_from_headers(request: Request) -> str | None:
    """The key in ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; None when neither is sent."""
    try:
        return key_in_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
    except MalformedAuthorization as exc:
        raise ApiError(401, str(exc), code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}) from exc


def authenticate(request: Request) -> Principal:
    """The FastAPI dependency every protected route uses."""
    context: ServerContext = request.app.state.context
    if any(name.lower() in QUERY_KEY_NAMES for name in request.query_params):
        raise ApiError(401, "API keys are not accepted in the URL", code="key_in_query",
                       hint="send it in a header: Authorization: Bearer <key> (and revoke this one: URLs get logged)")
    plain = key_from_headers(request)
    if not context.require_keys and not context.state.has_keys():
        return Principal(None)  # open mode; OpenAI clients send some key even then ("none"): ignored
    if plain is None:
        raise ApiError(401, "this server needs an API key", code="missing_api_key",
                       hint="send Authorization: Bearer <key>; create one with `jisik keys create --kb NAME`",
                       headers={"WWW-Authenticate": "Bearer"})
    key, why = context.state.verify(plain)
    if key is None:
        messages = {"unknown": "the API key is not valid", "revoked": "the API key was revoked",
                    "expired": "the API key has expired"}
        raise ApiError(401, messages.get(why or "", "the API key is not valid"), code=f"{why}_api_key",
                       hint="ask an admin for a new key (`jisik keys create`)", headers={"WWW-Authenticate": "Bearer"})
    request.state.key_id = key.id
    return Principal(key)


Caller = Annotated[Principal, Depends(authenticate)]


def visible(context: ServerContext, principal: Principal, name: str) -> Served | None:
    """The knowledge base ``name`` if this caller may at least read it; None when it does not exist or is hidden."""
    served: Served | None = context.library.get(name)
    return served if served is not None and principal.can(name, "read") else None


def require(context: ServerContext, principal: Principal, name: str, role: Role) -> Served:
    """The knowledge base ``name`` if this caller may use it with ``role``.

    A knowledge base the caller cannot even read is reported exactly as one that does not exist (404),
    so a key for A learns nothing about B's name.
    """
    served = visible(context, principal, name)
    if served is None:
        raise ApiError(404, f"no knowledge base named '{name}'", code="kb_not_found", param="kb",
                       hint="GET /api/kbs lists the ones this key can use")
    if not principal.can(name, role):
        raise ApiError(403, f"this key may not {_VERBS[role]} '{name}'", code="insufficient_role",
                       hint=f"it needs the {role} role: `jisik keys create --kb {name} --role {role}`")
    result: Served = served
    return result


_VERBS = {"read": "read", "write": "change documents of", "admin": "manage keys of"}
