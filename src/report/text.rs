//! Sizes and numbers formatted for people, shared by the CLI and the app.

/// A byte count for people: "999 B", "1.5 KiB", "86.7 MiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    // Display only: precision loss above 2^53 bytes does not matter.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        // The MiniLM safetensors file: 90,868,376 bytes / 2^20 = 86.66 MiB.
        assert_eq!(human_bytes(90_868_376), "86.7 MiB");
        assert_eq!(human_bytes(3 << 40), "3.0 TiB");
    }
}
