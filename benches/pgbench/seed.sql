-- Floor fixtures, the same shape `oms-cli load` seeds through the API for
-- the server: :nproducts products with 1e9 units, :norders 2-item orders.
INSERT INTO products (sku, name, price_minor, currency, available, reserved, shipped, stock_in,
                      version, created_at, updated_at)
SELECT (1000000 + n)::text, 'Floor ' || n, 100 + n, 'USD', 1000000000, 0, 0, 1000000000, 1, 0, 0
  FROM generate_series(1, :nproducts) AS n;
INSERT INTO orders (id, customer_id, status, currency, total_minor, note, version, created_at, updated_at)
SELECT ('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid, 'floor', 'pending', 'USD',
       (100 + n) + (100 + n % :nproducts + 1), NULL, 1, 0, 0
  FROM generate_series(1, :norders) AS n;
INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price_minor, line_total_minor)
SELECT ('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid, l,
       (1000000 + (n + l - 2) % :nproducts + 1)::text, 1, 0, 0
  FROM generate_series(1, :norders) AS n, generate_series(1, 2) AS l;
INSERT INTO order_events (order_id, seq, type, actor, reason, at)
SELECT ('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid, 1, 'created', 'floor', NULL, 0
  FROM generate_series(1, :norders) AS n;
