"""Access control for the callback step: users, roles and ward scopes, sessions, display tokens,
login rate limits and the audit log (tables in sql/006_auth.sql)."""
