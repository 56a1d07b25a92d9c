"""Finished cells whose records the tracking store could not take, kept on disk until it can.

A cell's computation outlives an outage of any length: when `RecordWriter.finish` gives up
on an unreachable store, the record (values, declarations, flags, tags, params, dataset
input) and its artifacts are written here, one folder per cell key, under the bench cache
(`<cache>/spool/<store>/<cell key>/`). The runner (`bench.record.writer.Keeper`) writes them to the store as soon as it
answers again (between cells, at the end of the suite) and, when it never came back during
the run, on the next run of the suite, before deciding which cells to run: a kept cell is
written, not computed again.

A folder is complete or absent: it is written under a temporary name and renamed into place.
Values are kept as the flat metric keys the store will get (bench.record.values.encode), the
format records kept by older versions have too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

from bench.core.safe_names import safe_filename
from bench.record import flags as flag_io
from bench.record.cell_record import CellRecord, DatasetInput
from bench.record.values import decode, encode
from bench.record.values import dumps as dump_values
from bench.record.values import loads as load_values

RECORD = "record.json"
ARTIFACTS = "artifacts"
_PLAIN = [f.name for f in fields(CellRecord)
          if f.name not in ("values", "declarations", "flags", "dataset_input", "artifacts")]


def to_json(record: CellRecord) -> dict:
    out = {name: getattr(record, name) for name in _PLAIN}
    out["values"] = encode(record.values)
    out["declarations"] = dump_values(record.declarations, list(record.values))
    out["flags"] = flag_io.dumps(record.flags)
    out["dataset_input"] = asdict(record.dataset_input) if record.dataset_input else None
    return out


def from_json(data: dict, artifacts: str = "") -> CellRecord:
    plain = {k: data[k] for k in _PLAIN if k in data}
    ds = data.get("dataset_input")
    return CellRecord(**plain, values=decode(data.get("values") or {}),
                      declarations=load_values(data.get("declarations") or None),
                      flags=flag_io.loads(data.get("flags") or None),
                      dataset_input=DatasetInput(**ds) if ds else None, artifacts=artifacts)


class Spool:
    """The kept records of one store and experiment (module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def for_store(cls, cache_root: str | os.PathLike, uri: str, experiment_id: str) -> Spool:
        store = hashlib.sha256(f"{uri}\n{experiment_id}".encode()).hexdigest()[:12]
        return cls(Path(cache_root) / "spool" / store)

    def _dir(self, key: str) -> Path:
        return self.root / safe_filename(key)

    def save(self, record: CellRecord) -> Path:
        """Keep `record` (and a copy of its artifacts folder); replaces an older one."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".keeping-", dir=self.root))
        try:
            if record.artifacts and Path(record.artifacts).is_dir():
                shutil.copytree(record.artifacts, tmp / ARTIFACTS)
            with open(tmp / RECORD, "w") as f:
                json.dump(to_json(record), f)
                f.flush()
                os.fsync(f.fileno())
            final = self._dir(record.cell_key)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            return final
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def keys(self) -> list[str]:
        """Cell keys kept here (complete folders only)."""
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / RECORD).is_file():
                try:
                    out.append(json.loads((d / RECORD).read_text())["cell_key"])
                except (OSError, ValueError, KeyError):
                    continue
        return out

    def load(self, key: str) -> CellRecord | None:
        d = self._dir(key)
        try:
            data = json.loads((d / RECORD).read_text())
        except (OSError, ValueError):
            return None
        art = d / ARTIFACTS
        return from_json(data, str(art) if art.is_dir() else "")

    def remove(self, key: str) -> None:
        shutil.rmtree(self._dir(key), ignore_errors=True)

    def __len__(self) -> int:
        return len(self.keys())


__all__ = ["Spool", "from_json", "to_json"]
