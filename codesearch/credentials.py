"""The secret filter: files that hold credentials are never indexed (``include_secrets``
turns it off). Two checks, each with a one-line reason:

- :func:`secret_path`, by name and path: the credential files of cloud CLIs, version control,
  databases, container and cluster tools, infrastructure-as-code and env files, private keys
  and key stores. Some need the folder too (``.aws/credentials``, ``.docker/config.json``,
  ``.kube/config``): a ``config.json`` elsewhere is no secret.
- :func:`secret_content`, by content, for secrets in files with innocent names: private-key
  blocks and the well-known token formats (AWS key pairs, GitHub, GitLab, Slack, Google,
  Stripe, npm, PyPI, OpenAI and Anthropic keys). A name such as ``AWS_SECRET_ACCESS_KEY``, a
  placeholder, or AWS's documented example keys are not secrets.

The lists are in the README ("What gets indexed"); keep them in step.
"""

from __future__ import annotations

import re

# The version of these rules. An index records it (``index.index_rules``): when it changes, or
# ``include_secrets`` does, every file is read again once (vectors are reused), so a file the
# rules now call a secret leaves an index built before them.
RULES_VERSION = "1"

# Exact file names (compared lowercased).
NAMES: dict[str, str] = {
    **dict.fromkeys((".env", ".envrc", "secrets.env"), "env file"),
    **dict.fromkeys((".netrc", "_netrc"), "netrc credentials"),
    **dict.fromkeys((".npmrc", ".pypirc", ".gem-credentials"), "package registry credentials"),
    **dict.fromkeys((".git-credentials", ".gitcookies"), "git credentials"),
    **dict.fromkeys((".pgpass", ".my.cnf", ".mylogin.cnf"), "database password file"),
    ".vault-token": "Vault token",
    **dict.fromkeys((".dockercfg",), "container registry credentials"),
    **dict.fromkeys(("kubeconfig", "kubeconfig.yaml", "kubeconfig.yml"), "Kubernetes credentials"),
    **dict.fromkeys((".htpasswd", "htpasswd"), "password file"),
    **dict.fromkeys((".boto", ".s3cfg", ".passwd-s3fs"), "cloud storage credentials"),
    **dict.fromkeys(
        (
            "credentials.json",
            "service-account.json",
            "service_account.json",
            "serviceaccount.json",
            "gcp-key.json",
            "gcloud-key.json",
            "application_default_credentials.json",
        ),
        "cloud service account key",
    ),
    **dict.fromkeys((".terraformrc", "terraform.rc", "credentials.tfrc.json"), "Terraform token"),
    **dict.fromkeys(("secring.gpg", "secring.kbx"), "private key ring"),
}

# Name endings (compared lowercased).
SUFFIXES: dict[str, str] = {
    **dict.fromkeys(
        (".pem", ".key", ".p12", ".pfx", ".p8", ".ppk", ".keystore", ".jks", ".kdbx"),
        "private key or key store",
    ),
    **dict.fromkeys((".tfvars", ".tfvars.json"), "Terraform variables"),
    **dict.fromkeys((".tfstate", ".tfstate.backup"), "Terraform state"),
    ".kubeconfig": "Kubernetes credentials",
    ".env": "env file",
}
PREFIXES: dict[str, str] = dict.fromkeys(
    ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"), "SSH private key"
)
# A name beginning like this is a key or service account too (client_secret_123.apps....json).
JSON_PREFIXES: dict[str, str] = {
    "client_secret": "OAuth client secret",
    "service-account": "cloud service account key",
    "service_account": "cloud service account key",
}

# The last parts of a path (lowercased): files whose name alone is too common to tell.
PATHS: dict[tuple[str, ...], str] = {
    (".aws", "credentials"): "AWS credentials",
    (".aws", "config"): "AWS credentials",
    (".docker", "config.json"): "container registry credentials",
    (".kube", "config"): "Kubernetes credentials",
    (".azure", "accesstokens.json"): "Azure credentials",
    (".azure", "msal_token_cache.json"): "Azure credentials",
    (".config", "gh", "hosts.yml"): "GitHub CLI token",
    (".config", "hub"): "GitHub CLI token",
    (".cargo", "credentials"): "package registry credentials",
    (".cargo", "credentials.toml"): "package registry credentials",
    (".gem", "credentials"): "package registry credentials",
    (".m2", "settings-security.xml"): "Maven master password",
    (".composer", "auth.json"): "package registry credentials",
    (".terraform.d", "credentials.tfrc.json"): "Terraform token",
}

# Env-style names that are templates, not secrets.
_TEMPLATE_WORDS = ("example", "sample", "template", "dist", "defaults")


def _template(lower: str) -> bool:
    return any(word in lower.split(".") or word in lower.split("-") for word in _TEMPLATE_WORDS)


def secret_path(rel: str) -> str | None:
    """Why the file at ``rel`` (a relative POSIX path, or a bare name) is a credential file,
    or None. ``.env.example``, ``*.pub`` and the like are not."""
    parts = rel.lower().split("/")
    name = parts[-1]
    if name.endswith(".pub"):
        return None
    for tail, why in PATHS.items():
        if tuple(parts[-len(tail) :]) == tail:
            return why
    if name in NAMES:
        return NAMES[name]
    if name.startswith((".env.", ".envrc.")) or name.endswith(".env"):
        return None if _template(name) else "env file"
    for suffix, why in SUFFIXES.items():
        if name.endswith(suffix):
            return why
    for prefix, why in PREFIXES.items():
        if name.startswith(prefix):
            return why
    if name.endswith(".json"):
        for prefix, why in JSON_PREFIXES.items():
            if name.startswith(prefix):
                return why
    if ".ssh" in parts[:-1] and name not in ("config", "known_hosts", "authorized_keys"):
        return "SSH key"
    return None


# ---------------------------------------------------------------------------- by content

_PEM = re.compile(
    rb"-----BEGIN ((RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP|SSH2 ENCRYPTED) )?PRIVATE KEY( BLOCK)?-----"
    rb"(\\r|\\n|\s)+(Proc-Type:|Version:|Comment:|[A-Za-z0-9+/]{40})"
)
_AWS_ID = re.compile(rb"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_AWS_SECRET = re.compile(rb"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
_AWS_SECRET_SET = re.compile(
    rb"(?i)aws_?secret_?(access_?)?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9+/]{40})(?![A-Za-z0-9+/=])"
)
_TOKENS: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), "a GitHub token"),
    (re.compile(rb"\bgithub_pat_[A-Za-z0-9_]{50,}\b"), "a GitHub token"),
    (re.compile(rb"\bglpat-[A-Za-z0-9_-]{20,}\b"), "a GitLab token"),
    (re.compile(rb"\bxox[abprse]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (
        re.compile(rb"hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}"),
        "a Slack webhook",
    ),
    (re.compile(rb"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"), "a Google API key"),
    (re.compile(rb"\b[rs]k_live_[0-9A-Za-z]{20,}"), "a Stripe key"),
    (re.compile(rb"\bnpm_[A-Za-z0-9]{36}\b"), "an npm token"),
    (re.compile(rb"\bpypi-AgE[A-Za-z0-9_-]{50,}"), "a PyPI token"),
    (re.compile(rb"\bsk-(proj|svcacct|admin)-[A-Za-z0-9_-]{40,}"), "an OpenAI key"),
    (re.compile(rb"\bsk-ant-(api|admin)\d\d-[A-Za-z0-9_-]{40,}"), "an Anthropic key"),
)
_PLACEHOLDER = re.compile(rb"(?i)example|xxxxxxxx|your[_-]?|dummy|placeholder|redacted")


def _real(token: bytes) -> bool:
    """Not a documented example or a placeholder, and not one character repeated."""
    return not _PLACEHOLDER.search(token) and len(set(token)) > 8


def _aws_secret(token: bytes) -> bool:
    """A 40-character AWS secret key: mixed case and a digit, or a ``/`` or ``+``, and real."""
    has_mix = any(c in b"/+" for c in token) or (
        any(48 <= c <= 57 for c in token)
        and any(65 <= c <= 90 for c in token)
        and any(97 <= c <= 122 for c in token)
    )
    return has_mix and _real(token)


def secret_content(data: bytes) -> str | None:
    """What secret ``data`` holds (``"a private key (PEM block)"``, ...), or None."""
    if _PEM.search(data):
        return "a private key (PEM block)"
    for m in _AWS_SECRET_SET.finditer(data):
        if _aws_secret(m.group(2)):
            return "an AWS secret access key"
    for m in _AWS_ID.finditer(data):
        if _real(m.group(0)) and any(_aws_secret(s.group(0)) for s in _AWS_SECRET.finditer(data)):
            return "an AWS access key pair"
    for pattern, what in _TOKENS:
        for m in pattern.finditer(data):
            if _real(m.group(0)):
                return what
    return None


def detail(what: str) -> str:
    """A secret's skip detail: ``"AWS credentials (--include-secrets to index it)"``."""
    return f"{what} (--include-secrets to index it)"
