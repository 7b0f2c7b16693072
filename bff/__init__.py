"""The backend-for-frontend: the mobile app's HTTP/JSON API over the gRPC services.

`create_app(settings)` builds the FastAPI app; `python -m bff` serves it (BFF_* settings).
"""

from bff.app import create_app
from bff.config import BffSettings

__all__ = ["BffSettings", "create_app"]
