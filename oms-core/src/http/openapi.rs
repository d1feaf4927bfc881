//! The OpenAPI 3.1 description served at `/openapi.json`, and the page that
//! browses it at `/docs`.
//!
//! Operations come from the handlers' `#[endpoint]` attributes. Schemas are
//! written here by hand: the domain types must not depend on salvo, so they
//! cannot derive `ToSchema`, and this module (same crate) implements it for
//! them instead. Each schema mirrors the type's serde JSON exactly: field
//! names, types, which fields are always present (`required`), which may be
//! `null`, and the rules of API.md (lengths, ranges, patterns, enums) taken
//! from the same constants the validation uses. Inputs reject unknown
//! fields (`additionalProperties: false`), as the handlers do.
//!
//! Error responses are problem+json ([`Problem`]); the ones every route
//! shares are grouped here ([`Guarded`], [`JsonBody`], and 500/503 through
//! [`ApiError`]'s [`EndpointOutRegister`]), the route-specific ones are in
//! each handler's attribute.

use salvo::Router;
use salvo::oapi::scalar::Scalar;
use salvo::oapi::schema::{
    AdditionalProperties, Array, BasicType, KnownFormat, Object, OneOf, Schema, SchemaFormat,
    SchemaType,
};
use salvo::oapi::security::{Http, HttpAuthScheme, SecurityScheme};
use salvo::oapi::{
    Components, Content, EndpointOutRegister, Header, Info, OpenApi, Operation, Ref, RefOr,
    Response, Responses, Tag, ToResponses, ToSchema,
};
use serde_json::json;

use super::ApiError;
use crate::audit::query::{AuditPage, AuditRecord};
use crate::domain::validate::{
    CUSTOMER_ID_MAX, ITEMS_MAX, NAME_MAX, QUANTITY_MAX, SKU_MAX, TEXT_MAX,
};
use crate::domain::{
    Action, NewOrder, NewOrderItem, NewProduct, Order, OrderEvent, OrderItem, OrderStatus, Page,
    Product, ProductPatch, StockMove, TransitionBody,
};

/// What holds for every operation, shown at the top of `/docs`.
const OVERVIEW: &str = "Order management: catalog and stock, orders with reservations and a status machine, \
an audit log, monitoring.\n\n\
- JSON in and out (UTF-8); bodies need `Content-Type: application/json`. Errors are RFC 9457 \
`application/problem+json` (`Problem`).\n\
- Money is an integer of minor units plus an ISO 4217 `currency`; timestamps are RFC 3339 UTC with \
milliseconds; order ids are UUID v7.\n\
- Lists are keyset-paginated: `?limit` (1-500, default 50) and `?after=<next_cursor>`.\n\
- Every resource has a `version` and `ETag: \"<version>\"`; `If-None-Match` gives 304, `If-Match` \
guards every write (412).\n\
- Checks run in this order: route and method (404 `not_found`, 405 `method_not_allowed` with `Allow`), \
auth (401, 403), rate limit (429), content type (415), body size (413), JSON syntax (400), \
validation (422), then the operation.\n\
- Every response carries `X-Request-Id`, `X-Response-Time`, `X-DB-Time`, `X-DB-Queries`, \
`X-Request-Count` and `Server-Timing`.";

/// The document for every endpoint reachable in `router`, with the bearer
/// security scheme and the tags the handlers use.
pub(crate) fn document(router: &Router) -> OpenApi {
    OpenApi::new("OMS", env!("CARGO_PKG_VERSION"))
        .info(Info::new("OMS", env!("CARGO_PKG_VERSION")).description(OVERVIEW))
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer).description(
                "`Authorization: Bearer <token>`; roles `read` (GET products and orders), \
                 `write` (also POST/PATCH), `admin` (everything, including audit, debug and metrics).",
            )),
        )
        .tags([
            Tag::new("products").description("Catalog and stock"),
            Tag::new("orders").description("Orders, their status machine and history"),
            Tag::new("audit").description("The request audit log (admin)"),
            Tag::new("operations").description("Health, performance figures, metrics"),
        ])
        .merge_router(router)
}

/// The page at `/docs`: Scalar, which loads its script from its CDN and the
/// document relative to itself (so it works wherever the router is mounted).
pub(crate) fn docs_page() -> Scalar {
    Scalar::new("openapi.json").title("OMS API")
}

// ---------------------------------------------------------------------------
// Schema helpers
// ---------------------------------------------------------------------------

/// Inline schemas of one JSON type.
fn typed(kind: BasicType) -> Object {
    Object::with_type(kind)
}

/// A string of `min..=max` characters.
fn text(min: usize, max: usize) -> Object {
    typed(BasicType::String).min_length(min).max_length(max)
}

/// A 64-bit integer, optionally bounded (inclusive).
fn int(min: Option<i64>, max: Option<i64>) -> Object {
    let mut schema =
        typed(BasicType::Integer).format(SchemaFormat::KnownFormat(KnownFormat::Int64));
    if let Some(min) = min {
        schema = schema.minimum(min);
    }
    if let Some(max) = max {
        schema = schema.maximum(max);
    }
    schema
}

/// A count or size: an integer >= 0.
fn count() -> Object {
    int(Some(0), None)
}

/// A float (milliseconds, percentages).
fn number() -> Object {
    typed(BasicType::Number).format(SchemaFormat::KnownFormat(KnownFormat::Double))
}

/// `schema` that may also be `null` (OpenAPI 3.1: a type list).
fn nullable(schema: Object) -> Object {
    let kinds = match schema.schema_type.clone() {
        SchemaType::Basic(kind) => vec![kind, BasicType::Null],
        SchemaType::Array(mut kinds) => {
            kinds.push(BasicType::Null);
            kinds
        }
        SchemaType::AnyValue => return schema,
    };
    schema.schema_type(SchemaType::Array(kinds))
}

/// One of the given strings.
fn one_of<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Object {
    typed(BasicType::String).enum_values(values.into_iter().map(|v| v.as_ref().to_owned()))
}

/// A string with a known or custom format.
fn formatted(format: KnownFormat) -> Object {
    typed(BasicType::String).format(SchemaFormat::KnownFormat(format))
}

/// RFC 3339 UTC with milliseconds: `2026-11-28T14:00:00.123Z`.
fn timestamp() -> Object {
    formatted(KnownFormat::DateTime)
        .pattern(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
        .example("2026-11-28T14:00:00.123Z")
}

/// A SKU: `^[A-Za-z0-9._-]{1,64}$`.
fn sku() -> Object {
    text(1, SKU_MAX)
        .pattern(format!("^[A-Za-z0-9._-]{{1,{SKU_MAX}}}$"))
        .example("TSHIRT-M")
}

/// An ISO 4217 code: three upper-case letters.
fn currency() -> Object {
    text(3, 3).pattern("^[A-Z]{3}$").example("EUR")
}

/// An amount in minor units (`1999` = 19.99).
fn money(min: Option<i64>) -> Object {
    int(min, None).description("Minor units of the currency (1999 = 19.99); never a float")
}

/// An array of `item`.
fn array(item: impl Into<RefOr<Schema>>) -> Array {
    Array::new().items(item.into())
}

/// An object schema built field by field.
struct Fields(Object);

impl Fields {
    fn new(description: &str) -> Self {
        Self(typed(BasicType::Object).description(description))
    }

    /// A field always present in the JSON.
    fn req(self, name: &str, schema: impl Into<RefOr<Schema>>) -> Self {
        Self(self.0.property(name, schema).required(name))
    }

    /// A field that may be left out.
    fn opt(self, name: &str, schema: impl Into<RefOr<Schema>>) -> Self {
        Self(self.0.property(name, schema))
    }

    /// Unknown fields are rejected (request bodies).
    fn closed(self) -> Self {
        Self(
            self.0
                .additional_properties(AdditionalProperties::FreeForm(false)),
        )
    }

    /// More fields than listed may appear (an evolving report section).
    fn open(self) -> Self {
        Self(
            self.0
                .additional_properties(AdditionalProperties::FreeForm(true)),
        )
    }

    fn build(self) -> Schema {
        Schema::object(self.0)
    }
}

/// Registers `name` in `components` (once) and returns a reference to it.
fn named(
    components: &mut Components,
    name: &str,
    build: impl FnOnce(&mut Components) -> Schema,
) -> RefOr<Schema> {
    if !components.schemas.contains_key(name) {
        // A placeholder first, so that a recursive build terminates.
        components
            .schemas
            .insert(name, RefOr::Ref(Ref::from_schema_name(name)));
        let schema = build(components);
        components.schemas.insert(name, schema);
    }
    RefOr::Ref(Ref::from_schema_name(name))
}

/// Implements `ToSchema` for `$ty` as component `$name` built by `$build`.
macro_rules! schema {
    ($($ty:ty => $name:literal, $build:expr;)+) => {$(
        impl ToSchema for $ty {
            fn to_schema(components: &mut Components) -> RefOr<Schema> {
                named(components, $name, $build)
            }
        }
    )+};
}

// ---------------------------------------------------------------------------
// Domain schemas
// ---------------------------------------------------------------------------

fn page_of<T: ToSchema>(components: &mut Components, what: &str) -> Schema {
    let item = T::to_schema(components);
    Fields::new(&format!(
        "One page of {what}; pass `next_cursor` as `after` for the next one"
    ))
    .req("items", array(item))
    .req(
        "next_cursor",
        nullable(typed(BasicType::String)).description("Opaque cursor; `null` on the last page"),
    )
    .build()
}

fn status_names() -> Vec<&'static str> {
    OrderStatus::ALL.iter().map(|s| s.as_str()).collect()
}

fn event_names() -> Vec<&'static str> {
    std::iter::once("created")
        .chain(Action::ALL.iter().map(|a| a.event().as_str()))
        .collect()
}

schema! {
    Product => "Product", |_| Fields::new("A catalog product with its stock figures")
        .req("sku", sku())
        .req("name", text(1, NAME_MAX))
        .req("price_minor", money(Some(0)))
        .req("currency", currency())
        .req("available", count().description("Units that can be sold now"))
        .req("reserved", count().description("Units held by open orders"))
        .req("version", int(Some(1), None).description("1 on creation, +1 on every change; the ETag is \"<version>\""))
        .req("created_at", timestamp())
        .req("updated_at", timestamp())
        .build();
    NewProduct => "NewProduct", |_| Fields::new("Body of `POST /v1/products`")
        .req("sku", sku())
        .req("name", text(1, NAME_MAX))
        .req("price_minor", money(Some(0)))
        .req("currency", currency())
        .opt("available", nullable(count()).description("Initial stock (default 0)").default_value(json!(0)))
        .closed()
        .build();
    ProductPatch => "ProductPatch", |_| Fields::new("Body of `PATCH /v1/products/{sku}`: the fields to change (absent or null: unchanged)")
        .opt("name", nullable(text(1, NAME_MAX)))
        .opt("price_minor", nullable(money(Some(0))))
        .closed()
        .build();
    StockMove => "StockMove", |_| Fields::new("Body of `POST /v1/products/{sku}/stock`")
        .req(
            "delta",
            OneOf::new()
                .item(int(Some(1), None).description("Restock"))
                .item(int(None, Some(-1)).description("Write-off"))
                .description("Restock (> 0) or write-off (< 0); never 0"),
        )
        .closed()
        .build();
    OrderStatus => "OrderStatus", |_| Schema::object(one_of(status_names())
        .description("pending -confirm-> confirmed -ship-> shipped -deliver-> delivered; pending|confirmed -cancel-> cancelled"));
    OrderItem => "OrderItem", |_| Fields::new("One order line; the price is copied from the catalog at creation")
        .req("sku", sku())
        .req("quantity", int(Some(1), Some(QUANTITY_MAX)))
        .req("unit_price_minor", money(Some(0)))
        .req("line_total_minor", money(Some(0)).description("unit_price_minor x quantity"))
        .build();
    Order => "Order", |c| Fields::new("An order with its lines")
        .req("id", formatted(KnownFormat::Uuid).description("UUID v7 (time-ordered)"))
        .req("customer_id", text(1, CUSTOMER_ID_MAX))
        .req("status", OrderStatus::to_schema(c))
        .req("currency", currency())
        .req("items", array(OrderItem::to_schema(c)).min_items(1).max_items(ITEMS_MAX))
        .req("total_minor", money(Some(0)))
        .req("note", nullable(text(0, TEXT_MAX)))
        .req("version", int(Some(1), None).description("1 on creation, +1 on every transition; the ETag is \"<version>\""))
        .req("created_at", timestamp())
        .req("updated_at", timestamp())
        .build();
    NewOrderItem => "NewOrderItem", |_| Fields::new("One line of a new order")
        .req("sku", sku())
        .req("quantity", int(Some(1), Some(QUANTITY_MAX)))
        .closed()
        .build();
    NewOrder => "NewOrder", |c| Fields::new("Body of `POST /v1/orders`; stock is reserved atomically for every line")
        .req("customer_id", text(1, CUSTOMER_ID_MAX))
        .req("currency", currency().description("Every product must be priced in it (else 422 currency_mismatch)"))
        .req(
            "items",
            array(NewOrderItem::to_schema(c))
                .min_items(1)
                .max_items(ITEMS_MAX)
                .description("Distinct SKUs (else 422 duplicate_sku)"),
        )
        .opt("note", nullable(text(0, TEXT_MAX)))
        .closed()
        .build();
    TransitionBody => "TransitionBody", |_| Fields::new("Optional body of a status transition")
        .opt("reason", nullable(text(0, TEXT_MAX)).description("Recorded in the order's event"))
        .closed()
        .build();
    OrderEvent => "OrderEvent", |_| Fields::new("One entry of an order's history")
        .req("at", timestamp())
        .req("type", one_of(event_names()))
        .req("actor", typed(BasicType::String).description("The caller's token name, or `anonymous`"))
        .req("reason", nullable(text(0, TEXT_MAX)))
        .build();
    Page<Product> => "ProductPage", |c| page_of::<Product>(c, "products, by SKU");
    Page<Order> => "OrderPage", |c| page_of::<Order>(c, "orders, newest first");
    Page<OrderEvent> => "OrderEventPage", |c| page_of::<OrderEvent>(c, "an order's events, oldest first");
    AuditRecord => "AuditRecord", |_| Fields::new("One request as the audit log keeps it (never bodies nor the Authorization header)")
        .req("id", formatted(KnownFormat::Uuid))
        .req("at", timestamp().description("When the request arrived"))
        .req("request_id", typed(BasicType::String))
        .req("actor", typed(BasicType::String))
        .req("method", typed(BasicType::String))
        .req("route", typed(BasicType::String).description("Route template, e.g. /v1/orders/{id}"))
        .req("path", typed(BasicType::String))
        .req("status", int(Some(100), Some(599)))
        .req("duration_us", count())
        .req("db_us", count())
        .req("client_ip", typed(BasicType::String))
        .req("user_agent", typed(BasicType::String))
        .req("request_bytes", count())
        .req("response_bytes", count())
        .build();
    AuditPage => "AuditPage", |c| page_of::<AuditRecord>(c, "audit entries, newest first");
}

// ---------------------------------------------------------------------------
// Bodies without a Rust type of their own
// ---------------------------------------------------------------------------

/// Every problem code the API uses (API.md "Errors").
const PROBLEM_CODES: [&str; 24] = [
    "malformed_json",
    "bad_cursor",
    "bad_request",
    "unauthenticated",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "sku_exists",
    "insufficient_stock",
    "invalid_transition",
    "idempotency_in_progress",
    "stock_negative",
    "version_mismatch",
    "payload_too_large",
    "unsupported_media_type",
    "validation_failed",
    "unknown_sku",
    "currency_mismatch",
    "duplicate_sku",
    "idempotency_key_reused",
    "rate_limited",
    "database_unavailable",
    "overloaded",
    "timeout",
];

/// An RFC 9457 problem document (`application/problem+json`).
pub(crate) struct Problem;

/// `GET /health`'s body.
pub(crate) struct Health;

/// `GET /debug/performance`'s body.
pub(crate) struct Performance;

/// Latency figures in milliseconds, one field per name.
fn millis(fields: Fields, names: &[&str]) -> Fields {
    names.iter().fold(fields, |f, name| f.req(name, number()))
}

/// Counters (integers >= 0), one field per name.
fn counts(fields: Fields, names: &[&str]) -> Fields {
    names.iter().fold(fields, |f, name| f.req(name, count()))
}

schema! {
    Problem => "Problem", |_| Fields::new("RFC 9457 problem details")
        .req("type", typed(BasicType::String).pattern("^/errors/[a-z_]+$").example("/errors/insufficient_stock"))
        .req("title", typed(BasicType::String).example("Insufficient stock"))
        .req("status", int(Some(400), Some(599)))
        .req("code", one_of(PROBLEM_CODES))
        .req("detail", typed(BasicType::String))
        .req("request_id", typed(BasicType::String).description("This request's X-Request-Id"))
        .opt(
            "errors",
            array(
                Fields::new("One invalid field")
                    .req("field", typed(BasicType::String).example("items[0].quantity"))
                    .req("message", typed(BasicType::String).example("must be >= 1"))
                    .build(),
            )
            .description("The invalid fields (422 validation_failed only)"),
        )
        .build();
    Health => "Health", |_| Fields::new("Liveness and database reachability; never takes longer than 1 s")
        .req("status", one_of(["ok", "degraded"]))
        .req("database", typed(BasicType::String).description("`ok`, or why the database cannot be reached"))
        .req("version", typed(BasicType::String))
        .req("uptime_s", count().description("Seconds since this process started"))
        .build();
    Performance => "Performance", |_| {
        let pool = counts(Fields::new("The connection pool"), &["size", "idle", "max", "waiting", "timeouts"])
            .req("acquire_p99_ms", number());
        let route = millis(counts(Fields::new("One route template"), &["count", "errors"]), &["p50_ms", "p95_ms", "p99_ms", "max_ms"]);
        let requests = counts(Fields::new("Requests handled by this process"), &["total", "in_flight"])
            .req("routes", typed(BasicType::Object).additional_properties(route.0).description("Keyed `METHOD /route`"));
        let database = millis(counts(Fields::new("Database statements"), &["statements"]), &["p50_ms", "p95_ms", "p99_ms"])
            .req("pool", pool.0);
        let audit = counts(
            Fields::new("The audit pipeline; also batch figures and per-sink details (`sinks`)"),
            &["enqueued", "written", "dropped", "failed", "spilled", "queue_depth", "capacity"],
        )
        .req("flush_p99_ms", number())
        .open();
        let cache = counts(Fields::new("The read cache"), &["hits", "misses", "entries"]);
        let system = counts(
            Fields::new("Host and process"),
            &["memory_total_bytes", "memory_used_bytes", "process_rss_bytes"],
        )
        .req("cpu_percent", number())
        .req("process_cpu_percent", number());
        let slow = Fields::new("A request slower than metrics.slow_request_ms")
            .req("at", timestamp())
            .req("method", typed(BasicType::String))
            .req("route", typed(BasicType::String))
            .req("status", int(Some(100), Some(599)))
            .req("duration_ms", number())
            .req("db_ms", number())
            .req("request_id", typed(BasicType::String));
        Fields::new("This process's figures (API.md \"Operations\")")
            .req("requests", requests.0)
            .req("database", database.0)
            .req("audit", audit.0)
            .req("cache", cache.0)
            .req("system", system.0)
            .req("slow_requests", array(slow.0).description("The latest slow requests"))
            .build()
    };
}

// ---------------------------------------------------------------------------
// Shared error responses
// ---------------------------------------------------------------------------

/// A problem+json response saying which codes it carries.
fn problem(components: &mut Components, description: &str) -> Response {
    Response::new(description).add_content(
        "application/problem+json",
        Content::new(Problem::to_schema(components)),
    )
}

fn header(description: &str) -> Header {
    Header::new(typed(BasicType::String)).description(description)
}

fn retry_after() -> Header {
    Header::new(count()).description("Seconds to wait before retrying")
}

/// What every route behind the bearer check may answer: 401, 403, 429.
pub(crate) struct Guarded;

impl ToResponses for Guarded {
    fn to_responses(components: &mut Components) -> Responses {
        Responses::new()
            .response(
                "401",
                problem(
                    components,
                    "`unauthenticated`: missing or unknown bearer token",
                )
                .add_header("WWW-Authenticate", header("`Bearer`")),
            )
            .response(
                "403",
                problem(components, "`forbidden`: the token lacks the role"),
            )
            .response(
                "429",
                problem(components, "`rate_limited`: over the caller's budget")
                    .add_header("Retry-After", retry_after())
                    .add_header("RateLimit-Policy", header("The budget"))
                    .add_header("RateLimit", header("What is left of it")),
            )
    }
}

/// What every route reading a JSON body may answer, in this order of
/// checks: 415, 413, 400, 422.
pub(crate) struct JsonBody;

impl ToResponses for JsonBody {
    fn to_responses(components: &mut Components) -> Responses {
        Responses::new()
            .response("415", problem(components, "`unsupported_media_type`: send Content-Type: application/json"))
            .response("413", problem(components, "`payload_too_large`: body over server.max_body_bytes"))
            .response("400", problem(components, "`malformed_json`: the body is not JSON"))
            .response(
                "422",
                problem(components, "`validation_failed` (with `errors`): unknown field, wrong type or a rule broken"),
            )
    }
}

/// Every handler returns `Result<(), ApiError>`; any route may fail with
/// 500 `internal` or 503 (database, concurrency cap, request timeout).
impl EndpointOutRegister for ApiError {
    fn register(components: &mut Components, operation: &mut Operation) {
        operation.responses.insert(
            "500",
            problem(
                components,
                "`internal`: a bug; the request id finds it in the log",
            ),
        );
        operation.responses.insert(
            "503",
            problem(
                components,
                "`database_unavailable`, `overloaded` or `timeout`: pool timeout or database down, \
                 concurrency cap, request timeout",
            )
            .add_header("Retry-After", retry_after()),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use salvo::http::StatusCode;

    use super::*;

    #[test]
    fn every_problem_code_has_its_own_title() {
        for code in PROBLEM_CODES {
            let title = ApiError::new(StatusCode::IM_A_TEAPOT, code, "").title();
            assert_ne!(
                title, "I'm a teapot",
                "{code} is not a code problem.rs knows"
            );
        }
    }

    #[test]
    fn inputs_are_closed_and_outputs_name_their_required_fields() {
        let mut components = Components::new();
        let _ = NewOrder::to_schema(&mut components);
        let _ = Order::to_schema(&mut components);
        let doc = serde_json::to_value(&components).unwrap();
        let schemas = &doc["schemas"];
        assert_eq!(schemas["NewOrder"]["additionalProperties"], json!(false));
        assert_eq!(
            schemas["NewOrderItem"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(
            schemas["Order"]["properties"]["note"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(
            schemas["Order"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/OrderItem"
        );
        assert_eq!(schemas["OrderStatus"]["enum"].as_array().unwrap().len(), 5);
        let required = schemas["Order"]["required"].as_array().unwrap();
        assert_eq!(required.len(), 10);
    }
}
