"""Redis ACL users per role: who may run which commands on which keys of the app's Redis.

One Redis serves every process of the service, but they do not need the same rights. A tool
worker runs third-party tool code; it must not learn a session's media token
(``s2s:{<sid>}:media``), read call state, logs or caller metadata, or listen to a session's
events. So each role authenticates as its own ACL user:

* ``service``: the Ray pods (Serve ingress replicas and session actors share them; the preStop
  drain does not use Redis). Every ``s2s:*`` key and pub/sub channel, data commands only: no
  ``@admin`` or ``@dangerous`` command (FLUSHALL, CONFIG, ACL, DEBUG, KEYS, SHUTDOWN, INFO...),
  and of the scripting commands only EVAL/EVALSHA (and their read-only forms) and SCRIPT
  LOAD/EXISTS, which redis-py's ``Script`` objects use.
* ``tools``: tool workers. The pool call streams ``s2s:tools:*`` as a consumer group member
  (and their dead-letter streams), the per-session result streams ``s2s:{*}:tool_results``
  write-only (XADD, EXPIRE), and HINCRBYFLOAT on the metrics hash. No other key, no channel.
* ``keda``: KEDA's ``redis-streams`` scaler. Read-only stream information on ``s2s:tools:*``
  (XINFO GROUPS, XLEN, XPENDING) and INFO, which the scaler reads for the server version.
* ``probe``: the Redis pod's own liveness and readiness probes: PING only. On Kubernetes its
  password is made at random when the pod starts (no Secret).
* ``default`` (Redis's built-in user, which clients get without AUTH): disabled.

The tool-worker role uses ACL selectors (the parenthesised groups), so Redis >= 7.0 is needed.

:data:`ROLES` holds the rules without passwords; :func:`rules_file` is the form
``s2s k8s render`` writes for Kubernetes (``k8s/base/generated/redis-acl.conf``, from which the
Redis pod builds its ACL file at start with the passwords from the roles' Secrets), and
:func:`render_acl` gives a complete ACL file (``redis-server --aclfile``) for given passwords.
Passwords are written as SHA-256 hashes (``#<hex>``), never in clear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from . import keys

__all__ = [
    "DEFAULT_USER",
    "MIN_REDIS_VERSION",
    "ROLES",
    "Role",
    "acl_line",
    "password_hash",
    "render_acl",
    "role",
    "rules_file",
]

MIN_REDIS_VERSION = (7, 0)
"""Selectors (``tools``) and ``%R~``/``%W~`` key permissions appeared in Redis 7.0."""

_P = keys.PREFIX
_CONNECTION = ("+ping", "+hello", "+client|setname", "+client|getname", "+client|id")
"""What a client library sends around its own commands. ``CLIENT SETINFO`` (Redis >= 7.2) is
left out so the rules load on 7.0; redis-py and go-redis ignore its refusal."""


@dataclass(frozen=True, slots=True)
class Role:
    """An ACL user: its name, its rules (without a password), and where its password lives."""

    name: str
    rules: tuple[str, ...]
    purpose: str
    secret: str | None
    """The Kubernetes Secret whose key ``password`` holds the role's password; None: the Redis
    pod makes a random one at start (only the pod itself uses the role)."""
    secret_optional: bool = False
    """The Secret may be missing (the role is then unusable: a random password stands in)."""


ROLES: tuple[Role, ...] = (
    Role(
        "service",
        (
            "on",
            "resetkeys",
            "resetchannels",
            f"~{_P}:*",
            f"&{_P}:*",
            "+@all",
            "-@admin",
            "-@dangerous",
            "-@scripting",
            "+eval",
            "+evalsha",
            "+eval_ro",
            "+evalsha_ro",
            "+script|load",
            "+script|exists",
        ),
        "Ray pods: Serve ingress replicas and session actors",
        "s2s-redis-service",
    ),
    Role(
        "tools",
        (
            "on",
            "resetkeys",
            "resetchannels",
            "-@all",
            *_CONNECTION,
            # The pool call streams and their dead letters: a consumer group's member.
            f"~{_P}:tools:*",
            "+xreadgroup",
            "+xack",
            "+xautoclaim",
            "+xclaim",
            "+xpending",
            "+xgroup|create",
            "+xgroup|createconsumer",
            "+xadd",
            # Results into a session's stream: write-only (XADD's reply is only the entry id).
            f"(%W~{_P}:{{*}}:tool_results +xadd +expire)",
            # Cluster-wide metrics counters.
            f"(~{keys.METRICS} +hincrbyfloat)",
        ),
        "tool workers",
        "s2s-redis-tools",
    ),
    Role(
        "keda",
        (
            "on",
            "resetkeys",
            "resetchannels",
            "-@all",
            *_CONNECTION,
            "+info",
            f"%R~{_P}:tools:*",
            "+xinfo|groups",
            "+xinfo|stream",
            "+xlen",
            "+xpending",
        ),
        "KEDA's redis-streams scaler (tool-worker backlog)",
        "s2s-redis-keda",
        secret_optional=True,
    ),
    Role(
        "probe",
        ("on", "resetkeys", "resetchannels", "-@all", "+ping", "+hello"),
        "the Redis pod's liveness and readiness probes",
        None,
    ),
)

DEFAULT_USER = Role(
    "default",
    ("off", "resetpass", "resetkeys", "resetchannels", "-@all"),
    "Redis's built-in user (clients that do not authenticate): disabled",
    None,
)


def role(name: str) -> Role:
    """The role called ``name``."""
    for found in ROLES:
        if found.name == name:
            return found
    raise KeyError(f"no Redis ACL role {name!r} (roles: {', '.join(r.name for r in ROLES)})")


def password_hash(password: str) -> str:
    """The ACL form of a password: ``#`` and the SHA-256 of its UTF-8 bytes, in hex."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def acl_line(user: Role, password: str | None = None) -> str:
    """One ``user`` line of an ACL file; without ``password``, the rules alone."""
    words = ["user", user.name]
    if password is not None:
        words.append(password_hash(password))
    return " ".join([*words, *user.rules])


def rules_file(header: str = "") -> str:
    """Every user's rules, without passwords, one ``user`` line each (default user first).

    The Redis pod's init container (``k8s/base/redis.yaml``) copies each line into the ACL
    file, inserting ``#<sha256>`` of the role's password after the user name, which gives the
    same lines as :func:`render_acl`.
    """
    lines = [acl_line(DEFAULT_USER), *(acl_line(r) for r in ROLES)]
    return header + "\n".join(lines) + "\n"


def render_acl(passwords: Mapping[str, str]) -> str:
    """A complete ACL file: every role with its password, the default user disabled.

    Raises:
        ValueError: a role without a password (or an empty one), or a password for no role.
    """
    unknown = set(passwords) - {r.name for r in ROLES}
    if unknown:
        raise ValueError(f"no Redis ACL role {', '.join(sorted(unknown))}")
    lines = [acl_line(DEFAULT_USER)]
    for user in ROLES:
        password = passwords.get(user.name)
        if not password:
            raise ValueError(f"Redis ACL role {user.name!r} needs a password")
        lines.append(acl_line(user, password))
    return "\n".join(lines) + "\n"
