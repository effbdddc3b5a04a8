"""Mock package of the web UI and OpenAPI tests: one output of each kind the UI shows."""
