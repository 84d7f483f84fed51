"""Stack config exactly as the Pulumi CLI hands it to the program, and the one parser of it.

Both engines go through `program_values`: the real one (`config.from_pulumi`, reading what
the CLI passed) and the offline one (`engine.run`, which first applies the CLI's own rules
to the stack file with `cli_config`). So the two cannot see different values.

What the CLI does (pulumi/pulumi, `sdk/go/common/workspace/config.go` `mergeConfig` and
`validateStackConfigValue`; `sdk/go/common/workspace/project.go` `ValidateConfigValue`):
- A top-level value reaches the program as its text: `scaleladder:phase: 3` and
  `scaleladder:phase: "3"` (what `pulumi config set scaleladder:phase 3` writes) are both
  the string "3". An object value (`--path` writes those) reaches it as JSON, nested
  numbers and booleans typed (`--path ... 12` writes an unquoted 12).
- A key Pulumi.yaml declares with a type is checked on that text: `integer` accepts an int
  or a string that parses as one (`strconv.Atoi`), `boolean` accepts "true"/"false" or a
  bool, `string` any text; an object where a scalar is declared is refused ("Stack 'S'
  with configuration key 'K' must be of type 'T'").
- A declared key missing from the stack takes its default (as text, `fmt.Sprintf("%v")`);
  without a default it is required ("Stack 'S' is missing configuration value 'K'").
- `secure:` values (`pulumi config set --secret`) are decrypted before the program runs and
  their keys listed as secret (`PULUMI_CONFIG_SECRET_KEYS`). scaleladder takes no secret in
  its own config (`refuse_secret_keys`: a secret would land in user data or manifests in
  plain text), so the offline engine needs no passphrase: a secure value outside our
  namespace (`aws:secretKey` ...) reaches the mocks as a stand-in the program never reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError

REPO = Path(__file__).resolve().parent.parent


def project_file(root: Path = REPO) -> dict[str, Any]:
    return yaml.safe_load((root / "Pulumi.yaml").read_text())


def stack_file_path(stack: str, root: Path = REPO) -> Path:
    return root / project_file(root).get("stackConfigDir", ".") / f"Pulumi.{stack}.yaml"


def _full(project: Mapping[str, Any], name: str) -> str:
    return name if ":" in name else f"{project['name']}:{name}"


def declared(root: Path = REPO) -> dict[str, dict[str, Any]]:
    """Pulumi.yaml's `config:` block by full key (`scaleladder:phase` -> {type, default ...})."""
    project = project_file(root)
    return {_full(project, name): spec for name, spec in (project.get("config") or {}).items()
            if isinstance(spec, dict)}


def project_defaults(root: Path = REPO) -> dict[str, Any]:
    """Defaults Pulumi.yaml declares, by full key."""
    return {k: spec["default"] for k, spec in declared(root).items() if "default" in spec}


# ---------------------------------------------------------------------------
# The CLI's view of a stack file value, and its checks

_INTEGER = re.compile(r"^[+-]?\d+$")  # what strconv.Atoi accepts (decimal, optional sign)


OFFLINE_SECRET = "[secret: not decrypted offline]"


def _go_text(value: Any) -> str:
    """A YAML scalar as the CLI stores it (config.Value text): bools lowercase, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_secure(value: Any) -> bool:
    """Whether a stack file value holds a `secure:` leaf anywhere (the whole key is then secret)."""
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_is_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_secure(v) for v in value)
    return False


def _without_secure(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return OFFLINE_SECRET
        return {k: _without_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secure(v) for v in value]
    return value


def _valid(type_name: str, value: Any, items: Mapping[str, Any] | None) -> bool:
    """`ValidateConfigValue` (pulumi/pulumi sdk/go/common/workspace/project.go)."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        return isinstance(value, str) and bool(_INTEGER.match(value))
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(_valid(items.get("type", ""), v, items.get("items")) for v in value)


@dataclass(frozen=True)
class CliConfig:
    """What the CLI hands the program: config text by full key, and which keys are secret."""

    values: dict[str, str]
    secret_keys: tuple[str, ...]


def cli_config(stack: str, values: Mapping[str, Any], root: Path = REPO) -> CliConfig:
    """The stack file's `config:` as the CLI hands it to the program: every value text, objects
    as JSON; declared defaults filled in, declared types and required keys checked.

    Raises ConfigError with the CLI's own wording for what the CLI itself refuses.
    """
    wire: dict[str, str] = {}
    is_object: dict[str, bool] = {}
    secret = tuple(sorted(k for k, v in values.items() if _is_secure(v)))
    for key, value in values.items():
        plain = _without_secure(value)
        if isinstance(plain, (dict, list)):
            wire[key], is_object[key] = json.dumps(plain, separators=(",", ":")), True
        elif plain is None:
            continue  # an empty value in YAML: the key is absent
        else:
            wire[key], is_object[key] = _go_text(plain), False
    problems, missing = [], []
    for key, spec in sorted(declared(root).items()):
        if key not in wire:
            if "default" in spec:
                default = spec["default"]
                wire[key] = json.dumps(default) if isinstance(default, (dict, list)) else _go_text(default)
            elif key.startswith(project_file(root)["name"] + ":"):
                missing.append(key)
            continue
        if "type" in spec:
            content = json.loads(wire[key]) if is_object.get(key) else wire[key]
            if not _valid(spec["type"], content, spec.get("items")):
                problems.append(f"{key}: Stack '{stack}' with configuration key '{key.split(':', 1)[1]}' must be "
                                f"of type '{spec['type']}' (Pulumi.yaml declares it; got {values[key]!r})")
    problems += [f"{key}: Stack '{stack}' is missing configuration value '{key.split(':', 1)[1]}' "
                 "(Pulumi.yaml declares it without a default)" for key in missing]
    if problems:
        raise ConfigError(problems)
    return CliConfig(wire, secret)


def refuse_secret_keys(secret_keys: Iterable[str], namespace: str) -> None:
    """scaleladder reads no secret from stack config: every value it reads ends up in user data,
    a manifest or a tag in plain text. Secrets belong in Secrets Manager (the program creates
    the database and Redis ones; registry credentials are referenced by ARN)."""
    ours = sorted(k for k in secret_keys if k.startswith(namespace + ":"))
    if ours:
        raise ConfigError([
            f"{k}: set with --secret, but scaleladder takes no secret in stack config (it would reach user data or "
            "manifests in plain text); keep secrets in Secrets Manager and reference them by ARN "
            f"(e.g. {namespace}:app.registryCredentialsSecretArn); plain values here are not secret"
            for k in ours])


# ---------------------------------------------------------------------------
# The program's reading of what the CLI handed over (both engines)


def program_values(wire: Mapping[str, str], namespace: str, root: Path = REPO) -> dict[str, Any]:
    """`namespace:*` config (namespace removed) as Python values, the way the program reads it.

    Declared scalars are converted by their declared type (the CLI already checked them);
    other values are JSON objects/arrays when they parse as such, else their text.
    """
    types = {k: spec.get("type") for k, spec in declared(root).items()}
    out: dict[str, Any] = {}
    for full, text in wire.items():
        if not full.startswith(namespace + ":"):
            continue
        name = full.split(":", 1)[1]
        kind = types.get(full)
        if kind == "integer" and _INTEGER.match(text.strip()):
            out[name] = int(text)
        elif kind == "boolean" and text in ("true", "false"):
            out[name] = text == "true"
        elif kind == "string":
            out[name] = text
        else:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            out[name] = parsed if isinstance(parsed, (dict, list)) else text
    return out
