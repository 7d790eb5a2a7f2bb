"""The training pipeline (training/): pairs from a tiny fake corpus, a few LoRA steps, a
loadable adapter; the held-out split is stable; a hard negative is never the positive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import prepare

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not (prepare.shared_dir() / "eval" / "corpus.py").is_file(),
    reason="shared/eval/corpus.py (the benchmark's corpus preparer) is not available",
)

# (name, doc sentence, body lines): the fake package's documented functions.
PY_FUNCS = [
    (
        "parse_config_file",
        "Read the configuration file and return its settings as a dictionary.",
        [
            "settings = {}",
            "with open(path) as fh:",
            "    for line in fh:",
            "        key, _, value = line.partition('=')",
            "        settings[key.strip()] = value.strip()",
            "return settings",
        ],
    ),
    (
        "write_config_file",
        "Write the settings dictionary back to the configuration file.",
        [
            "with open(path, 'w') as fh:",
            "    for key, value in sorted(settings.items()):",
            "        fh.write(f'{key}={value}\\n')",
            "return len(settings)",
        ],
    ),
    (
        "merge_settings",
        "Combine two settings dictionaries, the second one winning on conflicts.",
        [
            "merged = dict(path)",
            "for key, value in settings.items():",
            "    merged[key] = value",
            "return merged",
        ],
    ),
    (
        "validate_port_number",
        "Check that a network port number lies in the allowed range.",
        [
            "port = int(path)",
            "if not 0 < port < 65536:",
            "    raise ValueError(f'bad port {port}')",
            "return port",
        ],
    ),
]
# a long function: the chunker splits it into parts; its later parts share the query's words
LONG_DOC = "Load every plugin module listed in the settings and register its hooks."
LONG_BODY = (
    ["hooks = []"]
    + [
        f"hooks.append(load_plugin_module(settings.get('plugin_{i}'), register=True, h{i}=path))"
        for i in range(40)
    ]
    + ["return hooks"]
)
JS_FUNCS = [
    (
        "debounceCallback",
        "Delay calling the callback until the user stops typing for a while.",
        [
            "let timer = null;",
            "clearTimeout(timer);",
            "timer = setTimeout(cb, wait);",
            "return timer;",
        ],
    ),
    (
        "formatCurrency",
        "Format an amount of money with two decimals and a currency sign.",
        ["const fixed = amount.toFixed(2);", "const sign = '$';", "return sign + fixed;"],
    ),
]


def _python_file(documented: bool) -> tuple[str, list[dict]]:
    lines: list[str] = ["import os", ""]
    gold = []
    funcs = [*PY_FUNCS, ("load_all_plugins", LONG_DOC, LONG_BODY)]
    for name, doc, body in funcs:
        start = len(lines) + 1
        lines.append(f"def {name}(path, settings=None):")
        if documented:
            lines.append(f'    """{doc}"""')
        lines.extend("    " + b for b in body)
        gold.append({"name": name, "query": doc, "start_line": start, "end_line": len(lines)})
        lines.extend(["", ""])
    return "\n".join(lines) + "\n", gold


def _js_file(documented: bool) -> tuple[str, list[dict]]:
    lines: list[str] = ["'use strict';", ""]
    gold = []
    for name, doc, body in JS_FUNCS:
        doc_start = len(lines) + 1
        if documented:
            lines.extend(["/**", f" * {doc}", " */"])
        start = len(lines) + 1
        lines.append(f"function {name}(cb, wait, amount) {{")
        lines.extend("  " + b for b in body)
        lines.append("}")
        gold.append(
            {
                "name": name,
                "query": doc,
                "start_line": doc_start if documented else start,
                "end_line": len(lines),
            }
        )
        lines.append("")
    lines.append("module.exports = { debounceCallback, formatCurrency };")
    return "\n".join(lines) + "\n", gold


def make_fake_corpus(tmp: Path) -> tuple[Path, Path, Path]:
    """A prepared corpus as shared/eval/corpus.py leaves it, with its corpora TOML, a benchmark
    TOML that does not name it, and the download cache. Returns (train toml, eval toml, cache)."""
    corpus, _ = prepare.eval_modules()
    train_toml = tmp / "train.toml"
    train_toml.write_text(
        "[settings]\nmax_queries = 1000\n\n[corpus.fakepkg]\nsource = 'pypi'\n"
        "package = 'fakepkg-for-tests'\nversion = '0.0.1'\nroot = 'fakepkg-0.0.1'\n"
        "notes = 'MIT'\n"
    )
    eval_toml = tmp / "eval.toml"
    eval_toml.write_text(
        "[corpus.benchmarked]\nsource = 'pypi'\npackage = 'benchmarked'\nversion = '1.0'\n"
    )
    cache = tmp / "eval-cache"
    out = cache / "prepared" / "fakepkg"
    queries: dict[str, list[dict]] = {"stripped": [], "unstripped": []}
    for variant, documented in (("stripped", False), ("unstripped", True)):
        for rel, maker in (("fakepkg/config.py", _python_file), ("web/util.js", _js_file)):
            text, gold = maker(documented)
            dest = out / variant / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
            lang = "python" if rel.endswith(".py") else "javascript"
            queries[variant].extend(dict(g, path=rel, language=lang) for g in gold)
    for variant, name in (
        ("stripped", "queries.jsonl"),
        ("unstripped", "queries.unstripped.jsonl"),
    ):
        with open(out / name, "w") as fh:
            for i, q in enumerate(queries[variant]):
                fh.write(json.dumps({"id": f"fakepkg-{i:03d}", **q}) + "\n")
    settings, corpora = corpus.load_corpora(train_toml)
    meta = {
        "key": corpus._prep_key(corpora["fakepkg"], settings),
        "name": "fakepkg",
        "stats": {"queries": len(queries["stripped"])},
    }
    (out / "meta.json").write_text(json.dumps(meta))
    return train_toml, eval_toml, cache


def read_pairs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_prepare_and_train_end_to_end(tmp_path: Path) -> None:
    """`python -m training.run` on the tiny corpus: pairs, 2 steps, a loadable peft adapter
    that differs from the base model."""
    train_toml, eval_toml, cache = make_fake_corpus(tmp_path)
    pairs_dir, out = tmp_path / "pairs", tmp_path / "adapter"
    cmd = [
        sys.executable,
        "-m",
        "training.run",
        "--corpora", str(train_toml),
        "--eval-corpora", str(eval_toml),
        "--eval-cache", str(cache),
        "--cache", str(pairs_dir),
        "--no-fetch",
        "--heldout-fraction", "0.3",
        "--unstripped-fraction", "0.3",
        "--out", str(out),
        "--steps", "2",
        "--batch-size", "4",
        "--eval-every", "1",
        "--eval-pairs", "4",
        "--min-delta", "-1",  # every evaluation counts as best: the saved adapter is trained
        "--lr", "1e-3",
        "--no-progress",
        "--max-minutes", "5",
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    manifest = json.loads((pairs_dir / "manifest.json").read_text())
    stats = manifest["corpora"]["fakepkg"]
    assert stats["pairs"] + stats["skipped_no_chunk"] == len(PY_FUNCS) + 1 + len(JS_FUNCS)
    assert stats["pairs"] >= len(PY_FUNCS) + len(JS_FUNCS)
    assert set(manifest["totals"]["languages"]) == {"python", "javascript"}
    pairs = read_pairs(pairs_dir / "pairs.jsonl")
    assert len(pairs) == stats["pairs"]
    assert {p["variant"] for p in pairs} <= {"stripped", "unstripped"}
    for p in pairs:  # the passage is the chunk's embed text: the header, then the code
        assert p["positive"].startswith(p["language"])
        assert p["name"].split(".")[-1] in p["positive"]
        if p["variant"] == "stripped":
            assert p["query"] not in p["positive"]

    log = json.loads((out / "training_log.json").read_text())
    assert log["steps"] == 2 and log["finished"]
    assert log["pairs"]["train"] + log["pairs"]["heldout"] == len(pairs)
    assert [e["step"] for e in log["evals"]] == [0, 1, 2]
    assert {"heldout_loss", "mrr", "r1", "temperature"} <= set(log["evals"][-1])
    assert not (out / "README.md").exists()  # peft's template card is not left behind

    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from codesearch.embed.minilm.files import packaged_minilm_dir

    weights = load_file(str(out / "adapter_model.safetensors"))
    assert any("intermediate.dense.lora_B" in k for k in weights)
    assert any("attention.self.query.lora_A" in k for k in weights)
    assert not any("pooler" in k for k in weights)
    assert any(float(v.abs().max()) > 0 for k, v in weights.items() if "lora_B" in k)
    folder = packaged_minilm_dir()
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    batch = tok(["read the configuration file"], return_tensors="pt")
    base = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.no_grad():
        before = base(**batch).last_hidden_state.clone()
        tuned = PeftModel.from_pretrained(base, str(out)).eval()
        after = tuned(**batch).last_hidden_state
    assert after.shape == before.shape
    assert not torch.allclose(after, before)


def test_heldout_split_is_stable(tmp_path: Path) -> None:
    """The split is a hash of corpus/path/name: the same for every seed and option, on every
    run, and about the fraction asked for."""
    names = [("pkg", f"src/m{i % 37}.py", f"f{i}") for i in range(4000)]
    first = [prepare.is_heldout(*n) for n in names]
    assert first == [prepare.is_heldout(*n) for n in names]
    assert 0.04 < sum(first) / len(first) < 0.06
    # prepare's pairs carry that flag, whatever the seed (which only picks the variants)
    train_toml, eval_toml, cache = make_fake_corpus(tmp_path)
    flags = []
    for seed in (0, 1):
        opts = prepare.Options(heldout_fraction=0.3, unstripped_fraction=0.5, seed=seed)
        out = tmp_path / f"pairs-{seed}"
        prepare.prepare_all(train_toml, eval_toml, out, opts, fetch=False, eval_cache=str(cache))
        pairs = read_pairs(out / "pairs.jsonl")
        for p in pairs:
            assert p["heldout"] == prepare.is_heldout(p["corpus"], p["path"], p["name"], 0.3)
        flags.append({(p["path"], p["name"]): p["heldout"] for p in pairs})
    assert flags[0] == flags[1]


def test_hard_negatives_are_never_the_positive(tmp_path: Path) -> None:
    train_toml, eval_toml, cache = make_fake_corpus(tmp_path)
    out = tmp_path / "pairs"
    opts = prepare.Options(negatives=3, unstripped_fraction=0.5)
    prepare.prepare_all(train_toml, eval_toml, out, opts, fetch=False, eval_cache=str(cache))
    pairs = read_pairs(out / "pairs.jsonl")
    long = [p for p in pairs if p["name"] == "load_all_plugins"]
    assert long, "the long function makes a pair"
    assert "(part 1/" in long[0]["positive"]  # a split definition gives its first part
    assert any(p["negatives"] for p in pairs)
    for p in pairs:
        assert len(p["negatives"]) <= 3
        for n in p["negatives"]:
            assert n["text"] != p["positive"]
            if n["path"] == p["path"]:
                # never a part of the gold function (its later parts share the query's words)
                assert n["name"] != p["name"]
                lo, hi = p["positive_lines"]
                assert n["lines"][1] < lo or n["lines"][0] > hi


def test_benchmark_corpora_are_refused(tmp_path: Path) -> None:
    train_toml, _, cache = make_fake_corpus(tmp_path)
    clash = tmp_path / "eval-clash.toml"
    clash.write_text(
        "[corpus.other-name]\nsource = 'pypi'\npackage = 'fakepkg-for-tests'\nversion = '9'\n"
    )
    with pytest.raises(SystemExit, match="benchmark corpora: fakepkg"):
        prepare.prepare_all(
            train_toml, clash, tmp_path / "p", prepare.Options(), fetch=False, eval_cache=str(cache)
        )
