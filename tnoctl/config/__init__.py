"""Inventory and tenant configuration: schema, loading, validation, the Ansible view.

`load_inventory(path)` is the entry point every verb uses; it raises InvalidInput with
every `file:field: message` at once.
"""

from tnoctl.config.load import Inventory, load_inventory, validate_inventory

__all__ = ["Inventory", "load_inventory", "validate_inventory"]
