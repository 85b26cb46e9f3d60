"""`tnoctl runbook`: list, show, run, render and validate the on-call runbooks (runbooks/*.yml)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tnoctl.cli.confirm import render, require_yes
from tnoctl.cli.context import AppContext
from tnoctl.errors import ExitCode
from tnoctl.runbook.schema import COMPONENTS, LANGS

LANG_HELP = "Language of the texts (default: fr when $LANG starts with fr, else en)."


def default_lang(environ: dict[str, str] | os._Environ[str]) -> str:
    """``fr`` when the locale ($LC_ALL, $LC_MESSAGES, $LANG, first set) is French, else ``en``."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(var)
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def _lang(lang: str | None) -> str:
    return lang or default_lang(os.environ)


@click.group("runbook")
def runbook() -> None:
    """On-call runbooks: explain an alert, diagnose, and fix with confirmation (audited).

    \b
    Example:
      tnoctl runbook run TnoTenantEndpointDown --tenant givors --dry-run
    """


@runbook.command("list")
@click.option("--lang", type=click.Choice(LANGS), default=None, help=LANG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_(app: AppContext, lang: str | None, as_json: bool) -> None:
    """List the runbooks with their title and step counts (fixes: mitigation steps that change something).

    \b
    Example:
      tnoctl runbook list --lang fr
    """
    from tnoctl.runbook.load import load_all
    from tnoctl.runbook.schema import fixes

    lang = _lang(lang)
    books = load_all()
    rows = [{"name": n, "title": b.doc.title.get(lang), "tenant": b.doc.tenant,
             "diagnosis": len(b.diagnosis), "mitigation": len(b.mitigation),
             "fixes": sum(fixes(step) for step in b.mitigation)}
            for n, b in sorted(books.items())]
    if as_json:
        app.print_json(rows)
        return
    app.print_table(["name", "title", "tenant", "diagnosis", "mitigation", "fixes"], [list(r.values()) for r in rows])


@runbook.command("show")
@click.argument("name")
@click.option("--lang", type=click.Choice(LANGS), default=None, help=LANG_HELP)
@click.option("--json", "as_json", is_flag=True, help="The runbook as JSON (both languages).")
@click.pass_obj
def show(app: AppContext, name: str, lang: str | None, as_json: bool) -> None:
    """Show a runbook: meaning, impact, diagnosis and mitigation steps.

    \b
    Example:
      tnoctl runbook show TnoConfigDrift --lang fr
    """
    from tnoctl.runbook.load import load_one
    from tnoctl.runbook.render import render

    book = load_one(name)
    if as_json:
        doc = book.doc.model_dump(exclude={"diagnosis", "mitigation"})
        steps = {s: [step.model_dump() for step in items] for s, items in book.sections()}
        app.print_json({**doc, **steps})
        return
    app.stdout.write(render(book, (_lang(lang),)))


@runbook.command("validate")
@click.option("--dir", "directory", default=None,
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Directory of runbook files (default: runbooks/ of the checkout).")
@click.pass_obj
def validate(app: AppContext, directory: Path | None) -> None:
    """Check every runbook file (schema, probes, verbs, actions, tags); all errors at once (exit 2).

    \b
    Example:
      tnoctl runbook validate --dir runbooks
    """
    from tnoctl.runbook.load import RUNBOOKS_DIR, load_all

    books = load_all(directory or RUNBOOKS_DIR)
    app.info(f"{len(books)} runbook(s) valid")


@runbook.command("render")
@click.option("--check", is_flag=True, help="Do not write; exit 1 when docs/runbooks is out of date.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output directory (default: docs/runbooks of the checkout).")
@click.pass_obj
def render_cmd(app: AppContext, check: bool, out: Path | None) -> int:
    """Generate docs/runbooks/<Name>.md (French and English) from runbooks/*.yml.

    \b
    Example:
      tnoctl runbook render --check
    """
    from tnoctl.runbook import render
    from tnoctl.runbook.load import load_all

    books = load_all()
    directory = out or render.DOCS_DIR
    if check:
        stale = [n for n, text in render.render_all(books).items()
                 if not (directory / n).is_file() or (directory / n).read_text() != text]
        for name in stale:
            app.info(f"out of date: {directory / name}")
        return int(ExitCode.FAILED) if stale else int(ExitCode.OK)
    changed = render.write_all(books, directory)
    app.info(f"{len(changed)} page(s) written to {directory}" if changed else "docs are up to date")
    return int(ExitCode.OK)


@runbook.command("run")
@click.argument("name")
@click.option("--tenant", "-t", default=None, help="The alert's tenant label.")
@click.option("--component", "-c", type=click.Choice(COMPONENTS), default=None,
              help="The alert's component label (default: every component of the tenant).")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Runbook parameter.")
@click.option("--dry-run", is_flag=True, help="Run the read-only diagnosis; only describe what would change.")
@click.option("--yes", "-y", is_flag=True, help="Answer yes to every confirmation.")
@click.option("--lang", type=click.Choice(LANGS), default=None, help=LANG_HELP)
@click.pass_obj
def run(app: AppContext, name: str, tenant: str | None, component: str | None, params: tuple[str, ...],
        dry_run: bool, yes: bool, lang: str | None) -> int:
    """Run a runbook: diagnosis automatically, each change after confirmation, then verify.

    Stops at the first failed step; every step is recorded in the audit log. Exit 0 when the final
    checks pass, 1 when the problem remains (or, with --dry-run, when the diagnosis found it),
    4 when a confirmation was refused, 2 on bad arguments or, without a terminal, without --yes
    or --dry-run (nobody could confirm a change).

    \b
    Example:
      tnoctl runbook run TnoTenantEndpointDown --tenant givors --yes
    """
    from tnoctl.runbook.session import RunbookRequest, run_session

    require_yes("runbook run", yes or dry_run)
    request = RunbookRequest(name, tenant, component, params, dry_run, yes, _lang(lang), _asker(app, yes))
    return render(app, run_session(app.env, request))


def _asker(app: AppContext, yes: bool):
    """The question function: --yes, else a prompt on stderr (require_yes made sure a terminal is there)."""
    def ask(question: str) -> bool:
        if yes:
            app.stdout.write(f"    ? {question} -> yes (--yes)\n")
            return True
        return click.confirm(f"    ? {question}", default=False, err=True)

    return ask
