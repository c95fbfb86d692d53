"""Pydantic's ValidationError in words a person can act on: one line per problem, named by its field.

Used by the API's error responses and by the scenario loader; no Flask here.
"""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(exc: ValidationError, top_level: str = "body") -> list[str]:
    """`field.path: what is wrong` for each problem; `top_level` names a problem with the whole input."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(item) for item in error["loc"]) or top_level
        problems.append(f"{field}: {error['msg'].removeprefix('Value error, ')}")
    return problems
