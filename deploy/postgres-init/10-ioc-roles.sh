#!/bin/sh
# Table step, compose only: the TimescaleDB container's first start creates the two application
# roles that `ioc services up` creates on bare metal, so that ingest logs in as ioc_writer and the
# dashboard as ioc_reader; `ioc db migrate` (run as the image's superuser) then grants them their
# tables. The image runs this once, on an empty volume. It is idempotent, so that
#   docker compose exec timescaledb sh /docker-entrypoint-initdb.d/10-ioc-roles.sh
# also creates the roles on an older volume or applies changed passwords.
#
# No `set -e` or `exit`: the image's entrypoint sources this file when it is not executable, and
# must keep its own shell options. psql's exit status is the script's.

: "${POSTGRES_USER:?POSTGRES_USER is not set (the image sets it)}"
: "${POSTGRES_DB:?POSTGRES_DB is not set (the image sets it)}"
: "${IOC_WRITER_PASSWORD:?set IOC_WRITER_PASSWORD for the timescaledb service}"
: "${IOC_READER_PASSWORD:?set IOC_READER_PASSWORD for the timescaledb service}"

# The passwords reach the server only as psql variables quoted by psql (:'name'); the quoted
# here-document keeps the shell from expanding anything inside the SQL.
psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=writer_password="$IOC_WRITER_PASSWORD" \
    --set=reader_password="$IOC_READER_PASSWORD" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_writer') AS create_writer,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') AS create_reader
\gset
\if :create_writer
CREATE ROLE ioc_writer;
\endif
\if :create_reader
CREATE ROLE ioc_reader;
\endif
ALTER ROLE ioc_writer WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'writer_password';
ALTER ROLE ioc_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO ioc_writer, ioc_reader;
SQL
