"""tnoctl: deploy, upgrade, back up and watch a commune-per-tenant mail + online office platform."""

__version__ = "0.1.0"
