"""Serve this package's REST API (ModelHub's entry point: `python run.py` in /contrib_src)."""

import os

from inference import Model
from modelhubapi import webservice


def main() -> None:
    webservice.start(Model(), os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    main()
