"""The GPT-2 of the tensor language: checkpoints (sizes, save/load, the shipped model per CPU) and the
constrained generator."""
