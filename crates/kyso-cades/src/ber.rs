//! A bounded BER reader (definite and indefinite lengths) for the outer CMS layers.
//!
//! `der` reads DER only, but real CMS files (OpenSSL's streaming output, some RFC 4134 examples)
//! use indefinite lengths and constructed OCTET STRINGs. This reader walks those layers, keeps
//! the raw bytes of every element (signed attributes are verified over the bytes as sent), and
//! hands the inner pieces (certificates, algorithm identifiers) to `der`.

use thiserror::Error;

/// Deepest nesting accepted; CMS needs about 12 levels, a TimeStampToken inside adds as many.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BerError {
    #[error("truncated ASN.1 at offset {offset}")]
    Truncated { offset: usize },
    #[error("bad ASN.1 length at offset {offset}")]
    BadLength { offset: usize },
    #[error("ASN.1 nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("indefinite length on a primitive element at offset {offset}")]
    IndefinitePrimitive { offset: usize },
}

/// Tag class bits (X.690 8.1.2.2).
pub const CLASS_UNIVERSAL: u8 = 0x00;
pub const CLASS_CONTEXT: u8 = 0x80;

/// One element: its tag, its contents and the whole encoding.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub class: u8,
    pub constructed: bool,
    pub number: u32,
    /// Contents octets (for an indefinite length: up to, not including, the end-of-contents).
    pub contents: &'a [u8],
    /// The whole element: identifier, length, contents (and end-of-contents).
    pub raw: &'a [u8],
    depth: usize,
}

impl<'a> Tlv<'a> {
    pub fn is(&self, class: u8, constructed: bool, number: u32) -> bool {
        self.class == class && self.constructed == constructed && self.number == number
    }

    pub fn is_universal(&self, number: u32) -> bool {
        self.class == CLASS_UNIVERSAL && self.number == number
    }

    pub fn is_context(&self, number: u32) -> bool {
        self.class == CLASS_CONTEXT && self.number == number
    }

    /// The elements inside a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, BerError> {
        let mut out = Vec::new();
        let mut rest = self.contents;
        let mut offset = 0;
        while !rest.is_empty() {
            let (tlv, next) = read_at(rest, self.depth + 1, offset)?;
            offset += rest.len() - next.len();
            out.push(tlv);
            rest = next;
        }
        Ok(out)
    }

    /// The value of an OCTET STRING, primitive or constructed (BER segments joined).
    pub fn octets(&self, max: usize) -> Result<Vec<u8>, BerError> {
        let mut out = Vec::new();
        self.collect_octets(&mut out, max)?;
        Ok(out)
    }

    fn collect_octets(&self, out: &mut Vec<u8>, max: usize) -> Result<(), BerError> {
        if !self.constructed {
            if out.len() + self.contents.len() > max {
                return Err(BerError::BadLength { offset: 0 });
            }
            out.extend_from_slice(self.contents);
            return Ok(());
        }
        for child in self.children()? {
            child.collect_octets(out, max)?;
        }
        Ok(())
    }

    /// The DER encoding of this element's contents re-tagged with `identifier` (one octet) and a
    /// definite length: what signed attributes are signed as (RFC 5652 5.4).
    pub fn retagged(&self, identifier: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.contents.len() + 6);
        out.push(identifier);
        push_length(&mut out, self.contents.len());
        out.extend_from_slice(self.contents);
        out
    }
}

pub fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Reads one element at the start of `input`; returns it and what follows.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), BerError> {
    read_at(input, 0, 0)
}

fn read_at(input: &[u8], depth: usize, offset: usize) -> Result<(Tlv<'_>, &[u8]), BerError> {
    if depth >= MAX_DEPTH {
        return Err(BerError::TooDeep { max: MAX_DEPTH });
    }
    let truncated = || BerError::Truncated { offset };
    let first = *input.first().ok_or_else(truncated)?;
    let class = first & 0xc0;
    let constructed = first & 0x20 != 0;
    let mut pos = 1;
    let mut number = u32::from(first & 0x1f);
    if number == 0x1f {
        number = 0;
        loop {
            let b = *input.get(pos).ok_or_else(truncated)?;
            pos += 1;
            if number > (u32::MAX >> 7) {
                return Err(BerError::BadLength { offset });
            }
            number = (number << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let len_byte = *input.get(pos).ok_or_else(truncated)?;
    pos += 1;
    if len_byte == 0x80 {
        if !constructed {
            return Err(BerError::IndefinitePrimitive { offset });
        }
        let start = pos;
        let mut rest = &input[pos..];
        loop {
            if rest.len() < 2 {
                return Err(truncated());
            }
            if rest[0] == 0 && rest[1] == 0 {
                let end = input.len() - rest.len();
                let tlv = Tlv {
                    class,
                    constructed,
                    number,
                    contents: &input[start..end],
                    raw: &input[..end + 2],
                    depth,
                };
                return Ok((tlv, &rest[2..]));
            }
            let inner_offset = offset + (input.len() - rest.len());
            let (_, next) = read_at(rest, depth + 1, inner_offset)?;
            rest = next;
        }
    }
    let len = if len_byte & 0x80 == 0 {
        usize::from(len_byte)
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n > 4 || n == 0 {
            return Err(BerError::BadLength { offset });
        }
        let bytes = input.get(pos..pos + n).ok_or_else(truncated)?;
        pos += n;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let end = pos.checked_add(len).ok_or(BerError::BadLength { offset })?;
    if end > input.len() {
        return Err(truncated());
    }
    let tlv = Tlv {
        class,
        constructed,
        number,
        contents: &input[pos..end],
        raw: &input[..end],
        depth,
    };
    Ok((tlv, &input[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite_lengths() {
        // SEQUENCE (indefinite) { OCTET STRING constructed (indefinite) { "ab", "c" } }
        let input = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0, 0, 0, 0,
        ];
        let (seq, rest) = read(&input).unwrap();
        assert!(rest.is_empty());
        assert!(seq.is_universal(16) && seq.raw.len() == input.len());
        let kids = seq.children().unwrap();
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].octets(100).unwrap(), b"abc");
        assert_eq!(
            kids[0].octets(2).unwrap_err(),
            BerError::BadLength { offset: 0 }
        );
    }

    #[test]
    fn truncation_and_depth_are_errors() {
        assert!(matches!(
            read(&[0x30, 0x05, 1]),
            Err(BerError::Truncated { .. })
        ));
        assert!(matches!(
            read(&[0x04, 0x80, 0, 0]),
            Err(BerError::IndefinitePrimitive { .. })
        ));
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 100).flatten().collect();
        assert!(matches!(read(&deep), Err(BerError::TooDeep { .. })));
        assert!(matches!(
            read(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(BerError::BadLength { .. })
        ));
    }

    #[test]
    fn retagging_gives_a_definite_set() {
        let input = [0xa0, 0x80, 0x02, 0x01, 0x05, 0, 0];
        let (tlv, _) = read(&input).unwrap();
        assert_eq!(tlv.retagged(0x31), vec![0x31, 0x03, 0x02, 0x01, 0x05]);
        let mut long = Vec::new();
        push_length(&mut long, 300);
        assert_eq!(long, vec![0x82, 0x01, 0x2c]);
    }
}
