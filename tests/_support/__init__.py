"""Test helpers shared by test areas (importable as `_support` with tests/ on sys.path)."""
