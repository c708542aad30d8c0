"""Collects the Store contract suite (``store_contract.py``) once per registered store factory."""

from __future__ import annotations

from store_contract import *  # noqa: F403 - the suite's test functions are collected here
