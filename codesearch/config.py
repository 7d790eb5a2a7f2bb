"""Settings from the config file and the environment; where data lives.

Precedence, lowest to highest: built-in defaults, ``$CODESEARCH_HOME/config.toml``,
environment variables (``CODESEARCH_*``), then command-line flags (applied by the faces
with :func:`dataclasses.replace`).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from codesearch.types import BadInput

DEFAULT_MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Settings:
    home: Path
    model: str = "auto"
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    include_secrets: bool = False  # index .env, *.pem, ... (off by default)
    batch_size: int = 32  # documents per embedder call
    daemon: bool = True  # searches go through the background daemon (started on first use)
    # Vector size for models with Matryoshka dims (jina-v4: 128 ... 2048); None = the backend's
    # default. Part of the model id an index records: changing it rebuilds the index.
    embed_dim: int | None = None

    @property
    def index_dir(self) -> Path:
        return self.home / "indexes"

    def index_path(self, repo_root: Path) -> Path:
        """Where the index of ``repo_root`` lives: one SQLite file per repository."""
        root = repo_root.resolve()
        digest = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in root.name) or "root"
        return self.index_dir / f"{safe}-{digest}.sqlite"


def default_home() -> Path:
    env = os.environ.get("CODESEARCH_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("codesearch", appauthor=False))


_ENV = {
    "model": "CODESEARCH_MODEL",
    "max_file_bytes": "CODESEARCH_MAX_FILE_BYTES",
    "include_secrets": "CODESEARCH_INCLUDE_SECRETS",
    "batch_size": "CODESEARCH_BATCH_SIZE",
    "daemon": "CODESEARCH_DAEMON",
    "embed_dim": "CODESEARCH_EMBED_DIM",
}

_DEFAULT_WORDS = ("", "auto", "default", "none")


def _coerce(name: str, value: object, source: str) -> object:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = kinds[name]
    try:
        if kind == "int | None":
            if value is None or str(value).strip().lower() in _DEFAULT_WORDS:
                return None
            kind = "int"
        if kind == "int":
            number = int(str(value))
            if number <= 0:
                raise ValueError
            return number
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        return str(value)
    except ValueError:
        raise BadInput(f"{source}: invalid value {value!r} for {name}") from None


def load_settings(home: Path | None = None) -> Settings:
    home = home or default_home()
    settings = Settings(home=home)
    config_file = home / "config.toml"
    if config_file.is_file():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{config_file}: not valid TOML ({exc})") from None
        known = {f.name for f in fields(Settings)} - {"home"}
        for key, value in data.items():
            if key not in known:
                raise BadInput(f"{config_file}: unknown setting {key!r}")
            settings = replace(settings, **{key: _coerce(key, value, str(config_file))})
    for name, var in _ENV.items():
        if var in os.environ:
            settings = replace(settings, **{name: _coerce(name, os.environ[var], var)})
    return settings
