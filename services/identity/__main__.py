"""`python -m services.identity` serves; `rotate-keys` and `reencrypt-keys` act on its
signing keys (see `services.identity.key_commands`)."""

import sys

from services.identity.key_commands import COMMANDS, run_command
from services.identity.server import main

if len(sys.argv) == 2 and sys.argv[1] in COMMANDS:
    run_command(sys.argv[1])
elif sys.argv[1:]:
    sys.exit(f"usage: python -m services.identity [{' | '.join(COMMANDS)}]")
else:
    main()
