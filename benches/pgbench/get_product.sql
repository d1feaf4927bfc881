-- Database floor for GET /v1/products/{sku}: the one statement get_product
-- runs (oms-core/src/domain/service/products.rs).
\set p 1000000 + random(1, :nproducts)
SELECT sku, name, price_minor, currency, available, reserved, version, created_at, updated_at
  FROM products WHERE sku = :p;
