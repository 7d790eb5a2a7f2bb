"""End to end with the real packaged MiniLM: index the demo repository through the CLI and
ask questions in words that do not appear in the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesearch.cli import main

QUESTIONS = [
    ("pick a random delay that grows with each failed try", "src/app/retry.py", "compute_backoff"),
    (
        "verify a password against the stored hash",
        "src/app/auth.py",
        "PasswordHasher.verify_password",
    ),
    ("send an email to greet a new account", "svc/mail.go", "Mailer.SendWelcome"),
    ("evict the oldest entry when the cache is full", "web/cache.js", "LruCache.set"),
    ("make a smaller preview picture", "core/image.rs", "Image.thumbnail"),
    ("read configuration file with default values", "src/app/settings.py", "load_settings"),
    ("reject requests from users who are not signed in", "src/app/auth.py", "require_login"),
]


@pytest.fixture
def indexed_demo(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["index", str(demo_repo), "--quiet"]) == 0
    capsys.readouterr()
    return demo_repo


@pytest.mark.parametrize(("question", "path", "name"), QUESTIONS)
def test_right_function_ranks_first(
    indexed_demo: Path, capsys: pytest.CaptureFixture[str], question: str, path: str, name: str
) -> None:
    code = main(["search", question, "--repo", str(indexed_demo), "--json", "-k", "5"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    top = out["results"][0]
    assert (top["path"], top["name"]) == (path, name), out["results"][:3]


def test_batch_answers_every_question_in_order(
    indexed_demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "queries.txt"
    batch.write_text("\n".join(q for q, _, _ in QUESTIONS) + "\n")
    code = main(
        ["search", "--repo", str(indexed_demo), "--json", "-k", "10", "--batch", str(batch)]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [line["query"] for line in lines] == [q for q, _, _ in QUESTIONS]
    for line, (_, path, name) in zip(lines, QUESTIONS, strict=True):
        assert (line["results"][0]["path"], line["results"][0]["name"]) == (path, name)


def test_auto_and_its_backend_share_one_loaded_model() -> None:
    from codesearch.engine import get_embedder

    assert get_embedder("auto", 32) is get_embedder("minilm-code", 32)
