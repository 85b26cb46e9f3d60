"""The shape of a runbook file (``runbooks/<Name>.yml``); every key described, unknown keys rejected.

Why two levels: the runbook is validated first with its steps as plain mappings, then each step
with the model of its ``kind``. That gives one clear message for a bad kind
(``diagnosis[2].kind: 'shell' is not one of: ...``) instead of a union error per candidate.
Texts are bilingual (French for the on-call staff, English for everyone else).

Diagnosis and mitigation: ``diagnosis`` steps only look; ``mitigation`` steps fix, then verify. A
step *fixes* (is a mitigation step proper) when it changes something: an ``ssh`` or ``local`` step
with ``changes: true``, a ``playbook`` step without ``check``, or a ``tnoctl`` step whose verb
changes something (the action registry says which; the step's ``changes`` must agree). Every
runbook's mitigation holds at least one such step (``tnoctl runbook validate`` refuses one that
only looks); probes and read-only verbs after it verify the fix.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

NAME_RE = re.compile(r"^[A-Z][A-Za-z0-9]{2,63}$")
STEP_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
WHEN_RE = re.compile(r"^([a-z][a-z0-9_]{0,39})\.(ok|failed)$")
PARAM_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
LANGS = ("fr", "en")
KINDS = ("probe", "ssh", "local", "playbook", "tnoctl", "confirm")
COMPONENTS = ("mail", "office")


def _match(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"{value[:60]!r} is not {what}")
        return value

    return AfterValidator(check)


StepId = Annotated[str, _match(STEP_ID_RE, "a step id ([a-z0-9_], starting with a letter, at most 40)")]
When = Annotated[str, _match(WHEN_RE, "a condition like 'services.failed' or 'probe_mail.ok'")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A text in both languages; Markdown allowed."""

    fr: str = Field(min_length=1, description="French text (what on-call staff read first).")
    en: str = Field(min_length=1, description="English text.")

    def get(self, lang: str) -> str:
        """The text in ``lang`` (``fr`` or ``en``)."""
        return self.fr if lang == "fr" else self.en


class Param(_Strict):
    """An extra parameter of the runbook, given as ``--param NAME=VALUE``."""

    description: Text
    required: bool = Field(True, description="Refuse to run without it.")


class StepBase(_Strict):
    """Keys every step has."""

    kind: str = Field(description="probe | ssh | local | playbook | tnoctl | confirm.")
    id: StepId = Field(description="Unique id in the runbook; conditions (`when`) and the audit log use it.")
    title: Text = Field(description="What the step does, shown before it runs.")
    when: When | None = Field(None, description="Run only if an earlier step is `<id>.ok` or `<id>.failed`.")
    component: Literal["mail", "office"] | None = Field(
        None, description="Only when the run covers this component; ssh steps run on its host."
    )


class _Checked(StepBase):
    expect: Literal["ok", "any"] = Field(
        "ok", description="ok: a failure stops the run (exit 1); any: record it and go on."
    )

    attempts: int = Field(1, ge=1, le=10, description="Tries before the step fails (read-only steps).")
    interval: float = Field(3.0, ge=0, le=60, description="Seconds between attempts.")


class ProbeStep(_Checked):
    """Run tnoctl probes (see ``tnoctl status``) for the tenant; ok when every result is ok."""

    kind: Literal["probe"]
    checks: list[str] = Field(min_length=1, description="Probe names: smtp, imap, https...")


class SshStep(_Checked):
    """Run one argv over SSH on the tenant's host of ``component`` (or on ``host``); ok when it exits 0."""

    kind: Literal["ssh"]
    argv: list[str] = Field(min_length=1, description="Command and arguments; {tenant}... expanded.")
    host: str | None = Field(None, description="`backup` (the platform's backup host) or a {placeholder}.")
    changes: bool = Field(False, description="True when the command changes something.")


class LocalStep(_Checked):
    """Run one argv on the controller (where tnoctl and its exporter run); ok when it exits 0.

    For what lives next to tnoctl rather than on an inventory host (the exporter's service).
    """

    kind: Literal["local"]
    argv: list[str] = Field(min_length=1, description="Command and arguments; {tenant}... expanded.")
    changes: bool = Field(False, description="True when the command changes something.")


class PlaybookStep(_Checked):
    """Run a role action (``tno_action``) of site.yml, limited to the tenant's hosts."""

    kind: Literal["playbook"]
    action: str = Field("deploy", description="Role action: a tasks/<action>.yml file of the roles.")
    tags: list[str] = Field(default_factory=list, description="Ansible tags to restrict the run to.")
    check: bool = Field(False, description="Run in check mode (read-only: shows what would change).")


class TnoctlStep(_Checked):
    """Run another tnoctl verb (in-process, same inventory and state dir); ok when it exits 0."""

    kind: Literal["tnoctl"]
    argv: list[str] = Field(min_length=1, description="Verb and arguments: [deploy, --tenant, '{tenant}'].")
    changes: bool = Field(True, description="False for read-only verbs.")


class ConfirmStep(StepBase):
    """Ask the operator; a yes approves the changing steps that follow, up to the next confirm."""

    kind: Literal["confirm"]


STEP_MODELS: dict[str, type[StepBase]] = {
    "probe": ProbeStep,
    "ssh": SshStep,
    "local": LocalStep,
    "playbook": PlaybookStep,
    "tnoctl": TnoctlStep,
    "confirm": ConfirmStep,
}
Step = ProbeStep | SshStep | LocalStep | PlaybookStep | TnoctlStep | ConfirmStep


def changes(step: Step) -> bool:
    """Whether the step changes something (then it is confirmed, and only described under --dry-run)."""
    if isinstance(step, PlaybookStep):
        return not step.check
    return bool(getattr(step, "changes", False))


def fixes(step: Step) -> bool:
    """Whether the step is a fix: it changes something (see the module docstring); a mitigation needs one."""
    return changes(step)


def expect(step: Step) -> str:
    """`ok`: a failure stops the run (exit 1); `any`: a diagnostic finding, the run goes on."""
    return str(getattr(step, "expect", "ok"))


class RunbookDoc(_Strict):
    """A runbook file; steps are validated separately, by kind (see module docstring)."""

    name: Annotated[str, _match(NAME_RE, "a CamelCase name (the alert name)")] = Field(
        description="Equals the file name without .yml; for alert runbooks, the alert name."
    )
    title: Text
    meaning: Text = Field(description="What the alert or request means.")
    impact: Text = Field(description="What users suffer while it lasts.")
    tenant: bool = Field(True, description="The runbook runs for one tenant (`--tenant` required).")
    params: dict[Annotated[str, _match(PARAM_RE, "a parameter name")], Param] = Field(
        default_factory=dict, description="Extra parameters (`--param NAME=VALUE`)."
    )
    diagnosis: list[dict[str, Any]] = Field(description="Read-only steps, run automatically.")
    mitigation: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Steps that fix (at least one changes something), then verify; changing steps are confirmed.",
    )
    escalation: Text | None = Field(None, description="Who to call when the runbook does not solve it.")
