"""The tensor language: a tensor program written as a sentence of tokens (prompt + decisions)."""
