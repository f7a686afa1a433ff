"""The session database: engine, schema and migrations, message codec, and the SQL history store."""
