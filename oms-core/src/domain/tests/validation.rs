//! Every input rule, all errors at once, serde strictness, status machine.

use crate::domain::{
    Action, DomainError, NewOrder, NewOrderItem, NewProduct, OrderStatus, ProductPatch, StockMove,
    TransitionBody, money,
};

fn fields(result: Result<(), DomainError>) -> Vec<String> {
    match result {
        Err(DomainError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

fn product(
    sku: &str,
    name: &str,
    price: i64,
    currency: &str,
    available: Option<i64>,
) -> NewProduct {
    NewProduct {
        sku: sku.into(),
        name: name.into(),
        price_minor: price,
        currency: currency.into(),
        available,
    }
}

#[test]
fn new_product_rules() {
    assert!(product("A-b_c.9", "x", 0, "EUR", None).validate().is_ok());
    assert!(
        product(&"a".repeat(64), &"é".repeat(200), 5, "USD", Some(0))
            .validate()
            .is_ok()
    );
    for bad_sku in ["", "a b", "ä", "a/b", &"a".repeat(65)] {
        assert_eq!(
            fields(product(bad_sku, "x", 0, "EUR", None).validate()),
            ["sku"]
        );
    }
    assert_eq!(
        fields(product("A", "", 0, "EUR", None).validate()),
        ["name"]
    );
    assert_eq!(
        fields(product("A", &"n".repeat(201), 0, "EUR", None).validate()),
        ["name"]
    );
    assert_eq!(
        fields(product("A", "x", -1, "EUR", None).validate()),
        ["price_minor"]
    );
    for bad in ["eur", "EU", "EURO", "E1R", "ÉUR"] {
        assert_eq!(
            fields(product("A", "x", 0, bad, None).validate()),
            ["currency"]
        );
    }
    assert_eq!(
        fields(product("A", "x", 0, "EUR", Some(-1)).validate()),
        ["available"]
    );
    // All at once.
    assert_eq!(
        fields(product("", "", -1, "x", Some(-1)).validate()),
        ["sku", "name", "price_minor", "currency", "available"]
    );
}

#[test]
fn patch_stock_and_reason_rules() {
    assert!(ProductPatch::default().validate().is_ok());
    let patch = ProductPatch {
        name: Some(String::new()),
        price_minor: Some(-5),
    };
    assert_eq!(fields(patch.validate()), ["name", "price_minor"]);
    assert_eq!(fields(StockMove { delta: 0 }.validate()), ["delta"]);
    assert!(StockMove { delta: -3 }.validate().is_ok());
    let long = TransitionBody {
        reason: Some("r".repeat(1001)),
    };
    assert_eq!(fields(long.validate()), ["reason"]);
    assert!(
        TransitionBody {
            reason: Some("r".repeat(1000))
        }
        .validate()
        .is_ok()
    );
}

fn new_order(
    customer: &str,
    currency: &str,
    items: Vec<(&str, i64)>,
    note: Option<String>,
) -> NewOrder {
    NewOrder {
        customer_id: customer.into(),
        currency: currency.into(),
        items: items
            .into_iter()
            .map(|(sku, quantity)| NewOrderItem {
                sku: sku.into(),
                quantity,
            })
            .collect(),
        note,
    }
}

#[test]
fn new_order_rules() {
    assert!(
        new_order(
            "c",
            "EUR",
            vec![("A", 1), ("B", 10_000)],
            Some("n".repeat(1000))
        )
        .validate()
        .is_ok()
    );
    assert_eq!(
        fields(new_order("", "EUR", vec![("A", 1)], None).validate()),
        ["customer_id"]
    );
    assert_eq!(
        fields(new_order(&"c".repeat(65), "EUR", vec![("A", 1)], None).validate()),
        ["customer_id"]
    );
    assert_eq!(
        fields(new_order("c", "eur", vec![("A", 1)], None).validate()),
        ["currency"]
    );
    assert_eq!(
        fields(new_order("c", "EUR", vec![], None).validate()),
        ["items"]
    );
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let items = many.iter().map(|s| (s.as_str(), 1)).collect();
    assert_eq!(
        fields(new_order("c", "EUR", items, None).validate()),
        ["items"]
    );
    assert_eq!(
        fields(
            new_order(
                "c",
                "EUR",
                vec![("A", 0), ("B", 10_001), ("bad sku", -1)],
                None
            )
            .validate()
        ),
        [
            "items[0].quantity",
            "items[1].quantity",
            "items[2].sku",
            "items[2].quantity"
        ]
    );
    assert_eq!(
        fields(new_order("c", "EUR", vec![("A", 1)], Some("n".repeat(1001))).validate()),
        ["note"]
    );
    match new_order("c", "EUR", vec![("A", 1), ("B", 1), ("A", 2)], None).validate() {
        Err(DomainError::DuplicateSku { sku }) => assert_eq!(sku, "A"),
        other => panic!("{other:?}"),
    }
    // Field errors come first, duplicates after.
    assert_eq!(
        fields(new_order("", "EUR", vec![("A", 1), ("A", 1)], None).validate()),
        ["customer_id"]
    );
}

#[test]
fn serde_is_strict_and_wide() {
    assert!(
        serde_json::from_str::<NewProduct>(
            r#"{"sku":"A","name":"x","price_minor":1,"currency":"EUR","colour":"red"}"#
        )
        .is_err()
    );
    assert!(
        serde_json::from_str::<NewProduct>(
            r#"{"sku":"A","name":"x","price_minor":1e30,"currency":"EUR"}"#
        )
        .is_err()
    );
    assert!(
        serde_json::from_str::<NewProduct>(
            r#"{"sku":"A","name":"x","price_minor":99999999999999999999,"currency":"EUR"}"#
        )
        .is_err()
    );
    assert!(
        serde_json::from_str::<NewOrder>(
            r#"{"customer_id":"c","currency":"EUR","items":[{"sku":"A","quantity":1,"qty":2}]}"#
        )
        .is_err()
    );
    let ok: NewOrder = serde_json::from_str(
        r#"{"customer_id":"c","currency":"EUR","items":[{"sku":"A","quantity":-1}]}"#,
    )
    .unwrap();
    assert_eq!(fields(ok.validate()), ["items[0].quantity"]);
    assert!(serde_json::from_str::<TransitionBody>(r#"{}"#).is_ok());
    assert!(serde_json::from_str::<TransitionBody>(r#"{"why":"x"}"#).is_err());
    assert!(serde_json::from_str::<ProductPatch>(r#"{}"#).is_ok());
    assert!(serde_json::from_str::<StockMove>(r#"{"delta":1,"x":1}"#).is_err());
}

#[test]
fn status_machine() {
    use Action::*;
    use OrderStatus::*;
    for from in OrderStatus::ALL {
        for action in Action::ALL {
            let expected = match (from, action) {
                (Pending, Confirm) => Some(Confirmed),
                (Confirmed, Ship) => Some(Shipped),
                (Shipped, Deliver) => Some(Delivered),
                (Pending | Confirmed, Cancel) => Some(Cancelled),
                _ => None,
            };
            match (from.apply(action), expected) {
                (Ok(to), Some(e)) => {
                    assert_eq!(to, e);
                    assert_eq!(action.target(), e);
                    assert!(action.allowed_from().contains(&from));
                }
                (Err(DomainError::InvalidTransition { from: f, action: a }), None) => {
                    assert_eq!((f, a), (from, action));
                    assert!(!action.allowed_from().contains(&from));
                }
                other => panic!("{from} {action}: {other:?}"),
            }
        }
    }
    assert_eq!("shipped".parse::<OrderStatus>().unwrap(), Shipped);
    assert!("SHIPPED".parse::<OrderStatus>().is_err());
    assert_eq!(serde_json::to_string(&Cancelled).unwrap(), r#""cancelled""#);
}

#[test]
fn money_and_error_codes() {
    assert_eq!(money::line_total(1999, 3, 0).unwrap(), 5997);
    let err = money::line_total(i64::MAX / 2, 3, 4).unwrap_err();
    assert_eq!(err.code(), "validation_failed");
    assert_eq!(err.field_errors()[0].field, "items[4].quantity");
    assert!(money::order_total([i64::MAX, 1]).is_err());
    assert_eq!(money::order_total([1, 2, 3]).unwrap(), 6);

    let e = DomainError::InsufficientStock {
        sku: "TSHIRT-M".into(),
        requested: 5,
        available: 2,
    };
    assert_eq!((e.code(), e.http_status()), ("insufficient_stock", 409));
    assert_eq!(e.detail(), "SKU TSHIRT-M: requested 5, available 2");
    assert_eq!(DomainError::BadCursor.http_status(), 400);
    assert_eq!(
        DomainError::IdempotencyKeyReused.code(),
        "idempotency_key_reused"
    );
    assert_eq!(
        DomainError::VersionMismatch {
            expected: 1,
            actual: 2
        }
        .http_status(),
        412
    );
    let unavailable = DomainError::Db(crate::db::PoolError::Timeout(
        std::time::Duration::from_secs(1),
    ));
    assert_eq!(
        (unavailable.code(), unavailable.http_status()),
        ("database_unavailable", 503)
    );
    use crate::db::IsTransient;
    assert!(!unavailable.is_transient());
    let busy = DomainError::from(sea_orm::DbErr::Custom("database is locked".into()));
    assert!(busy.is_transient());
}

#[test]
fn timestamps_serialise_with_millis() {
    let at = crate::domain::time::from_ms(1_795_874_400_123);
    assert_eq!(
        crate::domain::time::format_timestamp(&at),
        "2026-11-28T14:00:00.123Z"
    );
}
