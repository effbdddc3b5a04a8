"""ModelHub's engine API: `ModelHubAPI` (Python) and `ModelHubRESTAPI` (Flask).

Contributor packages and ModelHub's tools import these two names from here, so they are the
package's public face; `webservice.start` serves the REST API in production. `__version__` is
the installed distribution's version (framework/pyproject.toml).
"""

from .distribution import engine_version
from .pythonapi import ModelHubAPI
from .restapi import ModelHubRESTAPI

__version__ = engine_version()
__all__ = ["ModelHubAPI", "ModelHubRESTAPI", "__version__"]
