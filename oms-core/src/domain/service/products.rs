//! Catalog operations: create, read, list, patch, stock moves.

use sea_orm::Value;

use super::OrderService;
use crate::domain::DomainError;
use crate::domain::cursor::Cursor;
use crate::domain::page::{Page, clamp_limit, paginate};
use crate::domain::product::{NewProduct, Product, ProductPatch, StockMove};
use crate::domain::sql::{self, PRODUCT_COLS};
use crate::domain::time::{from_ms, now_ms};
use crate::domain::validate::is_valid_sku;

fn not_found(sku: &str) -> DomainError {
    DomainError::NotFound {
        what: format!("product {sku}"),
    }
}

impl OrderService {
    /// Creates a product (version 1, `reserved` 0).
    ///
    /// # Errors
    /// [`DomainError::Validation`], [`DomainError::SkuExists`], or a database error.
    pub async fn create_product(&self, input: NewProduct) -> Result<Product, DomainError> {
        input.validate()?;
        let available = input.available.unwrap_or(0);
        let now = now_ms();
        let inserted = self
            .db
            .retry(|| async {
                let conn = self.db.acquire_writer().await?;
                sql::exec(
                    &*conn,
                    "INSERT INTO products (sku, name, price_minor, currency, available, reserved, \
                     shipped, stock_in, version, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, 0, 0, ?, 1, ?, ?) ON CONFLICT (sku) DO NOTHING",
                    vec![
                        input.sku.clone().into(),
                        input.name.clone().into(),
                        input.price_minor.into(),
                        input.currency.clone().into(),
                        available.into(),
                        available.into(),
                        now.into(),
                        now.into(),
                    ],
                )
                .await
            })
            .await?;
        if inserted == 0 {
            return Err(DomainError::SkuExists { sku: input.sku });
        }
        Ok(Product {
            sku: input.sku,
            name: input.name,
            price_minor: input.price_minor,
            currency: input.currency,
            available,
            reserved: 0,
            version: 1,
            created_at: from_ms(now),
            updated_at: from_ms(now),
        })
    }

    /// One product by SKU.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] or a database error.
    pub async fn get_product(&self, sku: &str) -> Result<Product, DomainError> {
        if !is_valid_sku(sku) {
            return Err(not_found(sku));
        }
        let conn = self.db.acquire().await?;
        let row = sql::one(
            &*conn,
            &format!("SELECT {PRODUCT_COLS} FROM products WHERE sku = ?"),
            vec![sku.into()],
        )
        .await?
        .ok_or_else(|| not_found(sku))?;
        Ok(sql::product(&row)?)
    }

    /// A page of products ordered by SKU, after the cursor `after`.
    ///
    /// # Errors
    /// [`DomainError::BadCursor`] or a database error.
    pub async fn list_products(
        &self,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Product>, DomainError> {
        let after = Cursor::product(after)?;
        let limit = clamp_limit(limit);
        let mut values: Vec<Value> = Vec::new();
        let mut where_clause = String::new();
        if let Some(sku) = after {
            where_clause.push_str("WHERE sku > ? ");
            values.push(sku.into());
        }
        values.push(i64::from(limit + 1).into());
        let conn = self.db.acquire().await?;
        let rows = sql::all(
            &*conn,
            &format!("SELECT {PRODUCT_COLS} FROM products {where_clause}ORDER BY sku LIMIT ?"),
            values,
        )
        .await?;
        let products = rows
            .iter()
            .map(sql::product)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(products, limit, |p| {
            Cursor::Product(p.sku.clone()).encode()
        }))
    }

    /// Changes name and/or price. `if_match` guards the current version.
    /// An empty patch changes nothing and returns the product as it is.
    ///
    /// # Errors
    /// [`DomainError::Validation`], [`DomainError::NotFound`],
    /// [`DomainError::VersionMismatch`], or a database error.
    pub async fn update_product(
        &self,
        sku: &str,
        patch: ProductPatch,
        if_match: Option<i64>,
    ) -> Result<Product, DomainError> {
        if !is_valid_sku(sku) {
            return Err(not_found(sku));
        }
        patch.validate()?;
        if patch.is_empty() {
            let product = self.get_product(sku).await?;
            return match if_match {
                Some(expected) if expected != product.version => {
                    Err(DomainError::VersionMismatch {
                        expected,
                        actual: product.version,
                    })
                }
                _ => Ok(product),
            };
        }
        self.db
            .retry(|| async {
                let conn = self.db.acquire_writer().await?;
                let mut values: Vec<Value> = vec![
                    patch.name.clone().into(),
                    patch.price_minor.into(),
                    now_ms().into(),
                    sku.into(),
                ];
                let mut guard = "";
                if let Some(v) = if_match {
                    guard = " AND version = ?";
                    values.push(v.into());
                }
                let row = sql::one(
                    &*conn,
                    &format!(
                        "UPDATE products SET name = COALESCE(?, name), \
                         price_minor = COALESCE(?, price_minor), version = version + 1, \
                         updated_at = ? WHERE sku = ?{guard} RETURNING {PRODUCT_COLS}"
                    ),
                    values,
                )
                .await?;
                match row {
                    Some(row) => Ok(sql::product(&row)?),
                    None => Err(self.explain_version(&conn, sku, if_match).await),
                }
            })
            .await
    }

    /// Restocks (`delta > 0`) or writes off (`delta < 0`). `stock_in` moves
    /// with `available`. `if_match` guards the current version.
    ///
    /// # Errors
    /// [`DomainError::Validation`] (`delta` 0 or out of range),
    /// [`DomainError::NotFound`], [`DomainError::VersionMismatch`],
    /// [`DomainError::StockNegative`], or a database error.
    pub async fn move_stock(
        &self,
        sku: &str,
        delta: i64,
        if_match: Option<i64>,
    ) -> Result<Product, DomainError> {
        if !is_valid_sku(sku) {
            return Err(not_found(sku));
        }
        StockMove { delta }.validate()?;
        // `available >= min_available` keeps it >= 0; `stock_in <= max_stock_in`
        // keeps the counters from overflowing (available <= stock_in).
        let min_available = delta
            .checked_neg()
            .ok_or_else(|| DomainError::field("delta", "out of range"))?;
        let max_stock_in = if delta > 0 {
            i64::MAX - delta
        } else {
            i64::MAX
        };
        self.db
            .retry(|| async {
                let conn = self.db.acquire_writer().await?;
                // A refusal diagnosed after a concurrent change is re-checked.
                for _ in 0..3 {
                    let mut values: Vec<Value> = vec![
                        delta.into(),
                        delta.into(),
                        now_ms().into(),
                        sku.into(),
                        min_available.into(),
                        max_stock_in.into(),
                    ];
                    let mut guard = "";
                    if let Some(v) = if_match {
                        guard = " AND version = ?";
                        values.push(v.into());
                    }
                    let row = sql::one(
                        &*conn,
                        &format!(
                            "UPDATE products SET available = available + ?, \
                             stock_in = stock_in + ?, version = version + 1, updated_at = ? \
                             WHERE sku = ? AND available >= ? AND stock_in <= ?{guard} \
                             RETURNING {PRODUCT_COLS}"
                        ),
                        values,
                    )
                    .await?;
                    if let Some(row) = row {
                        return Ok(sql::product(&row)?);
                    }
                    let row = sql::one(
                        &*conn,
                        "SELECT available, stock_in, version FROM products WHERE sku = ?",
                        vec![sku.into()],
                    )
                    .await?
                    .ok_or_else(|| not_found(sku))?;
                    let available: i64 = row.try_get("", "available")?;
                    let stock_in: i64 = row.try_get("", "stock_in")?;
                    let version: i64 = row.try_get("", "version")?;
                    if let Some(expected) = if_match.filter(|v| *v != version) {
                        return Err(DomainError::VersionMismatch {
                            expected,
                            actual: version,
                        });
                    }
                    if available < min_available {
                        return Err(DomainError::StockNegative {
                            sku: sku.to_owned(),
                            delta,
                            available,
                        });
                    }
                    if stock_in > max_stock_in {
                        return Err(DomainError::field(
                            "delta",
                            "would overflow the product's stock counters",
                        ));
                    }
                }
                Err(DomainError::StockNegative {
                    sku: sku.to_owned(),
                    delta,
                    available: 0,
                })
            })
            .await
    }

    /// After a guarded product UPDATE matched nothing: not found or version
    /// mismatch (or a database error).
    async fn explain_version(
        &self,
        conn: &sea_orm::DatabaseConnection,
        sku: &str,
        if_match: Option<i64>,
    ) -> DomainError {
        let row = match sql::one(
            conn,
            "SELECT version FROM products WHERE sku = ?",
            vec![sku.into()],
        )
        .await
        {
            Ok(Some(row)) => row,
            Ok(None) => return not_found(sku),
            Err(err) => return err,
        };
        match row.try_get::<i64>("", "version") {
            Ok(actual) => DomainError::VersionMismatch {
                expected: if_match.unwrap_or(actual),
                actual,
            },
            Err(err) => err.into(),
        }
    }
}
