"""`python -m services.identity` serves; `python -m services.identity rotate-keys` rotates.

Rotation announces the new key at once and signs with it only after verifiers' key
caches have surely refreshed (longer than their 10-minute maximum age), so no valid
token is ever refused during a rotation.
"""

import sys
from datetime import timedelta

from services.identity.config import IdentitySettings
from services.identity.server import main, open_signing_keys
from services.runtime.clock import SystemClock
from services.runtime.settings import load_settings

if sys.argv[1:] == ["rotate-keys"]:
    keys = open_signing_keys(load_settings(IdentitySettings), SystemClock())
    new = keys.rotate(activate_in=timedelta(minutes=11))
    print(f"new signing key {new.kid} published; it signs from {new.activate_time.isoformat()}")
elif sys.argv[1:]:
    sys.exit("usage: python -m services.identity [rotate-keys]")
else:
    main()
