"""The Prometheus side of tnoctl: custom collector over the state store, background probe
worker, small WSGI server with exporter-toolkit style web config, and the textfile writer."""
