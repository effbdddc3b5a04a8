"""ModelHub's Python API for this package: `from modelapi import model` (notebooks, scripts).

Importable from any current directory: the package folder is taken from this file.
"""

import os

from inference import Model
from modelhubapi import ModelHubAPI

model = ModelHubAPI(Model(), os.path.dirname(os.path.abspath(__file__)))
