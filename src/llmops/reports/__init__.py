"""Typed records for the files one stage or flow hands to another: one writer per file, read back through the same model."""
