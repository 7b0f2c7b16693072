"""Database access shared by every service: engines, transactions and migrations."""

from services.database.bootstrap import DatabaseUnavailable, open_database
from services.database.engine import Database
from services.database.migrations import upgrade_to_head

__all__ = ["Database", "DatabaseUnavailable", "open_database", "upgrade_to_head"]
