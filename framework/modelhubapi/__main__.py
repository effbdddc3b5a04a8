"""`python -m modelhubapi ...`: the command line (see modelhubapi.cli)."""

from modelhubapi.cli import main

raise SystemExit(main(prog="python -m modelhubapi"))
