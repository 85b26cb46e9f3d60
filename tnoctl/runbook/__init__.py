"""On-call runbooks that run: schema, loading with all errors at once, Markdown rendering, step engine.

A runbook is ``runbooks/<Name>.yml`` (one per alert of ``exporters/rules/*.yml`` plus general
ones). Modules: ``schema`` (the YAML shape), ``refs`` (what steps may reference: probes, verbs,
role actions, tags), ``load`` (file:field errors, every file at once), ``render`` (the bilingual
``docs/runbooks/<Name>.md``), ``engine`` (runs the steps, pure: I/O is injected) and
``executors`` (the real probe/SSH/playbook/tnoctl step runners).
"""
