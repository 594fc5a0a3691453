"""Dependency rules: s2s never imports Ray; protocol and wire modules never do I/O."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "s2s"

IO_MODULES = {
    "asyncio",
    "socket",
    "ssl",
    "websockets",
    "aiohttp",
    "httpx",
    "redis",
    "ray",
    "aioboto3",
    "awscrt",
    "smithy_http",
    "threading",
    "time",
}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_library_never_imports_ray_or_the_service_layers():
    for path in SRC.rglob("*.py"):
        bad = {n for n in imports(path) if top(n) in {"ray", "actors", "deployments"}}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_protocol_and_wire_modules_are_sans_io():
    checked = 0
    for path in [
        *SRC.glob("providers/*/protocol.py"),
        *SRC.glob("providers/*/wire.py"),
        SRC / "protocol.py",
        SRC / "conversation.py",
        SRC / "playback.py",
        *SRC.glob("telephony/*.py"),
    ]:
        bad = {n for n in imports(path) if top(n) in IO_MODULES}
        assert not bad, f"{path.relative_to(ROOT)} does I/O: imports {sorted(bad)}"
        checked += 1
    assert checked >= 5


def test_actors_never_import_deployments():
    for path in (ROOT / "actors").rglob("*.py") if (ROOT / "actors").exists() else []:
        bad = {n for n in imports(path) if top(n) == "deployments"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_public_names_are_exported():
    import s2s

    for name in s2s.__all__:
        assert hasattr(s2s, name), name
    for name in (
        "Config",
        "ToolDefinition",
        "ToolCall",
        "ToolResult",
        "EventType",
        "SessionEvent",
        "register",
        "new",
        "list_providers",
        "S2S",
        "Session",
        "Hooks",
        "compose_hooks",
        "as_frame_processor",
        "S2SError",
    ):
        assert name in s2s.__all__, name


def relative_imports(path: Path) -> set[str]:
    """Modules ``path`` imports by relative import, resolved to ``s2s.``-rooted names."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            names.add(".".join([*base, node.module or ""]).rstrip("."))
    return names


def test_the_phone_simulators_are_independent_of_the_server_side():
    """The platform simulators prove the server conforms: they must not share its code."""
    checked = 0
    for path in SRC.glob("phone/*.py"):
        used = imports(path) | relative_imports(path)
        bad = {n for n in used if n.startswith(("s2s.telephony", "s2s.service"))}
        assert not bad, f"{path.relative_to(ROOT)} imports the server side: {sorted(bad)}"
        checked += 1
    assert checked >= 5
