"""Fuzzing harness for oneinch's input parsers (issue 9). Run: ``python -m fuzz.run --help``."""
