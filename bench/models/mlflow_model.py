"""A generator logged as an MLflow PyTorch model, addressed by URI:
`models:/name/3`, `models:/name@champion`, `runs:/<run id>/<artifact path>`.

The model is read from the tracking store the suite uses (`BuildContext.tracking_uri`: the
CLI flag, MLFLOW_TRACKING_URI, or the suite's `tracking_uri`; scoped to the load, never set
process-wide), and the model registry is the
store's own unless MLFLOW_REGISTRY_URI says otherwise. This closes the loop with
`bench train` / the built-in cgan, which log their generators the same way.

Loading an MLflow PyTorch model unpickles it (that is how MLflow stores them), so only
load models from stores you trust. Which version an alias resolved to is recorded in the
generator's tags (`mlflow_model_version`, `mlflow_run_id`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator
from torch import nn

from bench.core.errors import BenchError
from bench.data.base import DataInfo, Dataset
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.torch_generator import TorchModelOptions, build_torch_generator

_MODELS_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+|latest)$")
_MODELS_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w-]+)$")
_MODELS_ID = re.compile(r"^models:/(?P<id>m-[0-9a-f]+)$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]+)/(?P<path>.+)$")


class MlflowModelOptions(TorchModelOptions):
    uri: str = Field(description="models:/name/version, models:/name@alias, models:/<model id> "
                     "or runs:/<run id>/<artifact path>")

    @field_validator("uri")
    @classmethod
    def _known_form(cls, v: str) -> str:
        if v.startswith("models:/"):
            if not (_MODELS_VERSION.match(v) or _MODELS_ALIAS.match(v) or _MODELS_ID.match(v)):
                raise ValueError(f"'{v}' is not models:/<name>/<version>, models:/<name>@<alias> "
                                 "or models:/<model id>")
        elif v.startswith("runs:/"):
            if not _RUNS.match(v):
                raise ValueError(f"'{v}' is not runs:/<run id>/<artifact path>")
        elif "://" not in v and not v.startswith("/"):
            raise ValueError(f"'{v}' is not an MLflow model URI; use models:/<name>/<version>, "
                             "models:/<name>@<alias> or runs:/<run id>/<artifact path>")
        return v


def _resolve_source(uri: str, tracking_uri: str | None = None) -> tuple[str | None, dict[str, str]]:
    """The run that produced the model, and tags naming the resolved version. Best effort:
    the load itself reports a wrong URI with MLflow's own message."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    tags: dict[str, str] = {"mlflow_model_uri": uri}
    run_id: str | None = None
    try:
        if m := _MODELS_VERSION.match(uri):
            version = m["version"]
            if version == "latest":
                versions = client.search_model_versions(f"name = '{m['name']}'")
                version = str(max(int(v.version) for v in versions)) if versions else version
            mv = client.get_model_version(m["name"], version)
            run_id, tags["mlflow_model_version"] = mv.run_id, str(mv.version)
        elif m := _MODELS_ALIAS.match(uri):
            mv = client.get_model_version_by_alias(m["name"], m["alias"])
            run_id, tags["mlflow_model_version"] = mv.run_id, str(mv.version)
        elif m := _MODELS_ID.match(uri):
            run_id = client.get_logged_model(m["id"]).source_run_id
        elif m := _RUNS.match(uri):
            run_id = m["run"]
    except Exception:  # noqa: BLE001 - only metadata: the load below gives the real error
        pass
    if run_id:
        tags["mlflow_run_id"] = run_id
    return run_id, tags


def check_model_exists(uri: str, tracking_uri: str) -> None:
    """Raise BenchError unless the model `uri` names is in the store at `tracking_uri` (its
    registry: MLFLOW_REGISTRY_URI, else the same store): the registered name and version or
    alias, the logged model id, or the run. `bench validate` calls it, so that a missing
    model fails there, not when its cells run. Metadata only: nothing is downloaded."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from bench.core.registry import did_you_mean
    from bench.record.tracking import probe, quiet_store_logs

    probe(tracking_uri)
    hint = ("Check the name, version or alias (MLflow UI, Models tab), or pass --tracking-uri "
            "for the store that holds it.")
    try:
        with quiet_store_logs():  # the SQL store logs a traceback before raising
            client = MlflowClient(tracking_uri=tracking_uri)
            name = m["name"] if (m := _MODELS_VERSION.match(uri) or _MODELS_ALIAS.match(uri)) else None
            if name is not None:
                names = [r.name for r in client.search_registered_models(max_results=1000)]
                if name not in names:
                    raise BenchError(f"'{uri}': no registered model '{name}' at {tracking_uri}."
                                     f"{did_you_mean(name, names)} {hint}")
                versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
                if (m := _MODELS_VERSION.match(uri)) and m["version"] != "latest":
                    if m["version"] not in {str(v.version) for v in versions}:
                        have = ", ".join(str(v.version) for v in versions) or "none"
                        raise BenchError(f"'{uri}': model '{name}' has no version {m['version']} at "
                                         f"{tracking_uri} (versions: {have}). {hint}")
                elif m := _MODELS_ALIAS.match(uri):
                    aliases = sorted(client.get_registered_model(name).aliases or {})
                    if m["alias"] not in aliases:
                        raise BenchError(f"'{uri}': model '{name}' has no alias '{m['alias']}' at "
                                         f"{tracking_uri} (aliases: {', '.join(aliases) or 'none'})."
                                         f"{did_you_mean(m['alias'], aliases)} {hint}")
                elif not versions:
                    raise BenchError(f"'{uri}': model '{name}' has no versions at {tracking_uri}. {hint}")
            elif m := _MODELS_ID.match(uri):
                client.get_logged_model(m["id"])
            elif m := _RUNS.match(uri):
                client.get_run(m["run"])
    except MlflowException as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise BenchError(f"'{uri}' is not in the store {tracking_uri}: {first}. {hint}") from None


def _run_latent_dim(run_id: str | None, tracking_uri: str | None = None) -> int | None:
    """`latent_dim` as the training run logged it (the built-in cgan does)."""
    if not run_id:
        return None
    from mlflow import MlflowClient

    try:
        v = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.params.get("latent_dim")
        return int(v) if v is not None else None
    except Exception:  # noqa: BLE001 - a missing or odd param just means "not known"
        return None


@MODELS.register("mlflow")
class MlflowModel(ModelSource[MlflowModelOptions]):
    """A PyTorch generator logged in MLflow (models:/name/version, models:/name@alias, runs:/...)."""

    has_latent = True

    def check(self, info: DataInfo) -> None:
        """Only the URI's form (checked by the options): the tracking store is known once the
        runner has resolved it, so whether the model exists is reported at build time."""

    def check_allowed(self) -> None:
        """Loading unpickles the model: a shared runner allows it by the registered name, the
        run id or the logged model id the URI names (bench.core.allowlist)."""
        from bench.core import allowlist

        uri = self.options.uri
        m = _MODELS_VERSION.match(uri) or _MODELS_ALIAS.match(uri)
        names = ([m["name"]] if m else [m["id"]] if (m := _MODELS_ID.match(uri))
                 else [m["run"]] if (m := _RUNS.match(uri)) else [])
        allowlist.check_mlflow_model(uri, names)

    def _load(self, tracking_uri: str | None = None) -> Any:
        import contextlib

        import mlflow
        import mlflow.pytorch

        from bench.record.tracking import scoped_tracking_uri

        uri = self.options.uri
        self.check_allowed()  # also where the suite was not validated first
        scope = scoped_tracking_uri(tracking_uri) if tracking_uri else contextlib.nullcontext()
        try:
            with scope:
                return mlflow.pytorch.load_model(uri, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - MLflow raises many types for a bad URI
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BenchError(
                f"cannot load MLflow model '{uri}' from tracking store "
                f"'{tracking_uri or mlflow.get_tracking_uri()}': {msg}. Check the name, version or alias (MLflow "
                "UI, Models tab) and that --tracking-uri / MLFLOW_TRACKING_URI / the suite's "
                "tracking_uri point at the store that holds it.") from None

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        o = self.options
        net = self._load(ctx.tracking_uri)
        if not isinstance(net, nn.Module) and callable(getattr(net, "module", None)):
            net = net.module()  # a pt2 (torch.export) program: its runnable module
        run_id, tags = _resolve_source(o.uri, ctx.tracking_uri)
        fallback = None if o.latent_dim else _run_latent_dim(run_id, ctx.tracking_uri)
        return build_torch_generator(net, o, dataset, ctx, o.uri, latent_dim=fallback, tags=tags)
