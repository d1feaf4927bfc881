//! Compressing a 500-product JSON page (`{"items": [...], "next_cursor"}`,
//! products shaped as in API.md) with the encoders salvo-compression uses:
//! none (the body copied once, the floor of serving it), gzip (flate2,
//! level 1, what the OMS serves with `CompressionLevel::Default`, and level
//! 6, flate2's default), brotli (quality 4, window 22, 32 KiB buffer, as
//! served) and zstd (level 3, and level 1, what the OMS serves with
//! `CompressionLevel::Default`).
//!
//! The compressed sizes are printed once before the timings. Run with
//! `cargo bench --bench compression` (`-- --quick` for a fast pass).

#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Write as _;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const PRODUCTS: usize = 500;

/// The page body: 500 products with varied names, prices and stock.
fn page() -> Vec<u8> {
    const ADJECTIVES: [&str; 8] = [
        "Stainless",
        "Compact",
        "Organic",
        "Wireless",
        "Foldable",
        "Classic",
        "Heavy-duty",
        "Recycled",
    ];
    const NOUNS: [&str; 8] = [
        "water bottle",
        "desk lamp",
        "coffee beans",
        "headphones",
        "camping chair",
        "notebook",
        "tool box",
        "backpack",
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let items: Vec<Value> = (0..PRODUCTS)
        .map(|i| {
            let r = next();
            // Milliseconds into November 2026, updated up to a day later.
            let created = r % (28 * 86_400_000);
            let updated = created + next() % 86_400_000;
            json!({
                "sku": format!("SKU-{:06}", 1000 + i * 7),
                "name": format!(
                    "{} {}, model {}",
                    ADJECTIVES[(r % 8) as usize],
                    NOUNS[((r >> 8) % 8) as usize],
                    r % 10_000
                ),
                "price_minor": 99 + (r >> 16) % 50_000,
                "currency": "EUR",
                "available": (r >> 32) % 1_000,
                "reserved": (r >> 42) % 20,
                "version": 1 + (r >> 52) % 9,
                "created_at": timestamp(created),
                "updated_at": timestamp(updated),
            })
        })
        .collect();
    let page = json!({ "items": items, "next_cursor": "c2t1OlNLVS0wMDQ0OTM" });
    serde_json::to_vec(&page).expect("serialise the page")
}

/// Milliseconds into November 2026 as `2026-11-28T14:00:00.123Z`.
fn timestamp(ms: u64) -> String {
    format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + ms / 86_400_000,
        ms / 3_600_000 % 24,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(level),
    );
    enc.write_all(body).expect("gzip write");
    enc.finish().expect("gzip finish")
}

fn brotli(body: &[u8], quality: u32) -> Vec<u8> {
    let mut enc =
        brotli::CompressorWriter::new(Vec::with_capacity(body.len() / 4), 32 * 1024, quality, 22);
    enc.write_all(body).expect("brotli write");
    enc.into_inner()
}

fn zstd(body: &[u8], level: i32) -> Vec<u8> {
    zstd::bulk::compress(body, level).expect("zstd compress")
}

type Encoder = Box<dyn Fn(&[u8]) -> Vec<u8>>;

fn compression(c: &mut Criterion) {
    oms::link();
    let body = page();
    let encoders: Vec<(&str, Encoder)> = vec![
        ("none", Box::new(<[u8]>::to_vec)),
        ("gzip_level_1_served", Box::new(|b| gzip(b, 1))),
        ("gzip_level_6", Box::new(|b| gzip(b, 6))),
        ("brotli_quality_4_served", Box::new(|b| brotli(b, 4))),
        ("zstd_level_1_served", Box::new(|b| zstd(b, 1))),
        ("zstd_level_3", Box::new(|b| zstd(b, 3))),
    ];

    eprintln!("compression of a {PRODUCTS}-product JSON page, sizes in bytes:");
    for (name, encode) in &encoders {
        let out = encode(&body);
        eprintln!(
            "  {name:<24} {:>7} bytes ({:.1} % of {})",
            out.len(),
            100.0 * out.len() as f64 / body.len() as f64,
            body.len()
        );
    }

    let mut group = c.benchmark_group("compress_500_product_page");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for (name, encode) in &encoders {
        group.bench_function(*name, |b| b.iter(|| black_box(encode(black_box(&body)))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = compression
}
criterion_main!(benches);
