"""render.yaml, the Render Blueprint: valid for Render, and runnable by our image.

The schema beside this file, render.yaml.schema.json, is Render's official Blueprint JSON Schema
($id https://render.com/schema/render.yaml.json, draft 2020-12). There is no network where the tests run, so
it is vendored: taken from the copy the public repository Gleydsong/prospectly keeps at
scripts/vendor/render.yaml.schema.json (commit a5a9b56a55f791a5cc7b4bdec16d8ebef6252253), parsed and written
back with 2-space indentation (the same data). To refresh it, download the $id and re-indent it.

Beyond the schema, the tests check what the schema cannot know: every command render.yaml and the Dockerfile's
CMD start exists in the image (our `heaters` console script, with a subcommand our Typer app has, or a binary
the Dockerfile installs with apt), and the shape the deployment relies on (docs/deployment.md): one web service
health-checked on /healthz that migrates before each deploy, PostgreSQL 16, a Key Value that never evicts,
one scheduler, workers that leave the schedule to it, a shared environment group, and only variable names
that something reads.
"""

from __future__ import annotations

import copy
import json
import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, ValidationError
from pydantic import AliasChoices
from typer.testing import CliRunner

from heaters.cli import app
from heaters.errors import ConfigError
from heaters.queues import parse_queues
from heaters.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINT = ROOT / "render.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).with_name("render.yaml.schema.json")
SCHEMA_ID = "https://render.com/schema/render.yaml.json"

# Variables render.yaml may set that heaters.settings.Settings does not read, and who reads them.
READ_BY_OTHERS = {
    "REFLEX_REDIS_URL": "Reflex: shares state between web processes through Redis",
}

Doc = dict[str, Any]


# --- Reading the files ----------------------------------------------------------------------------------------


def _blueprint() -> Doc:
    doc = yaml.safe_load(BLUEPRINT.read_text())
    assert isinstance(doc, dict), "render.yaml is not a mapping"
    return doc


@pytest.fixture(scope="module")
def blueprint() -> Doc:
    return _blueprint()


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass
class Stage:
    name: str | None
    parent: str  # the image or earlier stage it starts FROM
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)


@dataclass
class Image:
    apt_packages: set[str]  # installed by apt in the final stage or the stages it is built FROM
    cmd: list[str]  # the final stage's CMD, JSON-array form


def _logical_lines(text: str) -> list[str]:
    """Dockerfile instructions with their backslash continuations joined; comment lines dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines inside a continued instruction too
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def _stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]  # --platform=...
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(name=name, parent=words[0]))
        elif stages:
            stages[-1].instructions.append((keyword.upper(), rest.strip()))
    return stages


def _apt_installs(run: str) -> list[str]:
    """The packages of every `apt-get install` (or `apt install`) in one RUN's shell command."""
    words = shlex.split(run, comments=True)
    packages: list[str] = []
    for i, word in enumerate(words):
        if word != "install" or i == 0 or words[i - 1] not in ("apt-get", "apt"):
            continue
        for arg in words[i + 1 :]:
            if arg in ("&&", "||", "|", ";") or arg.endswith(";"):
                break
            if not arg.startswith("-"):
                packages.append(arg.split("=", 1)[0])  # pkg=version
    return packages


def _image(text: str) -> Image:
    stages = _stages(text)
    assert stages, "the Dockerfile has no FROM"
    chain = [stages[-1]]
    while True:
        index = stages.index(chain[-1])
        earlier = [s for s in stages[:index] if s.name == chain[-1].parent]
        if not earlier:
            break
        chain.append(earlier[-1])
    packages = {
        p for stage in chain for keyword, args in stage.instructions if keyword == "RUN" for p in _apt_installs(args)
    }
    cmds = [args for keyword, args in stages[-1].instructions if keyword == "CMD"]
    assert cmds, "the Dockerfile's final stage has no CMD"
    cmd = json.loads(cmds[-1])
    assert isinstance(cmd, list) and cmd and all(isinstance(w, str) for w in cmd), (
        f"CMD is not a JSON array: {cmds[-1]}"
    )
    return Image(apt_packages=packages, cmd=cmd)


@pytest.fixture(scope="module")
def image() -> Image:
    return _image(DOCKERFILE.read_text())


def _console_scripts() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project.get("scripts", {}))


# --- Schema errors, in words ------------------------------------------------------------------------------------


def _describe(error: ValidationError, indent: str = "") -> list[str]:
    """One line per error: where (JSON path) and what. For anyOf/oneOf, the alternatives that came closest
    (fewest errors: for a web service, serverService) follow, indented."""
    message = error.message
    if error.validator in ("anyOf", "oneOf"):  # its message repeats the whole instance
        message = f"matches none of the {error.validator} alternatives"
    lines = [f"{indent}{error.json_path}: {message}"]
    if error.context:
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        fewest = min(len(subs) for subs in branches.values())
        for index, subs in sorted(branches.items()):
            if len(subs) != fewest:
                continue
            choice = error.validator_value[index] if isinstance(error.validator_value, list) else {}
            lines.append(f"{indent}  as {choice.get('$ref', f'alternative {index}')}:")
            for sub in sorted(subs, key=lambda e: [str(p) for p in e.absolute_path]):
                lines.extend(_describe(sub, indent + "    "))
    return lines


def _schema_errors(validator: Draft202012Validator, doc: Doc) -> list[str]:
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [line for error in errors for line in _describe(error)]


# --- Commands ---------------------------------------------------------------------------------------------------


def _without_tini(words: Sequence[str]) -> list[str]:
    return list(words[2:]) if list(words[:2]) == ["tini", "--"] else list(words)


def _command_problem(words: Sequence[str], binaries: set[str]) -> str | None:
    """None when the image can run WORDS: `[tini --] heaters <a subcommand our CLI has> ...` or
    `[tini --] <a binary installed by apt> ...`; otherwise why not."""
    words = _without_tini(words)
    if not words:
        return "runs nothing"
    program, args = words[0], words[1:]
    if program in _console_scripts():
        result = CliRunner().invoke(app, [*args, "--help"])
        if result.exit_code != 0:
            return f"`{program} {' '.join(args)} --help` exits {result.exit_code}: {result.output.strip()}"
        return None
    if program not in binaries:
        return f"{program!r} is neither a console script of pyproject.toml nor installed by apt in the Dockerfile"
    return None


def _services(doc: Doc) -> list[Doc]:
    return [s for s in doc.get("services") or [] if isinstance(s, dict)]


def _runs(service: Doc, image: Image) -> list[str]:
    """What the service starts, without the `tini --` prefix: its dockerCommand, else the image's CMD."""
    if "dockerCommand" in service:
        return _without_tini(shlex.split(service["dockerCommand"]))
    return _without_tini(image.cmd) if service.get("runtime") == "docker" else []


# --- Environment ------------------------------------------------------------------------------------------------


def _groups(doc: Doc) -> dict[str, Doc]:
    return {g["name"]: g for g in doc.get("envVarGroups") or [] if isinstance(g, dict) and "name" in g}


def _env(service: Doc, doc: Doc) -> dict[str, Doc]:
    """The service's variables by name: its groups' first, then its own (which win)."""
    env: dict[str, Doc] = {}
    entries = service.get("envVars") or []
    groups = _groups(doc)
    for entry in entries:
        group = groups.get(entry.get("fromGroup", ""), {})
        for var in group.get("envVars") or []:
            env[var["key"]] = var
    for entry in entries:
        if "key" in entry:
            env[entry["key"]] = entry
    return env


def _settings_env_names() -> set[str]:
    names: set[str] = set()
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
    return names


def _unknown_env_keys(doc: Doc, known: set[str]) -> list[str]:
    where = [(f"service {s.get('name')}", s) for s in _services(doc)]
    where += [(f"envVarGroup {name}", g) for name, g in _groups(doc).items()]
    return [
        f"{place}: {var['key']}"
        for place, holder in where
        for var in holder.get("envVars") or []
        if "key" in var and var["key"] not in known
    ]


# --- (a, b) Render's schema -----------------------------------------------------------------------------------


def test_the_vendored_schema_is_renders() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_render_yaml_matches_renders_schema(blueprint: Doc, validator: Draft202012Validator) -> None:
    errors = _schema_errors(validator, blueprint)
    assert not errors, "render.yaml breaks Render's Blueprint schema:\n" + "\n".join(errors)


def _a_server_service(doc: Doc) -> Doc:
    servers = [s for s in _services(doc) if s.get("type") in ("web", "worker", "pserv")]
    assert servers, "render.yaml has no web, worker or private service"
    return servers[0]


def test_the_schema_refuses_an_unknown_service_key(blueprint: Doc, validator: Draft202012Validator) -> None:
    doc = copy.deepcopy(blueprint)
    _a_server_service(doc)["startComand"] = "heaters web"
    errors = _schema_errors(validator, doc)
    assert any("'startComand' was unexpected" in line for line in errors), errors


def test_the_schema_refuses_an_unknown_plan(blueprint: Doc, validator: Draft202012Validator) -> None:
    doc = copy.deepcopy(blueprint)
    _a_server_service(doc)["plan"] = "enormous"
    errors = _schema_errors(validator, doc)
    assert any("'enormous' is not one of" in line for line in errors), errors


# --- (c) Every command exists in the image ----------------------------------------------------------------------


def test_the_dockerfile_is_read_as_docker_does(image: Image) -> None:
    assert "tini" in image.apt_packages and "ffmpeg" in image.apt_packages, image.apt_packages
    assert "npm" not in image.apt_packages, "npm is installed in the bun stage only, not the final image"
    assert "heaters" in _console_scripts()


def test_every_command_names_something_the_image_has(blueprint: Doc, image: Image) -> None:
    commands = [("Dockerfile CMD", image.cmd)]
    for service in _services(blueprint):
        for key in ("dockerCommand", "preDeployCommand"):
            if key in service:
                commands.append((f"{service.get('name')}.{key}", shlex.split(service[key])))
    problems = [
        f"{where} `{shlex.join(words)}`: {problem}"
        for where, words in commands
        if (problem := _command_problem(words, image.apt_packages))
    ]
    assert not problems, "\n".join(problems)


def test_the_command_check_refuses_what_the_image_lacks(image: Image) -> None:
    assert _command_problem(["tini", "--", "heaters", "worker"], image.apt_packages) is None
    assert _command_problem(["heaters", "db", "upgrade"], image.apt_packages) is None
    assert _command_problem(["tini", "--", "heaters", "wokrer"], image.apt_packages) is not None
    assert _command_problem(["heaters", "db", "upgrad"], image.apt_packages) is not None
    assert _command_problem(["gunicorn", "app:app"], image.apt_packages) is not None
    assert _command_problem(["tini", "--"], image.apt_packages) is not None


# --- (d) The shape the deployment relies on ---------------------------------------------------------------------


def test_one_web_service_health_checked_and_migrating_first(blueprint: Doc) -> None:
    webs = [s for s in _services(blueprint) if s.get("type") == "web"]
    assert len(webs) == 1, [s.get("name") for s in webs]
    web = webs[0]
    assert web.get("healthCheckPath") == "/healthz"
    assert shlex.split(web.get("preDeployCommand", "")) == ["heaters", "db", "upgrade"]


def test_postgres_16(blueprint: Doc) -> None:
    versions = [db.get("postgresMajorVersion") for db in blueprint.get("databases") or []]
    assert "16" in versions, versions


def test_key_value_never_evicts(blueprint: Doc) -> None:
    kv = [s for s in _services(blueprint) if s.get("type") in ("keyvalue", "redis")]
    assert any(s.get("maxmemoryPolicy") == "noeviction" for s in kv), kv


def test_exactly_one_scheduler_on_one_instance(blueprint: Doc, image: Image) -> None:
    schedulers = [s for s in _services(blueprint) if _runs(s, image)[:2] == ["heaters", "scheduler"]]
    assert len(schedulers) == 1, f"services running `heaters scheduler`: {[s.get('name') for s in schedulers]}"
    scheduler = schedulers[0]
    assert scheduler.get("numInstances", 1) == 1
    assert "scaling" not in scheduler, "an autoscaled scheduler runs several schedules"


def test_workers_leave_the_schedule_to_the_scheduler(blueprint: Doc, image: Image) -> None:
    workers = [
        s for s in _services(blueprint) if s.get("type") == "worker" and _runs(s, image)[:2] == ["heaters", "worker"]
    ]
    assert workers, "no worker service runs `heaters worker`"
    problems: list[str] = []
    for worker in workers:
        name, env = worker.get("name"), _env(worker, blueprint)
        if env.get("SCHEDULER_ENABLED", {}).get("value") != "false":
            problems.append(f'{name}: SCHEDULER_ENABLED must be the value "false", not {env.get("SCHEDULER_ENABLED")}')
        queues = env.get("WORKER_QUEUES", {}).get("value")
        if not isinstance(queues, str):
            problems.append(f"{name}: WORKER_QUEUES must be set to a value, not {env.get('WORKER_QUEUES')}")
            continue
        try:
            if not parse_queues(queues):
                problems.append(f"{name}: WORKER_QUEUES names no queue")
        except ConfigError as error:
            problems.append(f"{name}: {error}")
    assert not problems, "\n".join(problems)


def test_web_and_workers_share_an_env_group(blueprint: Doc) -> None:
    groups = _groups(blueprint)
    assert groups, "render.yaml has no envVarGroups"
    servers = [s for s in _services(blueprint) if s.get("type") in ("web", "worker")]
    assert servers
    used = {s.get("name"): {e["fromGroup"] for e in s.get("envVars") or [] if "fromGroup" in e} for s in servers}
    undeclared = {name: refs - set(groups) for name, refs in used.items() if refs - set(groups)}
    assert not undeclared, f"fromGroup names no envVarGroups entry: {undeclared}"
    shared = set(groups).intersection(*used.values())
    assert shared, f"no envVarGroup is referenced by every web and worker service: {used}"


def test_every_variable_is_one_something_reads(blueprint: Doc) -> None:
    settings = _settings_env_names()
    assert {"PORT", "DATABASE_URL", "WORKER_QUEUES", "SCHEDULER_ENABLED"} <= settings
    assert not settings & set(READ_BY_OTHERS), "READ_BY_OTHERS lists a variable Settings reads itself"
    known = settings | set(READ_BY_OTHERS)
    unknown = _unknown_env_keys(blueprint, known)
    assert not unknown, "render.yaml sets variables nothing reads:\n" + "\n".join(unknown)
    # and the check can fail
    doc = copy.deepcopy(blueprint)
    _a_server_service(doc).setdefault("envVars", []).append({"key": "SECRET_KYE", "value": "x"})
    assert any(line.endswith(": SECRET_KYE") for line in _unknown_env_keys(doc, known))
