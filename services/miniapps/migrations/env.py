from services.database.alembic_env import run_migrations
from services.miniapps.models import Base

run_migrations(Base.metadata)
