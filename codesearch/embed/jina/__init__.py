"""The jina-embeddings-v4 backend (GPU): Qwen2.5-VL + task LoRA adapters, loaded by our own
code (no trust_remote_code). Importing this package is cheap; torch comes with ``build``.

- backend.py: the registry entry (where the weights are, `codesearch models`, ``auto``, load,
  download); no torch
- build.py: ``load_jina_v4`` (a folder or a cached HF id) and ``random_jina_v4`` (benchmarks):
  device, dtype, attention, the notices (notices.py); it imports the embedder
- embedder.py: ``JinaV4Embedder``; late.py (late chunking) and vision.py (pictures) use its
  public part and never import it
- load.py names the loader's steps: files.py, config.py, weights.py, adapters.py, random.py
"""

from codesearch.embed.jina.backend import BACKEND

__all__ = ["BACKEND"]
