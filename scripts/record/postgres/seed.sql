-- Seed data for the PostgreSQL fixtures (scripts/record/postgres.mjs), loaded over the Unix socket
-- before any capture starts. Fixed values only, so query results are the same on every run.
CREATE DATABASE shop;
\connect shop

CREATE TABLE orders (
  id         int PRIMARY KEY,
  customer   text NOT NULL,
  paid       boolean NOT NULL,
  created_at timestamptz NOT NULL,
  total      numeric(12,2) NOT NULL,
  ref        uuid NOT NULL,
  note       bytea
);
INSERT INTO orders
SELECT g, 'customer-' || lpad(g::text, 3, '0'), g % 2 = 0,
       timestamptz '2025-03-04 10:00:00+00' + g * interval '1 hour',
       g * 10.25, md5('order-' || g)::uuid, decode(lpad(to_hex(g * 4099), 6, '0'), 'hex')
FROM generate_series(1, 20) g;

CREATE TABLE events (
  id      serial PRIMARY KEY,
  kind    text NOT NULL,
  payload jsonb,
  at      timestamptz NOT NULL DEFAULT timestamptz '2025-03-04 12:00:00+00'
);

-- raw-client pipeline target
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL CHECK (qty >= 0));

-- psql COPY target
CREATE TABLE stock (sku text PRIMARY KEY, qty int NOT NULL, price numeric(8,2) NOT NULL);
INSERT INTO stock VALUES ('A-100', 5, 9.99), ('B-200', 12, 24.50), ('C-300', 0, 3.75);

-- the password-auth users (pg_hba: md5 for app_md5, scram-sha-256 for app_scram)
SET password_encryption = 'md5';
CREATE ROLE app_md5 LOGIN PASSWORD 'md5-secret';
SET password_encryption = 'scram-sha-256';
CREATE ROLE app_scram LOGIN PASSWORD 'scram-secret';
GRANT SELECT ON orders TO app_md5, app_scram;

CREATE DATABASE bench;
