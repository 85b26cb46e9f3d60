"""Probes: SMTP, IMAP, HTTPS, office, TLS, mail queue, round trip, backup freshness.

One module per kind; each separates pure parsing (tested on recorded outputs) from I/O.
Every probe returns a :class:`tnoctl.probes.base.ProbeResult`; :mod:`tnoctl.probes.runner`
runs them concurrently with bounded parallelism and per-probe timeouts.
"""
