"""Runs guarding.feature against the real regtest network (steps in conftest.py and guarding_steps.py)."""

from pytest_bdd import scenarios

from features.guarding_steps import *  # noqa: F403  (step definitions must be visible to this module)

scenarios("guarding.feature")
