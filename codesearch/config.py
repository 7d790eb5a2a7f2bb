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
    # Late chunking (a long-context backend: jina-v4): each file is encoded whole (long files in
    # overlapping windows) and every chunk's vector pooled from its own tokens, so it carries the
    # file's context. Recorded in the index: changing it rebuilds. MiniLM cannot: an error.
    late_chunking: bool = False
    # Pictures (PNG, JPEG, WebP, GIF, BMP, SVG, PDF pages): indexed by their text context, and
    # from their pixels on a multimodal backend (jina-v4). Icons smaller than image_min_side
    # pixels on both sides are skipped; PDFs contribute their first pdf_max_pages pages.
    images: bool = True
    max_image_bytes: int = 50_000_000
    image_min_side: int = 48
    pdf_max_pages: int = 20
    # The remote backend (`--model remote` or `remote:NAME`): an OpenAI-compatible /embeddings
    # server. The API key is read from the environment variable named here, never from a file.
    remote_url: str = ""  # the base URL under which /embeddings lives, e.g. http://gpu:8000/v1
    remote_model: str = ""  # the served model name; "" = the server's only model
    remote_api_key_env: str = "CODESEARCH_REMOTE_API_KEY"
    remote_prefixes: str = "auto"  # auto (jina-v4 names get Query:/Passage:), jina-v4, none
    remote_concurrency: int = 4  # requests in flight
    remote_batch_size: int | None = None  # inputs per request; None = batch_size, server-capped
    remote_max_tokens: int | None = None  # chunk size in tokens; None = by model (jina-v4: 1024)
    remote_timeout: float = 60.0  # seconds per request
    remote_retries: int = 5  # retries of a request on 429 / 5xx / timeouts / refused connections
    remote_backoff: float = 0.5  # first retry delay in seconds; doubles, with jitter
    # The daemon's socket: a connection that sends no request for this many seconds is closed,
    # and at most this many connections are served at once (more wait in the listen queue).
    daemon_idle_timeout: float = 30.0
    daemon_max_connections: int = 64

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
    "late_chunking": "CODESEARCH_LATE_CHUNKING",
    "images": "CODESEARCH_IMAGES",
    "max_image_bytes": "CODESEARCH_MAX_IMAGE_BYTES",
    "image_min_side": "CODESEARCH_IMAGE_MIN_SIDE",
    "pdf_max_pages": "CODESEARCH_PDF_MAX_PAGES",
    "remote_url": "CODESEARCH_REMOTE_URL",
    "remote_model": "CODESEARCH_REMOTE_MODEL",
    "remote_api_key_env": "CODESEARCH_REMOTE_API_KEY_ENV",
    "remote_prefixes": "CODESEARCH_REMOTE_PREFIXES",
    "remote_concurrency": "CODESEARCH_REMOTE_CONCURRENCY",
    "remote_batch_size": "CODESEARCH_REMOTE_BATCH_SIZE",
    "remote_max_tokens": "CODESEARCH_REMOTE_MAX_TOKENS",
    "remote_timeout": "CODESEARCH_REMOTE_TIMEOUT",
    "remote_retries": "CODESEARCH_REMOTE_RETRIES",
    "remote_backoff": "CODESEARCH_REMOTE_BACKOFF",
    "daemon_idle_timeout": "CODESEARCH_DAEMON_IDLE_TIMEOUT",
    "daemon_max_connections": "CODESEARCH_DAEMON_MAX_CONNECTIONS",
}
_ZERO_OK = frozenset({"remote_retries"})  # int settings where 0 is valid
# A secret never belongs in a file that is shared, backed up or pasted into bug reports.
_SECRETS = {
    "remote_api_key": "the API key is read from the environment only: export it as "
    "CODESEARCH_REMOTE_API_KEY (or name another variable with remote_api_key_env)"
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
            if number < 0 or (number == 0 and name not in _ZERO_OK):
                raise ValueError
            return number
        if kind == "float":
            real = float(str(value))
            if not real >= 0 or real == float("inf"):
                raise ValueError
            return real
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
            if key in _SECRETS:
                raise BadInput(f"{config_file}: {key}: {_SECRETS[key]}")
            if key not in known:
                raise BadInput(f"{config_file}: unknown setting {key!r}")
            settings = replace(settings, **{key: _coerce(key, value, str(config_file))})
    for name, var in _ENV.items():
        if var in os.environ:
            settings = replace(settings, **{name: _coerce(name, os.environ[var], var)})
    return settings
