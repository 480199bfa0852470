"""The relational job ledger: tables, engine, migrations, the batch writer and the reads."""
