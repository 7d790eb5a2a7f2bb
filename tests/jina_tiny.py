"""A tiny, randomly initialised checkpoint in exactly the jina-embeddings-v4 folder layout.

`write_tiny_checkpoint(folder)` writes what the published checkpoint holds (see
../shared/JINA_V4.md), with tiny sizes:

- ``config.json``: a flat Qwen2.5-VL config (text fields at the top level, ``vision_config``
  nested, ``rope_scaling`` with ``mrope_section``) plus the Jina extras, and no ``model_type``.
- base weights in the OLD Qwen2.5-VL key layout (``model.layers.N...``, ``model.embed_tokens``,
  ``model.norm``, ``visual.blocks.N...``, ``visual.merger...``) plus the top-level
  ``multi_vector_projector.{weight,bias}``, split over two bf16 shards with
  ``model.safetensors.index.json``; no ``lm_head`` (tied).
- ``adapters/adapter_config.json`` + ``adapters/adapter_model.safetensors``: one LoRA file with
  the three tasks under their names, random non-zero A and B.
- a byte-level BPE tokenizer trained here, with the Qwen special tokens at their real ids
  (``<|endoftext|>`` 151643 ... ``<|video_pad|>`` 151656); the BPE vocabulary is padded with
  unreachable filler tokens up to 151643 so the ids line up, and the embedding has the real
  vocab size 151936. ``preprocessor_config.json`` holds the Qwen2-VL image processor fields.

The weights come from a current-layout ``Qwen2_5_VLModel`` built from the config in code, whose
keys are renamed to the old layout when saved, so loading it exercises the key remap.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from codesearch.embed.jina.random import LORA_TARGETS, QWEN_FIRST_SPECIAL_ID, QWEN_SPECIAL_TOKENS

TASKS = ("retrieval", "text-matching", "code")
HIDDEN = 64
LAYERS = 2
HEADS = 4  # head_dim 16: mrope_section sums to 8
KV_HEADS = 2
INTERMEDIATE = 128
PROJ_DIM = 16
MATRYOSHKA = [8, 16, 32, 64]
LORA_R = 4
LORA_ALPHA = 8
VOCAB = 151936  # the real embedding size (151643 BPE tokens + specials + padding)
BPE_SIZE = QWEN_FIRST_SPECIAL_ID  # ids below this are the BPE vocabulary, as in Qwen2's tokenizer

# The Qwen2 special tokens at their real ids (151643 onwards).
SPECIAL_TOKENS = QWEN_SPECIAL_TOKENS
SPECIAL_IDS = {tok: BPE_SIZE + i for i, tok in enumerate(SPECIAL_TOKENS)}

LORA_MODULES = LORA_TARGETS

SHARD_NAMES = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")

_CORPUS = [
    "def fetch_with_retry(url, attempts=5):\n    return http_get(url)\n",
    "class UserRepository:\n    def find_by_email(self, email): ...\n",
    'fn main() { println!("hello"); }\n',
    "function parseConfig(path) { return JSON.parse(read(path)); }\n",
    "Query: where is authentication handled?",
    "Passage: the retry helper backs off exponentially.",
    "# Installation\n\nRun pip install codesearch to get started.",
    "Convert a hex colour string to an RGB tuple.",
]


def tiny_config() -> dict[str, object]:
    """The config.json of the tiny checkpoint (flat Qwen2.5-VL fields + Jina extras)."""
    return {
        "architectures": ["JinaEmbeddingsV4Model"],
        "auto_map": {
            "AutoConfig": "configuration_jina_embeddings_v4.JinaEmbeddingsV4Config",
            "AutoModel": "modeling_jina_embeddings_v4.JinaEmbeddingsV4Model",
        },
        "attention_dropout": 0.0,
        "bos_token_id": SPECIAL_IDS["<|endoftext|>"],
        "eos_token_id": SPECIAL_IDS["<|im_end|>"],
        "vision_start_token_id": SPECIAL_IDS["<|vision_start|>"],
        "vision_end_token_id": SPECIAL_IDS["<|vision_end|>"],
        "vision_token_id": SPECIAL_IDS["<|vision_pad|>"],
        "image_token_id": SPECIAL_IDS["<|image_pad|>"],
        "video_token_id": SPECIAL_IDS["<|video_pad|>"],
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 128000,
        "max_window_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-6,
        "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.52.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
        "vision_config": {
            "depth": 2,
            "hidden_act": "silu",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "in_chans": 3,
            "out_hidden_size": HIDDEN,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
        },
        # Jina extras
        "task_names": list(TASKS),
        "matryoshka_dims": list(MATRYOSHKA),
        "truncate_dim": None,
        "multi_vector_projector_dim": PROJ_DIM,
        "single_vector_pool_strategy": "mean",
    }


def _current_layout_state_dict(config: dict[str, object], seed: int) -> dict[str, torch.Tensor]:
    """Random weights of a current-layout Qwen2_5_VLModel built from `config`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    fields = {k: v for k, v in config.items() if k not in _NOT_QWEN}
    torch.manual_seed(seed)
    model = Qwen2_5_VLModel(Qwen2_5_VLConfig(**fields))
    # Larger-than-default weights: random inputs then give clearly different outputs per task.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
            elif "norm" in name or "ln_" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


_NOT_QWEN = {
    "architectures",
    "auto_map",
    "torch_dtype",
    "transformers_version",
    "task_names",
    "matryoshka_dims",
    "truncate_dim",
    "multi_vector_projector_dim",
    "single_vector_pool_strategy",
}


def to_old_layout(key: str) -> str:
    """Current Qwen2_5_VLModel key -> the pre-4.52 key the published shards use."""
    if key.startswith("language_model."):
        return "model." + key[len("language_model.") :]
    if key.startswith("visual."):
        return key
    raise ValueError(f"unexpected key {key}")


def _write_base_weights(folder: Path, config: dict[str, object], seed: int) -> None:
    current = _current_layout_state_dict(config, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    old = {to_old_layout(k): v.to(torch.bfloat16).contiguous() for k, v in current.items()}
    old["multi_vector_projector.weight"] = (torch.randn(PROJ_DIM, HIDDEN, generator=gen) * 0.1).to(
        torch.bfloat16
    )
    old["multi_vector_projector.bias"] = (torch.randn(PROJ_DIM, generator=gen) * 0.02).to(
        torch.bfloat16
    )
    # shard 1: the language model; shard 2: the vision tower and the projector
    shards: list[dict[str, torch.Tensor]] = [{}, {}]
    for key, tensor in old.items():
        shards[0 if key.startswith("model.") else 1][key] = tensor
    weight_map: dict[str, str] = {}
    total = 0
    for name, shard in zip(SHARD_NAMES, shards, strict=True):
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        for key, tensor in shard.items():
            weight_map[key] = name
            total += tensor.numel() * tensor.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _lora_shapes() -> dict[str, tuple[int, int]]:
    """Module path (as PEFT names it under the wrapper) -> (in_features, out_features)."""
    inter, kv = INTERMEDIATE, HIDDEN // HEADS * KV_HEADS
    dims = {
        "self_attn.q_proj": (HIDDEN, HIDDEN),
        "self_attn.k_proj": (HIDDEN, kv),
        "self_attn.v_proj": (HIDDEN, kv),
        "self_attn.o_proj": (HIDDEN, HIDDEN),
        "mlp.gate_proj": (HIDDEN, inter),
        "mlp.up_proj": (HIDDEN, inter),
        "mlp.down_proj": (inter, HIDDEN),
    }
    out = {
        f"model.language_model.layers.{layer}.{mod}": dims[mod]
        for layer in range(LAYERS)
        for mod in LORA_MODULES
    }
    out["multi_vector_projector"] = (HIDDEN, PROJ_DIM)
    return out


def _write_adapters(folder: Path, seed: int) -> None:
    adapters = folder / "adapters"
    adapters.mkdir()
    adapter_config = {
        "alpha_pattern": {},
        "base_model_name_or_path": "jinaai/jina-embeddings-v4",
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": 0.1,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": LORA_R,
        "rank_pattern": {},
        "target_modules": (
            "(.*(model).*(down_proj|gate_proj|up_proj|k_proj|q_proj|v_proj|o_proj).*$"
            "|.*(multi_vector_projector).*$)"
        ),
        "task_type": "FEATURE_EXTRACTION",
        "use_dora": False,
        "use_rslora": False,
    }
    (adapters / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
    gen = torch.Generator().manual_seed(seed + 2)
    tensors: dict[str, torch.Tensor] = {}
    for task in TASKS:
        for module, (fan_in, fan_out) in _lora_shapes().items():
            a = torch.randn(LORA_R, fan_in, generator=gen) / fan_in**0.5
            b = torch.randn(fan_out, LORA_R, generator=gen) * 0.1
            prefix = f"base_model.model.{module}"
            tensors[f"{prefix}.lora_A.{task}.weight"] = a.to(torch.bfloat16)
            tensors[f"{prefix}.lora_B.{task}.weight"] = b.to(torch.bfloat16)
    save_file(tensors, str(adapters / "adapter_model.safetensors"), metadata={"format": "pt"})


def _write_tokenizer(folder: Path) -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    data = json.loads(tok.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    # Pad the BPE vocabulary with tokens no merge can produce, so the specials sit at 151643+.
    for i in range(len(vocab), BPE_SIZE):
        vocab[f"<|filler_{i}|>"] = i
    data["added_tokens"] = [
        {
            "id": tid,
            "content": content,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for content, tid in SPECIAL_IDS.items()
    ]
    full = Tokenizer.from_str(json.dumps(data))
    assert full.token_to_id("<|image_pad|>") == SPECIAL_IDS["<|image_pad|>"]
    full.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "add_prefix_space": False,
                "bos_token": None,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "errors": "replace",
                "model_max_length": 32768,
                "split_special_tokens": False,
                "tokenizer_class": "Qwen2Tokenizer",
                "unk_token": None,
            },
            indent=2,
        )
    )
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, indent=2)
    )


def _write_preprocessor(folder: Path) -> None:
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "do_convert_rgb": True,
                "do_normalize": True,
                "do_rescale": True,
                "do_resize": True,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_processor_type": "Qwen2VLImageProcessor",
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "max_pixels": 602112,
                "merge_size": 2,
                "min_pixels": 3136,
                "patch_size": 14,
                "processor_class": "Qwen2_5_VLProcessor",
                "resample": 3,
                "rescale_factor": 0.00392156862745098,
                "temporal_patch_size": 2,
            },
            indent=2,
        )
    )


def write_tiny_checkpoint(folder: Path, *, seed: int = 0) -> Path:
    """Write the tiny jina-v4-layout checkpoint into `folder` (created) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_config()
    _write_base_weights(folder, config, seed)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    _write_adapters(folder, seed)
    _write_tokenizer(folder)
    _write_preprocessor(folder)
    return folder
