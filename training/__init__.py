"""Training the code adapter of the CPU model (issue 15): pairs, LoRA training, one command.

Not part of the installed package: run from the repository root (``python -m training.run``).
See training/README.md.
"""
