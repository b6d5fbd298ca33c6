"""Results and audit pages (issue 13): to be built."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
