//! How bytes read from a file are shown: escaped text that is safe on any
//! terminal, or hex. Never raw bytes: a key holding `\x1b[2J` must not
//! clear the screen of the engineer reading it.

/// How keys and values are printed (`--output_hex`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Print `0x6B6579` instead of `key`.
    pub hex: bool,
}

impl Style {
    /// `bytes` in this style.
    pub fn show(self, bytes: &[u8]) -> String {
        if self.hex {
            hex(bytes)
        } else {
            escaped(bytes)
        }
    }
}

/// Printable ASCII as is; `\t`, `\r`, `\n`, `\\`, `\'`, `\"` and every other
/// byte as `\xNN`.
pub fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// `0x` and two upper-case hex digits per byte (RocksDB's `--output_hex`).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("0x");
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Parses `--input_key_hex` keys: an optional `0x`, then pairs of hex digits.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.len() & 1 == 1 {
        return Err(format!("{text:?} has an odd number of hex digits"));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            &[hi, lo] => Some((nibble(hi)? << 4) | nibble(lo)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| format!("{text:?} is not hex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_never_reach_the_terminal() {
        let shown = escaped(b"a\x1b[2J\x00\xff'\\\n");
        assert!(shown.bytes().all(|b| (0x20..0x7f).contains(&b)), "{shown}");
        assert_eq!(shown, "a\\x1b[2J\\x00\\xff\\'\\\\\\n");
    }

    #[test]
    fn hex_round_trips() {
        for bytes in [&b""[..], b"key", &[0, 0x7f, 0x80, 0xff]] {
            assert_eq!(parse_hex(&hex(bytes)).unwrap(), bytes);
        }
        assert_eq!(parse_hex("6b6579").unwrap(), b"key");
        assert!(parse_hex("0x6").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("é1").is_err());
    }
}
