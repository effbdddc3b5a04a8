"""ModelHub's engine API: `ModelHubAPI` (Python) and `ModelHubRESTAPI` (Flask).

Contributor packages and ModelHub's tools import these two names from here, so they are the
package's public face; `webservice.start` serves the REST API in production.
"""

from .pythonapi import ModelHubAPI
from .restapi import ModelHubRESTAPI

__all__ = ["ModelHubAPI", "ModelHubRESTAPI"]
