"""Load and validate runbook files: every error of every file at once, as ``file:field: message``.

Three passes per file, so one report says everything wrong: the document shape (pydantic, unknown
keys rejected), each step by its kind, then references (probes, verbs, actions, tags, step ids in
conditions, placeholders). Same message style as inventories (tnoctl.config.messages).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tnoctl import paths
from tnoctl.config import messages, yamlio
from tnoctl.errors import InvalidInput
from tnoctl.runbook.refs import BUILTIN_PLACEHOLDERS, Catalog, placeholders, project_catalog
from tnoctl.runbook.schema import (
    KINDS,
    STEP_MODELS,
    WHEN_RE,
    LocalStep,
    PlaybookStep,
    ProbeStep,
    RunbookDoc,
    SshStep,
    Step,
    TnoctlStep,
    changes,
    fixes,
)

RUNBOOKS_DIR = paths.PROJECT_ROOT / "runbooks"
SECTIONS = ("diagnosis", "mitigation")


@dataclass(frozen=True)
class Runbook:
    """A valid runbook: the document and its typed steps per section."""

    doc: RunbookDoc
    diagnosis: tuple[Step, ...]
    mitigation: tuple[Step, ...]
    path: Path

    @property
    def name(self) -> str:
        return self.doc.name

    def sections(self) -> list[tuple[str, tuple[Step, ...]]]:
        """(section name, steps) in run order."""
        return [("diagnosis", self.diagnosis), ("mitigation", self.mitigation)]


def _steps(section: str, raw: list[dict], errors: list[str]) -> list[Step]:
    steps: list[Step] = []
    for index, data in enumerate(raw):
        where = f"{section}[{index}]"
        if not isinstance(data, dict):
            errors.append(f"{where}: expected a mapping, got {messages.kind(data)}")
            continue
        kind = data.get("kind")
        if kind not in STEP_MODELS:
            shown = "required key is missing" if kind is None else f"{messages.short(kind)} is not one of"
            errors.append(f"{where}.kind: {shown}{': ' + ', '.join(KINDS) if kind is not None else ''}")
            continue
        model = STEP_MODELS[kind]
        try:
            steps.append(model.model_validate(data))  # type: ignore[arg-type]
        except ValidationError as exc:
            errors.extend(f"{where}.{line}" for line in messages.humanize(model, exc))
    return steps


def _references(doc: RunbookDoc, sections: dict[str, list[Step]], catalog: Catalog) -> list[str]:
    errors: list[str] = []
    seen: dict[str, str] = {}
    allowed = set(BUILTIN_PLACEHOLDERS) | set(doc.params)
    for section in SECTIONS:
        for index, step in enumerate(sections[section]):
            where = f"{section}[{index}]"
            if step.id in seen:
                errors.append(f"{where}.id: {step.id!r} is already used by {seen[step.id]}")
            if step.when:
                ref = WHEN_RE.match(step.when)
                if ref and ref[1] not in seen:
                    errors.append(f"{where}.when: no earlier step has id {ref[1]!r}")
            seen.setdefault(step.id, where)
            errors += _step_refs(where, step, catalog, allowed)
    if not any(fixes(step) for step in sections["mitigation"]):
        errors.append("mitigation: no step fixes anything: add one that changes something (ssh or local with "
                      "`changes: true`, a playbook without `check`, or a changing tnoctl verb such as deploy, "
                      "backup run, restore), then a step that verifies")
    return errors


def _known(names: set[str] | frozenset[str]) -> str:
    return ", ".join(sorted(names))


def _step_refs(where: str, step: Step, catalog: Catalog, allowed: set[str]) -> list[str]:
    errors: list[str] = []
    if isinstance(step, ProbeStep):
        errors += [f"{where}.checks[{i}]: unknown probe {name!r} (known: {_known(catalog.probes)})"
                   for i, name in enumerate(step.checks) if name not in catalog.probes]
    if isinstance(step, PlaybookStep):
        if step.action not in catalog.actions:
            known = _known(catalog.actions)
            errors.append(f"{where}.action: unknown role action {step.action!r} (known: {known})")
        errors += [f"{where}.tags[{i}]: unknown tag {tag!r} (known: {_known(catalog.tags)})"
                   for i, tag in enumerate(step.tags) if tag not in catalog.tags]
    if getattr(step, "attempts", 1) > 1 and changes(step):
        errors.append(f"{where}.attempts: only read-only steps are retried (this step changes something)")
    if isinstance(step, SshStep):
        if step.component is None and step.host is None:
            errors.append(f"{where}: an ssh step needs `component` (mail or office) or `host`")
        if step.component is not None and step.host is not None:
            errors.append(f"{where}.host: give either `component` or `host`, not both")
    if isinstance(step, SshStep | LocalStep | TnoctlStep):
        texts = [(f"argv[{i}]", a) for i, a in enumerate(step.argv)]
        if isinstance(step, SshStep) and step.host:
            texts.append(("host", step.host))
        errors += [f"{where}.{field}: {problem}" for field, text in texts
                   if (problem := _placeholder_problem(text, allowed))]
    if isinstance(step, TnoctlStep) and (problem := catalog.check_verb(step.argv)):
        errors.append(f"{where}.argv: {problem}")
    elif isinstance(step, TnoctlStep):
        read_only = catalog.verb_read_only(step.argv)
        if read_only is True and step.changes:
            errors.append(f"{where}.changes: this verb only reads: set `changes: false`")
        elif read_only is False and not step.changes:
            errors.append(f"{where}.changes: this verb changes something: drop `changes: false`")
    return errors


def _placeholder_problem(text: str, allowed: set[str]) -> str | None:
    try:
        unknown = [n for n in placeholders(text) if n not in allowed]
    except ValueError as exc:
        return str(exc)
    return f"unknown placeholder {{{unknown[0]}}} (known: {_known(allowed)})" if unknown else None


def check_file(path: Path, catalog: Catalog, rel: str | None = None) -> tuple[Runbook | None, list[str]]:
    """Validate one runbook file; (runbook or None, every `file:field: message`)."""
    rel = rel or path.name
    try:
        data = yamlio.load_mapping(path, what="runbook")
    except yamlio.YamlProblem as exc:
        return None, [f"{rel}: {exc.where}: {exc.message}"]
    errors: list[str] = []
    try:
        doc = RunbookDoc.model_validate(data)
    except ValidationError as exc:
        return None, [f"{rel}: {line}" for line in messages.humanize(RunbookDoc, exc)] + [
            f"{rel}: {line}" for section in SECTIONS if isinstance(data.get(section), list)
            for line in _step_errors(section, data[section])
        ]
    if doc.name != path.stem:
        errors.append(f"name: {doc.name!r} must equal the file name {path.stem!r}")
    sections = {section: _steps(section, getattr(doc, section), errors) for section in SECTIONS}
    if not errors:
        errors += _references(doc, sections, catalog)
    if errors:
        return None, [f"{rel}: {line}" for line in errors]
    return Runbook(doc, tuple(sections["diagnosis"]), tuple(sections["mitigation"]), path), []


def _step_errors(section: str, raw: list) -> list[str]:
    errors: list[str] = []
    _steps(section, raw, errors)
    return errors


def load_all(directory: Path = RUNBOOKS_DIR, catalog: Catalog | None = None) -> dict[str, Runbook]:
    """Every ``*.yml`` runbook of ``directory`` by name; InvalidInput listing every error of every file."""
    catalog = catalog or project_catalog()
    found: dict[str, Runbook] = {}
    errors: list[str] = []
    for path in sorted(directory.glob("*.yml")):
        runbook, errs = check_file(path, catalog, f"{directory.name}/{path.name}")
        errors += errs
        if runbook is not None:
            found[runbook.name] = runbook
    if errors:
        count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
        raise InvalidInput(f"runbooks in {directory} are invalid: {count}", details=errors)
    return found


def load_one(name: str, directory: Path = RUNBOOKS_DIR, catalog: Catalog | None = None) -> Runbook:
    """The runbook called ``name``; InvalidInput for an unknown name or an invalid file."""
    path = directory / f"{name}.yml"
    if "/" in name or not path.is_file():
        names = sorted(p.stem for p in directory.glob("*.yml"))
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(names) or 'none'})"
        raise InvalidInput(f"unknown runbook {name!r}{hint}")
    runbook, errors = check_file(path, catalog or project_catalog(), f"{directory.name}/{path.name}")
    if runbook is None:
        raise InvalidInput(f"runbook {path} is invalid: {len(errors)} error(s)", details=errors)
    return runbook
