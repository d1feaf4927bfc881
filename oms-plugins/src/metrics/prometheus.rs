//! Prometheus text exposition (format 0.0.4) helpers.
//!
//! Hot loops append pre-rendered pieces with `push_str` and format integers
//! by hand; `std::fmt` is used only for the rare HELP/TYPE lines.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::histogram::{BOUND_COUNT, BOUNDS_NS, EXPORT_STEP, HistogramCounts};

/// `le="<bound>"} ` for each exported bound, then `le="+Inf"} `, with
/// `{` or `,` before it supplied by the caller.
static LE_SUFFIXES: LazyLock<Vec<Box<str>>> = LazyLock::new(|| {
    let mut out: Vec<Box<str>> = BOUNDS_NS
        .iter()
        .step_by(EXPORT_STEP)
        .map(|&ns| {
            let mut s = String::from("le=\"");
            push_seconds(&mut s, ns);
            s.push_str("\"} ");
            s.into_boxed_str()
        })
        .collect();
    out.push("le=\"+Inf\"} ".into());
    out
});

/// Number of `_bucket` lines per exported histogram series, `+Inf` included.
pub(crate) fn exported_bucket_lines() -> usize {
    BOUND_COUNT.div_ceil(EXPORT_STEP) + 1
}

/// Appends `n` in decimal.
#[inline]
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// Appends `nanos` as an exact decimal number of seconds: `0.00005`, `1.5`,
/// `63`.
pub(crate) fn push_seconds(out: &mut String, nanos: u64) {
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    push_u64(out, nanos / NANOS_PER_SEC);
    let mut frac = nanos % NANOS_PER_SEC;
    if frac == 0 {
        return;
    }
    let mut digits = 9;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    out.push('.');
    let mut scratch = [b'0'; 9];
    for slot in scratch[..digits].iter_mut().rev() {
        *slot = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.push_str(std::str::from_utf8(&scratch[..digits]).unwrap_or("0"));
}

/// Appends `# HELP` and `# TYPE` lines.
pub(crate) fn push_header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends an unlabelled sample line.
pub(crate) fn push_sample(out: &mut String, name: &str, value: u64) {
    out.push_str(name);
    out.push(' ');
    push_u64(out, value);
    out.push('\n');
}

/// Appends one histogram series: every exported bucket (cumulative, ending
/// with `+Inf` equal to the count), `_sum` in seconds and `_count`.
/// `labels` are escaped label pairs without braces, possibly empty.
pub(crate) fn push_histogram(out: &mut String, name: &str, labels: &str, counts: &HistogramCounts) {
    let suffixes = &*LE_SUFFIXES;
    let mut cumulative = 0u64;
    let mut exported = 0usize;
    for (i, &in_bucket) in counts.buckets.iter().enumerate() {
        cumulative = cumulative.saturating_add(in_bucket);
        if i != BOUND_COUNT && !i.is_multiple_of(EXPORT_STEP) {
            continue;
        }
        let Some(suffix) = suffixes.get(exported) else {
            break;
        };
        exported += 1;
        out.push_str(name);
        out.push_str("_bucket{");
        if !labels.is_empty() {
            out.push_str(labels);
            out.push(',');
        }
        out.push_str(suffix);
        push_u64(out, cumulative);
        out.push('\n');
    }

    out.push_str(name);
    out.push_str("_sum");
    push_braced(out, labels);
    push_seconds(out, counts.sum_nanos);
    out.push('\n');

    out.push_str(name);
    out.push_str("_count");
    push_braced(out, labels);
    push_u64(out, cumulative);
    out.push('\n');
}

fn push_braced(out: &mut String, labels: &str) {
    if labels.is_empty() {
        out.push(' ');
    } else {
        out.push('{');
        out.push_str(labels);
        out.push_str("} ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn seconds_are_exact_decimals() {
        let cases = [
            (0, "0"),
            (50_000, "0.00005"),
            (1_500_000_000, "1.5"),
            (63_000_000_000, "63"),
            (1, "0.000000001"),
            (123_456_789_012, "123.456789012"),
        ];
        for (nanos, text) in cases {
            let mut s = String::new();
            push_seconds(&mut s, nanos);
            assert_eq!(s, text);
        }
    }

    #[test]
    fn exported_bounds_are_r10_and_end_at_inf() {
        assert_eq!(LE_SUFFIXES.len(), exported_bucket_lines());
        assert_eq!(&*LE_SUFFIXES[0], "le=\"0.00005\"} ");
        assert_eq!(&*LE_SUFFIXES[1], "le=\"0.000063\"} ");
        assert_eq!(&*LE_SUFFIXES[LE_SUFFIXES.len() - 2], "le=\"63\"} ");
        assert_eq!(&*LE_SUFFIXES[LE_SUFFIXES.len() - 1], "le=\"+Inf\"} ");
    }
}
