"""On-disk cache of trained models, so a notebook re-run loads weights instead of training again.

An entry is `<hash>.pt` (the state_dict) plus `<hash>.json` (the key, the training result, when, the code
fingerprint and the .pt file's sha256); the hash covers the key and a fingerprint of qkit's source (every
module but the batch runner), so weights trained by other code are never loaded: any change to the code that
builds, initializes or trains a model retrains it. The .json is written last and marks the entry complete.
Anything wrong with an entry (unreadable, truncated, checksum or key mismatch, weights that do not fit the
model) is reported with a warning and the model is trained again; the cache never stops a notebook.

    >>> model, meta = cached_model({"model": "lenet5", "data": "mnist5k", "seed": 0, "epochs": 3},
    ...                            build=lambda: build_model("lenet5"), train=lambda m: fit(m, loader, 3))
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from ._io import write_bytes_atomic

_ENTRY_FILE = re.compile(r"[0-9a-f]{64}\.(pt|json)")


class CacheWarning(UserWarning):
    """A cache entry that could not be used; the model is trained again."""


def default_cache_dir() -> Path:
    """`$QKIT_CACHE_DIR` if set, else `~/.cache/qkit`."""
    return Path(os.environ.get("QKIT_CACHE_DIR") or Path.home() / ".cache" / "qkit")


def cache_disabled() -> bool:
    """True when the environment turns the cache off (`QKIT_NO_CACHE=1`)."""
    return os.environ.get("QKIT_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no")


CODE_ROOT = Path(__file__).parent  # the source the fingerprint covers
CODE_EXCLUDED = ("run",)  # subpackages that cannot change weights (the batch runner)


@functools.cache
def _fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] not in CODE_EXCLUDED:
            digest.update(f"{relative.as_posix()}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_fingerprint() -> str:
    """A hash of qkit's source files (`CODE_ROOT`, less `CODE_EXCLUDED`): part of every cache key."""
    return _fingerprint(CODE_ROOT)


def key_hash(key: dict[str, Any]) -> str:
    """sha256 of the key, the qkit version and the code fingerprint, as canonical JSON: the entry's name."""
    text = json.dumps(
        {"key": key, "qkit_version": __version__, "code": code_fingerprint()}, sort_keys=True, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def cached_model(
    key: dict[str, Any],
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], dict[str, Any]],
    *,
    cache_dir: str | Path | None = None,
    enabled: bool = True,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """The model `train(build())` would give for `key`, from the cache when possible, and its metadata.

    `key` must be a JSON-able dict of everything that determines the weights (model and options,
    initializer, data, seeds, epochs, ...). The metadata: `key`, `result` (what `train` returned, after a
    JSON round trip, so a hit and a miss return equal data), `created`, `qkit_version`, `sha256`, `hit`.
    On a hit the model is `build()`'s (on its device) with the cached weights. `progress` reports hits.
    """
    key = _canonical(key)
    if not enabled or cache_disabled():
        model, result = _build_and_train(build, train)
        return model, _metadata(key, result, None) | {"hit": False}
    stem = _folder(cache_dir) / key_hash(key)
    loaded = _load(stem, key, build)
    if loaded is not None:
        if progress:
            tqdm.write(f"qkit.cache: loaded trained weights {stem.name[:12]} (not training again)")
        return loaded[0], loaded[1] | {"hit": True}
    model, result = _build_and_train(build, train)
    return model, _save(stem, key, model, result) | {"hit": False}


def clear_cache(cache_dir: str | Path | None = None) -> int:
    """Delete every cache entry file in `cache_dir` (other files are left alone); return how many went."""
    folder = _folder(cache_dir)
    removed = 0
    for path in folder.glob("*") if folder.is_dir() else ():
        if _ENTRY_FILE.fullmatch(path.name) or (path.name.startswith(".") and path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _canonical(key: Any) -> dict[str, Any]:
    if not isinstance(key, dict):
        raise ValueError(f"key must be a dict of JSON values, got {type(key).__name__}")
    return _json_round_trip(key, "key")


def _folder(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def _build_and_train(
    build: Callable[[], nn.Module], train: Callable[[nn.Module], Any]
) -> tuple[nn.Module, Any]:
    model = build()
    return model, _json_round_trip(train(model), "train()'s result")


def _json_round_trip(value: Any, what: str) -> Any:
    """`value` as JSON would give it back (tuples become lists); non-JSON values raise a ValueError."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} must hold only JSON values (str, int, float, bool, None, list, dict): {exc}"
        ) from exc


def _metadata(key: dict[str, Any], result: Any, sha256: str | None) -> dict[str, Any]:
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "key": key,
        "result": result,
        "created": created,
        "qkit_version": __version__,
        "code": code_fingerprint(),
        "sha256": sha256,
    }


def _load(stem: Path, key: dict[str, Any], build: Callable[[], nn.Module]) -> tuple[nn.Module, dict] | None:
    """The cached model and metadata, or None (after a warning, if an entry was there but unusable)."""
    meta_path, weights_path = stem.with_suffix(".json"), stem.with_suffix(".pt")
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        problem = _check_meta(meta, key)
        if problem is None:
            data = weights_path.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                problem = f"{weights_path.name} does not match the checksum in {meta_path.name}"
        if problem is None:
            model = build()
            model.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
            return model, meta
    except Exception as exc:  # any unreadable or unfitting entry is retrained, never fatal
        problem = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"qkit cache entry {meta_path} is unusable ({problem}); training again", CacheWarning, 3)
    return None


def _check_meta(meta: Any, key: dict[str, Any]) -> str | None:
    if not isinstance(meta, dict) or not {"key", "result", "sha256", "qkit_version"} <= meta.keys():
        return "metadata is not a complete qkit cache record"
    if meta["key"] != key or meta.get("code") != code_fingerprint():
        return f"it was written for key {meta['key']} by other code ({meta.get('code')})"
    return None


def _save(stem: Path, key: dict[str, Any], model: nn.Module, result: Any) -> dict[str, Any]:
    """Write weights, then metadata, each atomically; return the metadata (sha256 None if writing failed)."""
    buffer = io.BytesIO()
    torch.save({name: t.detach().cpu() for name, t in model.state_dict().items()}, buffer)
    data = buffer.getvalue()
    meta = _metadata(key, result, hashlib.sha256(data).hexdigest())
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(stem.with_suffix(".pt"), data)
        write_bytes_atomic(stem.with_suffix(".json"), json.dumps(meta, indent=1, sort_keys=True).encode())
    except OSError as exc:  # a full disk or read-only folder costs the caching, not the trained model
        warnings.warn(f"could not write qkit cache entry {stem}.pt/.json ({exc})", CacheWarning, stacklevel=3)
        return meta | {"sha256": None}
    return meta
