//! A small DER writer for the SignedData [`sign`](super::sign) writes: a tree of definite-length
//! TLVs over borrowed bytes, written once into a buffer of the right size. Parts that are the same
//! for every signature of a signer (its SignerIdentifier, algorithm identifiers, certificates) are
//! encoded once, in `CadesSigner::new`, and only copied here.

/// One DER element or already-encoded bytes.
pub(super) enum Tlv<'a> {
    /// Bytes that are already DER (one or more whole TLVs).
    Encoded(&'a [u8]),
    /// A primitive element: tag and contents.
    Primitive(u8, &'a [u8]),
    /// A constructed element: tag and the elements inside.
    Constructed(u8, Vec<Tlv<'a>>),
}

impl Tlv<'_> {
    /// The encoded length of this element.
    pub(super) fn len(&self) -> usize {
        match self {
            Tlv::Encoded(bytes) => bytes.len(),
            Tlv::Primitive(_, contents) => header_len(contents.len()) + contents.len(),
            Tlv::Constructed(_, parts) => {
                let contents = contents_len(parts);
                header_len(contents) + contents
            }
        }
    }

    /// The DER bytes.
    pub(super) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Tlv::Encoded(bytes) => out.extend_from_slice(bytes),
            Tlv::Primitive(tag, contents) => {
                write_header(out, *tag, contents.len());
                out.extend_from_slice(contents);
            }
            Tlv::Constructed(tag, parts) => {
                write_header(out, *tag, contents_len(parts));
                for part in parts {
                    part.write(out);
                }
            }
        }
    }
}

fn contents_len(parts: &[Tlv<'_>]) -> usize {
    parts.iter().map(Tlv::len).sum()
}

/// Tag byte and definite length (X.690 8.1.3: short form below 128, else the fewest octets).
fn header_len(contents: usize) -> usize {
    1 + match contents {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

fn write_header(out: &mut Vec<u8>, tag: u8, contents: usize) {
    out.push(tag);
    if contents < 0x80 {
        out.push(contents as u8);
        return;
    }
    let bytes = (contents as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// `der` with its outer tag replaced: a SET OF encoded with `der` becomes the IMPLICIT
/// context-tagged field holding it (same length and contents, X.690 8.14.3).
pub(super) fn retagged(mut der: Vec<u8>, tag: u8) -> Vec<u8> {
    if let Some(first) = der.first_mut() {
        *first = tag;
    }
    der
}

/// Tags used here.
pub(super) const INTEGER: u8 = 0x02;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const OBJECT_IDENTIFIER: u8 = 0x06;
pub(super) const SEQUENCE: u8 = 0x30;
pub(super) const SET: u8 = 0x31;
/// [0] and [1], constructed.
pub(super) const CONTEXT_0: u8 = 0xa0;
pub(super) const CONTEXT_1: u8 = 0xa1;

#[cfg(test)]
mod tests {
    use der::Encode;
    use der::asn1::OctetString;

    use super::*;

    #[test]
    fn lengths_match_der_at_every_boundary() {
        for size in [
            0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0x10_0000,
        ] {
            let contents = vec![0x5a; size];
            let ours = Tlv::Primitive(OCTET_STRING, &contents).to_vec();
            let theirs = OctetString::new(contents.clone())
                .unwrap()
                .to_der()
                .unwrap();
            assert_eq!(ours, theirs, "size {size}");
            assert_eq!(Tlv::Primitive(OCTET_STRING, &contents).len(), theirs.len());
        }
    }

    #[test]
    fn nested_elements_and_retagging() {
        let inner = [0x02, 0x01, 0x05];
        let tlv = Tlv::Constructed(
            SEQUENCE,
            vec![Tlv::Encoded(&inner), Tlv::Constructed(CONTEXT_0, vec![])],
        );
        assert_eq!(tlv.to_vec(), [0x30, 0x05, 0x02, 0x01, 0x05, 0xa0, 0x00]);
        assert_eq!(retagged(vec![SET, 0x00], CONTEXT_1), [0xa1, 0x00]);
    }
}
