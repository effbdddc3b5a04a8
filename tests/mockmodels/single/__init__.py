"""A single-input package with two outputs: a label list and an array (a mask)."""
