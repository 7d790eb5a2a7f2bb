"""Credentials are never indexed, so never served: the credential files of the usual tools by
name and path, and keys and tokens by content in files with innocent names. Code that only
names a secret (``AWS_SECRET_ACCESS_KEY``), templates and public keys stay indexed;
``--include-secrets`` is the way out.

The tokens are assembled at run time, so this file holds none itself (codesearch indexes its
own repository)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import Daemon
from mcp_helpers import McpClient

from codesearch.cli import main
from codesearch.config import Settings
from codesearch.paths import read_source, walk

AWS_ID = "AKIA" + "Z7Q3RX5LMN2TPW4K"
AWS_SECRET = "q8Rz/3kLm9XvT2bNw7Yp" + "4HcJ6dFs1GaQe5UoIiKx"
GITHUB = "gh" + "p_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
GITHUB_PAT = "github" + "_pat_" + "11ABCDEFG0" + "x" * 2 + "Zq9" * 20
SLACK = "xo" + "xb-" + "1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
GOOGLE = "AI" + "za" + "SyD3kL9mN2pQ7rS4tU6vW8xY1zA3bC5dE7f"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "Vt3Kq" * 10
PEM = "-----BEGIN " + "PRIVATE KEY-----\n" + PEM_BODY + "\n-----END PRIVATE KEY-----\n"
AWS_FILE = (
    f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
    "region = eu-west-1\n"
)

# The credential files of cloud CLIs, VCS, databases, container and cluster tools,
# infrastructure-as-code and env files: skipped by name (and path), whatever they hold.
BY_NAME = [
    ".aws/credentials",
    ".git-credentials",
    ".gitcookies",
    ".pgpass",
    ".my.cnf",
    ".vault-token",
    ".docker/config.json",
    ".dockercfg",
    "kubeconfig",
    "deploy/staging.kubeconfig",
    ".kube/config",
    "infra/prod.tfvars",
    "infra/terraform.tfstate",
    ".terraformrc",
    "service-account.json",
    "gcp-key.json",
    "client_secret_1234.apps.googleusercontent.com.json",
    "secrets.env",
    "prod.env",
    ".envrc",
    ".env",
    ".env.production",
    ".htpasswd",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".config/gh/hosts.yml",
    ".cargo/credentials.toml",
    ".s3cfg",
    "ssl/server.key",
    "id_ed25519",
]
# Innocent names, secret content: skipped when the file is read for the index.
BY_CONTENT = {
    "app/settings.py": f'AWS_KEY = "{AWS_ID}"\nAWS_SECRET = "{AWS_SECRET}"\n',
    "app/boto_setup.py": f'client = boto3.client("s3", aws_secret_access_key="{AWS_SECRET}")\n',
    "scripts/ci.sh": f"export GITHUB_TOKEN={GITHUB}\n",
    "scripts/release.yaml": f"token: {GITHUB_PAT}\n",
    "web/notify.js": f'const token = "{SLACK}";\n',
    "web/maps.ts": f'export const mapsKey = "{GOOGLE}";\n',
    "notes/deploy.md": f"# Deploy\n\nThe key:\n\n```\n{PEM}```\n",
    "deploy.json": json.dumps({"type": "service_account", "private_key": PEM}),
}
# These name a secret, or look like one, but hold none.
NOT_SECRETS = {
    "app/aws.py": 'import os\nsecret = os.environ["AWS_SECRET_ACCESS_KEY"]\n',
    "docs/aws.md": "Example: AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "app/pem.py": 'HEADER = "-----BEGIN ' + 'RSA PRIVATE KEY-----"\n',
    ".env.example": "AWS_SECRET_ACCESS_KEY=\nGITHUB_TOKEN=your-token-here\n",
    "example.env": "DATABASE_URL=postgres://localhost/dev\n",
    "docker/config.json": '{"image": "python:3.12"}\n',
    "config.json": '{"debug": true}\n',
    ".ssh/id_ed25519.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI user@host\n",
    "infra/variables.tf": 'variable "region" {}\n',
    "hashes.txt": "da39a3ee5e6b4b0d3255bfef95601890afd80709 file\n",
}


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    root = tmp_path / "clone"
    for rel in BY_NAME:
        write(root, rel, AWS_FILE)
    for rel, text in {**BY_CONTENT, **NOT_SECRETS}.items():
        write(root, rel, text)
    write(root, "app/geo.py", "def area(w, h):\n    return w * h\n")
    return root


def test_credential_files_by_name_and_path(planted: Path, tmp_path: Path) -> None:
    found = walk(planted, Settings(home=tmp_path / "home"))
    reasons = {s.path: (s.reason, s.detail) for s in found.skipped}
    for rel in BY_NAME:
        assert reasons.get(rel, ("",))[0] == "secret", rel
        assert reasons[rel][1].endswith("(--include-secrets to index it)")
    assert reasons[".aws/credentials"][1].startswith("AWS credentials")
    listed = {f.path for f in found.files}
    assert set(NOT_SECRETS) <= listed
    assert set(BY_CONTENT) <= listed  # innocent names: the walk cannot tell


def test_secrets_by_content(planted: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    for rel in BY_CONTENT:
        text, skip = read_source(planted, rel, settings)
        assert text is None and skip is not None and skip.reason == "secret", (rel, skip)
        assert skip.detail.startswith("holds "), skip
    for rel, content in NOT_SECRETS.items():
        assert read_source(planted, rel, settings) == (content, None), rel
    allowed = Settings(home=tmp_path / "home", include_secrets=True)
    assert read_source(planted, "web/notify.js", allowed)[0] == BY_CONTENT["web/notify.js"]


def test_what_each_content_check_says() -> None:
    from codesearch.credentials import secret_content, secret_path

    assert secret_content(PEM.encode()) == "a private key (PEM block)"
    assert secret_content(f"x = '{GITHUB}'".encode()) == "a GitHub token"
    assert secret_content(SLACK.encode()) == "a Slack token"
    assert secret_content(GOOGLE.encode()) == "a Google API key"
    assert secret_content(AWS_FILE.encode()) == "an AWS secret access key"
    assert secret_content(f"{AWS_ID} {AWS_SECRET}".encode()) == "an AWS access key pair"
    assert secret_content(f"{AWS_ID} alone".encode()) is None  # an id without its secret
    assert secret_path(".env.sample") is None and secret_path("id_rsa.pub") is None
    assert secret_path("src/.aws/credentials") == "AWS credentials"


def _planted_index(planted: Path, *flags: str) -> None:
    assert main(["index", str(planted), "-q", "--model", "fake", *flags]) == 0


def test_search_does_not_return_the_key(planted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _planted_index(planted)
    capsys.readouterr()
    for form in (["--json", "-k", "50"], ["-k", "50"], ["--jsonl", "-C", "3", "-k", "50"]):
        main(["search", "aws secret access key", "--repo", str(planted), *form])
        out = capsys.readouterr().out
        for secret in (AWS_SECRET, GITHUB, SLACK, GOOGLE, PEM_BODY[:40]):
            assert secret not in out, form
    main(["index", str(planted), "-v", "--model", "fake"])
    err = capsys.readouterr().err
    assert "skipped .aws/credentials: secret (AWS credentials (--include-secrets" in err
    assert "skipped web/notify.js: secret (holds a Slack token (--include-secrets" in err


def test_include_secrets_indexes_them(planted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _planted_index(planted, "--include-secrets")
    capsys.readouterr()
    main(["search", "aws secret access key", "--repo", str(planted), "--json", "-k", "50"])
    assert AWS_SECRET in capsys.readouterr().out


def _served(planted: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    main(["search", "aws secret access key", "--repo", str(planted), "--json", "-k", "50"])
    return capsys.readouterr().out


def _embedded(planted: Path, *flags: str) -> int:
    from codesearch.config import load_settings
    from codesearch.engine import index_repo

    settings = load_settings()
    if "--include-secrets" in flags:
        settings = Settings(home=settings.home, include_secrets=True)
    return index_repo(planted, settings, model="fake").chunks_embedded


def test_secrets_indexed_before_leave_the_index(
    planted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret indexed with --include-secrets, or by a release whose rules did not know it,
    leaves the index at the next run without it, though the file did not change; the files
    that stay are not embedded again."""
    _embedded(planted, "--include-secrets")
    assert SLACK in _served(planted, capsys) and AWS_SECRET in _served(planted, capsys)
    assert _embedded(planted) == 0  # re-read, nothing re-embedded
    out = _served(planted, capsys)
    assert SLACK not in out and AWS_SECRET not in out
    # an index of an older release recorded only the chunker's version
    _embedded(planted, "--include-secrets")
    from codesearch.chunk import CHUNKER_VERSION
    from codesearch.config import load_settings
    from codesearch.paths import resolve_root
    from codesearch.store import Store

    with Store.open(load_settings().index_path(resolve_root(planted))) as store:
        store.set_meta("chunker_version", CHUNKER_VERSION)
    assert _embedded(planted) == 0
    out = _served(planted, capsys)
    assert SLACK not in out and AWS_SECRET not in out


# ---------------------------------------------------------------------- the agent face


@pytest.fixture(scope="module")
def agent_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("secrets") / "clone"
    (root / ".git").mkdir(parents=True)
    write(root, ".aws/credentials", AWS_FILE)
    write(root, "app/settings.py", BY_CONTENT["app/settings.py"])
    write(root, "app/aws.py", NOT_SECRETS["app/aws.py"])
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = Daemon(tmp_path_factory.mktemp("secrets-home")).start()
    yield running
    running.stop()


def test_mcp_search_code_does_not_return_the_key(daemon: Daemon, agent_repo: Path) -> None:
    with McpClient(daemon.settings.home, agent_repo) as mcp:
        daemon.wait(agent_repo)
        result = mcp.call("search_code", query="aws secret access key", k=20, max_lines=50)
        assert not result.is_error, mcp.text(result)
        paths = {h["path"] for h in result.structured_content["results"]}  # type: ignore[index]
        assert paths == {"app/aws.py"}
        assert AWS_SECRET not in mcp.text(result)
        assert AWS_SECRET not in json.dumps(result.structured_content)
