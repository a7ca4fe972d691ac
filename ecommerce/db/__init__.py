"""Database routing: the optional read replica (`DATABASE_REPLICA_URL`)."""
