//! Numbers as text by integer formatting. Hand-written for wasm size: printing f64 with a
//! precision (`{:.1}`, `{:+.0}`) at the inspector's and the failure words' call sites cost 1.1 KB
//! gzip of wasm (measured by putting them back; `<f64 as Display>` itself stays linked, serde's
//! error messages use it). README, size section.

/// `x` rounded to tenths: `4.2`, `60.0`, `-0.5`.
pub fn tenths(x: f64) -> String {
    let t = (x * 10.0).round() as i64;
    let sign = if t < 0 { "-" } else { "" };
    let a = t.unsigned_abs();
    format!("{sign}{}.{}", a / 10, a % 10)
}

/// `x` rounded to a whole number (saturating at the ends of `i64`; NaN is 0).
pub fn whole(x: f64) -> i64 {
    x.round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_round_like_the_float_formatting_they_replace() {
        for (x, text) in [
            (4.2, "4.2"),
            (3.0, "3.0"),
            (59.96, "60.0"),
            (0.04, "0.0"),
            (-0.5, "-0.5"),
        ] {
            assert_eq!(tenths(x), text);
            assert_eq!(
                format!("{x:.1}"),
                text,
                "the reference formatting agrees on {x}"
            );
        }
        assert_eq!(whole(29_999.6), 30_000);
        assert_eq!(whole(-12.4), -12);
    }
}
