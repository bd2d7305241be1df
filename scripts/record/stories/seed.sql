-- Seed data for the verifier stories (scripts/record/stories/), applied after demo/seed.sql by
-- scripts/record-pcaps.sh through the Unix socket, before any capture starts.
--
-- n-plus-one: customer 7 has 12 orders (101-112), customer 8 has 2 (113-114); every order has
-- 1 to 3 order_items with numeric skus 1000-1019 (the catalog's /products/{sku}). The demo's rows
-- (orders 40-43, customer_id NULL) are unchanged.
ALTER TABLE orders ADD COLUMN customer_id integer;

INSERT INTO orders (id, customer, total, status, customer_id)
SELECT id, CASE WHEN id <= 112 THEN 'grace' ELSE 'heidi' END, 10 + (id % 7) * 5.25, 'shipped',
       CASE WHEN id <= 112 THEN 7 ELSE 8 END
FROM generate_series(101, 114) AS id;

CREATE TABLE order_items (
  order_id integer NOT NULL REFERENCES orders (id),
  sku      text    NOT NULL,
  qty      integer NOT NULL
);
INSERT INTO order_items (order_id, sku, qty)
SELECT o.id, (1000 + (o.id * 7 + n) % 20)::text, 1 + (o.id + n) % 3
FROM orders o, generate_series(1, 1 + o.id % 3) AS n
WHERE o.customer_id IS NOT NULL
ORDER BY o.id, n;
