"""Table step of the data path: connections, the migration runner and database roles."""
