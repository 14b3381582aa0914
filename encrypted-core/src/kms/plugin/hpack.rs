//! HPACK (RFC 7541): a decoder that mirrors a peer's encoder, and an encoder that never touches
//! the receiver's dynamic table.
//!
//! The plugin server's connection shim (the private `authority` module) uses both: it decodes every header
//! block a client sends (so it follows the client's dynamic table exactly) and re-encodes it with
//! static-table references and literals *without indexing* only, so the server's own decoder
//! never holds a dynamic entry and cannot fall out of step with the client's encoder.
//!
//! Written for hostile input: every length and index is checked, integers are bounded, a header
//! list larger than the caller's limit is refused, and nothing panics. Public (hidden) so that
//! tests and fuzz targets can drive it; not a stable API.

use std::collections::VecDeque;
use std::fmt;

/// The dynamic table size a decoder starts with (`SETTINGS_HEADER_TABLE_SIZE`'s default).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Bytes an entry costs in the dynamic table and in a header list, beyond its name and value.
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer is longer than this decoder accepts (more than 2³² − 1).
    IntegerOverflow,
    /// Index 0, or an index past the static and dynamic tables.
    InvalidIndex(usize),
    /// A dynamic table size update after the first header field, or above the allowed maximum.
    InvalidSizeUpdate,
    /// A Huffman-coded string with the EOS symbol, or padding that is not a prefix of EOS.
    InvalidHuffman,
    /// The decoded header list is larger than the caller allows.
    ListTooLarge {
        /// The caller's limit, in bytes as RFC 7540 counts them (name + value + 32 per field).
        limit: usize,
    },
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("the header block ends inside a field"),
            HpackError::IntegerOverflow => f.write_str("an integer is too large"),
            HpackError::InvalidIndex(i) => write!(f, "header table index {i} does not exist"),
            HpackError::InvalidSizeUpdate => {
                f.write_str("invalid dynamic table size update (too large, or not at the start)")
            }
            HpackError::InvalidHuffman => f.write_str("invalid Huffman-coded string"),
            HpackError::ListTooLarge { limit } => {
                write!(f, "the header list is larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for HpackError {}

/// One decoded header field. Its `Debug` shows the name and the value's length only (values
/// can be credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Field {
    /// The name, as sent (HTTP/2 requires lower case; not checked here).
    pub name: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Sent as "never indexed": re-encoded the same way, so an intermediary keeps it out of
    /// compression tables.
    pub sensitive: bool,
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("value_len", &self.value.len())
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

/// A decoder: the dynamic table as the peer's encoder built it.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Newest entry first (HPACK index 62 is `table[0]`).
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    /// The largest size update accepted.
    allowed: usize,
}

impl Decoder {
    /// A decoder whose table starts at [`DEFAULT_TABLE_SIZE`] and accepts size updates up to
    /// `allowed` bytes.
    #[must_use]
    pub fn new(allowed: usize) -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE.min(allowed),
            allowed,
        }
    }

    /// Bytes the dynamic table holds now, as HPACK counts them.
    #[must_use]
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Decodes one complete header block (HEADERS and its CONTINUATION fragments, joined),
    /// updating the dynamic table as the encoder did.
    ///
    /// # Errors
    /// [`HpackError`] for a malformed block, or a list larger than `max_list` bytes (counted as
    /// RFC 7540 does: name + value + 32 per field). After an error the table may be out of step
    /// with the encoder's: the connection must be closed.
    pub fn decode(&mut self, block: &[u8], max_list: usize) -> Result<Vec<Field>, HpackError> {
        let mut input = Input { bytes: block };
        let mut fields = Vec::new();
        let mut list_size = 0usize;
        let mut updates_allowed = true;
        while let Some(&first) = input.bytes.first() {
            let field = if first & 0x80 != 0 {
                let index = input.integer(7)?;
                let (name, value) = self.get(index)?;
                Field {
                    name: name.to_vec(),
                    value: value.to_vec(),
                    sensitive: false,
                }
            } else if first & 0x40 != 0 {
                let field = self.literal(&mut input, 6, false)?;
                self.insert(field.name.clone(), field.value.clone());
                field
            } else if first & 0x20 != 0 {
                if !updates_allowed {
                    return Err(HpackError::InvalidSizeUpdate);
                }
                let size = input.integer(5)?;
                if size > self.allowed {
                    return Err(HpackError::InvalidSizeUpdate);
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                self.literal(&mut input, 4, first & 0x10 != 0)?
            };
            updates_allowed = false;
            list_size = list_size
                .saturating_add(field.name.len())
                .saturating_add(field.value.len())
                .saturating_add(ENTRY_OVERHEAD);
            if list_size > max_list {
                return Err(HpackError::ListTooLarge { limit: max_list });
            }
            fields.push(field);
        }
        Ok(fields)
    }

    /// A literal field whose name index has a `prefix`-bit prefix.
    fn literal(
        &self,
        input: &mut Input<'_>,
        prefix: u8,
        sensitive: bool,
    ) -> Result<Field, HpackError> {
        let index = input.integer(prefix)?;
        let name = if index == 0 {
            input.string()?
        } else {
            self.get(index)?.0.to_vec()
        };
        let value = input.string()?;
        Ok(Field {
            name,
            value,
            sensitive,
        })
    }

    /// The entry at an HPACK index (1-based; static table first).
    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        if index == 0 {
            return Err(HpackError::InvalidIndex(index));
        }
        if let Some((name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((name.as_bytes(), value.as_bytes()));
        }
        self.table
            .get(index - 1 - STATIC_TABLE.len())
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .ok_or(HpackError::InvalidIndex(index))
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.table.push_front((name, value));
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some((name, value)) = self.table.pop_back() else {
                self.size = 0;
                return;
            };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// The rest of a header block.
struct Input<'a> {
    bytes: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Result<u8, HpackError> {
        let (&b, rest) = self.bytes.split_first().ok_or(HpackError::Truncated)?;
        self.bytes = rest;
        Ok(b)
    }

    /// An integer with an `n`-bit prefix (RFC 7541 §5.1), at most 2³² − 1.
    fn integer(&mut self, n: u8) -> Result<usize, HpackError> {
        let mask = (1u16 << n) - 1;
        let first = u16::from(self.byte()?) & mask;
        if first < mask {
            return Ok(usize::from(first));
        }
        let mut value = u64::from(mask);
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift > 28 {
                return Err(HpackError::IntegerOverflow);
            }
            value += u64::from(b & 0x7f) << shift;
            if value > u64::from(u32::MAX) {
                return Err(HpackError::IntegerOverflow);
            }
            if b & 0x80 == 0 {
                return usize::try_from(value).map_err(|_| HpackError::IntegerOverflow);
            }
            shift += 7;
        }
    }

    /// A string literal (RFC 7541 §5.2), Huffman-decoded when its H bit is set.
    fn string(&mut self) -> Result<Vec<u8>, HpackError> {
        let huffman = self.bytes.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = self.integer(7)?;
        if len > self.bytes.len() {
            return Err(HpackError::Truncated);
        }
        let (data, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        if huffman {
            huffman_decode(data)
        } else {
            Ok(data.to_vec())
        }
    }
}

/// Appends the HPACK encoding of `fields` to `out`: a static-table index for an exact static
/// match, otherwise a literal *without indexing* (or *never indexed* for sensitive fields) with
/// the name by static index when the static table has it. Strings are not Huffman-coded. The
/// receiver's dynamic table is never used or changed.
pub fn encode(fields: &[Field], out: &mut Vec<u8>) {
    for field in fields {
        let exact = STATIC_TABLE
            .iter()
            .position(|(n, v)| n.as_bytes() == field.name && v.as_bytes() == field.value);
        if let (Some(i), false) = (exact, field.sensitive) {
            put_integer(out, 0x80, 7, i + 1);
            continue;
        }
        let flags = if field.sensitive { 0x10 } else { 0x00 };
        match STATIC_TABLE
            .iter()
            .position(|(n, _)| n.as_bytes() == field.name)
        {
            Some(i) => put_integer(out, flags, 4, i + 1),
            None => {
                out.push(flags);
                put_string(out, &field.name);
            }
        }
        put_string(out, &field.value);
    }
}

fn put_integer(out: &mut Vec<u8>, flags: u8, n: u8, value: usize) {
    let mask = (1usize << n) - 1;
    if value < mask {
        // value < mask ≤ 255
        out.push(flags | value.to_le_bytes()[0]);
        return;
    }
    out.push(flags | mask.to_le_bytes()[0]);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f).to_le_bytes()[0]);
        rest >>= 7;
    }
    out.push(rest.to_le_bytes()[0]);
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    put_integer(out, 0x00, 7, bytes.len());
    out.extend_from_slice(bytes);
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The HPACK Huffman code (RFC 7541 Appendix B) is canonical: codes of one length are
/// consecutive, assigned in symbol order, and each length starts where the previous one ended
/// (shifted left by the difference). So the symbols grouped by code length, in order, define it
/// completely. Symbol 256 is EOS.
const SYMBOLS_BY_LENGTH: [(u8, &[u16]); 21] = [
    (5, &[48, 49, 50, 97, 99, 101, 105, 111, 115, 116]),
    (
        6,
        &[
            32, 37, 45, 46, 47, 51, 52, 53, 54, 55, 56, 57, 61, 65, 95, 98, 100, 102, 103, 104,
            108, 109, 110, 112, 114, 117,
        ],
    ),
    (
        7,
        &[
            58, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86,
            87, 89, 106, 107, 113, 118, 119, 120, 121, 122,
        ],
    ),
    (8, &[38, 42, 44, 59, 88, 90]),
    (10, &[33, 34, 40, 41, 63]),
    (11, &[39, 43, 124]),
    (12, &[35, 62]),
    (13, &[0, 36, 64, 91, 93, 126]),
    (14, &[94, 125]),
    (15, &[60, 96, 123]),
    (19, &[92, 195, 208]),
    (20, &[128, 130, 131, 162, 184, 194, 224, 226]),
    (
        21,
        &[
            153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230,
        ],
    ),
    (
        22,
        &[
            129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185,
            186, 187, 189, 190, 196, 198, 228, 232, 233,
        ],
    ),
    (
        23,
        &[
            1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166,
            168, 174, 175, 180, 182, 183, 188, 191, 197, 231, 239,
        ],
    ),
    (
        24,
        &[9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237],
    ),
    (25, &[199, 207, 234, 235]),
    (
        26,
        &[
            192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255,
        ],
    ),
    (
        27,
        &[
            203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252,
            253, 254,
        ],
    ),
    (
        28,
        &[
            2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28,
            29, 30, 31, 127, 220, 249,
        ],
    ),
    (30, &[10, 13, 22, 256]),
];

const EOS: u16 = 256;
const MAX_CODE_LEN: usize = 30;

/// Per code length: the first code, and where its symbols start in [`CANONICAL`].`symbols`.
struct Canonical {
    first: [u32; MAX_CODE_LEN + 1],
    count: [u16; MAX_CODE_LEN + 1],
    offset: [u16; MAX_CODE_LEN + 1],
    symbols: [u16; 257],
}

const CANONICAL: Canonical = {
    let mut c = Canonical {
        first: [0; MAX_CODE_LEN + 1],
        count: [0; MAX_CODE_LEN + 1],
        offset: [0; MAX_CODE_LEN + 1],
        symbols: [0; 257],
    };
    let mut code: u32 = 0;
    let mut prev_len: u32 = 0;
    let mut next: usize = 0;
    let mut g = 0;
    while g < SYMBOLS_BY_LENGTH.len() {
        let (len, symbols) = SYMBOLS_BY_LENGTH[g];
        let len32 = len as u32;
        if g > 0 {
            code <<= len32 - prev_len;
        }
        c.first[len as usize] = code;
        c.count[len as usize] = symbols.len() as u16;
        c.offset[len as usize] = next as u16;
        let mut s = 0;
        while s < symbols.len() {
            c.symbols[next] = symbols[s];
            next += 1;
            s += 1;
        }
        code += symbols.len() as u32;
        prev_len = len32;
        g += 1;
    }
    assert!(next == 257, "every symbol has a code");
    c
};

/// Decodes a Huffman-coded string (RFC 7541 §5.2): the EOS symbol is an error, and the padding
/// must be fewer than 8 bits, all ones.
fn huffman_decode(data: &[u8]) -> Result<Vec<u8>, HpackError> {
    let mut out = Vec::with_capacity(data.len() * 8 / 5);
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in data {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            if len > MAX_CODE_LEN {
                return Err(HpackError::InvalidHuffman);
            }
            let count = u32::from(CANONICAL.count[len]);
            let first = CANONICAL.first[len];
            if count > 0 && code >= first && code - first < count {
                let at = usize::from(CANONICAL.offset[len]) + (code - first) as usize;
                let symbol = CANONICAL.symbols[at];
                if symbol == EOS {
                    return Err(HpackError::InvalidHuffman);
                }
                out.push(symbol.to_le_bytes()[0]);
                code = 0;
                len = 0;
            }
        }
    }
    // Leftover bits: at most 7, all ones (a prefix of EOS, whose code is all ones).
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HpackError::InvalidHuffman);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn pairs(fields: &[Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                )
            })
            .collect()
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// RFC 7541 C.3: requests without Huffman coding, sharing one dynamic table.
    #[test]
    fn rfc7541_c3_requests_without_huffman() {
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        let first = d
            .decode(
                &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
                1 << 20,
            )
            .expect("C.3.1");
        assert_eq!(
            pairs(&first),
            owned(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ])
        );
        assert_eq!(d.table_size(), 57);
        let second = d
            .decode(&hex("8286 84be 5808 6e6f 2d63 6163 6865"), 1 << 20)
            .expect("C.3.2");
        assert_eq!(
            pairs(&second),
            owned(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ])
        );
        assert_eq!(d.table_size(), 110);
        let third = d
            .decode(
                &hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
                1 << 20,
            )
            .expect("C.3.3");
        assert_eq!(
            pairs(&third),
            owned(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(d.table_size(), 164);
    }

    /// RFC 7541 C.4: the same requests with Huffman coding.
    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        let first = d
            .decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), 1 << 20)
            .expect("C.4.1");
        assert_eq!(first[3].value, b"www.example.com");
        let second = d
            .decode(&hex("8286 84be 5886 a8eb 1064 9cbf"), 1 << 20)
            .expect("C.4.2");
        assert_eq!(second[4].value, b"no-cache");
        let third = d
            .decode(
                &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
                1 << 20,
            )
            .expect("C.4.3");
        assert_eq!(
            pairs(&third)[4],
            ("custom-key".to_owned(), "custom-value".to_owned())
        );
        assert_eq!(d.table_size(), 164);
    }

    /// RFC 7541 C.6: responses with Huffman coding and a 256-byte table, with evictions.
    #[test]
    fn rfc7541_c6_responses_with_eviction() {
        let mut d = Decoder::new(256);
        let first = d
            .decode(
                &hex(
                    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
                     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                ),
                1 << 20,
            )
            .expect("C.6.1");
        assert_eq!(
            pairs(&first),
            owned(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ])
        );
        assert_eq!(d.table_size(), 222);
        let second = d
            .decode(&hex("4883 640e ffc1 c0bf"), 1 << 20)
            .expect("C.6.2");
        assert_eq!(pairs(&second)[0], (":status".to_owned(), "307".to_owned()));
        assert_eq!(d.table_size(), 222);
        let third = d
            .decode(
                &hex(
                    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
                     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
                     9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                ),
                1 << 20,
            )
            .expect("C.6.3");
        assert_eq!(
            pairs(&third),
            owned(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!(d.table_size(), 215);
    }

    #[test]
    fn encoding_round_trips_and_leaves_the_table_empty() {
        let fields = vec![
            Field {
                name: b":method".to_vec(),
                value: b"POST".to_vec(),
                sensitive: false,
            },
            Field {
                name: b":authority".to_vec(),
                value: b"localhost".to_vec(),
                sensitive: false,
            },
            Field {
                name: b"authorization".to_vec(),
                value: vec![b'x'; 300],
                sensitive: true,
            },
            Field {
                name: b"x-custom".to_vec(),
                value: (0..=255).collect(),
                sensitive: false,
            },
        ];
        let mut block = Vec::new();
        encode(&fields, &mut block);
        assert_eq!(block[0], 0x83, "an exact static match is one byte");
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        assert_eq!(d.decode(&block, 1 << 20).expect("decodes"), fields);
        assert_eq!(d.table_size(), 0, "nothing was indexed");
    }

    #[test]
    fn hostile_blocks_are_errors() {
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        for (block, expected) in [
            (hex("80"), HpackError::InvalidIndex(0)),
            (hex("be"), HpackError::InvalidIndex(62)),
            (hex("ff"), HpackError::Truncated),
            (hex("ff ff ff ff"), HpackError::Truncated),
            (hex("ff ff ff ff ff 7f"), HpackError::IntegerOverflow),
            (hex("ff ff ff ff ff ff ff 01"), HpackError::IntegerOverflow),
            (hex("40"), HpackError::Truncated),
            (hex("40 05 61"), HpackError::Truncated),
            (hex("3f"), HpackError::Truncated),
            (hex("3f e2 1f"), HpackError::InvalidSizeUpdate),
            (hex("82 20"), HpackError::InvalidSizeUpdate),
            // Huffman: padding of 8 ones, padding with a zero, and an explicit EOS.
            (hex("00 01 61 81 ff"), HpackError::InvalidHuffman),
            (hex("00 01 61 81 1e"), HpackError::InvalidHuffman),
            (hex("00 01 61 84 ff ff ff ff"), HpackError::InvalidHuffman),
        ] {
            assert_eq!(d.decode(&block, 1 << 20), Err(expected), "{block:02x?}");
        }
        // Amplification through the dynamic table is bounded by the list limit.
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        let mut block = vec![0x40, 0x01, b'a', 0x7f, 0xa1, 0x1e];
        block.extend(std::iter::repeat_n(b'v', 4000));
        block.extend(std::iter::repeat_n(0xbe, 10_000));
        assert_eq!(
            d.decode(&block, 64 * 1024),
            Err(HpackError::ListTooLarge { limit: 64 * 1024 })
        );
    }

    #[test]
    fn every_byte_decodes_from_its_canonical_code() {
        // Rebuild each symbol's code from the canonical description and decode it alone,
        // padded with ones: every byte value comes back.
        let mut codes = [(0u32, 0u8); 257];
        let mut code = 0u32;
        let mut prev = 0u8;
        for (g, (len, symbols)) in SYMBOLS_BY_LENGTH.iter().enumerate() {
            if g > 0 {
                code <<= len - prev;
            }
            for &s in *symbols {
                codes[usize::from(s)] = (code, *len);
                code += 1;
            }
            prev = *len;
        }
        assert_eq!(code, 1 << 30, "the code is complete");
        for byte in 0..=255u8 {
            let (code, len) = codes[usize::from(byte)];
            let bits = u32::from(len);
            let total = bits.div_ceil(8) * 8;
            let padded = (u64::from(code) << (total - bits)) | ((1u64 << (total - bits)) - 1);
            let bytes: Vec<u8> = (0..total / 8)
                .rev()
                .map(|i| (padded >> (i * 8)).to_le_bytes()[0])
                .collect();
            assert_eq!(huffman_decode(&bytes), Ok(vec![byte]), "byte {byte}");
        }
        assert_eq!(codes[usize::from(EOS)], ((1 << 30) - 1, 30));
    }
}
