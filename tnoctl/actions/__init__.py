"""Orchestration of plan + guard + run + record, one module per verb."""
