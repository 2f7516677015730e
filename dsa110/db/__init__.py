"""Database layer: SQLAlchemy Core tables, the async engine, migrations."""
