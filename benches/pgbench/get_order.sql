-- Database floor for GET /v1/orders/{id}: the two statements get_order runs
-- (oms-core/src/domain/service/queries.rs), outside a transaction.
-- run.sh seeds :norders orders with ids 00000000-0000-7000-8000-<n, 12 digits>.
\set o random(1, :norders)
SELECT id, customer_id, status, currency, total_minor, note, version, created_at, updated_at
  FROM orders WHERE id = ('00000000-0000-7000-8000-' || lpad(:o::text, 12, '0'))::uuid;
SELECT order_id, sku, quantity, unit_price_minor, line_total_minor
  FROM order_items WHERE order_id = ('00000000-0000-7000-8000-' || lpad(:o::text, 12, '0'))::uuid
  ORDER BY line_no;
