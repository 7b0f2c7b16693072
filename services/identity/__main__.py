"""`python -m services.identity` serves; `python -m services.identity rotate-keys` rotates.

Rotation announces the new key at once and signs with it only after verifiers' key
caches have surely refreshed (longer than their 10-minute maximum age), so no valid
token is ever refused during a rotation. It reads the settings the service reads
(`IDENTITY_*`, and `SUPERAPP_DATA_DIR` as the stack sets it) and acts only on keys a
running identity made: pointed anywhere else, it refuses instead of making new ones.
"""

import sys
from datetime import timedelta

from services.identity.config import IdentitySettings
from services.identity.server import main, open_signing_keys
from services.runtime.clock import SystemClock
from services.runtime.serving import StartupError
from services.runtime.settings import ConfigurationError, load_settings

if sys.argv[1:] == ["rotate-keys"]:
    try:
        settings = load_settings(IdentitySettings)
        keys = open_signing_keys(settings, SystemClock(), existing=True)
    except (ConfigurationError, StartupError) as error:
        sys.exit(f"rotate-keys: {error}")
    new = keys.rotate(activate_in=timedelta(minutes=11))
    print(
        f"new signing key {new.kid} published in {keys.directory}; "
        f"it signs from {new.activate_time.isoformat()}"
    )
elif sys.argv[1:]:
    sys.exit("usage: python -m services.identity [rotate-keys]")
else:
    main()
