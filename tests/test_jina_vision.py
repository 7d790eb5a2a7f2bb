"""jina-v4 image embeddings, on the tiny checkpoint in the published layout (tests/jina_tiny.py).

The pooling is checked against an independent reference: a plain
``Qwen2_5_VLForConditionalGeneration`` with the old keys renamed and the task LoRA merged by
hand, the image processor made from preprocessor_config.json by hand, the prompt expanded as a
string, ``output_hidden_states`` and the vision span found in the ids. Everything runs on the
CPU with one torch thread; the checkpoint is built once for the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from fake_embedder import FakeEmbedder  # noqa: E402
from jina_tiny import LORA_ALPHA, LORA_R, SHARD_NAMES, SPECIAL_IDS, write_tiny_checkpoint  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from codesearch.embed.base import Embedder, Unsupported  # noqa: E402
from codesearch.embed.jina.build import load_jina_v4  # noqa: E402
from codesearch.embed.jina.embedder import JinaV4Embedder  # noqa: E402
from codesearch.embed.jina.vision import IMAGE_PROMPT, take_batch  # noqa: E402
from codesearch.types import BadInput, CodesearchError, ModelUnavailable  # noqa: E402

SIZES = [(56, 56), (112, 84), (84, 112), (70, 60), (100, 100)]  # (width, height)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("jina-vision") / "jina-tiny")


def _load(folder: Path, **kw: Any) -> JinaV4Embedder:
    return load_jina_v4(folder, device="cpu", notice=lambda _msg: None, threads=1, **kw)


@pytest.fixture(scope="module")
def emb(tiny: Path) -> JinaV4Embedder:
    return _load(tiny)


def _images() -> list[Image.Image]:
    """Random pictures of different sizes (and so of different token counts)."""
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return _images()


# -- the reference ------------------------------------------------------------------------------


def _reference_model(folder: Path, task: str) -> Any:
    """Qwen2_5_VLForConditionalGeneration with the checkpoint's weights and ``task``'s LoRA
    merged into the language model by hand ((alpha / r) * B @ A); no loader code."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = json.loads((folder / "config.json").read_text())
    jina = {"task_names", "matryoshka_dims", "truncate_dim", "multi_vector_projector_dim"}
    jina |= {"single_vector_pool_strategy", "architectures", "auto_map", "torch_dtype"}
    jina |= {"transformers_version"}
    model = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(**{k: v for k, v in config.items() if k not in jina})
    )
    model.eval()
    state: dict[str, torch.Tensor] = {}
    for shard in SHARD_NAMES:
        state.update({k: v.float() for k, v in load_file(str(folder / shard)).items()})
    del state["multi_vector_projector.weight"], state["multi_vector_projector.bias"]
    adapter = load_file(str(folder / "adapters" / "adapter_model.safetensors"))
    assert not any(".visual." in k for k in adapter)  # no LoRA on the vision tower
    merged = 0
    for key in list(state):
        target = key.removesuffix(".weight").replace("model.", "model.language_model.", 1)
        a = adapter.get(f"base_model.model.{target}.lora_A.{task}.weight")
        if a is not None:
            b = adapter[f"base_model.model.{target}.lora_B.{task}.weight"]
            state[key] = state[key] + (LORA_ALPHA / LORA_R) * (b.float() @ a.float())
            merged += 1
    assert merged > 0
    renamed = {
        ("model." + k if k.startswith("visual.") else "model.language_model." + k[6:]): v
        for k, v in state.items()
    }
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}  # tied to the embeddings
    return model


def _reference_vectors(folder: Path, task: str, images: list[Image.Image]) -> np.ndarray:
    """One image at a time: processor -> expanded prompt -> hidden_states[-1] -> span mean."""
    from tokenizers import Tokenizer
    from transformers import Qwen2VLImageProcessorPil

    pre = json.loads((folder / "preprocessor_config.json").read_text())
    processor = Qwen2VLImageProcessorPil(
        min_pixels=pre["min_pixels"],
        max_pixels=pre["max_pixels"],
        patch_size=pre["patch_size"],
        merge_size=pre["merge_size"],
        temporal_patch_size=pre["temporal_patch_size"],
        image_mean=pre["image_mean"],
        image_std=pre["image_std"],
    )
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    model = _reference_model(folder, task)
    out = []
    for image in images:
        inputs = processor([image], return_tensors="pt")
        grid = inputs["image_grid_thw"]
        n = int(grid.prod()) // pre["merge_size"] ** 2
        prompt = IMAGE_PROMPT.replace("<|image_pad|>", "<|image_pad|>" * n)
        ids = torch.tensor([tokenizer.encode(prompt).ids])
        assert int((ids == SPECIAL_IDS["<|image_pad|>"]).sum()) == n
        with torch.no_grad():
            hidden = model(
                input_ids=ids,
                pixel_values=inputs["pixel_values"],
                image_grid_thw=grid,
                mm_token_type_ids=(ids == SPECIAL_IDS["<|image_pad|>"]).int(),
                output_hidden_states=True,
            ).hidden_states[-1][0]  # after the final norm
        first = int((ids[0] == SPECIAL_IDS["<|vision_start|>"]).nonzero()[0])
        last = int((ids[0] == SPECIAL_IDS["<|vision_end|>"]).nonzero()[0])
        assert last == first + n + 1
        pooled = hidden[first : last + 1].mean(dim=0)
        out.append((pooled / pooled.norm()).numpy())
    return np.stack(out)


@pytest.mark.parametrize("task", ["code", "retrieval"])
def test_vision_span_pooling_matches_an_independent_reference(
    tiny: Path, emb: JinaV4Embedder, images: list[Image.Image], task: str
) -> None:
    want = _reference_vectors(tiny, task, images)
    got = emb.embed_images(images, task=task)  # one batch of five sizes, right-padded
    assert got.shape == (len(images), 64) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_embed_image_command_matches_the_reference(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`codesearch embed --image FILE --json --dim 16` (the picture rendered by pictures.py and
    embedded by the backend's image method, as the indexer does) gives the independent
    reference's vector for the file's pixels, task retrieval, Matryoshka-cut to 16."""
    from codesearch.cli import main
    from codesearch.embed.jina import build

    monkeypatch.setattr(build, "cpu_count", lambda: 1)  # the registry's load: one thread too
    picture = tmp_path / "diagram.png"
    _images()[1].save(picture)
    argv = ["embed", "--image", str(picture), "--model", str(tiny), "--json", "--dim", "16"]
    assert main(argv) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    full = _reference_vectors(tiny, "retrieval", [Image.open(picture).convert("RGB")])[0]
    assert (out["task"], out["dim"], len(out["vector"])) == ("retrieval", 16, 16)
    assert out["model"].startswith("jina-v4:jina-tiny@") and out["model"].endswith(":d16")
    np.testing.assert_allclose(out["vector"], full[:16] / np.linalg.norm(full[:16]), atol=1e-5)


# -- batching, Matryoshka, tasks ----------------------------------------------------------------


def test_pixel_budget_batches_match_one_by_one_in_input_order(
    tiny: Path, images: list[Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _load(tiny, image_batch_pixels=20_000)  # 2-3 of these images per forward pass
    assert small.image_batch_pixels == 20_000
    one_by_one = np.stack([small.embed_images([image])[0] for image in images])
    seen: list[list[tuple[int, int]]] = []
    real = small.forward_images

    def spy(vision: Any, batch: list[Image.Image]) -> np.ndarray:
        seen.append([image.size for image in batch])
        return real(vision, batch)

    monkeypatch.setattr(small, "forward_images", spy)
    batched = small.embed_images(images)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert 1 < len(seen) < len(images) and sorted(s for b in seen for s in b) == sorted(SIZES)
    for batch in seen:  # processed pixels within the budget, or one image alone
        resized = [small.vision().resized(Image.new("RGB", size)) for size in batch]
        assert len(batch) == 1 or sum(h * w for h, w in resized) <= 20_000
    reordered = small.embed_images(images[::-1])
    np.testing.assert_allclose(reordered, one_by_one[::-1], atol=1e-5)


def test_take_batch() -> None:
    assert take_batch([9, 5, 5, 1], 10) == 1
    assert take_batch([5, 5, 1], 10) == 2
    assert take_batch([50, 1], 10) == 1  # an oversized image goes alone
    assert take_batch([1, 1, 1], 10) == 3


def test_out_of_memory_halves_the_pixel_budget(
    tiny: Path, images: list[Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _load(tiny, image_batch_pixels=10**8)
    want = model.embed_images(images)
    real = model.forward_images
    sizes: list[int] = []

    def flaky(vision: Any, batch: list[Image.Image]) -> np.ndarray:
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(vision, batch)

    monkeypatch.setattr(model, "forward_images", flaky)
    np.testing.assert_allclose(model.embed_images(images), want, atol=1e-5)
    assert sizes[0] == len(images) and model.image_batch_pixels < 10**8

    def always(vision: Any, batch: list[Image.Image]) -> np.ndarray:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(model, "forward_images", always)
    with pytest.raises(CodesearchError, match=r"one image of \d+ pixels; lower max_image_pixels"):
        model.embed_images(images)


def test_matryoshka_views_truncate_image_vectors(
    tiny: Path, emb: JinaV4Embedder, images: list[Image.Image]
) -> None:
    full = emb.embed_images(images)
    for d in (8, 16, 32):
        prefix = full[:, :d] / np.linalg.norm(full[:, :d], axis=1, keepdims=True)
        view = emb.with_dim(d)
        assert view.supports_images
        got = view.embed_images(images)
        assert got.shape == (len(images), d)
        np.testing.assert_allclose(got, prefix, atol=1e-5)
    np.testing.assert_allclose(
        _load(tiny, dim=16).embed_images(images[:2]),
        full[:2, :16] / np.linalg.norm(full[:2, :16], axis=1, keepdims=True),
        atol=1e-5,
    )


def test_the_task_adapter_changes_image_vectors(
    emb: JinaV4Embedder, images: list[Image.Image]
) -> None:
    vectors = {t: emb.embed_images(images[:2], task=t) for t in emb.tasks}
    for a, b in [("code", "retrieval"), ("code", "text-matching"), ("retrieval", "text-matching")]:
        assert np.abs(vectors[a] - vectors[b]).max() > 1e-3, (a, b)
    np.testing.assert_array_equal(emb.embed_images(images[:2]), vectors["code"])  # the default
    emb.set_task("retrieval")
    try:
        np.testing.assert_array_equal(emb.embed_images(images[:2]), vectors["retrieval"])
    finally:
        emb.set_task("code")
    with pytest.raises(BadInput, match="unknown jina-v4 task"):
        emb.embed_images(images[:1], task="classification")


# -- the protocol, sizes, modes, errors ---------------------------------------------------------


def test_images_and_texts_share_the_dim(emb: JinaV4Embedder, images: list[Image.Image]) -> None:
    assert emb.supports_images and not FakeEmbedder().supports_images
    with pytest.raises(Unsupported, match="embeds text only"):
        FakeEmbedder().embed_images(images[:1])
    from codesearch.embed.minilm.embedder import TransformersEmbedder

    assert TransformersEmbedder.supports_images is Embedder.supports_images  # MiniLM: text only
    text = emb.embed_documents(["def parse(): ..."])
    picture = emb.embed_images(images[:1])
    assert text.shape[1] == picture.shape[1] == emb.dim
    empty = emb.embed_images([])
    assert empty.shape == (0, 64) and empty.dtype == np.float32
    assert emb.with_dim(8).embed_images([]).shape == (0, 8)


def test_the_pixel_cap_shrinks_the_grid(tiny: Path, emb: JinaV4Embedder) -> None:
    assert emb.max_image_pixels == 602112  # the checkpoint's max_pixels
    assert emb.image_model_id == emb.model_id + ":px602112"
    big = Image.fromarray(np.random.default_rng(3).integers(0, 256, (168, 224, 3), np.uint8))
    capped = _load(tiny, max_image_pixels=56 * 56 * 2)
    assert capped.max_image_pixels == 6272 and capped.image_model_id.endswith(":px6272")
    full_hw, capped_hw = emb.vision().resized(big), capped.vision().resized(big)
    assert full_hw == (168, 224) and capped_hw[0] * capped_hw[1] <= 6272
    assert capped.vision().image_tokens(*capped_hw) < emb.vision().image_tokens(*full_hw)
    grids: list[list[int]] = []
    vision = capped.vision()
    real = vision.batch

    def spy(batch: list[Image.Image]) -> Any:
        out = real(batch)
        grids.extend(out.grid_thw.tolist())
        return out

    vision.batch = spy  # type: ignore[method-assign]
    vector = capped.embed_images([big])
    assert grids == [[1, capped_hw[0] // 14, capped_hw[1] // 14]]
    assert np.abs(vector - emb.embed_images([big])).max() > 1e-3
    with pytest.raises(BadInput, match="below the checkpoint's min_pixels"):
        _load(tiny, max_image_pixels=1000).embed_images([big])


def test_any_pil_mode_is_converted(emb: JinaV4Embedder, images: list[Image.Image]) -> None:
    gray = images[0].convert("L")
    np.testing.assert_allclose(
        emb.embed_images([gray]), emb.embed_images([gray.convert("RGB")]), atol=1e-6
    )
    transparent = Image.new("RGBA", (56, 56), (10, 200, 30, 0))  # fully transparent: white
    white = Image.new("RGB", (56, 56), (255, 255, 255))
    np.testing.assert_allclose(
        emb.embed_images([transparent]), emb.embed_images([white]), atol=1e-6
    )
    palette = images[1].convert("P")
    assert emb.embed_images([palette]).shape == (1, 64)
    with pytest.raises(BadInput, match="image 1 is a str"):
        emb.embed_images([images[0], "picture.png"])  # type: ignore[list-item]
    with pytest.raises(BadInput, match="aspect ratio"):
        emb.embed_images([Image.new("RGB", (4000, 10))])


def test_a_checkpoint_without_preprocessor_config(tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-images"
    for path in tiny.rglob("*"):
        if path.is_file() and path.name != "preprocessor_config.json":
            target = folder / path.relative_to(tiny)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    model = _load(folder)  # loads: text does not need it
    assert model.embed_documents(["def parse(): ..."]).shape == (1, 64)
    assert not model.supports_images and model.max_image_pixels == 602112
    for pictures in (_images()[:1], []):
        with pytest.raises(ModelUnavailable, match=r"preprocessor_config\.json is missing") as info:
            model.embed_images(pictures)
        assert "\n" not in str(info.value)
    assert model.embed_queries(["where is parsing"]).shape == (1, 64)  # text still works

    (folder / "preprocessor_config.json").write_text("{broken")
    broken = _load(folder)
    with pytest.raises(ModelUnavailable, match=r"preprocessor_config\.json is not valid JSON"):
        broken.embed_images(_images()[:1])
