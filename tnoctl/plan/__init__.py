"""Pure planners: from a validated inventory and a selection to the ordered playbook calls. No I/O."""
