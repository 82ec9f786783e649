"""Check clore's import boundaries (run by ``make lint``); exit 1 listing every violation.

The rules (docs/architecture.md, "Boundaries"):

1. A face (``clore.cli``, ``clore.mcp``) imports no private library module (``clore._*``)
   and no sandbox internals (only the ``clore.sandbox`` package itself); a face's command
   module imports no other command module (shared helpers are the face's own ``_*``
   modules).
2. The sandbox imports nothing from the SDK's client side (the client, its flows, pacing,
   retries, server-time estimate, errors, validation, config), nor any face or workflow.
   It shares only the schema and API facts (``clore._wire``), the clock, paths, the file
   helper and the pure market functions.
3. The library never imports a face.

Every import counts, also those inside functions (the CLI imports lazily) and under
``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
FACES = ("clore.cli", "clore.mcp")
SANDBOX_FORBIDDEN = (
    "clore._client",
    "clore._flows",
    "clore._core",
    "clore._pacing",
    "clore._retry",
    "clore._servertime",
    "clore._errors",
    "clore._validate",
    "clore.config",
    "clore.compat",
    "clore.cli",
    "clore.mcp",
    "clore.workflows",
    "clore.jobs",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, names of ``from`` included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # ``from clore import _wire`` / ``from clore.cli import rent`` name modules too.
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def is_private(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "clore" and any(p.startswith("_") and p != "__main__" for p in parts[1:])


def existing(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def violations(path: Path) -> list[str]:
    name = module_name(path)
    out: list[str] = []
    face = next((f for f in FACES if within(name, f)), None)
    for line, target in imports(path):
        if not within(target, "clore") or not existing(target):
            continue
        where = f"{path.relative_to(ROOT.parent)}:{line}: {name} imports {target}"
        if face is not None:
            if is_private(target) and not within(target, face):
                out.append(f"{where} (a face imports no private library module)")
            elif within(target, "clore.sandbox") and target != "clore.sandbox":
                out.append(f"{where} (a face imports only the clore.sandbox package)")
            elif within(target, face) and target != face:
                own = target[len(face) + 1 :].split(".")[0]
                mine = name[len(face) + 1 :].split(".")[0] if name != face else ""
                if not own.startswith("_") and own != mine and mine != "":
                    out.append(f"{where} (a command module imports no other command module)")
        elif within(name, "clore.sandbox"):
            if any(within(target, f) for f in SANDBOX_FORBIDDEN):
                out.append(f"{where} (the sandbox imports nothing from the client side)")
        elif name != "clore.__main__" and any(within(target, f) for f in FACES):
            out.append(f"{where} (the library imports no face)")
    return out


def main() -> int:
    found = [v for path in sorted(ROOT.rglob("*.py")) for v in violations(path)]
    for line in found:
        print(line)
    if found:
        print(f"check_imports: {len(found)} import boundary violation(s)", file=sys.stderr)
        return 1
    print("check_imports: import boundaries hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
