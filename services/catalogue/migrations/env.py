from services.catalogue.models import Base
from services.database.alembic_env import run_migrations

run_migrations(Base.metadata)
