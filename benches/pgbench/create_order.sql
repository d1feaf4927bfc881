-- Database floor for POST /v1/orders with 2 items, written naively: one
-- statement per step, one round trip each (pgbench -M prepared).
-- Products are SKUs '1000001'..'10000NN' (run.sh seeds :nproducts of them,
-- 1e9 units each). The two SKUs are distinct and locked in ascending order,
-- so two clients never deadlock on the same pair.
\set x random(1, :nproducts)
\set y random(1, :nproducts - 1)
\set y CASE WHEN :y >= :x THEN :y + 1 ELSE :y END
\set a 1000000 + least(:x, :y)
\set b 1000000 + greatest(:x, :y)
BEGIN;
UPDATE products SET available = available - 1, reserved = reserved + 1, version = version + 1,
  updated_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
  WHERE sku = :a AND available >= 1 AND currency = 'USD' RETURNING price_minor AS p1 \gset
UPDATE products SET available = available - 1, reserved = reserved + 1, version = version + 1,
  updated_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
  WHERE sku = :b AND available >= 1 AND currency = 'USD' RETURNING price_minor AS p2 \gset
\set total :p1 + :p2
INSERT INTO orders (id, customer_id, status, currency, total_minor, note, version, created_at, updated_at)
  VALUES (gen_random_uuid(), 'pgbench', 'pending', 'USD', :total, NULL, 1,
          (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
          (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
  RETURNING id \gset
INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price_minor, line_total_minor)
  VALUES (:id, 1, :a, 1, :p1, :p1);
INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price_minor, line_total_minor)
  VALUES (:id, 2, :b, 1, :p2, :p2);
INSERT INTO order_events (order_id, seq, type, actor, reason, at)
  VALUES (:id, 1, 'created', 'pgbench', NULL, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
COMMIT;
