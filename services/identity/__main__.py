"""`python -m services.identity` serves; `rotate-keys` and `reencrypt-keys` act on its
signing keys (see `services.identity.key_commands`)."""

import asyncio
import sys

from services.identity.config import IdentitySettings
from services.identity.key_commands import COMMANDS
from services.identity.server import main
from services.runtime.serving import StartupError
from services.runtime.settings import ConfigurationError, load_settings

if len(sys.argv) == 2 and sys.argv[1] in COMMANDS:
    command = sys.argv[1]
    try:
        print(asyncio.run(COMMANDS[command](load_settings(IdentitySettings))))
    except (ConfigurationError, StartupError) as error:
        sys.exit(f"{command}: {error}")
elif sys.argv[1:]:
    sys.exit(f"usage: python -m services.identity [{' | '.join(COMMANDS)}]")
else:
    main()
