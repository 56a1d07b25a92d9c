"""Every `BENCH_*` environment variable, in one typed object.

`settings()` reads the environment each time it is called (a test that sets a variable with
monkeypatch, or `threads.environment` around a worker pool, is seen at once); nothing is
read at import time. A bad value is one `BenchError` naming the variable and what it takes.

Plain pydantic (no pydantic-settings): the variables are few, flat and all optional.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.core.errors import BenchError

PREFIX = "BENCH_"
_FALSE = ("0", "false", "no", "off")


def _entries(v: object) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [e.strip() for e in v.split(",") if e.strip()]
    return [str(e) for e in v]  # type: ignore[attr-defined]


class Settings(BaseModel):
    """The variables (without the `BENCH_` prefix, lower case) with their defaults; the
    descriptions are what docs/architecture.md lists."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    heartbeat_s: float = Field(20.0, gt=0, description="seconds between a live runner's "
                               "heartbeats on its suite run (the lease)")
    stale_s: float = Field(90.0, gt=0, description="seconds without a heartbeat after which a "
                           "suite run's runner counts as dead and the next run takes over")
    store_patience_s: float = Field(120.0, ge=0, description="seconds a write waits for an "
                                    "unreachable tracking store (retrying with backoff) before a "
                                    "finished cell's record is kept on disk for later")
    threads: int | None = Field(None, ge=1, description="CPU threads per process (torch, OpenMP, "
                                "MKL, OpenBLAS); unset: the executor decides")
    persist_samples: bool = Field(True, description="keep generated images and features on disk "
                                  "for other processes and runs (0 turns it off)")
    cache_dir: Path = Field(Path(".bench_cache"), description="the bench cache folder (real "
                            "features, classifiers, trained baselines, decoded datasets)")
    allowed_modules: list[str] = Field(default_factory=list, description="shared-runner mode: "
                                       "module prefixes a callable model may import (comma-separated)")
    allowed_checkpoints: list[str] = Field(default_factory=list, description="shared-runner mode: "
                                           "folders a trusted checkpoint may be loaded from")
    allowed_models: list[str] = Field(default_factory=list, description="shared-runner mode: "
                                      "MLflow models (names, run ids, model ids) that may be loaded")
    ui_url: str | None = Field(None, description="MLflow UI base URL for run links in HTML boards")
    inception_weights: Path | None = Field(None, description="the FID Inception-v3 weights file")

    @field_validator("allowed_modules", "allowed_checkpoints", "allowed_models", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> list[str]:
        return _entries(v)

    @field_validator("persist_samples", mode="before")
    @classmethod
    def _flag(cls, v: object) -> object:
        if isinstance(v, str):
            return v.strip().lower() not in _FALSE
        return v

    @field_validator("threads", "ui_url", "inception_weights", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v


def variable(field: str) -> str:
    """The environment variable of a settings field: `stale_s` -> `BENCH_STALE_S`."""
    return PREFIX + field.upper()


VARIABLES = {variable(name): name for name in Settings.model_fields}


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings as the environment (`os.environ` by default) holds them now."""
    env = os.environ if environ is None else environ
    raw = {name: env[var] for var, name in VARIABLES.items() if var in env}
    raw = {k: v for k, v in raw.items() if not (isinstance(v, str) and not v.strip())}
    try:
        return Settings(**raw)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        var = variable(name) if name else "a BENCH_ variable"
        field = Settings.model_fields.get(name)
        what = f" ({field.description})" if field is not None and field.description else ""
        raise BenchError(f"{var}={raw.get(name)!r}: {err['msg']}{what}. Fix or unset it.") from None


__all__ = ["PREFIX", "VARIABLES", "Settings", "settings", "variable"]
