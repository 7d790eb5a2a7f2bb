"""More like this (issue 9): `codesearch similar PATH:LINE`, the daemon's `similar`, the LSP
request `codesearch/similar` and the MCP tool `find_similar`, on a repository with a planted
near-duplicate: `polygon_area` and `parcel_surface` compute the same shoelace area with other
names and variables, in other files, next to unrelated code.

The engine runs in-process with the packaged MiniLM; one real daemon serves the face tests
(CLI, LSP, MCP: one call each); the text-matching route is checked with a fake task embedder
and with the tiny jina-v4 checkpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from daemon_helpers import Daemon
from fake_embedder import FakeEmbedder, tokenize
from lsp_helpers import LspSession, uri
from mcp_helpers import McpClient

from codesearch.cli import main
from codesearch.config import Settings
from codesearch.embed import Embedder
from codesearch.engine import RepoSearch, index_repo
from codesearch.search import Searcher, SearchOptions
from codesearch.similar import MATCH_TASK, MoreLikeThis, parse_location
from codesearch.store import Store
from codesearch.types import BadInput, Chunk, FileState, Filters

AREA = '''"""Areas of plane figures."""


def polygon_area(points):
    """Area of a simple polygon from its corner points (shoelace formula)."""
    total = 0.0
    for i in range(len(points)):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0
'''

# the planted duplicate: the same computation, other names, another file
PARCELS = '''"""Land parcels as recorded by the surveyor."""


def parcel_surface(corners):
    """Area enclosed by the surveyed corners of a land parcel."""
    acc = 0
    n = len(corners)
    for j in range(n):
        ax, ay = corners[j]
        bx, by = corners[(j + 1) % n]
        acc += ax * by - bx * ay
    return abs(acc) * 0.5


def describe_parcel(owner, corners):
    return f"parcel of {owner} with {len(corners)} corners"
'''

MAILER = '''"""Outgoing mail."""

import smtplib


def send_welcome_email(address, name):
    """Send the welcome email to a new user through the SMTP relay."""
    with smtplib.SMTP("localhost") as smtp:
        smtp.sendmail("noreply@example.com", [address], f"Welcome, {name}!")
'''

RETRY = '''"""Helpers for calling flaky remote services."""

import random
import time


def compute_backoff(attempt, base=0.5, cap=30.0):
    """Exponential delay with full jitter before the next attempt."""
    exp = min(cap, base * (2**attempt))
    return random.uniform(0, exp)


def call_with_retries(fn, attempts=5):
    for attempt in range(attempts):
        try:
            return fn()
        except ConnectionError:
            time.sleep(compute_backoff(attempt))
    raise RuntimeError("service unavailable after retries")
'''

CACHE = '''"""A small cache."""


class LeastRecentlyUsedCache:
    """Keeps the most recently used entries and evicts the oldest when full."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.entries = {}

    def get(self, key):
        """Return a cached value and mark it as recently used."""
        value = self.entries.pop(key)
        self.entries[key] = value
        return value

    def put(self, key, value):
        """Store a value, evicting the least recently used entry when full."""
        self.entries.pop(key, None)
        if len(self.entries) >= self.capacity:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = value
'''

TEST_AREA = """from geometry.area import polygon_area


def test_unit_square_has_area_one():
    assert polygon_area([(0, 0), (1, 0), (1, 1), (0, 1)]) == 1.0
"""

FILES = {
    "geometry/area.py": AREA,
    "survey/parcels.py": PARCELS,
    "net/mailer.py": MAILER,
    "net/retry.py": RETRY,
    "store/cache.py": CACHE,
    "tests/test_area.py": TEST_AREA,
    ".gitignore": "scratch/\n",
    "scratch/draft.py": "def draft():\n    return 1\n",  # ignored: never indexed
}

SOURCE = "geometry/area.py"
SOURCE_LINE = 8  # inside polygon_area (lines 4-11)
DUPLICATE = ("survey/parcels.py", "parcel_surface")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if needle in line)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("similar") / "survey-app"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / ".git").mkdir()
    return root


@pytest.fixture(scope="module")
def local_home(tmp_path_factory: pytest.TempPathFactory, repo: Path, minilm: Any) -> Path:
    """A data dir holding the repository's MiniLM index, built in-process."""
    home = tmp_path_factory.mktemp("similar-home")
    stats = index_repo(repo, Settings(home=home), embedder=minilm, model="minilm")
    assert stats.files_indexed == len(FILES) - 1  # all but scratch/
    assert ("scratch", "ignored") in {(skip.path, skip.reason) for skip in stats.skipped}
    return home


@pytest.fixture
def engine(local_home: Path, repo: Path, minilm: Any) -> Iterator[RepoSearch]:
    with RepoSearch(repo, Settings(home=local_home), embedder=minilm) as search:
        yield search


@pytest.fixture
def cli_home(local_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODESEARCH_HOME", str(local_home))
    return local_home


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- the engine


def test_parse_location() -> None:
    assert parse_location("src/a.py:12") == ("src/a.py", 12)
    assert parse_location("C:/odd:name.py:3") == ("C:/odd:name.py", 3)  # the last colon
    for bad, message in [
        ("src/a.py", "expected PATH:LINE"),
        (":12", "expected PATH:LINE"),
        ("src/a.py:x", "with a line number"),
        ("src/a.py:0", "start at 1"),
        ("src/a.py:-4", "start at 1"),
    ]:
        with pytest.raises(BadInput, match=message):
            parse_location(bad)


def test_the_planted_duplicate_comes_first(engine: RepoSearch, repo: Path) -> None:
    source, hits = engine.similar(SOURCE, SOURCE_LINE, SearchOptions(k=5))
    assert (source.path, source.name, source.start_line, source.end_line) == (
        SOURCE,
        "polygon_area",
        4,
        11,
    )
    assert (hits[0].path, hits[0].name) == DUPLICATE
    assert "polygon_area" not in [h.name for h in hits]  # never itself
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= scores[0] <= 1
    # ... and the other way round, from an absolute path
    source, hits = engine.similar(str(repo / "survey/parcels.py"), 6, SearchOptions(k=3))
    assert (source.name, hits[0].path, hits[0].name) == ("parcel_surface", SOURCE, "polygon_area")


def test_the_innermost_chunk_and_not_its_class(engine: RepoSearch) -> None:
    line = line_of(CACHE, "self.entries.pop(next(iter")
    source, hits = engine.similar("store/cache.py", line, SearchOptions(k=10))
    assert (source.kind, source.name) == ("method", "LeastRecentlyUsedCache.put")
    names = {h.name for h in hits}
    assert "LeastRecentlyUsedCache.get" in names  # a sibling method is other code
    assert not names & {"LeastRecentlyUsedCache.put", "LeastRecentlyUsedCache"}  # the class
    only_tests = SearchOptions(k=5, filters=Filters(path_globs=("tests/",)))
    _, hits = engine.similar(SOURCE, SOURCE_LINE, only_tests)
    assert hits and {h.path for h in hits} == {"tests/test_area.py"}


def test_bad_locations_are_one_line_errors(
    cli_home: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "geometry/area.py": "expected PATH:LINE",
        "geometry/area.py:0": "line numbers start at 1",
        "geometry/area.py:400": "line 400 is past the end of geometry/area.py (11 lines)",
        "scratch/draft.py:1": "scratch/draft.py is not indexed",
        "geometry/volume.py:3": "no such file",
        "../elsewhere.py:3": "outside the repository",
        # between the module docstring and the function: the nearest chunk is suggested
        "geometry/area.py:2": "nearest: geometry/area.py:",
    }
    for location, message in cases.items():
        code, out, err = run(capsys, "similar", location, "--repo", str(repo), "--no-daemon")
        assert code == 2, (location, out, err)
        assert err.startswith("codesearch: error: ") and err.count("\n") == 1, err
        assert message in err, (location, err)
        assert out == ""


def _valid(document: Any, part: str) -> None:
    schema = json.loads((Path(__file__).parents[1] / "docs/search-result.schema.json").read_text())
    schema.pop("oneOf")
    jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{part}"}).validate(document)


def test_cli_in_process_json_and_exit_codes(
    cli_home: Path, repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.chdir(repo / "geometry")  # PATH relative to the current folder
    code, out, _ = run(capsys, "similar", f"area.py:{SOURCE_LINE}", "--no-daemon", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["source"] == {
        "path": SOURCE,
        "start_line": 4,
        "end_line": 11,
        "name": "polygon_area",
        "kind": "function",
    }
    first = answer["results"][0]
    assert (first["path"], first["name"]) == DUPLICATE
    _valid(answer, "similar_result")  # the documented schema
    code, out, _ = run(capsys, "similar", f"{SOURCE}:{SOURCE_LINE}", "--no-daemon", "--jsonl")
    assert code == 0
    for line in out.splitlines():
        _valid(json.loads(line), "similar_hit_line")
    code, out, _ = run(capsys, "similar", f"{SOURCE}:{SOURCE_LINE}", "--no-daemon", "-k", "2")
    assert code == 0
    assert out.splitlines()[0].startswith(f"like {SOURCE}:4-11  function polygon_area")
    assert out.splitlines()[1].startswith("survey/parcels.py:4-12  function parcel_surface")
    nothing = ["similar", f"{SOURCE}:{SOURCE_LINE}", "--no-daemon", "--lang", "go"]
    assert run(capsys, *nothing)[0] == 1


def test_lsp_params_and_readme() -> None:
    """The LSP request's and command's params are checked with one-line messages, and the
    example in lsp/README.md is what the server takes and answers."""
    import re

    from lsp.params import InvalidParams, similar_arguments, similar_params
    from lsp.server import SIMILAR_COMMAND, SOURCE_KEYS

    doc = {"textDocument": {"uri": "file:///r/a.py"}, "position": {"line": 0, "character": 0}}
    assert similar_params(doc).line == 0 and similar_params(doc).k == 10
    assert similar_arguments(["file:///r/a.py", 4, {"k": 2}]).k == 2
    for bad, message in [
        ({"position": {"line": 1}}, "params must be an object"),
        ({**doc, "position": {"line": -1}}, "'line' must be a whole number from 0"),
        ({**doc, "position": {"line": True}}, "'line' must be"),
        ({**doc, "k": 0}, "'k' must be"),
        ({**doc, "textDocument": {"uri": 3}}, "URI"),
    ]:
        with pytest.raises(InvalidParams, match=re.escape(message)):
            similar_params(bad)
    for args in ([], ["file:///r/a.py"], ["file:///r/a.py", 1, {}, 4], ["file:///r/a.py", "1"]):
        with pytest.raises(InvalidParams):
            similar_arguments(args)
    readme = (Path(__file__).parent.parent / "lsp" / "README.md").read_text(encoding="utf-8")
    section = readme.split("### `codesearch/similar` (request)", 1)[1]
    block = section.split("```jsonc\n", 1)[1].split("```", 1)[0]
    text = "\n".join(re.sub(r"(^|\s+)//[^\"\n]*$", "", line) for line in block.splitlines())
    text = re.sub(r"/\*.*?\*/", "", text)
    decoder = json.JSONDecoder()
    params, end = decoder.raw_decode(text.strip())
    answer, _ = decoder.raw_decode(text.strip()[end:].strip())
    assert similar_params(params).line == 41
    assert set(answer) == {"source", "results", "notices"}
    assert set(answer["source"]) == set(SOURCE_KEYS)
    assert f"| `{SIMILAR_COMMAND}` |" in readme


# ---------------------------------------------------------------------- the text-matching route


class MatchingFake(Embedder):
    """A task embedder (code, retrieval, text-matching) that records its calls."""

    max_tokens = 100_000
    tasks = ("retrieval", "text-matching", "code")
    task = "code"

    def __init__(self, dim: int = 64) -> None:
        self.base = FakeEmbedder(dim)
        self.dim = dim
        self.model_id = f"matching-fake:{dim}"
        self.calls: list[tuple[str, int]] = []

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        task = task or "code"
        self.calls.append((task, len(texts)))
        shift = 5 * (self.tasks.index(task) + 1)
        return np.roll(self.base.vectors(texts), shift, axis=1)

    def count_tokens(self, text: str) -> int:
        return len(tokenize(text))


def test_a_backend_with_text_matching_reranks_by_it(tmp_path: Path) -> None:
    fake = MatchingFake()
    chunks = [
        Chunk("a.py", "python", "function", "area", 1, 3, "def area(p):\n    shoelace(p)\n"),
        Chunk("b.py", "python", "function", "surface", 1, 2, "def surface(c):\n    shoelace\n"),
        Chunk("c.py", "python", "function", "mail", 1, 2, "def mail(a):\n    smtp(a)\n"),
        Chunk("d.md", "markdown", "section", "Area", 1, 2, "# Area\nshoelace area of p\n"),
    ]
    with Store.open(tmp_path / "i.sqlite", create=True) as store:
        store.configure(model_id=fake.model_id, dim=fake.dim, chunker_version="t")
        for c in chunks:
            task = "retrieval" if c.language == "markdown" else "code"
            vector = fake.embed_documents([c.embed_text()], task=task)[0]
            store.replace_file(
                FileState(c.path, 1, 1, c.path), [c], {c.vector_key(task): vector}, [task]
            )
        fake.calls.clear()
        source, hits = MoreLikeThis(Searcher(store, fake), tmp_path).similar("a.py", 2)
    assert source.name == "area"
    # the prose section has a retrieval vector: not comparable, not a candidate
    assert [h.name for h in hits] == ["surface", "mail"]
    assert fake.calls == [(MATCH_TASK, 3)]  # the source and two candidates, in one call
    vectors = fake.embed_documents([c.embed_text() for c in chunks[:3]], task=MATCH_TASK)
    expected = [float(vectors[1] @ vectors[0]), float(vectors[2] @ vectors[0])]
    assert [h.score for h in hits] == pytest.approx(expected, abs=1e-6)


def test_tiny_jina_reranks_with_its_text_matching_adapter(repo: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    from jina_tiny import write_tiny_checkpoint

    from codesearch.embed.jina.build import load_jina_v4

    threads = torch.get_num_threads()
    try:
        folder = write_tiny_checkpoint(tmp_path / "jina-tiny")
        emb = load_jina_v4(folder, device="cpu", notice=lambda _msg: None, threads=1)
        assert MATCH_TASK in emb.tasks
        settings = Settings(home=tmp_path / "home")
        index_repo(repo, settings, embedder=emb, model=str(folder))
        with RepoSearch(repo, settings, embedder=emb) as search:
            source, hits = search.similar(SOURCE, SOURCE_LINE, SearchOptions(k=4))
            chunks = {
                (s.chunk.path, s.chunk.start_line): s.chunk for s in search.store.all_chunks()
            }
        assert source.name == "polygon_area" and len(hits) == 4
        texts = [chunks[(h.path, h.start_line)].embed_text() for h in hits]
        mine = chunks[(source.path, source.start_line)].embed_text()
        vectors = emb.embed_documents([mine, *texts], task=MATCH_TASK)
        expected = (vectors[1:] @ vectors[0]).tolist()
        assert [h.score for h in hits] == pytest.approx(expected, abs=1e-4)
        assert expected == sorted(expected, reverse=True)
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------- the faces, one daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[Daemon]:
    running = Daemon(tmp_path_factory.mktemp("similar-daemon")).start()
    try:
        running.add(repo)
        yield running
    finally:
        running.stop()


def test_the_daemon_and_the_cli_through_it(
    daemon: Daemon, repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    answer = daemon.call("similar", {"path": SOURCE, "line": SOURCE_LINE, "repo": str(repo)})
    assert set(answer) == {"repo", "source", "results", "notices"}
    assert answer["source"]["name"] == "polygon_area"
    assert (answer["results"][0]["path"], answer["results"][0]["name"]) == DUPLICATE
    monkeypatch.setenv("CODESEARCH_HOME", str(daemon.settings.home))
    monkeypatch.setenv("CODESEARCH_DAEMON", "1")
    monkeypatch.chdir(repo)
    code, out, _ = run(capsys, "similar", f"{SOURCE}:{SOURCE_LINE}", "--jsonl", "-k", "3")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["rank"] for line in lines] == [1, 2, 3]
    assert (lines[0]["path"], lines[0]["name"]) == DUPLICATE
    assert lines[0]["source"]["name"] == "polygon_area"
    code, _, err = run(capsys, "similar", f"{SOURCE}:400")
    assert code == 2 and "past the end" in err and err.count("\n") == 1


def test_the_language_server_request(daemon: Daemon, repo: Path) -> None:
    with LspSession(daemon.settings.home) as session:
        init = session.start([repo])
        caps = init["capabilities"]
        assert "codesearch.similar" in caps["executeCommandProvider"]["commands"]
        assert "codesearch/similar" in caps["experimental"]["codesearch"]["requests"]
        answer = session.request(
            "codesearch/similar",
            {
                "textDocument": {"uri": uri(repo / SOURCE)},
                "position": {"line": SOURCE_LINE - 1, "character": 4},
                "k": 3,
            },
        )
    source = answer["source"]
    assert (source["name"], source["start_line"], source["end_line"]) == ("polygon_area", 4, 11)
    assert source["range"]["start"] == {"line": 3, "character": 0}
    assert source["uri"] == uri(repo.resolve() / SOURCE)
    first = answer["results"][0]
    assert (first["path"], first["name"]) == DUPLICATE
    assert first["range"]["start"] == {"line": 3, "character": 0}
    assert first["uri"] == uri(repo.resolve() / DUPLICATE[0])
    assert len(answer["results"]) <= 3 and isinstance(answer["notices"], list)


def test_the_mcp_tool(daemon: Daemon, repo: Path) -> None:
    with McpClient(daemon.settings.home, repo) as mcp:
        result = mcp.call("find_similar", path=SOURCE, line=SOURCE_LINE, k=3)
        assert not result.is_error, mcp.text(result)
        text = mcp.text(result).splitlines()
    out = result.structured_content
    assert out is not None and out["repo"] == str(repo)
    assert out["source"]["name"] == "polygon_area"
    top = out["results"][0]
    assert (top["path"], top["name"]) == DUPLICATE
    assert text[0] == f"3 results in {repo} like {SOURCE}:4-11 (function polygon_area), best first:"
    assert text[2].startswith("[1] survey/parcels.py:4-12 function parcel_surface ")
