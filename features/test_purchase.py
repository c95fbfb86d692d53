"""Runs purchase.feature against the real regtest network (steps in conftest.py)."""

from pytest_bdd import scenarios

scenarios("purchase.feature")
