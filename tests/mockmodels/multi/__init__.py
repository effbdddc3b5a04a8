"""A multi-input package: two PNG inputs, `first` and `second`, one label-list output."""
